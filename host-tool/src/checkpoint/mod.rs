//! The checkpoint reader: PyTorch files in, named tensors out, nothing executed.
//!
//! In: a `.pth` / `.pt` / `.bin` (torch zip or legacy format), a Lightning `.ckpt`, or a `.safetensors`
//! file. Out: a [`Checkpoint`] — the format, the selected state_dict as an ordered list of
//! [`Tensor`]s (name, dtype, shape, row-major little-endian bytes, [`Tensor::to_f32`]), the module classes
//! a full-model pickle names, and every global the pickles reference with the reader's verdict.
//!
//! Pickles run on our own VM ([`pickle`]) whose globals resolve against an allowlist ([`globals`]);
//! containers are parsed strictly (`zip`, `legacy`); files are memory-mapped and tensors borrow the map
//! when they are already contiguous. [`scan`] runs the same code in audit mode and lists every global
//! instead of stopping at the first refusal. What is accepted and refused, and why: `docs/CHECKPOINTS.md`.

pub mod error;
pub mod globals;
mod legacy;
pub mod pickle;
mod safetensors_file;
pub(crate) mod tensor;
mod torch;
pub mod training;
pub(crate) mod zip;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

pub use error::{Error, Result};
pub use globals::Verdict;
pub use tensor::{Dtype, Tensor};
pub use torch::PREFERRED_KEYS;

use pickle::{Limits, Mode, Obj, Unpickled};
use tensor::{Backing, Storage};

/// How to read a checkpoint.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Dotted key path of the state_dict inside a nested checkpoint dict (`--key`); `None` = detect.
    pub key: Option<String>,
}

/// The byte-level container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// `torch.save` zip archive (torch >= 1.6).
    TorchZip,
    /// `torch.save(..., _use_new_zipfile_serialization=False)`.
    TorchLegacy,
    /// safetensors.
    Safetensors,
}

impl Container {
    /// `torch-zip`, `torch-legacy` or `safetensors`.
    pub fn as_str(self) -> &'static str {
        match self {
            Container::TorchZip => "torch-zip",
            Container::TorchLegacy => "torch-legacy",
            Container::Safetensors => "safetensors",
        }
    }
}

/// What kind of checkpoint this is: the container, or `lightning` for a Lightning checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A torch zip archive.
    TorchZip,
    /// A legacy torch file.
    TorchLegacy,
    /// A safetensors file.
    Safetensors,
    /// A PyTorch Lightning checkpoint (a torch zip archive holding a dict with `state_dict`).
    Lightning,
}

impl Format {
    /// `torch-zip`, `torch-legacy`, `safetensors` or `lightning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::TorchZip => "torch-zip",
            Format::TorchLegacy => "torch-legacy",
            Format::Safetensors => "safetensors",
            Format::Lightning => "lightning",
        }
    }
}

/// A global referenced by one of the file's pickles.
#[derive(Debug, Clone)]
pub struct GlobalRef {
    /// `module.name`.
    pub name: String,
    /// The pickle it is in (`archive/data.pkl`, `object pickle`, ...).
    pub entry: String,
    /// Byte offset of its GLOBAL / STACK_GLOBAL opcode in that pickle.
    pub offset: u64,
    /// What the reader makes of it.
    pub verdict: Verdict,
}

/// A global the reader refuses, found by [`scan`].
#[derive(Debug, Clone)]
pub struct Finding {
    /// `module.name`.
    pub global: String,
    /// The pickle it is in.
    pub entry: String,
    /// Byte offset of its GLOBAL / STACK_GLOBAL opcode.
    pub offset: u64,
    /// Why it is refused.
    pub reason: String,
}

