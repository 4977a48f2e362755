//! The ONNX export against PyTorch, run by tract.
//!
//! - Every catalog model with a checkpoint in `tests/fixtures/models/<name>/`: our export of the
//!   bound graph, run by tract on the reference inputs, agrees with torch's own `model.onnx` run by
//!   tract and with torch's `outputs.npy`, within the f32 tolerances (1e-5 relative).
//! - Every op-level torch case (`graph_ops/cases.json`, made by `graph_ops/make_cases.py`): the
//!   export as written, and after the passes (fused activations, unfoldable BatchNorms), run by
//!   tract, gives torch's outputs within 1e-5 relative.
//! - An unbound graph is refused with the layer's name.

use std::path::{Path, PathBuf};

use nnblob::checkpoint::{self, Options};
use nnblob::graph::{bind, catalog, Graph, StateDict, Tensor};
use nnblob::npy::{self, Array};
use nnblob::onnx_export::{self, ExportError};
use nnblob::validate::{compare, NamedTensor, OutputKind, ReferenceModel, Tolerances};
mod op_cases;

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models")
}

fn state_dict(path: &Path) -> StateDict {
    let ckpt = checkpoint::open(path, &Options::default()).unwrap();
    ckpt.tensors
        .iter()
        .map(|t| (t.name.clone(), Tensor::new(t.shape.clone(), t.to_f32())))
        .collect()
}

/// Writes the export of `graph` into `dir` and loads it in tract.
fn export_and_load(graph: &Graph, dir: &Path, name: &str) -> ReferenceModel {
    let path = dir.join(format!("{name}.onnx"));
    std::fs::write(&path, onnx_export::to_bytes(graph).unwrap()).unwrap();
    ReferenceModel::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Compares `actual` with `reference` under the f32 tolerances; the report on failure.
fn check_f32(what: &str, actual: &Array<f32>, reference: &Array<f32>) -> f64 {
    assert_eq!(actual.shape, reference.shape, "{what}");
    let metrics = compare(
        what,
        &reference.shape,
        OutputKind::Other,
        &actual.data,
        &reference.data,
    )
    .unwrap();
    let report = nnblob::validate::OutputReport::new(metrics, &Tolerances::f32());
    assert!(
        report.verdict.passed(),
        "{what}\n{}",
        nnblob::validate::render_table(std::slice::from_ref(&report))
    );
    report.metrics.max_relative_error
}

#[test]
fn export_agrees_with_torch_onnx_and_torch_outputs_on_every_catalog_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let mut checked = Vec::new();
    for entry in catalog::ENTRIES {
        let dir = models_dir().join(entry.name);
        if !dir.join("state_dict.pth").is_file() {
            continue;
        }
        let graph = bind(
            entry.graph().unwrap(),
            state_dict(&dir.join("state_dict.pth")),
        )
        .unwrap();
        let ours = export_and_load(&graph, tmp.path(), entry.name);
        let torch_onnx = ReferenceModel::load(&dir.join("model.onnx")).unwrap();
        let inputs: Array<f32> = npy::read(&dir.join("inputs.npy")).unwrap();
        let torch_outputs: Array<f32> = npy::read(&dir.join("outputs.npy")).unwrap();

        let by_ours = ours.run_each_row(&inputs).unwrap();
        let by_torch_onnx = torch_onnx.run_each_row(&inputs).unwrap();
        let vs_onnx = check_f32(
            &format!("{}: our export vs torch's ONNX (both by tract)", entry.name),
            &by_ours,
            &by_torch_onnx,
        );
        let vs_torch = check_f32(
            &format!("{}: our export vs torch outputs.npy", entry.name),
            &by_ours,
            &torch_outputs,
        );
        println!(
            "{}: max relative error vs torch ONNX {vs_onnx:.3e}, vs torch outputs {vs_torch:.3e}",
            entry.name
        );
        checked.push(entry.name);
    }
    // The five small catalog models have committed checkpoints; none found means broken discovery.
    assert!(checked.len() >= 5, "checked only {checked:?}");
}

