//! The `convert`, `run`, `inspect` (blob) and `archs` commands, through the built binary, against
//! PyTorch's fixtures (`tests/fixtures/models/<name>/`): outputs, the checkpoint's SHA-256 and the
//! counts recorded by the fixture script; and the failures: one `nnblob:` line, exit code 2, no
//! output file (and no temporary file) left behind, an existing output untouched.

use serde_json::Value;

mod cli_common;
use cli_common::{assert_fails, fixture, listing, manifest, nnblob, s, stderr};

fn max_relative_error(got: &[f32], want: &[f32]) -> f64 {
    let scale = want.iter().fold(0f64, |m, x| m.max(x.abs() as f64));
    got.iter()
        .zip(want)
        .fold(0f64, |m, (a, b)| m.max((*a as f64 - *b as f64).abs()))
        / scale
}

#[test]
fn convert_run_inspect_resnet8_f32_matches_torch() {
    let dir = tempfile::tempdir().unwrap();
    let blob = dir.path().join("r8.nnb");
    let ckpt = fixture("resnet8", "state_dict.pth");
    let o = nnblob(&[
        "convert",
        s(&ckpt),
        "--arch",
        "resnet8",
        "-o",
        s(&blob),
        "--dtype",
        "f32",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = String::from_utf8(o.stdout).unwrap();
    for needle in [
        "s2_shortcut",
        "Conv2d+ReLU",
        "[1, 32, 16, 16]",
        "params:",
        "arena:",
        "blob:",
    ] {
        assert!(
            report.contains(needle),
            "no {needle:?} in the report:\n{report}"
        );
    }

    // All four fixture inputs at once (K, 3, 32, 32) -> (K, 10), against torch's outputs.
    let out = dir.path().join("out.npy");
    let o = nnblob(&[
        "run",
        s(&blob),
        "--input",
        s(&fixture("resnet8", "inputs.npy")),
        "-o",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got = nnblob::npy::read::<f32>(&out).unwrap();
    let want = nnblob::npy::read::<f32>(&fixture("resnet8", "outputs.npy")).unwrap();
    assert_eq!(got.shape, want.shape);
    let err = max_relative_error(&got.data, &want.data);
    assert!(err <= 1e-5, "relative error {err:e}");

    // One sample without its batch dimension gives an output without it.
    let inputs = nnblob::npy::read::<f32>(&fixture("resnet8", "inputs.npy")).unwrap();
    let one = dir.path().join("one.npy");
    let n = inputs.data.len() / inputs.shape[0];
    nnblob::npy::write(
        &one,
        &nnblob::npy::Array::new(inputs.shape[1..].to_vec(), inputs.data[n..2 * n].to_vec())
            .unwrap(),
    )
    .unwrap();
    let out1 = dir.path().join("out1.npy");
    let o = nnblob(&["run", s(&blob), "-i", s(&one), "-o", s(&out1)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got1 = nnblob::npy::read::<f32>(&out1).unwrap();
    assert_eq!(got1.shape, vec![10]);
    assert_eq!(
        got1.data,
        got.data[10..20],
        "the same bits as the batched run"
    );

    // inspect reads the same figures back: torch's MACs, the checkpoint's hash as torch's
    // fixture script recorded it.
    let o = nnblob(&["inspect", s(&blob), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    let m = manifest("resnet8");
    assert_eq!(j["macs"], m["macs"]);
    assert_eq!(j["dtype"], "f32");
    let sha = m["reference"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"] == "state_dict.pth")
        .unwrap()["sha256"]
        .clone();
    assert_eq!(j["source_sha256"], sha);
    assert_eq!(
        j["blob_bytes"].as_u64().unwrap(),
        std::fs::metadata(&blob).unwrap().len()
    );
    assert_eq!(j["inputs"][0]["shape"], serde_json::json!([1, 3, 32, 32]));
    assert!(
        j["passes"].as_str().unwrap().contains("eps 1e-5 x7"),
        "{}",
        j["passes"]
    );
    assert_eq!(j["per_kind"]["Conv2d"]["count"], 9);
}

#[test]
fn convert_json_report_meets_the_size_targets() {
    let dir = tempfile::tempdir().unwrap();
    let blob = dir.path().join("m.nnb");
    let ckpt = fixture("mobilenet_v1_025", "state_dict.pth");
    let o = nnblob(&[
        "convert",
        s(&ckpt),
        "--arch",
        "mobilenet_v1_025",
        "-o",
        s(&blob),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    let m = manifest("mobilenet_v1_025");
    assert_eq!(j["params"], m["params"]);
    assert_eq!(j["macs"], m["macs"]);
    let fp32 = 4 * m["params"].as_u64().unwrap();
    assert_eq!(j["fp32_weight_bytes"].as_u64().unwrap(), fp32);
    let blob_bytes = j["blob_bytes"].as_u64().unwrap();
    assert_eq!(blob_bytes, std::fs::metadata(&blob).unwrap().len());
    assert!(
        blob_bytes <= fp32 * 51 / 100 + 4096,
        "{blob_bytes} bytes for {fp32} fp32 bytes"
    );
    let (arena, bound) = (
        j["arena_bytes"].as_u64().unwrap(),
        j["arena_lower_bound_bytes"].as_u64().unwrap(),
    );
    assert!(
        arena * 10 <= bound * 11,
        "arena {arena}, lower bound {bound}"
    );
}

#[test]
fn mismatched_checkpoint_lists_every_key_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.nnb");
    let ckpt = fixture("lenet5", "state_dict.pth");
    let o = nnblob(&["convert", s(&ckpt), "--arch", "resnet8", "-o", s(&out)]);
    let err = assert_fails(&o);
    assert!(err.contains("Missing key(s) in state_dict:"), "{err}");
    assert!(err.contains("\"s3_shortcut.weight\""), "{err}");
    assert!(err.contains("Unexpected key(s) in state_dict:"), "{err}");
    // Every lenet5 key resnet8 lacks is named (torch's manifest lists the checkpoint's keys).
    for key in ["conv2.weight", "fc1.weight", "fc2.bias", "fc3.weight"] {
        assert!(
            err.contains(&format!("\"{key}\"")),
            "{key} not listed: {err}"
        );
    }
    assert!(err.contains("size mismatch for conv1.weight"), "{err}");
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));
}

#[test]
fn bad_spec_names_file_line_and_column_and_keeps_the_old_output() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("net.nnspec");
    std::fs::write(
        &spec,
        "input x: [1, 32, 32]\nconv1 = Conv2d(3, 6, 5)\nforward:\n    return conv1(x)\n",
    )
    .unwrap();
    let out = dir.path().join("out.nnb");
    std::fs::write(&out, b"previous blob").unwrap();
    let ckpt = fixture("lenet5", "state_dict.pth");
    let o = nnblob(&["convert", s(&ckpt), "--arch", s(&spec), "-o", s(&out)]);
    let err = assert_fails(&o);
    assert!(err.contains("net.nnspec:4:"), "{err}");
    assert!(err.contains("expects 3 input channels, got 1"), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"previous blob");
    assert_eq!(listing(dir.path()), ["net.nnspec", "out.nnb"]);
}

#[test]
fn unknown_arch_and_missing_checkpoint_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.nnb");
    let ckpt = fixture("lenet5", "state_dict.pth");
    let err = assert_fails(&nnblob(&[
        "convert",
        s(&ckpt),
        "--arch",
        "lenet6",
        "-o",
        s(&out),
    ]));
    assert!(err.contains("did you mean 'lenet5'"), "{err}");
    let missing = dir.path().join("nope.pth");
    let err = assert_fails(&nnblob(&[
        "convert",
        s(&missing),
        "--arch",
        "lenet5",
        "-o",
        s(&out),
    ]));
    assert!(err.contains("nope.pth"), "{err}");
    let err = assert_fails(&nnblob(&[
        "convert",
        s(&ckpt),
        "--arch",
        "lenet5",
        "--input-shape",
        "1,64,64",
        "-o",
        s(&out),
    ]));
    assert!(err.contains("layer 'fc1'"), "{err}");
    assert!(listing(dir.path()).is_empty());
}

#[test]
fn run_refuses_wrong_shapes_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let blob = dir.path().join("l5.nnb");
    let ckpt = fixture("lenet5", "state_dict.pth");
    let o = nnblob(&["convert", s(&ckpt), "--arch", "lenet5", "-o", s(&blob)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bad = dir.path().join("bad.npy");
    nnblob::npy::write(
        &bad,
        &nnblob::npy::Array::new(vec![1, 28, 28], vec![0.0f32; 784]).unwrap(),
    )
    .unwrap();
    let out = dir.path().join("out.npy");
    let err = assert_fails(&nnblob(&[
        "run",
        s(&blob),
        "--input",
        s(&bad),
        "-o",
        s(&out),
    ]));
    assert!(err.contains("(1, 28, 28)"), "{err}");
    assert!(err.contains("(1, 1, 32, 32)"), "{err}");
    let x = fixture("lenet5", "inputs.npy");
    let err = assert_fails(&nnblob(&[
        "run",
        s(&blob),
        "--input",
        s(&x),
        "--input",
        s(&x),
        "-o",
        s(&out),
    ]));
    assert!(err.contains("1 input(s)"), "{err}");
    let not_a_blob = fixture("lenet5", "inputs.npy");
    let err = assert_fails(&nnblob(&[
        "run",
        s(&not_a_blob),
        "--input",
        s(&x),
        "-o",
        s(&out),
    ]));
    assert!(err.contains("inputs.npy"), "{err}");
    assert!(!out.exists());
    assert_eq!(listing(dir.path()), ["bad.npy", "l5.nnb"]);
}

/// A two-output blob with seeded random weights: `y` (shape [1, 6]) and `flatten(y)` (shape [6],
/// no batch axis of 1), in `dir`.
fn two_output_blob(dir: &std::path::Path) -> std::path::PathBuf {
    use nnblob::blob::{self, WeightDtype};
    use nnblob::graph::{bind, parse_spec, random::random_state_dict};
    let spec =
        "input x: [4]\nfc = Linear(4, 6)\nforward:\n    y = fc(x)\n    return y, flatten(y)\n";
    let graph = parse_spec(spec, "two.nnspec", "two").unwrap();
    let graph = bind(graph.clone(), random_state_dict(&graph, 1)).unwrap();
    let built = blob::build(graph, [0; 32], WeightDtype::F32).unwrap();
    let path = dir.join("two.nnb");
    std::fs::write(&path, &built.bytes).unwrap();
    path
}

fn write_npy(path: &std::path::Path, shape: Vec<usize>, data: Vec<f32>) {
    nnblob::npy::write(path, &nnblob::npy::Array::new(shape, data).unwrap()).unwrap();
}

#[test]
fn run_stacks_an_output_without_batch_axis_on_the_sample_axis() {
    let dir = tempfile::tempdir().unwrap();
    let blob = two_output_blob(dir.path());
    let x: Vec<f32> = (0..8).map(|i| i as f32 * 0.25 - 1.0).collect();
    let stacked = dir.path().join("x2.npy");
    write_npy(&stacked, vec![2, 4], x.clone());
    let (y, z) = (dir.path().join("y.npy"), dir.path().join("z.npy"));
    let o = nnblob(&["run", s(&blob), "-i", s(&stacked), "-o", s(&y), "-o", s(&z)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let y = nnblob::npy::read::<f32>(&y).unwrap();
    let z = nnblob::npy::read::<f32>(&z).unwrap();
    assert_eq!(y.shape, [2, 6]);
    assert_eq!(
        z.shape,
        [2, 6],
        "flatten(y) of each sample, on the sample axis"
    );
    assert_eq!(z.data, y.data, "flatten only reshapes");
    // Each row is what the sample alone gives.
    for k in 0..2 {
        let one = dir.path().join(format!("x{k}.npy"));
        write_npy(&one, vec![4], x[4 * k..4 * k + 4].to_vec());
        let zk = dir.path().join(format!("z{k}.npy"));
        let yk = dir.path().join(format!("y{k}.npy"));
        let o = nnblob(&["run", s(&blob), "-i", s(&one), "-o", s(&yk), "-o", s(&zk)]);
        assert!(o.status.success(), "{}", stderr(&o));
        let zk = nnblob::npy::read::<f32>(&zk).unwrap();
        assert_eq!(zk.shape, [6]);
        assert_eq!(zk.data, z.data[6 * k..6 * k + 6]);
    }
}

#[test]
fn run_writes_all_outputs_or_none() {
    let dir = tempfile::tempdir().unwrap();
    let blob = two_output_blob(dir.path());
    let x = dir.path().join("x.npy");
    write_npy(&x, vec![1, 4], vec![0.5; 4]);
    let y = dir.path().join("y.npy");
    let z = dir.path().join("missing").join("z.npy");
    let err = assert_fails(&nnblob(&[
        "run",
        s(&blob),
        "-i",
        s(&x),
        "-o",
        s(&y),
        "-o",
        s(&z),
    ]));
    assert!(err.contains("missing/z.npy"), "{err}");
    assert_eq!(listing(dir.path()), ["two.nnb", "x.npy"]);
    // One path for two outputs would keep only the last.
    let err = assert_fails(&nnblob(&[
        "run",
        s(&blob),
        "-i",
        s(&x),
        "-o",
        s(&y),
        "-o",
        s(&y),
    ]));
    assert!(err.contains("given twice"), "{err}");
    assert_eq!(listing(dir.path()), ["two.nnb", "x.npy"]);
}

#[test]
fn archs_lists_torch_counts() {
    let o = nnblob(&["archs", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rows.len(), 9);
    for r in rows {
        let m = manifest(r["name"].as_str().unwrap());
        assert_eq!(r["params"], m["params"], "{}", r["name"]);
        assert_eq!(r["macs"], m["macs"], "{}", r["name"]);
        assert_eq!(
            r["inputs"][0], m["inputs"][0]["sample_shape"],
            "{}",
            r["name"]
        );
    }
    let o = nnblob(&["archs"]);
    let table = String::from_utf8(o.stdout).unwrap();
    assert!(
        table.contains("mobilenet_v1_025") && table.contains("[3, 96, 96]"),
        "{table}"
    );
}

#[test]
fn help_teaches_with_examples() {
    for cmd in ["convert", "run", "archs"] {
        let o = nnblob(&[cmd, "--help"]);
        assert!(o.status.success());
        let help = String::from_utf8(o.stdout).unwrap();
        assert!(help.contains("Examples:"), "{cmd}: {help}");
        assert!(help.contains(&format!("nnblob {cmd}")), "{cmd}: {help}");
    }
}

/// `--dtype int8`: a blob the engine runs, the int8 report; and every misuse of calibration is
/// one line, nothing written.
#[test]
fn convert_int8_with_calibration_and_its_misuses() {
    let dir = tempfile::tempdir().unwrap();
    let digits = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/digits");
    let (ckpt, spec) = (digits.join("digits.pth"), digits.join("digits.nnspec"));
    let calib = digits.join("calibration.npy");
    let blob = dir.path().join("d8.nnb");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["convert", s(&ckpt), "--arch", s(&spec), "-o", s(&blob)]
            .iter()
            .map(|x| x.to_string())
            .collect();
        v.extend(extra.iter().map(|x| x.to_string()));
        v
    };
    let run = |extra: &[&str]| {
        let a = args(extra);
        nnblob(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let o = run(&["--dtype", "int8", "--calibrate", s(&calib)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = String::from_utf8(o.stdout).unwrap();
    for needle in [
        "int8 layer",
        "conv1",
        "every op runs in int8",
        "int8 weights",
    ] {
        assert!(report.contains(needle), "no '{needle}' in:\n{report}");
    }
    let bytes = std::fs::read(&blob).unwrap();
    assert!(nnblob_firmware::Model::from_bytes(&bytes)
        .unwrap()
        .is_quantized());
    std::fs::remove_file(&blob).unwrap();

    // A wrongly shaped calibration set (the test labels: shape (450,)), a missing one, one
    // without int8, int8 without one.
    let labels = digits.join("test_labels.npy");
    let cases: [(&[&str], &str); 4] = [
        (
            &["--dtype", "int8", "--calibrate", s(&labels)],
            "test_labels.npy",
        ),
        (
            &["--dtype", "int8", "--calibrate", "missing.npy"],
            "missing.npy",
        ),
        (
            &["--calibrate", s(&calib)],
            "--calibrate is for --dtype int8",
        ),
        (&["--dtype", "int8"], "needs --calibrate"),
    ];
    for (extra, needle) in cases {
        let err = assert_fails(&run(extra));
        assert!(err.contains(needle), "{extra:?}: {err}");
        assert_eq!(listing(dir.path()), Vec::<String>::new(), "{extra:?}");
    }
}
