//! What each fuzz target does with one input. Shared by the cargo-fuzz targets (`fuzz/fuzz_targets/`)
//! and by `tests/regressions.rs`, which replays saved inputs without cargo-fuzz.

#![allow(dead_code)]

use nnblob::checkpoint::pickle::{self, Limits, Mode};
use nnblob::checkpoint::{self, Options};

use super::builders;

/// `unpickle`: the VM in both modes, then the same bytes as `archive/data.pkl` of a torch zip with two
/// small storages, read as a checkpoint (state_dict selection, module walks, tensor views) and scanned.
pub fn unpickle(data: &[u8]) {
    for mode in [Mode::Strict, Mode::Audit] {
        let _ = pickle::unpickle(data, "fuzz.pkl", mode, &Limits::default());
    }
    let storages = [
        ("0".to_owned(), vec![7u8; 64]),
        ("1".to_owned(), vec![1u8; 16]),
    ];
    let file = builders::torch_zip("archive", data, &storages, false);
    let _ = checkpoint::from_bytes(file.clone(), &Options::default());
    let keyed = Options {
        key: Some("state_dict".into()),
    };
    let _ = checkpoint::from_bytes(file.clone(), &keyed);
    let _ = checkpoint::scan_bytes(file);
}

/// `archive`: whole files — sniffing, zip, legacy, safetensors, the pickles inside — read strictly
/// and scanned; every tensor read must have exactly `numel * dtype size` bytes.
pub fn archive(data: &[u8]) {
    if let Ok(ckpt) = checkpoint::from_bytes(data.to_vec(), &Options::default()) {
        for t in &ckpt.tensors {
            assert_eq!(t.bytes().len(), t.numel() * t.dtype.size());
            let _ = t.to_f32();
        }
    }
    let _ = checkpoint::scan_bytes(data.to_vec());
}
