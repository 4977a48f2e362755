//! The `validate`, `bench` and `demo` commands through the built binary.
//!
//! - Every catalog model with a committed checkpoint, converted to fp16 and f32 blobs: `validate`
//!   passes (exit 0) against torch's own `model.onnx` on torch's reference inputs and against
//!   `nnblob export-onnx` on random inputs, with the default tolerances of each dtype.
//! - Tolerances tighter than the measured error fail with exit 1 and say which check failed.
//! - Mismatched models, inputs of the wrong shape or number: exit 2, one `nnblob:` line naming
//!   both sides.
//! - `bench` reports both engines; `demo` reproduces PyTorch's recorded accuracy and every
//!   decision, and says what to do when it cannot find the examples.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

mod cli_common;
use cli_common::{assert_fails as expect_error, fixture, nnblob_in, repo, s};

fn nnblob(args: &[&str]) -> Output {
    nnblob_in(&repo(), args)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A command that succeeded with `code`; its stdout.
fn expect_code(o: &Output, code: i32) -> String {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

/// Converts `name`'s checkpoint into `dir` with `dtype`; returns the blob's path.
fn convert(dir: &Path, name: &str, dtype: &str) -> PathBuf {
    let out = dir.join(format!("{name}-{dtype}.nnb"));
    let o = nnblob(&[
        "convert",
        s(&fixture(name, "state_dict.pth")),
        "--arch",
        name,
        "-o",
        s(&out),
        "--dtype",
        dtype,
    ]);
    expect_code(&o, 0);
    out
}

fn export(dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(format!("{name}.onnx"));
    let o = nnblob(&[
        "export-onnx",
        s(&fixture(name, "state_dict.pth")),
        "--arch",
        name,
        "-o",
        s(&out),
    ]);
    expect_code(&o, 0);
    out
}

/// The models whose checkpoint is committed.
fn committed_models() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo().join("tests/fixtures/models"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| fixture(n, "state_dict.pth").is_file())
        .collect();
    names.sort();
    assert!(names.len() >= 5, "found only {names:?}");
    names
}

fn validate_json(args: &[&str], code: i32) -> Value {
    let mut all = vec!["validate", "--json"];
    all.extend_from_slice(args);
    let out = expect_code(&nnblob(&all), code);
    serde_json::from_str(&out).unwrap()
}

#[test]
fn validate_passes_on_every_committed_model_in_fp16_and_f32() {
    let tmp = tempfile::tempdir().unwrap();
    for name in committed_models() {
        let ours = export(tmp.path(), &name);
        for dtype in ["f16", "f32"] {
            let blob = convert(tmp.path(), &name, dtype);
            let vs_torch = validate_json(
                &[
                    s(&blob),
                    "--onnx",
                    s(&fixture(&name, "model.onnx")),
                    "--input",
                    s(&fixture(&name, "inputs.npy")),
                ],
                0,
            );
            let vs_export = validate_json(
                &[s(&blob), "--onnx", s(&ours), "--random", "4", "--seed", "1"],
                0,
            );
            for (reference, report) in [
                ("torch ONNX, torch inputs", &vs_torch),
                ("our export, random", &vs_export),
            ] {
                assert_eq!(report["passed"], true, "{name} {dtype}: {report:#}");
                assert_eq!(report["weight_dtype"], dtype);
                let o = &report["outputs"][0];
                println!(
                    "{name} {dtype} vs {reference}: max abs {:.3e}, max rel {:.3e}, 1 - cosine {:.1e}, top-1 {}",
                    o["max_abs_error"].as_f64().unwrap(),
                    o["max_relative_error"].as_f64().unwrap(),
                    1.0 - o["cosine_similarity"].as_f64().unwrap(),
                    o["top1"]["agreeing"].as_u64().map_or("-".into(), |a| format!("{a}/{}", o["top1"]["rows"]))
                );
            }
            assert_eq!(vs_export["samples"], 4);
        }
    }
}

#[test]
fn tolerances_tighter_than_the_error_fail_with_exit_1_and_name_the_check() {
    let tmp = tempfile::tempdir().unwrap();
    let blob = convert(tmp.path(), "lenet5", "f16");
    let onnx = fixture("lenet5", "model.onnx");
    let inputs = fixture("lenet5", "inputs.npy");
    let report = validate_json(
        &[
            s(&blob),
            "--onnx",
            s(&onnx),
            "--input",
            s(&inputs),
            "--max-rel",
            "1e-9",
        ],
        1,
    );
    assert_eq!(report["passed"], false);
    let failures = &report["outputs"][0]["verdict"]["failures"];
    assert_eq!(failures[0]["check"], "max_relative_error", "{failures:#}");
    assert_eq!(failures.as_array().unwrap().len(), 1, "{failures:#}");

    // The table says the same to a person.
    let o = nnblob(&[
        "validate",
        s(&blob),
        "--onnx",
        s(&onnx),
        "--cosine-min",
        "1.0",
        "--max-rel",
        "off",
    ]);
    let out = expect_code(&o, 1);
    assert!(out.contains("cosine similarity"), "{out}");
    assert!(out.contains("FAIL"), "{out}");
}

#[test]
fn classes_none_drops_top1_and_auto_skips_reconstructions() {
    let tmp = tempfile::tempdir().unwrap();
    let blob = convert(tmp.path(), "lenet5", "f32");
    let onnx = fixture("lenet5", "model.onnx");
    let auto = validate_json(&[s(&blob), "--onnx", s(&onnx)], 0);
    assert_eq!(auto["outputs"][0]["top1"]["rows"], 8);
    let none = validate_json(&[s(&blob), "--onnx", s(&onnx), "--classes", "none"], 0);
    assert!(none["outputs"][0]["top1"].is_null());
    let ae = convert(tmp.path(), "fc_autoencoder", "f32");
    let report = validate_json(
        &[
            s(&ae),
            "--onnx",
            s(&fixture("fc_autoencoder", "model.onnx")),
        ],
        0,
    );
    assert!(report["outputs"][0]["top1"].is_null(), "{report:#}");
}

#[test]
fn mismatches_are_errors_that_name_both_sides() {
    let tmp = tempfile::tempdir().unwrap();
    let blob = convert(tmp.path(), "lenet5", "f16");
    let err = expect_error(&nnblob(&[
        "validate",
        s(&blob),
        "--onnx",
        s(&fixture("resnet8", "model.onnx")),
    ]));
    assert!(
        err.contains(
            "blob input 'x' has shape [1, 1, 32, 32], ONNX input 'input' has shape [1, 3, 32, 32]"
        ),
        "{err}"
    );

    let err = expect_error(&nnblob(&[
        "validate",
        s(&blob),
        "--onnx",
        s(&fixture("lenet5", "model.onnx")),
        "--input",
        s(&fixture("resnet8", "inputs.npy")),
    ]));
    assert!(
        err.contains("does not fit the blob's input 'x' of shape [1, 1, 32, 32]"),
        "{err}"
    );

    let lenet = fixture("lenet5", "inputs.npy");
    let err = expect_error(&nnblob(&[
        "validate",
        s(&blob),
        "--onnx",
        s(&fixture("lenet5", "model.onnx")),
        "--input",
        s(&lenet),
        "--input",
        s(&lenet),
    ]));
    assert!(
        err.contains("the blob has 1 input(s) ('x' [1, 1, 32, 32]), 2 --input given"),
        "{err}"
    );

    let err = expect_error(&nnblob(&[
        "validate",
        s(&blob),
        "--onnx",
        s(&tmp.path().join("missing.onnx")),
    ]));
    assert!(err.contains("missing.onnx"), "{err}");
}

#[test]
fn bench_times_both_engines() {
    let tmp = tempfile::tempdir().unwrap();
    let blob = convert(tmp.path(), "lenet5", "f32");
    let o = nnblob(&[
        "bench",
        s(&blob),
        "--onnx",
        s(&fixture("lenet5", "model.onnx")),
        "--runs",
        "3",
        "--warmup",
        "1",
        "--json",
    ]);
    let report: Value = serde_json::from_str(&expect_code(&o, 0)).unwrap();
    assert_eq!(report["firmware"]["runs"], 3);
    assert_eq!(report["tract"]["runs"], 3);
    let ratio = report["ratio"].as_f64().unwrap();
    assert!(ratio > 0.0 && ratio.is_finite(), "{report:#}");
    let fw = &report["firmware"];
    assert!(fw["min_us"].as_f64() <= fw["median_us"].as_f64());
    assert!(fw["median_us"].as_f64() <= fw["p90_us"].as_f64());
}

#[test]
fn bench_names_both_files_when_the_inputs_do_not_pair() {
    let tmp = tempfile::tempdir().unwrap();
    let blob = convert(tmp.path(), "lenet5", "f32");
    let onnx = fixture("resnet8", "model.onnx");
    let err = expect_error(&nnblob(&[
        "bench",
        s(&blob),
        "--onnx",
        s(&onnx),
        "--runs",
        "1",
        "--warmup",
        "0",
    ]));
    assert!(
        err.contains(&format!("{} and {}", blob.display(), onnx.display())),
        "{err}"
    );
    assert!(
        err.contains(
            "blob input 'x' has shape [1, 1, 32, 32], ONNX input 'input' has shape [1, 3, 32, 32]"
        ),
        "{err}"
    );
}

#[test]
fn demo_reproduces_torch_on_the_digits_test_set() {
    let o = nnblob(&["demo"]);
    let out = expect_code(&o, 0);
    let metrics: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("examples/digits/metrics.json")).unwrap(),
    )
    .unwrap();
    let n = metrics["test_count"].as_u64().unwrap();
    let correct = (metrics["torch_accuracy"].as_f64().unwrap() * n as f64).round() as u64;
    let accuracy = format!("({correct}/{n})");
    for engine in [
        "PyTorch (recorded at training)",
        "firmware fp16",
        "firmware f32",
        "tract (ONNX)",
    ] {
        let line = out
            .lines()
            .find(|l| l.starts_with(engine))
            .unwrap_or_else(|| panic!("no row for {engine}:\n{out}"));
        assert!(line.contains(&accuracy), "{line}");
    }
    assert!(
        out.contains(&format!(
            "the fp16 and f32 engines make PyTorch's decision on all {n} images, int8 on at least 99%"
        )),
        "{out}"
    );
    assert!(out.lines().any(|l| l.starts_with("firmware int8")), "{out}");

    // From elsewhere, with --examples; and without, a message saying what to do.
    let tmp = tempfile::tempdir().unwrap();
    let examples = repo().join("examples");
    expect_code(
        &nnblob_in(tmp.path(), &["demo", "--examples", s(&examples)]),
        0,
    );
    let err = expect_error(&nnblob_in(tmp.path(), &["demo"]));
    assert!(
        err.contains("give `--examples PATH/TO/nnblob/examples`"),
        "{err}"
    );
}

