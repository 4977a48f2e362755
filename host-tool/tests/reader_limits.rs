//! The reader's bounds on memory that a small file could otherwise make it allocate: a file's bytes
//! limit what reading it costs, whatever its pickle says.

mod common;

use common::builders::{self, Pickle};
use nnblob::checkpoint::{self, Options};

#[test]
fn many_names_over_one_transposed_storage_are_bounded() {
    // 4,200 tensors, each a transposed 128x128 f32 view of the same 64 KiB storage: torch shares the
    // storage; copying each view would need 275 MB from a file of about 0.6 MB.
    let storage: Vec<u8> = (0..128 * 128 * 4).map(|i| i as u8).collect();
    let mut p = Pickle::default();
    p.global("collections", "OrderedDict").op(b")R").mark();
    for i in 0..4200 {
        p.str(&format!("t{i}"))
            .tensor("FloatStorage", "0", 128 * 128, 0, &[128, 128], &[1, 128]);
    }
    let pickle = p.op(b"u").stop();
    let zip = builders::torch_zip("archive", &pickle, &[("0".into(), storage.clone())], false);
    let legacy = builders::legacy(&pickle, &[("0".into(), 4, storage)]);
    for file in [zip, legacy] {
        let e = checkpoint::from_bytes(file, &Options::default()).unwrap_err();
        assert_eq!(e.kind(), "too-large", "{e}");
        // Hand-computed: 4,099 copies of 64 KiB are the first to pass 2 x 64 KiB + 256 MiB.
        assert!(e.to_string().starts_with("tensor t4098:"), "{e}");
    }
}
