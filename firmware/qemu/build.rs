//! Build script: the linker setup and the model to embed.
//!
//! In: the target, which names the emulated board (the runner in `.cargo/config.toml` starts
//! it); the board's memory layout in `memory/`; the environment variables `NNBLOB_QEMU_BLOB`
//! (a blob file) and `NNBLOB_QEMU_INPUT` (the inputs: little-endian f32s, every model input's
//! worth one after the other, in the model's order).
//! Out, in `OUT_DIR`: `memory.x` for the runtime's `link.x` (cortex-m-rt's, riscv-rt's);
//! `board.rs` with the core clock of a Cortex-M board (its SysTick counts it); `model.nnb` and `input.bin` for `include_bytes!`; `model.rs` with the model's sizes as
//! `const`s (the arena, and the length of each input and output), so the arena and buffers are
//! statics whose size the linker checks against the board's RAM.
//! The blob is validated here with the same engine compiled for the host: a broken blob
//! fails the build with the engine's message instead of failing on the device.
//!
//! Alternatively `NNBLOB_QEMU_MODULE` names a folder written by `nnblob emit --rust`: the
//! firmware then compiles that module (its `BLOB` static and `const` sizes) instead, and
//! `NNBLOB_QEMU_LINKER_SECTIONS` may name a linker-script fragment (the emitted `nnblob.x`)
//! appended to the memory layout, as a cortex-m-rt project would add it to its `memory.x`.
use std::path::{Path, PathBuf};
use std::{env, fs};

const BLOB_VAR: &str = "NNBLOB_QEMU_BLOB";
const INPUT_VAR: &str = "NNBLOB_QEMU_INPUT";
const MODULE_VAR: &str = "NNBLOB_QEMU_MODULE";
const SECTIONS_VAR: &str = "NNBLOB_QEMU_LINKER_SECTIONS";

/// An emulated board: the target whose firmware it runs, its memory layout, the core clock
/// SysTick counts (`None` on RISC-V, whose `minstret` counts instructions), the linker scripts
/// to pass (cortex-m-rt's `link.x` includes `memory.x`; riscv-rt's wants it passed first).
struct Board {
    target: &'static str,
    memory: &'static str,
    core_hz: Option<u64>,
    scripts: &'static [&'static str],
}

/// One board per target, as the runner in `.cargo/config.toml` starts them. The MPS2 FPGA
/// images clock the core at 25 MHz; QEMU's nRF51 clocks it at 16 MHz.
const BOARDS: [Board; 4] = [
    Board {
        target: "thumbv7em-none-eabihf",
        memory: "memory/mps2.x",
        core_hz: Some(25_000_000),
        scripts: &["link.x"],
    },
    Board {
        target: "thumbv7m-none-eabi",
        memory: "memory/mps2.x",
        core_hz: Some(25_000_000),
        scripts: &["link.x"],
    },
    Board {
        target: "thumbv6m-none-eabi",
        memory: "memory/microbit.x",
        core_hz: Some(16_000_000),
        scripts: &["link.x"],
    },
    Board {
        target: "riscv32imac-unknown-none-elf",
        memory: "memory/virt.x",
        core_hz: None,
        scripts: &["memory.x", "link.x"],
    },
];

