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

/// `pt2`: whole files through the `.pt2` reader, then the lowering, binding and blob writer for
/// what reads; every weight read must have exactly `numel * dtype size` bytes.
pub fn pt2(data: &[u8]) {
    let Ok(archive) = nnblob::pt2::from_bytes(data.to_vec()) else {
        return;
    };
    for t in &archive.weights {
        assert_eq!(t.bytes().len(), t.numel() * t.dtype.size());
    }
    let Ok(graph) = nnblob::pt2::lower(&archive.program, "fuzz") else {
        return;
    };
    let weights = nnblob::blob::tensors_to_state_dict(&archive.weights);
    if let Ok(bound) = nnblob::graph::bind(graph, weights) {
        let _ = nnblob::blob::build(bound, [0; 32], nnblob::blob::WeightDtype::F16);
    }
}

/// `pt2_json`: the bytes as the `models/model.json` of an otherwise well-formed archive without
/// weights, through the reader and the lowering.
pub fn pt2_json(data: &[u8]) {
    let records = [
        builders::Record::stored("m/archive_format", b"pt2"),
        builders::Record::stored("m/archive_version", b"0"),
        builders::Record::stored("m/byteorder", b"little"),
        builders::Record::stored("m/models/model.json", data),
    ];
    pt2(&builders::zip(&records));
}
