//! Helpers for the tests that run the built `nnblob` binary: the repository's fixtures, the
//! command, and the failure contract every subcommand keeps (exit code 2, one `nnblob:` line on
//! stderr, nothing on stdout).
#![allow(dead_code)] // each test crate uses part of it

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A file of the catalog model `name`'s fixture set (`tests/fixtures/models/<name>/`).
pub fn fixture(name: &str, file: &str) -> PathBuf {
    repo().join("tests/fixtures/models").join(name).join(file)
}

/// The torch-made manifest of the catalog model `name`.
pub fn manifest(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name, "manifest.json")).unwrap()).unwrap()
}

/// Runs `nnblob ARGS` in `dir`.
pub fn nnblob_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nnblob"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

/// Runs `nnblob ARGS`.
pub fn nnblob(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nnblob"))
        .args(args)
        .output()
        .unwrap()
}

/// A path as a command-line argument.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A failed command: exit code 2, exactly one `nnblob:` line on stderr (a bind report continues
/// on indented lines), nothing on stdout; returns stderr.
pub fn assert_fails(o: &Output) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    assert!(err.starts_with("nnblob: "), "stderr: {err}");
    assert_eq!(err.matches("nnblob:").count(), 1, "stderr: {err}");
    assert!(
        o.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    err
}

/// The names in `dir`, sorted: what a failed command must have left as it was.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}
