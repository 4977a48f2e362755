//! What a pickle GLOBAL may name, and what the reader does with it.
//!
//! In: a `module` and `name` as written in a GLOBAL or STACK_GLOBAL opcode. Out: a [`Verdict`].
//! Nothing is ever imported or called: the verdict only says which of the reader's own, inert
//! interpretations the name stands for. The rules (also in `docs/CHECKPOINTS.md`):
//!
//! - **Known**: the names torch writes for tensors, storages, dtypes and containers. The reader
//!   interprets them itself (`_rebuild_tensor_v2` becomes a tensor description, `OrderedDict` a dict).
//! - **Unsupported**: tensor rebuild functions torch has but nnblob does not handle (sparse, quantized,
//!   ...). They become a placeholder that is refused only if the selected state_dict uses it.
//! - **Class**: any other name from a module that is not on the denylist. It may only be used as the
//!   class of a plain object (NEWOBJ, `copyreg._reconstructor`, BUILD sets its state); calling it is
//!   refused. Full-model pickles need this for `torch.nn.modules.conv.Conv2d`, `__main__.Net`, ...
//! - **Refused**: names from modules that can run code or touch the system (`os`, `subprocess`,
//!   `builtins` except a few containers, `torch` outside the allowlist and `torch.nn`, ...). Refused
//!   as soon as the GLOBAL opcode is seen, even if never called.

/// A dtype as torch names it (`float32`, `complex64`, ...).
pub type DtypeName = &'static str;

/// A function or type the reader interprets itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// `torch._utils._rebuild_tensor` (storage, offset, size, stride).
    RebuildTensor,
    /// `torch._utils._rebuild_tensor_v2` (storage, offset, size, stride, requires_grad, hooks[, metadata]).
    RebuildTensorV2,
    /// `torch._utils._rebuild_tensor_v3` (... , dtype[, metadata]): untyped storage plus a dtype.
    RebuildTensorV3,
    /// `torch._utils._rebuild_parameter` (tensor, requires_grad, hooks).
    RebuildParameter,
    /// `torch._utils._rebuild_parameter_with_state` (tensor, requires_grad, hooks, state).
    RebuildParameterWithState,
    /// `torch._tensor._rebuild_from_type_v2` (func, new_type, args, state).
    RebuildFromTypeV2,
    /// `collections.OrderedDict` (and `builtins.dict` as a callable).
    OrderedDict,
    /// `torch.Size` (a tuple of ints).
    TorchSize,
    /// `builtins.set`.
    Set,
    /// `builtins.frozenset`.
    FrozenSet,
    /// `builtins.list`, `builtins.tuple`: containers built from an iterable.
    ListLike,
    /// `builtins.slice`.
    Slice,
    /// `builtins.bytearray`.
    ByteArray,
    /// `copyreg._reconstructor` (class, base, state): a plain object of an inert class.
    Reconstructor,
    /// `_codecs.encode` (text, encoding): how protocol 2 writes `bytes`.
    CodecsEncode,
    /// `builtins.object` and the other bases `_reconstructor` names; also `torch.Tensor`,
    /// `torch.nn.parameter.Parameter` as the `new_type` of `_rebuild_from_type_v2`.
    BaseType,
    /// `torch.FloatStorage` and friends: the element dtype of a persistent storage.
    Storage(DtypeName),
    /// `torch.float32` and friends.
    Dtype(DtypeName),
    /// Harmless values the reader does not model (`torch.device`, numpy scalars, layouts).
    Opaque,
}

/// What a global is to the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Interpreted by the reader.
    Known(Known),
    /// A tensor kind nnblob does not handle; refused if the state_dict needs it.
    Unsupported(&'static str),
    /// Only usable as the class of a plain, inert object.
    Class,
    /// Refused on sight, with the reason.
    Refused(&'static str),
}

impl Verdict {
    /// One sentence for `nnblob scan`: why the global is or is not safe.
    pub fn explain(&self) -> &'static str {
        match self {
            Verdict::Known(Known::Storage(_)) => "storage type: names the dtype of raw bytes",
            Verdict::Known(Known::Dtype(_)) => "dtype constant",
            Verdict::Known(Known::Opaque) => "harmless value, kept as an opaque placeholder",
            Verdict::Known(Known::BaseType) => "type used only as a marker",
            Verdict::Known(_) => "tensor or container constructor, interpreted by the reader",
            Verdict::Unsupported(_) => "tensor kind nnblob does not handle (refused only if selected)",
            Verdict::Class => {
                "class of an inert plain object (torch.load with weights_only=False would import its module)"
            }
            Verdict::Refused(reason) => reason,
        }
    }
}

