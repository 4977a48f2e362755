//! What the tests of C programs share: catalog blobs converted from their committed fixtures,
//! and the C API's static library (`firmware/capi`) built for a target.
//!
//! In: a catalog model's name and how to convert it ([`Mode`]); a target triple. Out: the blob's
//! bytes with the fixture's inputs and MAC count ([`Converted`]); the path of
//! `libnnblob_capi.a` built for the target in a directory of the caller's.

use std::path::{Path, PathBuf};
use std::process::Command;

use nnblob::blob::{self, WeightDtype};
use nnblob::checkpoint::{self, Options};
use nnblob::graph::{bind, catalog};

use crate::{models_dir, workspace_root};

/// How a catalog model is converted: fp16 or f32 weights, or int8 (calibrated on the fixture's
/// inputs, min/max ranges; fp16 weights for the ops that stay f32).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    Weights(WeightDtype),
    Int8,
}

impl Mode {
    /// How the tables and file names call it: `F16`, `F32`, `int8`.
    pub fn label(self) -> &'static str {
        match self {
            Mode::Weights(WeightDtype::F16) => "F16",
            Mode::Weights(WeightDtype::F32) => "F32",
            Mode::Int8 => "int8",
        }
    }
}

/// A converted catalog model.
pub struct Converted {
    /// The blob.
    pub bytes: Vec<u8>,
    /// The fixture's inputs (`inputs.npy`), one per row, each as the model's one input.
    pub inputs: Vec<Vec<f32>>,
    /// torch's MAC count for one inference (`manifest.json`).
    pub macs: u64,
}

/// `name`'s fixture checkpoint bound to its catalog entry and converted in `mode`.
pub fn convert(name: &str, mode: Mode) -> Converted {
    let dir = models_dir().join(name);
    let ckpt_path = dir.join("state_dict.pth");
    let ckpt = checkpoint::open(&ckpt_path, &Options::default()).expect("reads the checkpoint");
    let graph = catalog::graph(name).expect("a catalog entry");
    let shape = graph.shape(graph.inputs[0]).to_vec();
    let bound = bind(graph, blob::state_dict(&ckpt)).expect("binds strictly");
    let sha = blob::sha256_file(&ckpt_path).expect("hashes");
    let inputs = nnblob::npy::read::<f32>(&dir.join("inputs.npy")).expect("inputs.npy");
    let built = match mode {
        Mode::Weights(dtype) => blob::build(bound, sha, dtype).expect("compiles"),
        Mode::Int8 => {
            let samples = nnblob::quant::calibrate::one_input_samples(&inputs, &shape);
            let calibration = blob::Calibration {
                samples: &samples,
                method: nnblob::quant::RangeMethod::MinMax,
            };
            blob::build_int8(bound, sha, WeightDtype::F16, &calibration, |_, _| {})
                .expect("compiles to int8")
                .0
        }
    };
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("manifest.json")).expect("manifest"),
    )
    .expect("manifest JSON");
    let n = inputs.data.len() / inputs.shape[0];
    Converted {
        bytes: built.bytes,
        inputs: inputs.data.chunks(n).map(<[f32]>::to_vec).collect(),
        macs: manifest["macs"].as_u64().expect("macs"),
    }
}

/// `libnnblob_capi.a` for `target` (the host's without one) and cargo profile `profile`
/// (`release`; for firmware `release-speed` or `release-size`, docs/C.md), built by a nested
/// `cargo build -p nnblob-capi` with its own target directory under `dir` (the calling test's
/// build holds the lock on the main one); later runs find it up to date.
pub fn static_library(dir: &Path, target: Option<&str>, profile: &str) -> PathBuf {
    let target_dir = dir.join("nnblob-capi");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut c = Command::new(cargo);
    c.args(["build", "--quiet", "--locked", "-p", "nnblob-capi"])
        .args(["--profile", profile])
        .current_dir(workspace_root())
        .env("CARGO_TARGET_DIR", &target_dir);
    if let Some(t) = target {
        c.args(["--target", t]);
    }
    let status = c.status().expect("runs cargo");
    assert!(status.success(), "cargo build -p nnblob-capi {target:?}");
    let mut path = target_dir;
    if let Some(t) = target {
        path.push(t);
    }
    path.join(profile).join("libnnblob_capi.a")
}

/// Writes `values` as raw little-endian f32.
pub fn write_f32(path: &Path, values: &[f32]) {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes).expect("writes");
}

/// The strings of `key` in `[target.TARGET]` of the cargo configuration `config`: the value of
/// `key = "value"`, or the elements of `key = ["a", "b"]`.
pub fn cargo_config_strings(config: &Path, target: &str, key: &str) -> Vec<String> {
    let text = std::fs::read_to_string(config)
        .unwrap_or_else(|e| panic!("reads {}: {e}", config.display()));
    let header = format!("[target.{target}]");
    let value = text
        .lines()
        .skip_while(|l| l.trim() != header)
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .find_map(|l| l.strip_prefix(key)?.trim_start().strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key} for {target} in {}", config.display()));
    value
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// A C toolchain and how to run what it builds: the host's, or a Linux target's from the
/// workspace's `.cargo/config.toml` (its `linker`, a cross GCC that compiles C too, and its
/// `runner`, QEMU's user-mode emulator), so that the tests and cargo use the same commands.
pub struct Toolchain {
    /// The Rust target, `None` for the host.
    pub target: Option<&'static str>,
    /// The C compiler.
    pub cc: String,
    /// The program and arguments that run one of its executables, empty for the host.
    pub runner: Vec<String>,
}

impl Toolchain {
    /// The host's: `cc`, programs run directly.
    pub fn host() -> Toolchain {
        Toolchain {
            target: None,
            cc: "cc".into(),
            runner: Vec::new(),
        }
    }

    /// `target`'s, read from `.cargo/config.toml`.
    pub fn linux(target: &'static str) -> Toolchain {
        let config = workspace_root().join(".cargo/config.toml");
        Toolchain {
            target: Some(target),
            cc: cargo_config_strings(&config, target, "linker").remove(0),
            runner: cargo_config_strings(&config, target, "runner"),
        }
    }

    /// A command running `exe` (under the runner, if any).
    pub fn command(&self, exe: &Path) -> Command {
        match self.runner.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }

    /// A short name for messages and file names.
    pub fn name(&self) -> &'static str {
        self.target.unwrap_or("host")
    }
}
