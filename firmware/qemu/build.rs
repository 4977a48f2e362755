//! Build script: the linker setup and the model to embed.
//!
//! In: `memory.x`, and the environment variables `NNBLOB_QEMU_BLOB` (a blob file) and
//! `NNBLOB_QEMU_INPUT` (the input: little-endian f32s, one model input's worth).
//! Out, in `OUT_DIR`: `memory.x` for cortex-m-rt's `link.x`; `model.nnb` and `input.bin`
//! for `include_bytes!`; `model.rs` with the model's sizes as `const`s, so the arena and
//! buffers are statics whose size the linker checks against the board's RAM.
//! The blob is validated here with the same engine compiled for the host: a broken blob
//! fails the build with the engine's message instead of failing on the device.
use std::path::{Path, PathBuf};
use std::{env, fs};

const BLOB_VAR: &str = "NNBLOB_QEMU_BLOB";
const INPUT_VAR: &str = "NNBLOB_QEMU_INPUT";

fn main() {
    if let Err(message) = run() {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let out = PathBuf::from(env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    fs::copy("memory.x", out.join("memory.x")).map_err(|e| format!("copying memory.x: {e}"))?;
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    // Linker flags here rather than in .cargo/config.toml, where a RUSTFLAGS in the
    // environment would silently replace them.
    println!("cargo:rustc-link-arg-bins=--nmagic");
    println!("cargo:rustc-link-arg-bins=-Tlink.x");

    let blob_path = input_path(BLOB_VAR)?;
    let input_path = input_path(INPUT_VAR)?;
    let blob = read(&blob_path)?;
    let input = read(&input_path)?;
    let model = nnblob_firmware::Model::from_bytes(&blob)
        .map_err(|e| format!("{}: {e}", blob_path.display()))?;
    if model.input_count() != 1 || model.output_count() != 1 {
        return Err(format!(
            "{}: the example firmware runs models with one input and one output; this one has {} and {}",
            blob_path.display(),
            model.input_count(),
            model.output_count()
        ));
    }
    let input_len = model.input_len(0);
    if input.len() != input_len * 4 {
        return Err(format!(
            "{}: {} bytes, the model's input needs {input_len} f32s ({} bytes)",
            input_path.display(),
            input.len(),
            input_len * 4
        ));
    }
    write(&out.join("model.nnb"), &blob)?;
    write(&out.join("input.bin"), &input)?;
    let consts = format!(
        "/// Arena length in f32 elements.\npub const ARENA_LEN: usize = {};\n\
         /// Input length in f32 elements.\npub const INPUT_LEN: usize = {};\n\
         /// Output length in f32 elements.\npub const OUTPUT_LEN: usize = {};\n",
        model.arena_len(),
        input_len,
        model.output_len(0)
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

fn read(path: &Path) -> Result<Vec<u8>, String> {
    fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    fs::write(path, bytes).map_err(|e| format!("writing {}: {e}", path.display()))
}