const STORAGES: &[(&str, DtypeName)] = &[
    ("DoubleStorage", "float64"),
    ("FloatStorage", "float32"),
    ("HalfStorage", "float16"),
    ("BFloat16Storage", "bfloat16"),
    ("LongStorage", "int64"),
    ("IntStorage", "int32"),
    ("ShortStorage", "int16"),
    ("CharStorage", "int8"),
    ("ByteStorage", "uint8"),
    ("BoolStorage", "bool"),
    ("UntypedStorage", "uint8"),
    ("ComplexFloatStorage", "complex64"),
    ("ComplexDoubleStorage", "complex128"),
    ("ComplexHalfStorage", "complex32"),
    ("QInt8Storage", "qint8"),
    ("QUInt8Storage", "quint8"),
    ("QInt32Storage", "qint32"),
    ("QUInt4x2Storage", "quint4x2"),
    ("QUInt2x4Storage", "quint2x4"),
];

const DTYPES: &[(&str, DtypeName)] = &[
    ("float64", "float64"),
    ("double", "float64"),
    ("float32", "float32"),
    ("float", "float32"),
    ("float16", "float16"),
    ("half", "float16"),
    ("bfloat16", "bfloat16"),
    ("int64", "int64"),
    ("long", "int64"),
    ("int32", "int32"),
    ("int", "int32"),
    ("int16", "int16"),
    ("short", "int16"),
    ("int8", "int8"),
    ("uint8", "uint8"),
    ("bool", "bool"),
    ("uint16", "uint16"),
    ("uint32", "uint32"),
    ("uint64", "uint64"),
    ("complex32", "complex32"),
    ("complex64", "complex64"),
    ("cfloat", "complex64"),
    ("complex128", "complex128"),
    ("cdouble", "complex128"),
    ("float8_e4m3fn", "float8_e4m3fn"),
    ("float8_e5m2", "float8_e5m2"),
    ("float8_e4m3fnuz", "float8_e4m3fnuz"),
    ("float8_e5m2fnuz", "float8_e5m2fnuz"),
    ("qint8", "qint8"),
    ("quint8", "quint8"),
    ("qint32", "qint32"),
];

/// Modules that can run code, reach the system or load other files. Any name in them, or in a
/// submodule of them, is refused.
/// The path classes of `pathlib` (Lightning saves them in `hyper_parameters`).
const PATH_CLASSES: &[&str] = &[
    "Path",
    "PosixPath",
    "WindowsPath",
    "PurePath",
    "PurePosixPath",
    "PureWindowsPath",
];

