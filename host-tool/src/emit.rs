//! Flashable artifacts: a checked blob in, source files a firmware project compiles out.
//!
//! In: blob bytes (validated here with the engine's own `Model::from_bytes`) and [`Options`].
//! Out: [`Artifact`]s (file name + bytes), written by [`write_artifacts`] one file at a time through
//! a temporary file and a rename:
//! - [`rust_module`]: `mod.rs` + `model.nnb` — the blob as a 16-byte aligned `static` in its own
//!   linker input section, `pub const` sizes, and `assert_arena_fits`, a `const fn` that fails the
//!   firmware's compilation when the arena exceeds a RAM budget;
//! - [`c_sources`]: `NAME.h` + `NAME.c` — the same as an aligned C array, `#define` sizes and a
//!   `_Static_assert` macro;
//! - the raw blob for `--bin` is the blob itself (its alignment contract is [`BLOB_ALIGN`]);
//! - [`linker_fragment`] (`nnblob.x`), written beside either source: the linker-script lines that
//!   give the blob an output section of its own.
//!
//! docs/EMIT.md shows how a firmware project uses each.

use std::path::Path;

use nnblob_firmware::Model;
use nnblob_format::WeightDtype;

use crate::blob::{hex, CONVERTER};

/// Where the blob must start in memory, in bytes: the format aligns every weight tensor to this
/// many bytes *from the start of the blob* (`nnblob_format::layout::WEIGHT_ALIGN`), so a blob at
/// an address that is a multiple of it has every weight tensor aligned in memory too.
pub const BLOB_ALIGN: usize = nnblob_format::layout::WEIGHT_ALIGN;

/// The linker section the emitted static or array is placed in by default: a section of its own,
/// so a linker script can put the blob where it wants ([`linker_fragment`]). Without a rule for
/// it, it is an *orphan* section, which linkers place next to read-only data (lld: right after
/// `.rodata`, in the same memory region; tested with cortex-m-rt's `link.x` under QEMU).
/// `.rodata.nnblob` puts it inside `.rodata` instead.
pub const DEFAULT_SECTION: &str = ".nnblob";

/// File name of [`linker_fragment`]'s text beside the emitted sources.
pub const LINKER_FRAGMENT_FILE: &str = "nnblob.x";

/// A linker-script fragment that puts the blob's input section `section` into an output section
/// `.nnblob` of its own in the `FLASH` region, after `.rodata`, 16-byte aligned. With
/// cortex-m-rt, append it to `memory.x`; with GNU ld or lld, pass it as an extra `-T` script.
/// (For `section` under `.rodata.` it has no effect when the main script's `.rodata` rule
/// matches `.rodata.*`: that rule comes first.)
pub fn linker_fragment(section: &str) -> String {
    format!(
        "/* nnblob: the model blob in an output section of its own (docs/EMIT.md).
   Needs a memory region named FLASH (rename it to yours) and an output section .rodata. */
SECTIONS
{{
  .nnblob : ALIGN({BLOB_ALIGN})
  {{
    KEEP(*({section} {section}.*))
    . = ALIGN({BLOB_ALIGN});
  }} > FLASH
}} INSERT AFTER .rodata;
"
    )
}

/// The name of the blob file beside the Rust module (read by its `include_bytes!`).
pub const RUST_BLOB_FILE: &str = "model.nnb";
/// The name of the Rust module file.
pub const RUST_MODULE_FILE: &str = "mod.rs";

