//! The reader's error type: one variant per way a checkpoint can be refused.
//!
//! Every variant says what is wrong and where (zip entry or pickle, byte offset, tensor name), so the
//! CLI can print it as one line. [`Error::kind`] gives a stable short name for each variant; the test
//! suite matches it against the `expect` field of the hostile fixtures.

use std::fmt;

/// What is wrong with a zip record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZipProblem {
    /// Two records carry the same name.
    Duplicate,
    /// A name is absolute or has a `..` component.
    DotDot,
    /// Two records share bytes.
    Overlap,
}

impl fmt::Display for ZipProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ZipProblem::Duplicate => "duplicate",
            ZipProblem::DotDot => "dotdot",
            ZipProblem::Overlap => "overlap",
        })
    }
}

/// Why a checkpoint was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be opened or mapped.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A pickle references a global that is not on the allowlist (or calls one that may only be a class).
    #[error("refusing global {global} at byte {offset} of {entry}: {reason}")]
    RefusedGlobal {
        /// `module.name` as written in the pickle.
        global: String,
        /// Byte offset of the GLOBAL / STACK_GLOBAL opcode inside the pickle.
        offset: u64,
        /// The zip entry or pickle that holds it.
        entry: String,
        /// Why it is refused.
        reason: String,
    },
    /// The bytes end before the structure they announce.
    #[error("{entry} is truncated at byte {offset}: {what}")]
    Truncated {
        /// The zip entry, pickle or container part.
        entry: String,
        /// Where the missing bytes should have been.
        offset: u64,
        /// What was being read.
        what: String,
    },
    /// A tensor reaches past the end of its storage.
    #[error("tensor {tensor} needs {needed_bytes} bytes of storage {storage_key}, which has {storage_bytes}")]
    StorageTooSmall {
        /// The tensor's name in the state_dict.
        tensor: String,
        /// The storage key (`data/<key>` in a zip).
        storage_key: String,
        /// Bytes the tensor's size, stride and offset reach.
        needed_bytes: u64,
        /// Bytes the storage holds.
        storage_bytes: u64,
    },
    /// A size, count or length beyond any real file.
    #[error("{what}")]
    TooLarge {
        /// What was too large, with the limit.
        what: String,
    },
    /// Nesting deeper than the reader's limit.
    #[error("nesting deeper than {limit} levels at byte {offset} of {entry}")]
    TooDeep {
        /// The pickle.
        entry: String,
        /// The opcode that went too deep.
        offset: u64,
        /// The limit.
        limit: usize,
    },
    /// A pickle that blows up through shared references or sheer op count.
    #[error("{what} at byte {offset} of {entry}")]
    MemoLimit {
        /// The pickle.
        entry: String,
        /// The opcode that crossed the limit.
        offset: u64,
        /// Which limit.
        what: String,
    },
    /// A DEFLATED record that inflates past its declared size or an impossible ratio.
    #[error("zip bomb in {entry}: {what} (declared size {declared_size} bytes)")]
    ZipBomb {
        /// The zip entry.
        entry: String,
        /// Its declared uncompressed size.
        declared_size: u64,
        /// What gave it away.
        what: String,
    },
    /// A zip record the reader will not accept.
    #[error("bad zip entry {name:?}: {problem} ({detail})")]
    BadZipEntry {
        /// Which problem.
        problem: ZipProblem,
        /// The record's name.
        name: String,
        /// More about it.
        detail: String,
    },
    /// A zip container that is malformed in some other way (bad signatures, CRC mismatch, method).
    #[error("bad zip archive: {what}")]
    BadZip {
        /// What is wrong, naming the entry.
        what: String,
    },
    /// Not a checkpoint at all.
    #[error("not a PyTorch checkpoint: {what}")]
    NotACheckpoint {
        /// What the bytes look like instead.
        what: String,
    },
    /// A TorchScript archive.
    #[error(
        "this is a TorchScript archive (torch.jit.save: it has {evidence}); nnblob reads state_dicts. \
         In Python run `torch.save(torch.jit.load(FILE).state_dict(), \"weights.pth\")` and read weights.pth"
    )]
    TorchScript {
        /// The records that identify it.
        evidence: String,
    },
    /// The pre-1.0 tar format.
    #[error(
        "this is the pre-1.0 PyTorch tar format (members sys_info, pickle, tensors, storages), which nnblob \
         does not read; load it with an old torch and save it again with torch.save (zip format)"
    )]
    TarFormat,
    /// A tensor dtype the reader does not convert.
    #[error("tensor {tensor} has dtype {dtype}, which nnblob does not support (supported: f64 f32 f16 bf16 i64 i32 i16 i8 u8 bool)")]
    UnsupportedDtype {
        /// The tensor's name (or the storage key when the name is not known yet).
        tensor: String,
        /// torch's name for the dtype, e.g. `complex64`.
        dtype: String,
    },
    /// A tensor kind torch allows but nnblob does not handle.
    #[error("tensor {tensor} is a {what} tensor, which nnblob does not support; convert it to a dense tensor in Python first")]
    UnsupportedTensor {
        /// The tensor's name.
        tensor: String,
        /// The kind, e.g. `quantized`, `sparse`.
        what: String,
    },
    /// The bytes parse but do not have the structure a checkpoint needs.
    #[error("{entry}: {what}")]
    Malformed {
        /// Where (a pickle with a byte offset, a storage, a key path).
        entry: String,
        /// What is wrong.
        what: String,
    },
    /// No state_dict could be found or the selected key does not hold one.
    #[error("{what}")]
    NoStateDict {
        /// What was found instead, and what to do.
        what: String,
    },
}

impl Error {
    /// A stable short name for the kind of refusal (the hostile fixtures' `expect` field).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Io { .. } => "io",
            Error::RefusedGlobal { .. } => "refused-global",
            Error::Truncated { .. } => "truncated",
            Error::StorageTooSmall { .. } => "storage-too-small",
            Error::TooLarge { .. } => "too-large",
            Error::TooDeep { .. } => "too-deep",
            Error::MemoLimit { .. } => "memo-limit",
            Error::ZipBomb { .. } => "zip-bomb",
            Error::BadZipEntry { .. } => "bad-zip-entry",
            Error::BadZip { .. } => "bad-zip",
            Error::NotACheckpoint { .. } => "not-a-checkpoint",
            Error::TorchScript { .. } => "torchscript",
            Error::TarFormat => "tar-format",
            Error::UnsupportedDtype { .. } => "unsupported-dtype",
            Error::UnsupportedTensor { .. } => "unsupported-tensor",
            Error::Malformed { .. } => "malformed",
            Error::NoStateDict { .. } => "no-state-dict",
        }
    }

    pub(crate) fn malformed(entry: impl Into<String>, what: impl Into<String>) -> Self {
        Error::Malformed {
            entry: entry.into(),
            what: what.into(),
        }
    }

    pub(crate) fn too_large(what: impl Into<String>) -> Self {
        Error::TooLarge { what: what.into() }
    }
}

/// The reader's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
