//! End to end against PyTorch: every catalog model that has a torch-saved checkpoint
//! (`tests/fixtures/models/<name>/`, made by `tests/fixtures/make_model_fixtures.py`) is converted
//! in-process to an f32 and an fp16 blob, which the firmware engine runs on every fixture input.
//!
//! Metrics: relative error = max|engine - torch| / max|torch| over an output; cosine in f64;
//! top-1 = index of the largest output. Expected values are torch's `outputs.npy`; the host's
//! reference evaluator (`nnblob::eval`) on the folded graph is a second oracle that isolates the
//! lowering and the engine from the passes.
//!
//! Targets (docs/FIGURES.md): f32 blob within 1e-5 relative of torch; fp16 blob with torch's
//! top-1 on every input whose margin allows it and cosine >= 0.9999; fp16 blob <= 0.51 x fp32
//! weight bytes + 4 KiB; arena <= 1.10 x lower bound.

use std::path::{Path, PathBuf};

use nnblob::blob::{self, Built, WeightDtype};
use nnblob::checkpoint::{self, Options};
use nnblob::eval::evaluate;
use nnblob::graph::{bind, catalog, parse_spec, summarize, Graph, Tensor};
use nnblob::npy;
use nnblob::validate::{FirmwareError, FirmwareModel};
use nnblob_firmware::Model;

mod blob_common;
use blob_common::{cosine, relative_error, with_f16_weights};
use nnblob::validate::metrics::argmax;