fn main() {
    if let Err(message) = run() {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let out = PathBuf::from(env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    let target = env::var("TARGET").map_err(|_| "TARGET is not set")?;
    let board = BOARDS.iter().find(|b| b.target == target).ok_or_else(|| {
        let known: Vec<&str> = BOARDS.iter().map(|b| b.target).collect();
        format!(
            "no emulated board runs {target}; build for one of {}",
            known.join(", ")
        )
    })?;
    let mut memory = read(Path::new(board.memory))?;
    if let Some(sections) = optional_path(SECTIONS_VAR) {
        memory.extend(read(&sections)?);
    }
    write(&out.join("memory.x"), &memory)?;
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed={}", board.memory);
    if let Some(core_hz) = board.core_hz {
        let clock = format!(
            "/// The board's core clock, which SysTick counts, in Hz.\npub const CORE_HZ: u64 = {core_hz};\n"
        );
        write(&out.join("board.rs"), clock.as_bytes())?;
    }
    // Linker flags here rather than in .cargo/config.toml, where a RUSTFLAGS in the
    // environment would silently replace them.
    println!("cargo:rustc-link-arg-bins=--nmagic");
    for script in board.scripts {
        println!("cargo:rustc-link-arg-bins=-T{script}");
    }

    let module = optional_path(MODULE_VAR);
    let blob_path = match &module {
        Some(dir) => {
            println!("cargo:rerun-if-changed={}", dir.join("mod.rs").display());
            dir.join("model.nnb")
        }
        None => input_path(BLOB_VAR)?,
    };
    println!("cargo:rerun-if-changed={}", blob_path.display());
    let input_path = input_path(INPUT_VAR)?;
    let blob = read(&blob_path)?;
    let input = read(&input_path)?;
    let model = nnblob_firmware::Model::from_bytes(&blob)
        .map_err(|e| format!("{}: {e}", blob_path.display()))?;
    let input_lens: Vec<usize> = (0..model.input_count())
        .map(|i| model.input_len(i))
        .collect();
    let output_lens: Vec<usize> = (0..model.output_count())
        .map(|i| model.output_len(i))
        .collect();
    let input_len: usize = input_lens.iter().sum();
    if input.len() != input_len * 4 {
        return Err(format!(
            "{}: {} bytes, the model's {} input(s) need {input_len} f32s ({} bytes) one after the other",
            input_path.display(),
            input.len(),
            input_lens.len(),
            input_len * 4
        ));
    }
    write(&out.join("input.bin"), &input)?;
    if let Some(dir) = module {
        let source = format!(
            "#[path = {:?}]\nmod emitted;\npub use emitted::{{ARENA_LEN, INPUT_LENS, OUTPUT_LENS}};\n\
             /// The blob: the emitted module's static.\npub static BLOB: &[u8] = &emitted::BLOB.0;\n",
            dir.join("mod.rs").display().to_string()
        );
        return write(&out.join("model.rs"), source.as_bytes());
    }
    write(&out.join("model.nnb"), &blob)?;
    let consts = format!(
        "/// The blob, embedded from `{BLOB_VAR}`.\n\
         pub static BLOB: &[u8] = &super::Aligned(*include_bytes!(concat!(env!(\"OUT_DIR\"), \"/model.nnb\"))).0;\n\
         /// Arena length in f32 elements.\npub const ARENA_LEN: usize = {};\n\
         /// Length of each input in f32 elements, in input order.\npub const INPUT_LENS: [usize; {}] = {:?};\n\
         /// Length of each output in f32 elements, in output order.\npub const OUTPUT_LENS: [usize; {}] = {:?};\n",
        model.arena_len(),
        input_lens.len(),
        input_lens,
        output_lens.len(),
        output_lens,
    );
    write(&out.join("model.rs"), consts.as_bytes())
}

/// The path in environment variable `var`, which the build then depends on.
fn input_path(var: &str) -> Result<PathBuf, String> {
    println!("cargo:rerun-if-env-changed={var}");
    let path = env::var_os(var).map(PathBuf::from).ok_or_else(|| {
        format!(
            "set {BLOB_VAR} to a blob and {INPUT_VAR} to its input (little-endian f32); \
             docs/DEVICE.md says how to make them"
        )
    })?;
    println!("cargo:rerun-if-changed={}", path.display());
    Ok(path)
}

/// The path in environment variable `var` if it is set; the build depends on both.
fn optional_path(var: &str) -> Option<PathBuf> {
    println!("cargo:rerun-if-env-changed={var}");
    let path = env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)?;
    println!("cargo:rerun-if-changed={}", path.display());
    Some(path)
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    fs::write(path, bytes).map_err(|e| format!("writing {}: {e}", path.display()))
}