const DENIED_MODULES: &[&str] = &[
    "os",
    "posix",
    "nt",
    "posixpath",
    "ntpath",
    "genericpath",
    "subprocess",
    "sys",
    "socket",
    "shutil",
    "importlib",
    "pickle",
    "_pickle",
    "cPickle",
    "pickletools",
    "runpy",
    "code",
    "codeop",
    "ctypes",
    "webbrowser",
    "pty",
    "commands",
    "multiprocessing",
    "threading",
    "_thread",
    "signal",
    "platform",
    "io",
    "_io",
    "pathlib",
    "glob",
    "marshal",
    "types",
    "functools",
    "operator",
    "_operator",
    "inspect",
    "gc",
    "asyncio",
    "http",
    "urllib",
    "urllib2",
    "requests",
    "ftplib",
    "smtplib",
    "telnetlib",
    "pdb",
    "bdb",
    "timeit",
    "trace",
    "profile",
    "cProfile",
    "sqlite3",
    "shelve",
    "dbm",
    "zipimport",
    "pkgutil",
    "site",
    "sysconfig",
    "distutils",
    "setuptools",
    "pip",
    "ensurepip",
    "venv",
    "tkinter",
    "turtle",
    "xmlrpc",
    "socketserver",
    "select",
    "selectors",
    "mmap",
    "fcntl",
    "resource",
    "tempfile",
    "copy",
    "copyreg",
    "copy_reg",
    "builtins",
    "__builtin__",
    "exceptions",
    "numpy",
    "torch",
    "dill",
    "cloudpickle",
    "joblib",
    "yaml",
    "jinja2",
    "codecs",
    "_codecs",
    "zipfile",
    "tarfile",
    "logging",
    "ssl",
    "email",
    "mailbox",
    "imaplib",
    "poplib",
    "nntplib",
    "uuid",
    "ast",
    "dis",
    "linecache",
    "tokenize",
    "compileall",
    "py_compile",
    "atexit",
    "weakref",
    "ctypes",
    "cffi",
    "sh",
    "pexpect",
    "paramiko",
    "fabric",
    "invoke",
    "IPython",
    "notebook",
    "jupyter_client",
    "_posixsubprocess",
    "_winapi",
    "msvcrt",
    "winreg",
    "_ctypes",
    "concurrent",
    "sched",
    "queue",
    "contextlib",
    "abc",
    "string",
    "re",
    "sre_compile",
];

/// Classify a global. `module` and `name` are as written in the pickle.
pub fn classify(module: &str, name: &str) -> Verdict {
    if let Some(known) = known(module, name) {
        return known;
    }
    // torch.nn (and the quantized/ao variants) hold the module classes full-model pickles name.
    let torch_nn = ["torch.nn.", "torch.ao.nn.", "torch.nn"]
        .iter()
        .any(|p| module == "torch.nn" || (p.ends_with('.') && module.starts_with(p)));
    if torch_nn && !name.starts_with('_') {
        return Verdict::Class;
    }
    // A path is data (torch.load would build a PurePath's parts, touching no file); like any
    // class, it may name an inert object, never be called.
    if module == "pathlib" && PATH_CLASSES.contains(&name) {
        return Verdict::Class;
    }
    let top = module.split('.').next().unwrap_or(module);
    if module.is_empty() || name.is_empty() {
        return Verdict::Refused("empty module or name");
    }
    if DENIED_MODULES.contains(&top) {
        return Verdict::Refused(
            "not a tensor or container type (its module can run code or reach the system)",
        );
    }
    if name.starts_with("__") || name.contains("..") || name.ends_with('.') {
        return Verdict::Refused("not a tensor or container type (dunder or malformed name)");
    }
    Verdict::Class
}

