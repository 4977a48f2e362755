//! Build script: puts `memory.x` where cortex-m-rt's `link.x` finds it and passes the
//! linker script to the binary's link (here rather than in `.cargo/config.toml`, so that a
//! `RUSTFLAGS` in the environment cannot drop it).
use std::path::PathBuf;
use std::{env, fs};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default());
    if let Err(e) = fs::copy("memory.x", out.join("memory.x")) {
        eprintln!("error: copying memory.x: {e}");
        std::process::exit(1);
    }
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rustc-link-arg-bins=--nmagic");
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
}