/// A checkpoint read safely.
#[derive(Debug)]
pub struct Checkpoint {
    /// The kind of checkpoint.
    pub format: Format,
    /// The byte-level container.
    pub container: Container,
    /// The key path of the selected state_dict (`None`: the top-level object).
    pub key: Option<String>,
    /// The selected state_dict, in its order.
    pub tensors: Vec<Tensor>,
    /// Module classes of a full-model pickle (`torch.nn.modules.conv.Conv2d`, `__main__.Net`), sorted.
    pub classes: Vec<String>,
    /// Every global the pickles reference, in pickle order.
    pub globals: Vec<GlobalRef>,
    /// True if the storages were big-endian (they were byte-swapped).
    pub big_endian: bool,
    /// Top-level entries next to the selected state_dict holding training-only state (optimizer,
    /// gradient scaler, scheduler), with what they hold: read past, not used.
    pub training_state: Vec<(String, &'static str)>,
    /// Values outside the selected state_dict that call classes, left unbuilt (`None`: none).
    pub skipped: Option<Skipped>,
}

/// Values a pickle builds by calling classes (enums, `pathlib` paths, `defaultdict`s), outside
/// the selected state_dict: left as inert placeholders, never built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The top-level entries holding them (`hyper_parameters`).
    pub keys: Vec<String>,
    /// The classes called, in pickle order.
    pub globals: Vec<String>,
}

impl Checkpoint {
    /// Notes a user should know about from a security point of view (empty for a plain state_dict).
    pub fn security_notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if !self.classes.is_empty() {
            notes.push(format!(
                "full-model pickle: names {} class(es) ({}); nnblob built inert objects, but torch.load \
                 would import their modules and needs weights_only=False",
                self.classes.len(),
                self.classes.join(", ")
            ));
        }
        notes
    }
}

/// What [`scan`] found in one file.
#[derive(Debug)]
pub struct Scan {
    /// The container.
    pub container: Container,
    /// Every global referenced, in pickle order (pickles in file order).
    pub globals: Vec<GlobalRef>,
    /// The refused ones.
    pub findings: Vec<Finding>,
}

/// Read the checkpoint at `path`.
pub fn open(path: &Path, options: &Options) -> Result<Checkpoint> {
    read(map(path)?, options)
}

/// Read a checkpoint held in memory (tests, fuzzing).
pub fn from_bytes(bytes: Vec<u8>, options: &Options) -> Result<Checkpoint> {
    read(Arc::new(Backing::Heap(bytes)), options)
}

/// List every global the pickles of the file at `path` reference, with verdicts, without stopping at
/// the first refused one. Errors are for files that cannot be parsed at all.
pub fn scan(path: &Path) -> Result<Scan> {
    scan_backing(&map(path)?)
}

/// [`scan`] over bytes in memory.
pub fn scan_bytes(bytes: Vec<u8>) -> Result<Scan> {
    scan_backing(&Arc::new(Backing::Heap(bytes)))
}

pub(crate) fn map(path: &Path) -> Result<Arc<Backing>> {
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len == 0 {
        return Ok(Arc::new(Backing::Heap(Vec::new())));
    }
    // SAFETY: the map is read-only. Another process truncating the file while we read it could fault;
    // that is the usual contract of reading a file through mmap, accepted for zero-copy reads.
    #[allow(unsafe_code)]
    let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
    Ok(Arc::new(Backing::Map(mmap)))
}

/// What the first bytes say the file is.
#[derive(Clone, Copy)]
enum Kind {
    Zip,
    Legacy,
    Safetensors,
}

fn sniff(b: &[u8]) -> Result<Kind> {
    if b.is_empty() {
        return Err(Error::NotACheckpoint {
            what: "the file is empty".into(),
        });
    }
    if b.starts_with(b"PK\x03\x04") || b.starts_with(b"PK\x05\x06") {
        return Ok(Kind::Zip);
    }
    if b.len() > 262 && &b[257..262] == b"ustar" {
        return Err(Error::TarFormat);
    }
    if b.len() >= 2 && b[0] == 0x80 && (2..=5).contains(&b[1]) {
        return Ok(Kind::Legacy);
    }
    if b.len() > 9 && b[8] == b'{' {
        return Ok(Kind::Safetensors);
    }
    let head: Vec<String> = b.iter().take(8).map(|x| format!("{x:02x}")).collect();
    Err(Error::NotACheckpoint {
        what: format!(
            "unrecognised leading bytes {} (expected a zip archive, a torch pickle or safetensors)",
            head.join(" ")
        ),
    })
}

