//! `torch.export` archives (`.pt2`): the network's graph and its weights, nothing executed.
//!
//! In: the bytes of a `.pt2` file as `torch.export.save` writes it. Torch 2.9 and later: one root
//! folder holding `archive_format`, `archive_version`, `models/model.json` — the serialized
//! ExportedProgram — and raw weight files described by `data/weights/model_weights_config.json`;
//! torch 2.8 has the same layout with the weights as one `torch.save` file
//! (`data/weights/model.pt`); torch 2.5–2.7 write `serialized_exported_program.json` and
//! `serialized_state_dict.pt` at the top.
//! Out: an [`Archive`]: the program ([`schema::Program`]: ATen nodes, the graph signature that maps
//! each parameter and buffer to its `state_dict` key, tensor shapes) and the weights as checkpoint
//! [`Tensor`]s keyed by their `state_dict` names, zero-copy from the zip when they are contiguous.
//! [`lower`] turns the program into nnblob's [`crate::graph::Graph`].
//!
//! Pickled weights (torch 2.5–2.8) go through the checkpoint reader's safe unpickler, like any
//! `.pth`; nothing else pickled is read: sample inputs and constants (`data/sample_inputs/*.pt`,
//! `serialized_example_inputs.pt`) are ignored, and a raw-layout weight saved with `use_pickle` is
//! refused by name. The zip is read by the checkpoint reader's
//! strict zip reader; every weight's dtype, shape, strides and offset are checked against its file
//! before anything is allocated (`checkpoint::tensor::materialise`). Which versions are read and
//! why: docs/IMPORT.md.

pub mod lower;
pub mod schema;

use std::path::Path;
use std::sync::Arc;

use crate::checkpoint::tensor::{materialise, Backing, Storage, View};
use crate::checkpoint::zip;
use crate::checkpoint::{self, Tensor};

pub use lower::{lower, LowerError};

/// The archive layouts this reader knows (`<root>/archive_version`).
pub const ARCHIVE_VERSIONS: &[u32] = &[0];
/// The ExportedProgram schema majors this reader knows (`schema_version.major` of the model JSON:
/// 7 from torch 2.5, 8 from torch 2.6 on).
pub const SCHEMA_MAJORS: &[u32] = &[7, 8];
/// The largest model JSON read (the graph of a big network is a few MB).
const MAX_JSON_BYTES: usize = 256 << 20;

/// Why an archive could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The zip container or a weight's bytes are broken (the checkpoint reader's errors).
    #[error(transparent)]
    Container(#[from] checkpoint::Error),
    /// The file is a zip, but not a torch.export archive (a `.pth`, say).
    #[error("not a torch.export archive: no <root>/archive_format entry and no serialized_exported_program.json")]
    NotPt2,
    /// A required entry is missing or holds something else than the layout says.
    #[error("{entry}: {what}")]
    Malformed { entry: String, what: String },
    /// The archive was written in a layout or schema this reader does not know.
    #[error("{what} (this reader supports archive version {archive} and schema majors {schema}: the archives of torch 2.5 and later; docs/IMPORT.md)", archive = join(ARCHIVE_VERSIONS), schema = join(SCHEMA_MAJORS))]
    Version { what: String },
}

fn join(v: &[u32]) -> String {
    v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}

fn malformed(entry: &str, what: impl Into<String>) -> Error {
    Error::Malformed {
        entry: entry.to_string(),
        what: what.into(),
    }
}

/// A `.pt2` archive read: its program and its weights.
#[derive(Debug)]
pub struct Archive {
    /// The root folder every entry is under (the file's stem when torch wrote it); empty for the
    /// layout of torch 2.5–2.7.
    pub root: String,
    /// `<root>/archive_version`; `None` for the layout of torch 2.5–2.7, which has none.
    pub archive_version: Option<u32>,
    /// The serialized ExportedProgram.
    pub program: schema::Program,
    /// The weights (parameters and buffers) by `state_dict` key, in the config's order.
    pub weights: Vec<Tensor>,
    /// The pickled entries left unread (sample inputs, constants): never unpickled.
    pub unread: Vec<String>,
}

impl Archive {
    /// The `(major, minor)` schema version of the program.
    pub fn schema_version(&self) -> (u32, u32) {
        (
            self.program.schema_version.major,
            self.program.schema_version.minor,
        )
    }
}

/// Whether `bytes` look like a `.pt2` archive: a zip whose root folder has an `archive_format`
/// entry, or that has the `serialized_exported_program.json` of torch 2.5–2.7. Errors of the zip
/// itself are left to [`open`].
pub fn is_pt2(bytes: &[u8]) -> bool {
    zip::Archive::parse(bytes)
        .is_ok_and(|a| find_root(&a).is_some() || a.find(LEGACY_PROGRAM).is_some())
}