fn known(module: &str, name: &str) -> Option<Verdict> {
    use Known::*;
    let k = match (module, name) {
        ("torch._utils", "_rebuild_tensor") => RebuildTensor,
        ("torch._utils", "_rebuild_tensor_v2") => RebuildTensorV2,
        ("torch._utils", "_rebuild_tensor_v3") => RebuildTensorV3,
        ("torch._utils", "_rebuild_parameter") => RebuildParameter,
        ("torch._utils", "_rebuild_parameter_with_state") => RebuildParameterWithState,
        ("torch._tensor", "_rebuild_from_type_v2") => RebuildFromTypeV2,
        ("collections", "OrderedDict") | ("builtins" | "__builtin__", "dict") => OrderedDict,
        ("torch", "Size") => TorchSize,
        ("builtins" | "__builtin__", "set") => Set,
        ("builtins" | "__builtin__", "frozenset") => FrozenSet,
        ("builtins" | "__builtin__", "list" | "tuple") => ListLike,
        ("builtins" | "__builtin__", "slice") => Slice,
        ("builtins" | "__builtin__", "bytearray") => ByteArray,
        ("copyreg" | "copy_reg", "_reconstructor") => Reconstructor,
        ("_codecs", "encode") => CodecsEncode,
        (
            "builtins" | "__builtin__",
            "object" | "int" | "float" | "str" | "bytes" | "bool" | "complex",
        ) => BaseType,
        // Protocol 2 writes Python 3's `int` as Python 2's `long` (pickle's fix_imports).
        ("__builtin__", "long") => BaseType,
        ("torch", "Tensor") | ("torch.nn.parameter", "Parameter" | "Buffer") => BaseType,
        (
            "torch",
            "device"
            | "strided"
            | "sparse_coo"
            | "sparse_csr"
            | "sparse_csc"
            | "sparse_bsr"
            | "sparse_bsc"
            | "preserve_format"
            | "contiguous_format"
            | "channels_last"
            | "per_tensor_affine"
            | "per_channel_affine"
            | "per_tensor_symmetric"
            | "per_channel_symmetric"
            | "per_channel_affine_float_qparams",
        )
        | ("torch.serialization", "_get_layout") => Opaque,
        ("numpy.core.multiarray" | "numpy._core.multiarray", "scalar" | "_reconstruct")
        | ("numpy", "dtype" | "ndarray")
        | ("numpy.dtypes", _) => Opaque,
        ("torch", n) if n.ends_with("Storage") => {
            let dtype = STORAGES.iter().find(|(s, _)| *s == n)?.1;
            Storage(dtype)
        }
        ("torch.storage", "UntypedStorage" | "TypedStorage") => Storage("uint8"),
        ("torch", n) => Dtype(DTYPES.iter().find(|(d, _)| *d == n)?.1),
        ("torch._utils", n) => {
            let what = match n {
                "_rebuild_qtensor" => "quantized",
                "_rebuild_sparse_tensor" => "sparse",
                "_rebuild_sparse_csr" => "sparse CSR",
                "_rebuild_meta_tensor_no_storage" => "meta (storage-less)",
                "_rebuild_wrapper_subclass" => "wrapper-subclass",
                "_rebuild_device_tensor_from_numpy" => "device (numpy-backed)",
                "_rebuild_xla_tensor" | "_rebuild_mlc_tensor" => "device (XLA/MLC)",
                "_rebuild_nested_tensor" => "nested",
                "_rebuild_device_tensor_from_cpu_tensor" => "device",
                _ => return None,
            };
            return Some(Verdict::Unsupported(what));
        }
        ("torch.storage", "_load_from_bytes") => {
            return Some(Verdict::Unsupported(
                "nested torch.save inside a pickle (torch.storage._load_from_bytes)",
            ))
        }
        _ => return None,
    };
    Some(Verdict::Known(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dangerous_modules_are_refused() {
        for (m, n) in [
            ("posix", "system"),
            ("os", "system"),
            ("nt", "system"),
            ("subprocess", "Popen"),
            ("builtins", "eval"),
            ("__builtin__", "exec"),
            ("builtins", "getattr"),
            ("torch", "load"),
            ("torch.hub", "load"),
            ("numpy.testing._private.utils", "runstring"),
            ("os.path", "join"),
            ("functools", "partial"),
        ] {
            assert!(matches!(classify(m, n), Verdict::Refused(_)), "{m}.{n}");
        }
    }

    #[test]
    fn module_classes_are_inert_classes() {
        for (m, n) in [
            ("__main__", "Net"),
            ("torch.nn.modules.conv", "Conv2d"),
            ("torchvision.models.resnet", "ResNet"),
        ] {
            assert_eq!(classify(m, n), Verdict::Class, "{m}.{n}");
        }
    }

    #[test]
    fn torch_names_are_known() {
        assert_eq!(
            classify("torch", "FloatStorage"),
            Verdict::Known(Known::Storage("float32"))
        );
        assert_eq!(
            classify("torch", "bfloat16"),
            Verdict::Known(Known::Dtype("bfloat16"))
        );
        assert_eq!(
            classify("torch._utils", "_rebuild_tensor_v2"),
            Verdict::Known(Known::RebuildTensorV2)
        );
        assert!(matches!(
            classify("torch._utils", "_rebuild_qtensor"),
            Verdict::Unsupported("quantized")
        ));
    }
}