/// The torch object pickle of a file and how to reach its storages.
struct TorchFile {
    container: Container,
    object: Unpickled,
    object_entry: String,
    others: Vec<(String, Unpickled)>,
    storages: Storages,
    big_endian: bool,
}

enum Storages {
    Zip { archive: zip::Archive, root: String },
    Legacy(HashMap<String, std::ops::Range<usize>>),
}

fn torch_file(bytes: &[u8], kind: Kind, mode: Mode) -> Result<TorchFile> {
    let limits = Limits::default();
    match kind {
        Kind::Legacy => {
            let l = legacy::parse(bytes, mode, &limits)?;
            Ok(TorchFile {
                container: Container::TorchLegacy,
                object: l.object,
                object_entry: legacy::OBJECT_PICKLE.into(),
                others: l.others,
                storages: Storages::Legacy(l.storages),
                big_endian: false,
            })
        }
        Kind::Zip => {
            let archive = zip::Archive::parse(bytes)?;
            let root = zip_root(&archive)?;
            let pkl_name = format!("{root}/data.pkl");
            let pkl = archive
                .find(&pkl_name)
                .ok_or_else(|| Error::NotACheckpoint {
                    what: "a zip archive without <root>/data.pkl".into(),
                })?;
            let pickle_content = archive.read(bytes, pkl)?;
            let object = pickle::unpickle(pickle_content.bytes(bytes), &pkl_name, mode, &limits)?;
            let big_endian = match archive.find(&format!("{root}/byteorder")) {
                None => false,
                Some(r) => {
                    let content = archive.read(bytes, r)?;
                    match content.bytes(bytes) {
                        b"little" => false,
                        b"big" => true,
                        other => {
                            return Err(Error::malformed(
                                &r.name,
                                format!("byte order {:?}", String::from_utf8_lossy(other)),
                            ))
                        }
                    }
                }
            };
            Ok(TorchFile {
                container: Container::TorchZip,
                object,
                object_entry: pkl_name,
                others: Vec::new(),
                storages: Storages::Zip { archive, root },
                big_endian,
            })
        }
        Kind::Safetensors => Err(Error::malformed("safetensors", "has no pickle")),
    }
}

/// The archive's root folder: the one holding `data.pkl`. TorchScript archives are refused here.
fn zip_root(archive: &zip::Archive) -> Result<String> {
    let mut roots = archive
        .records
        .iter()
        .filter_map(|r| r.name.strip_suffix("/data.pkl"))
        .filter(|root| !root.contains('/'));
    let evidence: Vec<&str> = archive
        .records
        .iter()
        .filter(|r| {
            let rest = r.name.split_once('/').map_or("", |(_, rest)| rest);
            rest == "constants.pkl" || rest.starts_with("code/")
        })
        .map(|r| r.name.as_str())
        .take(2)
        .collect();
    if !evidence.is_empty() {
        return Err(Error::TorchScript {
            evidence: evidence.join(", "),
        });
    }
    let root = roots.next().ok_or_else(|| Error::NotACheckpoint {
        what: "a zip archive without <root>/data.pkl, so not written by torch.save".into(),
    })?;
    if roots.next().is_some() {
        return Err(Error::BadZip {
            what: "more than one <root>/data.pkl".into(),
        });
    }
    Ok(root.to_owned())
}

/// Bytes of copied (non-contiguous or byte-swapped) tensors allowed beyond twice their storages.
const MAX_COPIED_BEYOND_STORAGES: u64 = 256 << 20;