/// The program of the layout torch 2.5–2.7 write, and its weights (a `torch.save` file).
const LEGACY_PROGRAM: &str = "serialized_exported_program.json";
const LEGACY_WEIGHTS: &str = "serialized_state_dict.pt";

/// Whether the file at `path` is a `.pt2` archive (see [`is_pt2`]); false when it cannot be read.
pub fn is_pt2_file(path: &Path) -> bool {
    checkpoint::map(path).is_ok_and(|b| is_pt2(b.bytes()))
}

/// Reads the archive at `path`.
pub fn open(path: &Path) -> Result<Archive, Error> {
    read(checkpoint::map(path)?)
}

/// Reads an archive held in memory (tests, fuzzing).
pub fn from_bytes(bytes: Vec<u8>) -> Result<Archive, Error> {
    read(Arc::new(Backing::Heap(bytes)))
}

/// The root folder: the first path component shared by the entries, found from `archive_format`.
fn find_root(archive: &zip::Archive) -> Option<String> {
    archive.records.iter().find_map(|r| {
        let (root, rest) = r.name.split_once('/')?;
        (rest == "archive_format").then(|| root.to_string())
    })
}

fn read(backing: Arc<Backing>) -> Result<Archive, Error> {
    let bytes = backing.bytes();
    let archive = zip::Archive::parse(bytes)?;
    // An entry's bytes, bounded: the JSON and small records are read whole.
    let entry = |name: &str, limit: usize| -> Result<Vec<u8>, Error> {
        let record = archive
            .find(name)
            .ok_or_else(|| malformed(name, "missing from the archive"))?;
        if record.size > limit as u64 {
            return Err(malformed(
                name,
                format!(
                    "{} bytes, more than the {limit} this reader takes",
                    record.size
                ),
            ));
        }
        Ok(archive.read(bytes, record)?.bytes(bytes).to_vec())
    };
    let Some(root) = find_root(&archive) else {
        if archive.find(LEGACY_PROGRAM).is_none() {
            return Err(Error::NotPt2);
        }
        let program = parse_program(LEGACY_PROGRAM, &entry(LEGACY_PROGRAM, MAX_JSON_BYTES)?)?;
        let weights = match archive.find(LEGACY_WEIGHTS) {
            Some(_) => pickled_weights(&archive, bytes, LEGACY_WEIGHTS)?,
            None => Vec::new(),
        };
        return Ok(Archive {
            root: String::new(),
            archive_version: None,
            program,
            weights,
            unread: unread(&archive, &[LEGACY_WEIGHTS]),
        });
    };
    let name = format!("{root}/archive_format");
    let format = entry(&name, 64)?;
    if format != b"pt2" {
        return Err(malformed(
            &name,
            format!(
                "says {:?}, expected \"pt2\"",
                String::from_utf8_lossy(&format)
            ),
        ));
    }
    let name = format!("{root}/archive_version");
    let archive_version = std::str::from_utf8(&entry(&name, 64)?)
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .ok_or_else(|| malformed(&name, "is not a version number"))?;
    if !ARCHIVE_VERSIONS.contains(&archive_version) {
        return Err(Error::Version {
            what: format!("{name} is {archive_version}"),
        });
    }
    let name = format!("{root}/byteorder");
    if archive.find(&name).is_some() && entry(&name, 64)? != b"little" {
        return Err(malformed(
            &name,
            "the weights are not little-endian; export on a little-endian machine",
        ));
    }
    let name = format!("{root}/models/model.json");
    let program = parse_program(&name, &entry(&name, MAX_JSON_BYTES)?)?;
    let pickled = format!("{root}/data/weights/model.pt");
    let weights = if archive.find(&pickled).is_some() {
        pickled_weights(&archive, bytes, &pickled)?
    } else {
        read_weights(&archive, &backing, &root)?
    };
    Ok(Archive {
        unread: unread(&archive, &[pickled.as_str()]),
        root,
        archive_version: Some(archive_version),
        program,
        weights,
    })
}

/// The `.pt` entries (torch.save pickles) other than `read`.
fn unread(archive: &zip::Archive, read: &[&str]) -> Vec<String> {
    archive
        .records
        .iter()
        .filter(|r| r.name.ends_with(".pt") && !read.contains(&r.name.as_str()))
        .map(|r| r.name.clone())
        .collect()
}

/// The program in the JSON of entry `name`, of a schema major this reader knows.
fn parse_program(name: &str, json: &[u8]) -> Result<schema::Program, Error> {
    let program = schema::Program::parse(json).map_err(|what| malformed(name, what))?;
    let major = program.schema_version.major;
    if !SCHEMA_MAJORS.contains(&major) {
        return Err(Error::Version {
            what: format!(
                "{name} has schema version {major}.{} (written by torch {})",
                program.schema_version.minor,
                program
                    .torch_version
                    .as_deref()
                    .unwrap_or("of unknown version")
            ),
        });
    }
    Ok(program)
}