#[test]
fn export_of_every_op_case_matches_torch_as_written_and_after_the_passes() {
    let cases = op_cases::cases();
    let tmp = tempfile::tempdir().unwrap();
    for (name, case) in &cases {
        let graph = op_cases::bound(name, case);
        let inputs: Vec<NamedTensor> = graph
            .inputs
            .iter()
            .zip(case["inputs"].as_array().unwrap())
            .map(|(&v, t)| {
                let t = op_cases::tensor(t);
                NamedTensor::new(
                    graph.values[v].name.clone(),
                    Array::new(t.shape, t.data).unwrap(),
                )
            })
            .collect();
        let want: Vec<Tensor> = op_cases::tensors(case, "outputs");
        let optimized = nnblob::passes::optimize(graph.clone());
        for (stage, g) in [("as written", &graph), ("after the passes", &optimized)] {
            let model = export_and_load(g, tmp.path(), name);
            let got = model.run(&inputs).unwrap();
            assert_eq!(got.len(), want.len(), "{name} {stage}");
            for (got, want) in got.iter().zip(&want) {
                let want = Array::new(want.shape.clone(), want.data.clone()).unwrap();
                check_f32(
                    &format!("{name} {stage} output {}", got.name),
                    &got.array,
                    &want,
                );
            }
        }
    }
}

#[test]
fn an_unbound_graph_is_refused_with_the_layer() {
    let graph = catalog::graph("lenet5").unwrap();
    assert_eq!(
        onnx_export::to_bytes(&graph).unwrap_err(),
        ExportError::Unbound("conv1".into())
    );
}

/// Every network of the `.pt2` fixtures (export form; `tests/fixtures/pt2/`, made by torch):
/// imported, bound to the archive's weights, exported to ONNX and run by tract on its first input,
/// gives torch's outputs within the f32 tolerances — the export of every op an import produces
/// (Slice from chunk/split, 5-d permutes, PReLU, Hardswish, ...) checked by an independent engine.
#[test]
fn export_of_every_pt2_fixture_matches_torch() {
    let pt2_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/pt2");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(pt2_dir.join("manifest.json")).unwrap())
            .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for (network, _) in manifest["networks"].as_object().unwrap() {
        let file = pt2_dir.join(format!("{network}.pt2"));
        if network.starts_with("err_") || !file.exists() {
            continue;
        }
        let archive = nnblob::pt2::open(&file).unwrap();
        let graph = nnblob::pt2::lower(&archive.program, network).unwrap();
        let graph = bind(graph, nnblob::blob::tensors_to_state_dict(&archive.weights)).unwrap();
        let reference = export_and_load(&graph, tmp.path(), network);
        let read = |kind: &str| -> Vec<Array<f32>> {
            let single = pt2_dir.join(format!("{network}.{kind}.npy"));
            let files: Vec<PathBuf> = if single.exists() {
                vec![single]
            } else {
                (0..)
                    .map(|i| pt2_dir.join(format!("{network}.{kind}{i}.npy")))
                    .take_while(|p| p.exists())
                    .collect()
            };
            files.iter().map(|p| npy::read(p).unwrap()).collect()
        };
        // Sample 0 of each `(K, 1, ...)` array, with the batch axis.
        let first = |a: &Array<f32>| {
            let n = a.data.len() / a.shape[0];
            Array::new(a.shape[1..].to_vec(), a.data[..n].to_vec()).unwrap()
        };
        let inputs: Vec<NamedTensor> = graph
            .inputs
            .iter()
            .zip(read("input"))
            .map(|(&v, a)| NamedTensor::new(graph.values[v].name.clone(), first(&a)))
            .collect();
        let got = reference
            .run(&inputs)
            .unwrap_or_else(|e| panic!("{network}: {e}"));
        for (g, want) in got.iter().zip(read("output")) {
            check_f32(&format!("{network}: {}", g.name), &g.array, &first(&want));
        }
        checked += 1;
    }
    assert!(checked >= 16, "{checked} networks");
}