fn read(backing: Arc<Backing>, options: &Options) -> Result<Checkpoint> {
    let kind = sniff(backing.bytes())?;
    if let Kind::Safetensors = kind {
        return read_safetensors(backing, options);
    }
    let (file, selection, skipped) = match torch_file(backing.bytes(), kind, Mode::Strict) {
        Ok(file) => {
            let selection =
                torch::select(&file.object.heap, file.object.root, options.key.as_deref())?;
            (file, selection, None)
        }
        Err(refused @ Error::RefusedGlobal { .. }) => {
            deferred(backing.bytes(), kind, options, refused)?
        }
        Err(e) => return Err(e),
    };
    let heap = &file.object.heap;
    let lightning = file.container == Container::TorchZip
        && heap
            .lookup(file.object.root, "pytorch-lightning_version")
            .is_some();
    let mut cache: HashMap<String, Storage> = HashMap::new();
    let storage_bytes = std::cell::Cell::new(0u64);
    let bytes = backing.bytes();
    let mut fetch = |sid: &torch::StorageId| -> Result<Storage> {
        if let Some(s) = cache.get(&sid.key) {
            return Ok(s.clone());
        }
        let storage = match &file.storages {
            Storages::Zip { archive, root } => {
                let name = format!("{root}/data/{}", sid.key);
                let record = archive.find(&name).ok_or_else(|| {
                    Error::malformed(
                        &file.object_entry,
                        format!("storage {name} is missing from the archive"),
                    )
                })?;
                match archive.read(bytes, record)? {
                    zip::Content::Borrowed(range) => Storage {
                        backing: backing.clone(),
                        range,
                        big_endian: file.big_endian,
                    },
                    zip::Content::Owned(v) => {
                        let n = v.len();
                        Storage {
                            backing: Arc::new(Backing::Heap(v)),
                            range: 0..n,
                            big_endian: file.big_endian,
                        }
                    }
                }
            }
            Storages::Legacy(map) => Storage {
                backing: backing.clone(),
                range: map.get(&sid.key).cloned().ok_or_else(|| {
                    Error::malformed(
                        &file.object_entry,
                        format!("storage {} is not in the storage key list", sid.key),
                    )
                })?,
                big_endian: false,
            },
        };
        storage_bytes.set(storage_bytes.get() + storage.range.len() as u64);
        cache.insert(sid.key.clone(), storage.clone());
        Ok(storage)
    };
    // Views that are not contiguous are copied, once per name: many names over one storage would
    // otherwise turn a small file into any amount of memory.
    let mut copied = 0u64;
    let mut tensors = Vec::with_capacity(selection.entries.len());
    for (name, id) in &selection.entries {
        let t = torch::build_tensor(heap, name, *id, &mut fetch)?;
        copied += t.copied_bytes() as u64;
        let limit = storage_bytes
            .get()
            .saturating_mul(2)
            .saturating_add(MAX_COPIED_BEYOND_STORAGES);
        if copied > limit {
            return Err(Error::too_large(format!(
                "tensor {name}: the strided views read so far need {copied} bytes of copies, more than \
                 twice the {} bytes of their storages plus {MAX_COPIED_BEYOND_STORAGES}",
                storage_bytes.get()
            )));
        }
        tensors.push(t);
    }
    Ok(Checkpoint {
        format: if lightning {
            Format::Lightning
        } else if file.container == Container::TorchLegacy {
            Format::TorchLegacy
        } else {
            Format::TorchZip
        },
        container: file.container,
        key: selection.key,
        tensors,
        classes: selection.classes,
        globals: globals_of(&file),
        big_endian: file.big_endian,
        training_state: selection.training_state,
        skipped,
    })
}

