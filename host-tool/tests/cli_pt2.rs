//! The `.pt2` commands as a user runs them: `convert MODEL.pt2` (default output beside it),
//! `convert X.pth --arch MODEL.pt2`, `spec`, `inspect`, and their failures (exit code 2, one
//! `nnblob:` line, nothing written). The numbers behind them are checked in `pt2_import.rs`.

mod cli_common;
use cli_common::{assert_fails, nnblob, repo, s};

use std::path::PathBuf;

fn pt2(file: &str) -> PathBuf {
    repo().join("tests/fixtures/pt2").join(file)
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn convert_writes_the_blob_beside_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.pt2");
    std::fs::copy(pt2("resnet8_stack.pt2"), &model).unwrap();
    let o = nnblob(&["convert", s(&model)]);
    assert!(o.status.success(), "{}", cli_common::stderr(&o));
    let report = stdout(&o);
    assert!(report.contains("stack1.conv1"), "{report}");
    let blob = dir.path().join("model.nnb");
    let o = nnblob(&["inspect", s(&blob)]);
    assert!(o.status.success(), "{}", cli_common::stderr(&o));
}

#[test]
fn a_state_dict_takes_the_structure_of_an_archive_or_its_spec() {
    let dir = tempfile::tempdir().unwrap();
    let pth = pt2("lenet5.retrained.pth");
    let out = dir.path().join("a.nnb");
    let o = nnblob(&[
        "convert",
        s(&pth),
        "--arch",
        s(&pt2("lenet5.pt2")),
        "-o",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", cli_common::stderr(&o));
    let spec = dir.path().join("lenet5.nnspec");
    let o = nnblob(&["spec", s(&pt2("lenet5.core.pt2")), "-o", s(&spec)]);
    assert!(o.status.success(), "{}", cli_common::stderr(&o));
    let text = std::fs::read_to_string(&spec).unwrap();
    assert!(
        text.contains("conv1 = Conv2d(1, 6, 5)") && text.contains("forward:"),
        "{text}"
    );
    let out2 = dir.path().join("b.nnb");
    let o = nnblob(&["convert", s(&pth), "--arch", s(&spec), "-o", s(&out2)]);
    assert!(o.status.success(), "{}", cli_common::stderr(&o));
}

#[test]
fn inspect_lists_ops_and_what_cannot_run_yet() {
    let o = nnblob(&["inspect", s(&pt2("tv_mobilenet_v3.core.pt2"))]);
    let text = stdout(&o);
    assert!(o.status.success());
    assert!(
        text.contains("aten.clamp") && text.contains("converts:  yes"),
        "{text}"
    );
    let o = nnblob(&["inspect", s(&pt2("err_cumsum.pt2")), "--json"]);
    assert!(o.status.success());
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let why = report["cannot_convert"][0].as_str().unwrap();
    assert!(why.contains("aten.cumsum.default"), "{why}");
    assert_eq!(report["ops"]["aten.cumsum"], 1);
}

#[test]
fn failures_are_one_line_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.nnb");
    for (file, needle) in [
        ("err_cumsum.pt2", "torch.cumsum(x, dim=3)"),
        ("err_training_bn.pt2", "model.eval()"),
        ("err_dynamic.pt2", "static shapes"),
        ("hostile/duplicate_entry.pt2", "duplicate"),
    ] {
        let err = assert_fails(&nnblob(&["convert", s(&pt2(file)), "-o", s(&out)]));
        assert!(err.contains(needle), "{file}: {err}");
        assert!(!out.exists(), "{file}: an output was written");
    }
    let pth = repo().join("tests/fixtures/models/lenet5/state_dict.pth");
    let err = assert_fails(&nnblob(&["convert", s(&pth), "-o", s(&out)]));
    assert!(err.contains("--arch"), "{err}");
}

#[test]
fn scan_reports_each_pickle_an_archive_carries() {
    let o = nnblob(&["scan", s(&pt2("hostile/sample_inputs_posix_system.pt2"))]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains("data/sample_inputs/model.pt: REFUSED") && text.contains("posix.system"),
        "{text}"
    );
    let o = nnblob(&["scan", s(&pt2("lenet5.pt2"))]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}