/// The weights of a `torch.save` file inside the archive (torch 2.5–2.8), read by the checkpoint
/// reader: its safe unpickler, its allowlist, its checks.
fn pickled_weights(archive: &zip::Archive, bytes: &[u8], name: &str) -> Result<Vec<Tensor>, Error> {
    let record = archive
        .find(name)
        .ok_or_else(|| malformed(name, "missing from the archive"))?;
    let content = archive.read(bytes, record)?.bytes(bytes).to_vec();
    let ckpt = checkpoint::from_bytes(content, &checkpoint::Options::default())
        .map_err(|e| malformed(name, e.to_string()))?;
    Ok(ckpt.tensors)
}

/// The weights of `data/weights/model_weights_config.json`, each checked against its file.
fn read_weights(
    archive: &zip::Archive,
    backing: &Arc<Backing>,
    root: &str,
) -> Result<Vec<Tensor>, Error> {
    let bytes = backing.bytes();
    let entry = format!("{root}/data/weights/model_weights_config.json");
    let Some(record) = archive.find(&entry) else {
        return Ok(Vec::new());
    };
    let content = archive.read(bytes, record)?;
    let config: schema::WeightsConfig = serde_json::from_slice(content.bytes(bytes))
        .map_err(|e| malformed(&entry, e.to_string()))?;
    let mut tensors = Vec::with_capacity(config.config.len());
    for (key, w) in &config.config {
        let what = |m: String| malformed(&entry, format!("weight '{key}': {m}"));
        if w.use_pickle {
            return Err(what(
                "is pickled (use_pickle); nnblob reads raw weights only and never unpickles \
                 them"
                    .into(),
            ));
        }
        let meta = &w.tensor_meta;
        let dtype = schema::dtype(meta.dtype).ok_or_else(|| {
            what(format!(
                "has dtype code {}, which nnblob does not read",
                meta.dtype
            ))
        })?;
        let ints = |v: &[schema::SymInt], field: &str| -> Result<Vec<u64>, Error> {
            v.iter()
                .map(|s| s.as_u64())
                .collect::<Option<_>>()
                .ok_or_else(|| what(format!("{field} are symbolic or negative")))
        };
        let size = ints(&meta.sizes, "sizes")?;
        let stride = ints(&meta.strides, "strides")?;
        if size.len() != stride.len() {
            return Err(what(format!(
                "has {} sizes and {} strides",
                size.len(),
                stride.len()
            )));
        }
        let storage_offset = meta
            .storage_offset
            .as_u64()
            .ok_or_else(|| what("storage_offset is symbolic or negative".into()))?;
        if w.path_name.contains('/') || w.path_name.contains("..") {
            return Err(what(format!("path '{}' leaves data/weights/", w.path_name)));
        }
        let file = format!("{root}/data/weights/{}", w.path_name);
        let record = archive
            .find(&file)
            .ok_or_else(|| what(format!("its file {file} is missing from the archive")))?;
        let storage = match archive.read(bytes, record)? {
            zip::Content::Borrowed(range) => Storage {
                backing: backing.clone(),
                range,
                big_endian: false,
            },
            zip::Content::Owned(v) => {
                let n = v.len();
                Storage {
                    backing: Arc::new(Backing::Heap(v)),
                    range: 0..n,
                    big_endian: false,
                }
            }
        };
        let view = View {
            name: key,
            dtype,
            size: &size,
            stride: &stride,
            storage_offset,
            storage_key: &w.path_name,
        };
        tensors.push(materialise(&view, &storage)?);
    }
    Ok(tensors)
}

/// The pickles a `.pt2` archive carries (its `.pt` entries: pickled weights, sample inputs,
/// constants — `torch.export.load` unpickles the sample inputs), each scanned by the checkpoint
/// reader's scanner without executing anything: entry name and what the scan found, or why the
/// entry could not be scanned.
pub fn scan_pickles(
    path: &Path,
) -> Result<Vec<(String, checkpoint::Result<checkpoint::Scan>)>, Error> {
    let backing = checkpoint::map(path)?;
    let bytes = backing.bytes();
    let archive = zip::Archive::parse(bytes)?;
    let mut scans = Vec::new();
    for record in archive.records.iter().filter(|r| r.name.ends_with(".pt")) {
        let content = archive.read(bytes, record)?.bytes(bytes).to_vec();
        scans.push((record.name.clone(), checkpoint::scan_bytes(content)));
    }
    Ok(scans)
}
