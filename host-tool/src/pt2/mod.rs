//! `torch.export` archives (`.pt2`): the network's graph and its weights, nothing executed.
//!
//! In: the bytes of a `.pt2` file as `torch.export.save` writes it (torch 2.8 and later: one root
//! folder holding `archive_format`, `archive_version`, `models/model.json` — the serialized
//! ExportedProgram — and raw weight files described by `data/weights/model_weights_config.json`).
//! Out: an [`Archive`]: the program ([`schema::Program`]: ATen nodes, the graph signature that maps
//! each parameter and buffer to its `state_dict` key, tensor shapes) and the weights as checkpoint
//! [`Tensor`]s keyed by their `state_dict` names, zero-copy from the zip when they are contiguous.
//! [`lower`] turns the program into nnblob's [`crate::graph::Graph`].
//!
//! Nothing pickled is read: sample inputs (`data/sample_inputs/*.pt`) are ignored, and a weight or
//! constant saved with `use_pickle` is refused by name. The zip is read by the checkpoint reader's
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
/// The ExportedProgram schema majors this reader knows (`schema_version.major` of the model JSON).
pub const SCHEMA_MAJORS: &[u32] = &[8];
/// The largest model JSON read (the graph of a big network is a few MB).
const MAX_JSON_BYTES: usize = 256 << 20;

/// Why an archive could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The zip container or a weight's bytes are broken (the checkpoint reader's errors).
    #[error(transparent)]
    Container(#[from] checkpoint::Error),
    /// A required entry is missing or holds something else than the layout says.
    #[error("{entry}: {what}")]
    Malformed { entry: String, what: String },
    /// The archive was written in a layout or schema this reader does not know.
    #[error("{what} (this reader supports archive version {archive}, schema major {schema}: torch 2.8 and later; docs/IMPORT.md)", archive = join(ARCHIVE_VERSIONS), schema = join(SCHEMA_MAJORS))]
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
    /// The root folder every entry is under (the file's stem when torch wrote it).
    pub root: String,
    /// `<root>/archive_version`.
    pub archive_version: u32,
    /// The serialized ExportedProgram.
    pub program: schema::Program,
    /// The weights (parameters and buffers) by `state_dict` key, in the config's order.
    pub weights: Vec<Tensor>,
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
/// entry saying `pt2`. Errors of the zip itself are left to [`read`].
pub fn is_pt2(bytes: &[u8]) -> bool {
    let Ok(archive) = zip::Archive::parse(bytes) else {
        return false;
    };
    find_root(&archive).is_some_and(|root| {
        archive
            .find(&format!("{root}/archive_format"))
            .and_then(|r| archive.read(bytes, r).ok())
            .is_some_and(|c| c.bytes(bytes) == b"pt2")
    })
}

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
    let root = find_root(&archive).ok_or_else(|| {
        let old = archive
            .records
            .iter()
            .any(|r| r.name.ends_with("serialized_exported_program.json"));
        Error::Version {
            what: if old {
                "the archive has the layout of torch 2.7 or older (serialized_exported_program.json)"
                    .into()
            } else {
                "not a torch.export archive: no <root>/archive_format entry".into()
            },
        }
    })?;
    let text = |name: &str, limit: usize| -> Result<(String, Vec<u8>), Error> {
        let entry = format!("{root}/{name}");
        let record = archive
            .find(&entry)
            .ok_or_else(|| malformed(&entry, "missing from the archive"))?;
        if record.size > limit as u64 {
            return Err(malformed(
                &entry,
                format!(
                    "{} bytes, more than the {limit} this reader takes",
                    record.size
                ),
            ));
        }
        let content = archive.read(bytes, record)?;
        Ok((entry, content.bytes(bytes).to_vec()))
    };
    let (entry, format) = text("archive_format", 64)?;
    if format != b"pt2" {
        return Err(malformed(
            &entry,
            format!(
                "says {:?}, expected \"pt2\"",
                String::from_utf8_lossy(&format)
            ),
        ));
    }
    let (entry, version) = text("archive_version", 64)?;
    let archive_version = std::str::from_utf8(&version)
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .ok_or_else(|| malformed(&entry, "is not a version number"))?;
    if !ARCHIVE_VERSIONS.contains(&archive_version) {
        return Err(Error::Version {
            what: format!("{entry} is {archive_version}"),
        });
    }
    if let Some(record) = archive.find(&format!("{root}/byteorder")) {
        let order = archive.read(bytes, record)?;
        if order.bytes(bytes) != b"little" {
            return Err(malformed(
                &record.name,
                "the weights are not little-endian; export on a little-endian machine",
            ));
        }
    }
    let (entry, json) = text("models/model.json", MAX_JSON_BYTES)?;
    let program = schema::Program::parse(&json).map_err(|what| malformed(&entry, what))?;
    let major = program.schema_version.major;
    if !SCHEMA_MAJORS.contains(&major) {
        return Err(Error::Version {
            what: format!(
                "{entry} has schema version {major}.{} (written by torch {})",
                program.schema_version.minor,
                program
                    .torch_version
                    .as_deref()
                    .unwrap_or("of unknown version")
            ),
        });
    }
    let weights = read_weights(&archive, &backing, &root)?;
    Ok(Archive {
        root,
        archive_version,
        program,
        weights,
    })
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
        if archive
            .find(&format!("{root}/data/weights/model.pt"))
            .is_some()
        {
            return Err(Error::Version {
                what: "the weights are pickled in data/weights/model.pt (torch 2.8's layout); \
                       re-save the program with torch 2.9 or later"
                    .into(),
            });
        }
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