/// Why artifacts could not be made.
#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    /// The engine refuses the blob.
    #[error("the engine refuses the blob: {0}")]
    Blob(#[from] nnblob_firmware::Error),
    /// The name is not usable as a C identifier prefix and file name.
    #[error("'{0}' is not a usable name: use letters, digits and '_', not starting with a digit")]
    Name(String),
    /// The linker section name has characters a linker script cannot name.
    #[error("'{0}' is not a usable linker section name: use letters, digits, '.', '_' and '$'")]
    Section(String),
    /// The arena does not fit the RAM budget given with the options.
    #[error("the arena needs {arena_bytes} bytes, more than the RAM budget of {budget} bytes")]
    OverBudget { arena_bytes: usize, budget: usize },
    /// A file could not be written.
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// What the emitted sources say about the model, read from a validated blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sizes {
    /// The model's name in the blob.
    pub name: String,
    /// Weight-matrix dtype.
    pub dtype: WeightDtype,
    /// SHA-256 of the checkpoint the blob was made from.
    pub source_sha256: [u8; 32],
    /// Blob length in bytes.
    pub blob_bytes: usize,
    /// Arena length in f32 elements (the engine's `arena` argument).
    pub arena_len: usize,
    /// Every input: name, shape, length in f32 elements.
    pub inputs: Vec<Io>,
    /// Every output: name, shape, length in f32 elements.
    pub outputs: Vec<Io>,
}

/// One model input or output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Io {
    pub name: String,
    pub shape: Vec<u32>,
    pub len: usize,
}

impl Sizes {
    /// Validates `blob` with the engine and reads its sizes.
    pub fn of(blob: &[u8]) -> Result<Sizes, EmitError> {
        let model = Model::from_bytes(blob)?;
        let ios = |info: Option<nnblob_firmware::IoInfo<'_>>| {
            info.map(|io| Io {
                name: io.name.to_string(),
                shape: io.shape().to_vec(),
                len: io.len(),
            })
        };
        Ok(Sizes {
            name: model.name().to_string(),
            dtype: model.dtype(),
            source_sha256: model.provenance().source_sha256,
            blob_bytes: blob.len(),
            arena_len: model.arena_len(),
            inputs: (0..model.input_count())
                .filter_map(|i| ios(model.input(i)))
                .collect(),
            outputs: (0..model.output_count())
                .filter_map(|i| ios(model.output(i)))
                .collect(),
        })
    }

    /// Arena bytes (4 per f32 element).
    pub fn arena_bytes(&self) -> usize {
        self.arena_len * 4
    }

    /// Bytes of one caller-owned f32 buffer per input and per output.
    pub fn io_bytes(&self) -> usize {
        4 * self
            .inputs
            .iter()
            .chain(&self.outputs)
            .map(|io| io.len)
            .sum::<usize>()
    }

    /// The RAM a model needs besides the stack: arena plus one buffer per input and output.
    pub fn ram_bytes(&self) -> usize {
        self.arena_bytes() + self.io_bytes()
    }

    /// A default identifier for the C names: the model's name, lower case, every other character
    /// than a letter or digit turned into `_`, prefixed with `model_` when it starts with a digit.
    pub fn default_ident(&self) -> String {
        let mut s: String = self
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
            s.insert_str(0, "model_");
        }
        s
    }

    fn dtype_name(&self) -> &'static str {
        match self.dtype {
            WeightDtype::F16 => "f16",
            WeightDtype::F32 => "f32",
        }
    }

    /// `input [1, 3, 32, 32], ...`.
    fn describe(ios: &[Io]) -> String {
        ios.iter()
            .map(|io| {
                let dims: Vec<String> = io.shape.iter().map(u32::to_string).collect();
                format!("{} [{}]", io.name, dims.join(", "))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The provenance lines every emitted source starts with (without comment markers).
    fn header_lines(&self) -> Vec<String> {
        vec![
            format!(
                "Model '{}': the blob and its sizes, generated by `nnblob emit` ({CONVERTER}).",
                self.name.escape_default()
            ),
            "Do not edit: regenerate from the blob.".into(),
            String::new(),
            format!(
                "Blob: {} bytes, {} weights, checkpoint sha256 {}.",
                self.blob_bytes,
                self.dtype_name(),
                hex(&self.source_sha256)
            ),
            format!(
                "Inputs: {}. Outputs: {}.",
                Self::describe(&self.inputs).escape_default(),
                Self::describe(&self.outputs).escape_default()
            ),
            format!(
                "RAM besides the stack: arena {} bytes + input/output buffers {} bytes = {} bytes.",
                self.arena_bytes(),
                self.io_bytes(),
                self.ram_bytes()
            ),
        ]
    }
}

/// Choices for the emitted sources.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Prefix of the C names and files (`NAME.h`, `NAME_blob`, `NAME_ARENA_BYTES`); default
    /// [`Sizes::default_ident`]. The Rust module does not use it (the module is the namespace).
    pub name: Option<String>,
    /// Linker input section of the blob; default [`DEFAULT_SECTION`].
    pub section: Option<String>,
    /// A RAM budget in bytes the arena must fit: checked now, and again by the compiler through
    /// a `const` assertion in the emitted source.
    pub ram_budget: Option<usize>,
}

impl Options {
    fn section(&self) -> Result<&str, EmitError> {
        let s = self.section.as_deref().unwrap_or(DEFAULT_SECTION);
        let ok = !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '$'));
        if ok {
            Ok(s)
        } else {
            Err(EmitError::Section(s.into()))
        }
    }

    fn ident(&self, sizes: &Sizes) -> Result<String, EmitError> {
        let name = self.name.clone().unwrap_or_else(|| sizes.default_ident());
        let ok = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if ok {
            Ok(name)
        } else {
            Err(EmitError::Name(name))
        }
    }

    /// Refuses an arena larger than [`Options::ram_budget`].
    pub fn check_budget(&self, sizes: &Sizes) -> Result<(), EmitError> {
        match self.ram_budget {
            Some(budget) if sizes.arena_bytes() > budget => Err(EmitError::OverBudget {
                arena_bytes: sizes.arena_bytes(),
                budget,
            }),
            _ => Ok(()),
        }
    }
}