/// Runs a one-input, one-output blob on one sample.
fn run_engine(bytes: &[u8], input: &[f32]) -> Vec<f32> {
    blob_common::run_engine(bytes, &[input]).remove(0)
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn models_dir() -> PathBuf {
    repo().join("tests/fixtures/models")
}

fn read_npy(path: &Path) -> npy::Array<f32> {
    npy::read(path).unwrap_or_else(|e| panic!("{e}"))
}

/// Binds the checkpoint at `path` to `graph` and builds a blob of `dtype`.
fn convert(graph: Graph, path: &Path, dtype: WeightDtype) -> Built {
    let ckpt = checkpoint::open(path, &Options::default()).unwrap();
    let bound = bind(graph, blob::state_dict(&ckpt)).unwrap_or_else(|e| panic!("{e}"));
    let sha = blob::sha256_file(path).unwrap();
    blob::build(bound, sha, dtype).unwrap_or_else(|e| panic!("{e}"))
}

/// Sample `i` of a stacked array.
fn row(a: &npy::Array<f32>, i: usize) -> &[f32] {
    let n = a.data.len() / a.shape[0];
    &a.data[i * n..(i + 1) * n]
}

/// What one model gave, for the report.
struct Figures {
    name: String,
    f32_rel: f64,
    /// 1 - the smallest cosine.
    f16_cos_gap: f64,
    f16_top1: String,
    engine_vs_eval: f64,
}

fn check_model(name: &str, graph: Graph, dir: &Path) -> Figures {
    let ckpt = dir.join("state_dict.pth");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let params = summarize(&graph).total_params as usize;
    let inputs = read_npy(&dir.join("inputs.npy"));
    let outputs = read_npy(&dir.join("outputs.npy"));
    let f32_blob = convert(graph.clone(), &ckpt, WeightDtype::F32);
    let f16_blob = convert(graph, &ckpt, WeightDtype::F16);

    // Size and arena targets.
    let fp32_bytes = 4 * params;
    let limit = fp32_bytes * 51 / 100 + 4096;
    assert!(
        f16_blob.bytes.len() <= limit,
        "{name}: fp16 blob {} bytes > 0.51 x {fp32_bytes} + 4 KiB",
        f16_blob.bytes.len()
    );
    for b in [&f32_blob, &f16_blob] {
        assert!(
            b.plan.arena * 10 <= b.plan.lower_bound * 11,
            "{name}: arena {} > 1.10 x lower bound {}",
            b.plan.arena,
            b.plan.lower_bound
        );
        let model = Model::from_bytes(&b.bytes).unwrap();
        assert_eq!(model.arena_bytes(), b.plan.arena, "{name}");
    }

    let margins: Vec<f64> = manifest["reference"]["top1_margin"]
        .as_array()
        .map(|m| m.iter().map(|x| x.as_f64().unwrap()).collect())
        .unwrap_or_default();
    let f16_graph = with_f16_weights(&f16_blob.optimized);
    let mut fig = Figures {
        name: name.to_string(),
        f32_rel: 0.0,
        f16_cos_gap: 0.0,
        f16_top1: String::new(),
        engine_vs_eval: 0.0,
    };
    let (mut same, mut compared) = (0, 0);
    for i in 0..inputs.shape[0] {
        let (x, want) = (row(&inputs, i), row(&outputs, i));
        let got32 = run_engine(&f32_blob.bytes, x);
        let got16 = run_engine(&f16_blob.bytes, x);
        let rel = relative_error(&got32, want);
        assert!(
            rel <= 1e-5,
            "{name} sample {i}: f32 blob relative error {rel:e}"
        );
        fig.f32_rel = fig.f32_rel.max(rel);
        let cos = cosine(&got16, want);
        assert!(cos >= 0.9999, "{name} sample {i}: fp16 blob cosine {cos}");
        fig.f16_cos_gap = fig.f16_cos_gap.max(1.0 - cos);
        if let Some(&margin) = margins.get(i) {
            // Only a margin above the fp16 error can decide top-1.
            let err16 =
                relative_error(&got16, want) * want.iter().fold(0f64, |m, v| m.max(v.abs() as f64));
            if margin > 2.0 * err16 {
                compared += 1;
                assert_eq!(
                    argmax(&got16),
                    argmax(want),
                    "{name} sample {i}: fp16 top-1"
                );
                same += 1;
            }
        }

        // The engine against the host evaluator on the graph the blob holds.
        let shape = f32_blob
            .optimized
            .shape(f32_blob.optimized.inputs[0])
            .to_vec();
        let t = Tensor::new(shape, x.to_vec());
        for (graph, got) in [(&f32_blob.optimized, &got32), (&f16_graph, &got16)] {
            let want = &evaluate(graph, std::slice::from_ref(&t)).unwrap()[0].data;
            let rel = relative_error(got, want);
            assert!(
                rel <= 1e-5,
                "{name} sample {i}: engine vs evaluator {rel:e}"
            );
            fig.engine_vs_eval = fig.engine_vs_eval.max(rel);
        }
    }
    fig.f16_top1 = if margins.is_empty() {
        "n/a (no classifier)".into()
    } else {
        format!("{same}/{compared}")
    };
    fig
}

/// Checks every catalog model whose checkpoint is in `root/<name>/` and prints the figures.
fn check_all(root: &Path) -> usize {
    let mut figures = Vec::new();
    for e in catalog::ENTRIES {
        let dir = root.join(e.name);
        if dir.join("state_dict.pth").is_file() {
            figures.push(check_model(e.name, e.graph().unwrap(), &dir));
        }
    }
    println!(
        "model | f32 max rel. error | fp16: 1 - min cosine | fp16 top-1 | engine vs evaluator"
    );
    for f in &figures {
        println!(
            "{} | {:.2e} | {:.2e} | {} | {:.2e}",
            f.name, f.f32_rel, f.f16_cos_gap, f.f16_top1, f.engine_vs_eval
        );
    }
    figures.len()
}

#[test]
fn every_catalog_model_with_a_checkpoint_matches_torch() {
    let checked = check_all(&models_dir());
    assert!(checked >= 5, "only {checked} models had checkpoints");
}

/// The torchvision entries, from the reference sets `make_model_fixtures.py --local` writes (not
/// committed: hundreds of MB). Slow in a debug build; run with
/// `cargo test --release -p nnblob --test blob_models -- --ignored --nocapture`.
#[test]
#[ignore = "needs tests/fixtures/local (make_model_fixtures.py --local); run in release"]
fn torchvision_local_fixtures_match_torch() {
    let checked = check_all(&repo().join("tests/fixtures/local"));
    println!("{checked} local reference sets checked");
}

/// The digits demo: the spec written from `examples/digits/model.py`, the trained checkpoint, every
/// held-out image. The engine's accuracy must equal torch's, and its logits must match torch's.
#[test]
fn digits_example_accuracy_equals_torch() {
    let dir = repo().join("examples/digits");
    let spec = std::fs::read_to_string(dir.join("digits.nnspec")).unwrap();
    let graph = parse_spec(&spec, "digits.nnspec", "digits").unwrap();
    let images = read_npy(&dir.join("test_images.npy"));
    let torch = read_npy(&dir.join("torch_outputs.npy"));
    let labels: Vec<i64> =
        npyz::NpyFile::new(&std::fs::read(dir.join("test_labels.npy")).unwrap()[..])
            .unwrap()
            .into_vec()
            .unwrap();
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("metrics.json")).unwrap()).unwrap();
    let n = images.shape[0];
    assert_eq!(n as u64, metrics["test_count"].as_u64().unwrap());
    let torch_correct = (0..n)
        .filter(|&i| argmax(row(&torch, i)) as i64 == labels[i])
        .count();
    let torch_accuracy = metrics["torch_accuracy"].as_f64().unwrap();
    assert_eq!(torch_correct, (torch_accuracy * n as f64).round() as usize);
    for dtype in [WeightDtype::F32, WeightDtype::F16] {
        let built = convert(graph.clone(), &dir.join("digits.pth"), dtype);
        let (mut correct, mut same_top1, mut worst) = (0, 0, 0f64);
        for (i, &label) in labels.iter().enumerate() {
            let got = run_engine(&built.bytes, row(&images, i));
            let want = row(&torch, i);
            correct += usize::from(argmax(&got) as i64 == label);
            same_top1 += usize::from(argmax(&got) == argmax(want));
            worst = worst.max(relative_error(&got, want));
        }
        println!(
            "digits {dtype:?}: {correct}/{n} correct (torch: {torch_correct}/{n}), top-1 as torch \
             {same_top1}/{n}, max relative error {worst:.2e}"
        );
        assert_eq!(correct, torch_correct, "{dtype:?}");
        assert_eq!(same_top1, n, "{dtype:?}");
        let bound = if dtype == WeightDtype::F32 {
            1e-5
        } else {
            1e-2
        };
        assert!(worst <= bound, "{dtype:?}: max relative error {worst:e}");
    }
}

