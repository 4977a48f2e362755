//! The `export-onnx` command through the built binary: the file it writes is the library's export
//! of the bound graph (byte for byte) and tract agrees with torch's outputs on it; a checkpoint
//! that does not fit the architecture is one `nnblob:` error, exit 2, with no file (temporary or
//! final) left behind and an existing output untouched.

use nnblob::checkpoint::{self, Options};
use nnblob::graph::{bind, catalog};
use nnblob::npy::{self, Array};
use nnblob::validate::{compare, OutputKind, ReferenceModel, Tolerances};

mod cli_common;
use cli_common::{fixture, listing, nnblob, s};

#[test]
fn export_onnx_writes_the_bound_graph_tract_runs_like_torch() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("resnet8.onnx");
    let weights = fixture("resnet8", "state_dict.pth");
    let o = nnblob(&[
        "export-onnx",
        s(&weights),
        "--arch",
        "resnet8",
        "-o",
        s(&out),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(listing(tmp.path()), ["resnet8.onnx"]);

    let ckpt = checkpoint::open(&weights, &Options::default()).unwrap();
    let bound = bind(
        catalog::graph("resnet8").unwrap(),
        nnblob::blob::state_dict(&ckpt),
    )
    .unwrap();
    assert_eq!(
        std::fs::read(&out).unwrap(),
        nnblob::onnx_export::to_bytes(&bound).unwrap()
    );

    let inputs: Array<f32> = npy::read(&fixture("resnet8", "inputs.npy")).unwrap();
    let want: Array<f32> = npy::read(&fixture("resnet8", "outputs.npy")).unwrap();
    let got = ReferenceModel::load(&out)
        .unwrap()
        .run_each_row(&inputs)
        .unwrap();
    let metrics = compare(
        "output",
        &want.shape,
        OutputKind::Classification,
        &got.data,
        &want.data,
    )
    .unwrap();
    assert!(Tolerances::f32().judge(&metrics).passed(), "{metrics:#?}");
}

#[test]
fn a_checkpoint_that_does_not_fit_leaves_no_file_and_keeps_an_existing_one() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ref.onnx");
    std::fs::write(&out, b"previous").unwrap();
    let o = nnblob(&[
        "export-onnx",
        s(&fixture("lenet5", "state_dict.pth")),
        "--arch",
        "resnet8",
        "-o",
        s(&out),
    ]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.starts_with("nnblob: "), "{err}");
    assert!(
        err.contains("does not fit the architecture 'resnet8'"),
        "{err}"
    );
    assert_eq!(listing(tmp.path()), ["ref.onnx"]);
    assert_eq!(std::fs::read(&out).unwrap(), b"previous");
}