/// One file to write: its name inside the output directory and its content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artifact {
    pub file_name: String,
    pub bytes: Vec<u8>,
}

impl Artifact {
    fn text(file_name: &str, text: String) -> Artifact {
        Artifact {
            file_name: file_name.into(),
            bytes: text.into_bytes(),
        }
    }
}

/// The message of the compile-time assertions, with the figures written in (a `const` panic
/// cannot format).
fn over_budget_message(sizes: &Sizes) -> String {
    format!(
        "nnblob: the arena of model '{}' needs {} bytes, more than the RAM budget",
        sizes.name.escape_default(),
        sizes.arena_bytes()
    )
    .replace('"', "'")
}

/// The Rust module (`mod.rs`), the blob it includes (`model.nnb`) and [`linker_fragment`].
///
/// The module is `no_std`-clean and needs Rust 1.82 or later (`#[unsafe(link_section)]`, valid in
/// every edition). Its `BLOB` has the type `Aligned<[u8; BLOB_BYTES]>`, so a blob file of another
/// length beside it fails the build.
pub fn rust_module(blob: &[u8], options: &Options) -> Result<Vec<Artifact>, EmitError> {
    let sizes = Sizes::of(blob)?;
    options.check_budget(&sizes)?;
    let section = options.section()?;
    let mut s = String::new();
    for line in sizes.header_lines() {
        s += &format!("//! {line}\n").replace("//! \n", "//!\n");
    }
    s += "//!\n//! Use: `mod model;` (this folder as `src/model/`), then\n\
          //! `nnblob_firmware::Model::from_bytes(&model::BLOB.0)` and an arena of\n\
          //! `[f32; model::ARENA_LEN]`. docs/EMIT.md says more.\n";
    s += "#![allow(dead_code)]\n\n";
    s += &format!(
        "/// Bytes aligned to {BLOB_ALIGN}: the blob's weight tensors sit at multiples of {BLOB_ALIGN} from its start.\n\
         #[repr(C, align({BLOB_ALIGN}))]\n\
         pub struct Aligned<T: ?Sized>(pub T);\n\n"
    );
    let usize_ty = || "usize".to_string();
    let lens_ty = |ios: &[Io]| format!("[usize; {}]", ios.len());
    let mut consts = vec![
        (
            "Blob length in bytes.",
            "BLOB_BYTES",
            usize_ty(),
            sizes.blob_bytes.to_string(),
        ),
        (
            "Arena length in f32 elements: the length of the engine's `arena` argument.",
            "ARENA_LEN",
            usize_ty(),
            sizes.arena_len.to_string(),
        ),
        (
            "Arena length in bytes.",
            "ARENA_BYTES",
            usize_ty(),
            "ARENA_LEN * 4".into(),
        ),
        (
            "Length of each input in f32 elements, in input order.",
            "INPUT_LENS",
            lens_ty(&sizes.inputs),
            lens(&sizes.inputs),
        ),
        (
            "Length of each output in f32 elements, in output order.",
            "OUTPUT_LENS",
            lens_ty(&sizes.outputs),
            lens(&sizes.outputs),
        ),
    ];
    if let [input] = sizes.inputs.as_slice() {
        consts.push((
            "Length of the input in f32 elements.",
            "INPUT_LEN",
            usize_ty(),
            input.len.to_string(),
        ));
    }
    if let [output] = sizes.outputs.as_slice() {
        consts.push((
            "Length of the output in f32 elements.",
            "OUTPUT_LEN",
            usize_ty(),
            output.len.to_string(),
        ));
    }
    consts.push((
        "RAM the model needs besides the stack, in bytes: the arena plus one f32 buffer per input and output.",
        "RAM_BYTES",
        usize_ty(),
        sizes.ram_bytes().to_string(),
    ));
    for (doc, name, ty, value) in consts {
        s += &format!("/// {doc}\npub const {name}: {ty} = {value};\n");
    }
    s += &format!(
        "\n/// The blob, {BLOB_ALIGN}-byte aligned, in linker input section `{section}`.\n\
         #[unsafe(link_section = \"{section}\")]\n\
         pub static BLOB: Aligned<[u8; BLOB_BYTES]> = Aligned(*include_bytes!(\"{RUST_BLOB_FILE}\"));\n\n\
         /// Fails the compilation when the arena needs more than `budget_bytes` of RAM:\n\
         /// `const _: () = model::assert_arena_fits(64 * 1024);` in the firmware.\n\
         pub const fn assert_arena_fits(budget_bytes: usize) {{\n    \
             assert!(ARENA_BYTES <= budget_bytes, \"{}\");\n\
         }}\n",
        over_budget_message(&sizes)
    );
    if let Some(budget) = options.ram_budget {
        s += &format!(
            "\n/// The RAM budget given to `nnblob emit --ram-budget`, in bytes.\n\
             pub const RAM_BUDGET_BYTES: usize = {budget};\n\
             const _: () = assert_arena_fits(RAM_BUDGET_BYTES);\n"
        );
    }
    Ok(vec![
        Artifact {
            file_name: RUST_BLOB_FILE.into(),
            bytes: blob.to_vec(),
        },
        Artifact::text(RUST_MODULE_FILE, s),
        Artifact::text(LINKER_FRAGMENT_FILE, linker_fragment(section)),
    ])
}