/// A file whose pickle calls classes (an enum, a `pathlib` path, a `defaultdict` in Lightning's
/// `hyper_parameters`), read with those calls left unbuilt: the same VM in audit mode, which puts
/// an inert placeholder where strict mode stops. Accepted only when every refusal is such a call
/// and the selected state_dict reaches none of them; otherwise `refused`, the strict error, stands.
fn deferred(
    bytes: &[u8],
    kind: Kind,
    options: &Options,
    refused: Error,
) -> Result<(TorchFile, torch::Selection, Option<Skipped>)> {
    let Ok(file) = torch_file(bytes, kind, Mode::Audit) else {
        return Err(refused);
    };
    let heap = &file.object.heap;
    let only_class_calls = heap
        .findings
        .iter()
        .all(|f| f.reason == pickle::CLASS_CALLED)
        && file.others.iter().all(|(_, u)| u.heap.findings.is_empty());
    if !only_class_calls {
        return Err(refused);
    }
    let Ok(selection) = torch::select(heap, file.object.root, options.key.as_deref()) else {
        return Err(refused);
    };
    let selected = match &selection.key {
        Some(k) => heap.lookup(file.object.root, k),
        None => Some(file.object.root),
    };
    let roots: Vec<pickle::ObjId> = selected
        .into_iter()
        .chain(selection.entries.iter().map(|(_, id)| *id))
        .collect();
    let reached = heap.called_class_under(&roots);
    if let Some(finding) = reached {
        let f = &heap.findings[finding];
        return Err(Error::RefusedGlobal {
            global: f.global.clone(),
            offset: f.offset,
            entry: file.object_entry.clone(),
            reason: f.reason.clone(),
        });
    }
    let mut globals: Vec<String> = Vec::new();
    for f in &heap.findings {
        if !globals.contains(&f.global) {
            globals.push(f.global.clone());
        }
    }
    let keys = match heap.get(file.object.root) {
        Obj::Dict(d) => {
            let items = heap.dict_items(&d.items);
            let values: Vec<pickle::ObjId> = items.iter().map(|(_, v)| *v).collect();
            items
                .iter()
                .zip(heap.called_classes_from_each(&values))
                .filter(|(_, found)| found.is_some())
                .filter_map(|((k, _), _)| heap.str(*k).map(str::to_owned))
                .collect()
        }
        _ => Vec::new(),
    };
    Ok((file, selection, Some(Skipped { keys, globals })))
}

fn globals_of(file: &TorchFile) -> Vec<GlobalRef> {
    let pickles = file
        .others
        .iter()
        .map(|(e, u)| (e.as_str(), u))
        .chain([(file.object_entry.as_str(), &file.object)]);
    pickles
        .flat_map(|(entry, u)| {
            u.heap.globals.iter().map(move |g| GlobalRef {
                name: g.qualified(),
                entry: entry.to_owned(),
                offset: g.offset,
                verdict: g.verdict,
            })
        })
        .collect()
}

fn scan_backing(backing: &Arc<Backing>) -> Result<Scan> {
    let bytes = backing.bytes();
    let kind = sniff(bytes)?;
    if let Kind::Safetensors = kind {
        safetensors_file::read(backing)?;
        return Ok(Scan {
            container: Container::Safetensors,
            globals: Vec::new(),
            findings: Vec::new(),
        });
    }
    let file = torch_file(bytes, kind, Mode::Audit)?;
    let mut findings = Vec::new();
    for (entry, u) in file
        .others
        .iter()
        .map(|(e, u)| (e.as_str(), u))
        .chain([(file.object_entry.as_str(), &file.object)])
    {
        for f in &u.heap.findings {
            findings.push(Finding {
                global: f.global.clone(),
                entry: entry.to_owned(),
                offset: f.offset,
                reason: f.reason.clone(),
            });
        }
    }
    Ok(Scan {
        container: file.container,
        globals: globals_of(&file),
        findings,
    })
}

fn read_safetensors(backing: Arc<Backing>, options: &Options) -> Result<Checkpoint> {
    if let Some(k) = &options.key {
        return Err(Error::NoStateDict {
            what: format!(
                "--key {k:?} does not apply: a safetensors file holds one flat set of tensors"
            ),
        });
    }
    let tensors = safetensors_file::read(&backing)?;
    Ok(Checkpoint {
        format: Format::Safetensors,
        container: Container::Safetensors,
        key: None,
        tensors,
        classes: Vec::new(),
        globals: Vec::new(),
        big_endian: false,
        training_state: Vec::new(),
        skipped: None,
    })
}