/// `tests/fixtures/pasted/rnet/<file>`: MTCNN's RNet, its spec pasted from its Python.
fn rnet(file: &str) -> PathBuf {
    repo().join("tests/fixtures/pasted/rnet").join(file)
}

#[test]
fn a_two_output_network_validates_against_torchs_own_export_paired_by_position() {
    let dir = tempfile::tempdir().unwrap();
    for dtype in ["f16", "f32"] {
        let blob = dir.path().join(format!("rnet-{dtype}.nnb"));
        let o = nnblob(&[
            "convert",
            s(&rnet("state_dict.pth")),
            "--arch",
            s(&rnet("model.nnspec")),
            "-o",
            s(&blob),
            "--dtype",
            dtype,
        ]);
        expect_code(&o, 0);
        // Default options: torch names its outputs otherwise than `return b, a` does.
        let o = nnblob(&[
            "validate",
            s(&blob),
            "--onnx",
            s(&rnet("model.onnx")),
            "--input",
            s(&rnet("inputs.npy")),
            "--json",
        ]);
        let report: Value = serde_json::from_str(&expect_code(&o, 0)).unwrap();
        assert_eq!(report["outputs_paired_by"], "position", "{report}");
        assert_eq!(report["inputs_paired_by"], "name", "{report}");
        let outputs = report["outputs"].as_array().unwrap();
        let names: Vec<&str> = outputs
            .iter()
            .map(|o| o["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["b", "a"], "{report}");
        assert!(
            outputs
                .iter()
                .all(|o| o["reference"].is_string()
                    && o["verdict"]["failures"] == Value::Array(vec![])),
            "{report}"
        );
        assert_eq!(report["notes"].as_array().unwrap().len(), 2, "{report}");
        // Forced by name, the names do not match.
        let err = expect_error(&nnblob(&[
            "validate",
            s(&blob),
            "--onnx",
            s(&rnet("model.onnx")),
            "--match",
            "name",
        ]));
        assert!(
            err.contains("outputs do not match by name: tested has [b, a]"),
            "{err}"
        );
        // The engine against torch's own outputs, output by output, in the order of `return`.
        let (yb, ya) = (dir.path().join("b.npy"), dir.path().join("a.npy"));
        let o = nnblob(&[
            "run",
            s(&blob),
            "--input",
            s(&rnet("inputs.npy")),
            "-o",
            s(&yb),
            "-o",
            s(&ya),
        ]);
        expect_code(&o, 0);
        for (got, file) in [(&yb, "outputs_b.npy"), (&ya, "outputs_a.npy")] {
            let got = nnblob::npy::read::<f32>(got).unwrap();
            let want = nnblob::npy::read::<f32>(&rnet(file)).unwrap();
            assert_eq!(got.shape, want.shape);
            let scale = want.data.iter().fold(0f32, |m, v| m.max(v.abs()));
            let err = got
                .data
                .iter()
                .zip(&want.data)
                .fold(0f32, |m, (a, b)| m.max((a - b).abs()))
                / scale;
            let limit = if dtype == "f32" { 1e-5 } else { 2e-3 };
            assert!(err <= limit, "{dtype} {file}: relative error {err:e}");
        }
    }
}