#[test]
fn stacked_samples_run_like_single_ones_and_wrong_lengths_are_named() {
    let dir = models_dir().join("lenet5");
    let blob = convert(
        catalog::graph("lenet5").unwrap(),
        &dir.join("state_dict.pth"),
        WeightDtype::F32,
    );
    let inputs = read_npy(&dir.join("inputs.npy"));
    let k = inputs.shape[0];
    let mut model = FirmwareModel::new(&blob.bytes).unwrap();
    let stacked = model.run_samples(&[&inputs.data], k).unwrap().remove(0);
    let per_sample = stacked.len() / k;
    for i in 0..k {
        assert_eq!(
            stacked[i * per_sample..(i + 1) * per_sample],
            run_engine(&blob.bytes, row(&inputs, i))[..],
            "sample {i}: the same bits alone as stacked"
        );
    }
    let short = &inputs.data[..inputs.data.len() - 1];
    let err = model.run_samples(&[short], k).unwrap_err();
    assert!(matches!(err, FirmwareError::SampleLength { .. }), "{err}");
    let err = model
        .run_samples(&[row(&inputs, 0), row(&inputs, 0)], 1)
        .unwrap_err();
    assert!(
        matches!(err, FirmwareError::InputCount { given: 2, .. }),
        "{err}"
    );
}