/// `[3072]`, `[10, 5]`.
fn lens(ios: &[Io]) -> String {
    let v: Vec<String> = ios.iter().map(|io| io.len.to_string()).collect();
    format!("[{}]", v.join(", "))
}

/// The C header `NAME.h`, the source `NAME.c` with the blob as an array, and [`linker_fragment`].
/// Both compile as C11 (and the header as C++); the array's section attribute is used with GCC
/// and Clang on ELF targets, and `NAME_SECTION` may be defined to override it.
pub fn c_sources(blob: &[u8], options: &Options) -> Result<Vec<Artifact>, EmitError> {
    let sizes = Sizes::of(blob)?;
    options.check_budget(&sizes)?;
    let section = options.section()?;
    let name = options.ident(&sizes)?;
    let up = name.to_ascii_uppercase();
    let comment = |lines: &[String]| {
        let mut c = String::from("/*");
        for (i, l) in lines.iter().enumerate() {
            let lead = if i == 0 { " " } else { " * " };
            c += &format!("{lead}{}\n", l.replace("*/", "* /")).replace(" * \n", " *\n");
        }
        c + " */\n"
    };

    let mut h = comment(&sizes.header_lines());
    h += &format!(
        "#ifndef {up}_NNBLOB_H\n#define {up}_NNBLOB_H\n\n#include <stdint.h>\n\n\
         #ifdef __cplusplus\nextern \"C\" {{\n#endif\n\n"
    );
    let mut define = |doc: &str, key: &str, value: String| {
        h += &format!("/* {doc} */\n#define {up}_{key} {value}\n");
    };
    define(
        "Blob length in bytes.",
        "BLOB_BYTES",
        format!("{}u", sizes.blob_bytes),
    );
    define(
        "Alignment of the blob in memory, in bytes.",
        "BLOB_ALIGN",
        format!("{BLOB_ALIGN}u"),
    );
    define(
        "Arena length in f32 elements.",
        "ARENA_LEN",
        format!("{}u", sizes.arena_len),
    );
    define(
        "Arena length in bytes.",
        "ARENA_BYTES",
        format!("({up}_ARENA_LEN * 4u)"),
    );
    for (kind, ios) in [("INPUT", &sizes.inputs), ("OUTPUT", &sizes.outputs)] {
        define(
            &format!("Number of {}s.", kind.to_ascii_lowercase()),
            &format!("{kind}_COUNT"),
            format!("{}u", ios.len()),
        );
        for (i, io) in ios.iter().enumerate() {
            define(
                &format!(
                    "Length of {} {i} ('{}') in f32 elements.",
                    kind.to_ascii_lowercase(),
                    io.name.escape_default().to_string().replace("*/", "* /")
                ),
                &format!("{kind}_LEN_{i}"),
                format!("{}u", io.len),
            );
        }
        if ios.len() == 1 {
            define(
                &format!(
                    "Length of the {} in f32 elements.",
                    kind.to_ascii_lowercase()
                ),
                &format!("{kind}_LEN"),
                format!("{up}_{kind}_LEN_0"),
            );
        }
    }
    define(
        "RAM besides the stack, in bytes: arena plus one f32 buffer per input and output.",
        "RAM_BYTES",
        format!("{}u", sizes.ram_bytes()),
    );
    h += &format!(
        "\n/* Fails the compilation when the arena needs more than BUDGET bytes of RAM; at file scope:\n\
         \x20* {up}_ASSERT_ARENA_FITS(64 * 1024); */\n\
         #define {up}_ASSERT_ARENA_FITS(budget) \\\n  \
         _Static_assert({up}_ARENA_BYTES <= (budget), \"{}\")\n",
        over_budget_message(&sizes)
    );
    if let Some(budget) = options.ram_budget {
        h += &format!(
            "\n/* The RAM budget given to `nnblob emit --ram-budget`, in bytes. */\n\
             #define {up}_RAM_BUDGET_BYTES {budget}u\n\
             {up}_ASSERT_ARENA_FITS({up}_RAM_BUDGET_BYTES);\n"
        );
    }
    h += &format!(
        "\n/* The blob, {BLOB_ALIGN}-byte aligned (linker input section {section} on ELF targets). */\n\
         extern const uint8_t {name}_blob[{up}_BLOB_BYTES];\n\n\
         #ifdef __cplusplus\n}}\n#endif\n\n#endif /* {up}_NNBLOB_H */\n"
    );

    let mut c = comment(&sizes.header_lines());
    c += &format!(
        "#include \"{name}.h\"\n\n\
         #ifndef {up}_SECTION\n\
         #if (defined(__GNUC__) || defined(__clang__)) && defined(__ELF__)\n\
         #define {up}_SECTION __attribute__((section(\"{section}\")))\n\
         #else\n#define {up}_SECTION\n#endif\n#endif\n\n\
         _Alignas({BLOB_ALIGN}) const uint8_t {name}_blob[{up}_BLOB_BYTES] {up}_SECTION = {{\n"
    );
    for chunk in blob.chunks(16) {
        let bytes: Vec<String> = chunk.iter().map(|b| format!("0x{b:02x}")).collect();
        c += &format!("  {},\n", bytes.join(", "));
    }
    c += "};\n";

    Ok(vec![
        Artifact::text(&format!("{name}.h"), h),
        Artifact::text(&format!("{name}.c"), c),
        Artifact::text(LINKER_FRAGMENT_FILE, linker_fragment(section)),
    ])
}

/// Writes `artifacts` into `dir` (created if missing), each through a temporary file in `dir`
/// renamed over its name: a file is either its old content or the new one, never partial.
pub fn write_artifacts(dir: &Path, artifacts: &[Artifact]) -> Result<(), EmitError> {
    let error = |path: &Path, source| EmitError::Write {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|e| error(dir, e))?;
    for a in artifacts {
        write_file(&dir.join(&a.file_name), &a.bytes)?;
    }
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file beside it and a rename.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), EmitError> {
    crate::atomic_file::write_bytes(path, bytes).map_err(|source| EmitError::Write {
        path: path.display().to_string(),
        source,
    })
}

/// The engine's cost on one target, for `nnblob footprint`: code size measured with the size
/// probe, and the deepest stack measured under QEMU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineTarget {
    /// The name `nnblob footprint --target` takes.
    pub name: &'static str,
    /// The Rust target the engine was built for.
    pub rust_target: &'static str,
    /// `.text` of the size probe (every op linked; profile `release-size`), bytes.
    pub text_bytes: usize,
    /// `.rodata` of the size probe, bytes.
    pub rodata_bytes: usize,
    /// `.text` of the C API's library (profile `release-size`) linked with every `nnb_*` call
    /// of `nnblob.h` kept and nothing else, bytes: what a C firmware adds besides its blob.
    pub capi_text_bytes: usize,
    /// `.rodata` of the same, bytes.
    pub capi_rodata_bytes: usize,
    /// Deepest stack of an inference, bytes, measured by the example firmware under QEMU over
    /// the catalog models and the device test's networks (reset handler and `main` included), or
    /// `None` where no emulated board runs the target.
    pub stack_bytes: Option<usize>,
}

/// Measured with `firmware/size-probe` (command in docs/EMIT.md; the test `cli_emit_sizes`
/// rebuilds it and requires these figures), the C API's figures with its library (docs/C.md,
/// "Sizes"; the test `c_api` of `nnblob-capi` requires them) and the QEMU tests (`tests/tests/qemu_catalog.rs` and
/// `tests/tests/qemu_device.rs` require every model's stack to stay within them).
/// `cortex-m0plus`'s stack is measured on the BBC micro:bit's Cortex-M0, which runs the same
/// ARMv6-M code, over the device test's micro network: the only one that fits its 16 KiB of RAM.
/// `riscv32`'s is measured on QEMU's `virt` machine with an RV32IMAC core. Format version 6's
/// larger op record (`Recurrent`) took 28 more bytes of the run's stack on the RV32 core; the
/// stack figures are the deepest measured before it plus 64 bytes until they are re-measured.
pub const ENGINE_TARGETS: [EngineTarget; 4] = [
    EngineTarget {
        name: "cortex-m4",
        rust_target: "thumbv7em-none-eabihf",
        text_bytes: 94692,
        rodata_bytes: 2068,
        capi_text_bytes: 109042,
        capi_rodata_bytes: 9250,
        stack_bytes: Some(9984),
    },
    EngineTarget {
        name: "cortex-m3",
        rust_target: "thumbv7m-none-eabi",
        text_bytes: 85562,
        rodata_bytes: 2068,
        capi_text_bytes: 98924,
        capi_rodata_bytes: 8574,
        stack_bytes: Some(6528),
    },
    EngineTarget {
        name: "cortex-m0plus",
        rust_target: "thumbv6m-none-eabi",
        text_bytes: 90758,
        rodata_bytes: 2068,
        capi_text_bytes: 103202,
        capi_rodata_bytes: 8574,
        stack_bytes: Some(6868),
    },
    EngineTarget {
        name: "riscv32",
        rust_target: "riscv32imac-unknown-none-elf",
        text_bytes: 98618,
        rodata_bytes: 2852,
        capi_text_bytes: 113640,
        capi_rodata_bytes: 9582,
        stack_bytes: Some(6336),
    },
];

/// A device profile: the report the example firmware (`firmware/qemu`) prints over semihosting,
/// saved to a file. One record per line; other lines are ignored:
///
/// ```text
/// model NAME dtype F16 ops N arena A input I output O inputs K outputs M
/// inference insns N        instructions of one plain inference
/// stack bytes N            deepest stack up to the end of it
/// op 0 Conv2d insns N      one per op, in order, from a profiled run
/// output 0 0x3f800000      one per output element: its f32 bits (outputs one after the other)
/// done
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    /// The model name the firmware reported.
    pub model: String,
    /// Instructions of one inference.
    pub inference_insns: u64,
    /// Deepest stack, bytes.
    pub stack_bytes: u64,
    /// `(op kind, instructions)` in op order.
    pub ops: Vec<(String, u64)>,
    /// The output elements' f32 bits, in order.
    pub outputs: Vec<u32>,
}

/// Why a profile could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// A record is malformed or out of order.
    #[error("line {line}: {message}: {text:?}")]
    Line {
        line: usize,
        text: String,
        message: &'static str,
    },
    /// A record is missing.
    #[error("no '{0}' record (is this the example firmware's report?)")]
    Missing(&'static str),
}

impl Profile {
    /// Reads the firmware's report.
    pub fn parse(text: &str) -> Result<Profile, ProfileError> {
        let mut p = Profile::default();
        let (mut seen_model, mut seen_insns, mut seen_stack, mut done) =
            (false, false, false, false);
        for (i, text) in text.lines().enumerate() {
            let bad = |message| ProfileError::Line {
                line: i + 1,
                text: text.to_string(),
                message,
            };
            let number = |s: &str| s.parse::<u64>().map_err(|_| bad("not a number"));
            let words: Vec<&str> = text.split_whitespace().collect();
            match words.as_slice() {
                ["model", name, ..] => {
                    p.model = name.to_string();
                    seen_model = true;
                }
                ["inference", "insns", n] => {
                    p.inference_insns = number(n)?;
                    seen_insns = true;
                }
                ["stack", "bytes", n] => {
                    p.stack_bytes = number(n)?;
                    seen_stack = true;
                }
                ["op", index, kind, "insns", n] => {
                    if number(index)? != p.ops.len() as u64 {
                        return Err(bad("op out of order"));
                    }
                    p.ops.push((kind.to_string(), number(n)?));
                }
                ["output", index, bits] => {
                    if number(index)? != p.outputs.len() as u64 {
                        return Err(bad("output out of order"));
                    }
                    let hex = bits.strip_prefix("0x").ok_or_else(|| bad("not 0x hex"))?;
                    p.outputs
                        .push(u32::from_str_radix(hex, 16).map_err(|_| bad("not 0x hex"))?);
                }
                ["done"] => done = true,
                _ => {}
            }
        }
        for (seen, record) in [
            (seen_model, "model"),
            (seen_insns, "inference insns"),
            (seen_stack, "stack bytes"),
            (done, "done"),
        ] {
            if !seen {
                return Err(ProfileError::Missing(record));
            }
        }
        Ok(p)
    }
}
