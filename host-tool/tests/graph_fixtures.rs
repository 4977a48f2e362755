//! The catalog against PyTorch's own records (`tests/fixtures/models/<name>/`, made by
//! `tests/fixtures/make_model_fixtures.py`): every spec binds strictly to its model's state_dict
//! keys and shapes, counts the same parameters and MACs, has the same BatchNorm eps and layer
//! output shapes; and, where the fixture has a checkpoint, the graph (as written and folded)
//! evaluated in fp32 matches torch's outputs within 1e-5 relative.

use std::path::{Path, PathBuf};

use nnblob::checkpoint::{self, Options};
use nnblob::eval::evaluate;
use nnblob::graph::{bind, bind::expected_keys, catalog, summarize, Graph, Op, StateDict, Tensor};
use serde_json::Value;

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models")
}

fn manifest(name: &str) -> Value {
    let path = models_dir().join(name).join("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn shape(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect()
}

#[test]
fn every_catalog_entry_has_a_manifest() {
    for e in catalog::ENTRIES {
        assert!(
            models_dir().join(e.name).join("manifest.json").is_file(),
            "no fixture for {}",
            e.name
        );
    }
}

#[test]
fn every_spec_binds_strictly_to_its_torch_state_dict() {
    for e in catalog::ENTRIES {
        let m = manifest(e.name);
        let graph = e.graph().unwrap();
        // The same keys with the same shapes, in the same order (num_batches_tracked aside).
        let torch_keys: Vec<(String, Vec<usize>)> = m["state_dict"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["key"].as_str().unwrap().to_string(), shape(&t["shape"])))
            .filter(|(k, _)| !k.ends_with("num_batches_tracked"))
            .collect();
        assert_eq!(expected_keys(&graph), torch_keys, "{}", e.name);
        // And the binder accepts the full state_dict, num_batches_tracked included.
        let sd: StateDict = m["state_dict"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["key"].as_str().unwrap().to_string(),
                    Tensor::zeros(shape(&t["shape"])),
                )
            })
            .collect();
        let bound = bind(graph, sd).unwrap_or_else(|err| panic!("{err}"));
        assert!(bound.is_bound());
    }
}

#[test]
fn counts_shapes_and_eps_equal_torch() {
    for e in catalog::ENTRIES {
        let m = manifest(e.name);
        let graph = e.graph().unwrap();
        let s = summarize(&graph);
        assert_eq!(
            s.total_params,
            m["params"].as_u64().unwrap(),
            "{} params",
            e.name
        );
        assert_eq!(s.total_macs, m["macs"].as_u64().unwrap(), "{} MACs", e.name);
        let ins: Vec<Vec<usize>> = m["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| shape(&i["shape"]))
            .collect();
        let outs: Vec<Vec<usize>> = m["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| shape(&o["shape"]))
            .collect();
        assert_eq!(
            graph
                .inputs
                .iter()
                .map(|&v| graph.shape(v).to_vec())
                .collect::<Vec<_>>(),
            ins,
            "{}",
            e.name
        );
        assert_eq!(
            graph
                .outputs
                .iter()
                .map(|&v| graph.shape(v).to_vec())
                .collect::<Vec<_>>(),
            outs,
            "{}",
            e.name
        );
        for bn in m["batchnorm"].as_array().unwrap() {
            let name = bn["name"].as_str().unwrap();
            let node = graph
                .nodes
                .iter()
                .find(|n| n.name == name)
                .unwrap_or_else(|| panic!("{}: no {name}", e.name));
            let Op::BatchNorm(b) = &node.op else {
                panic!("{}: {name} is not a BatchNorm", e.name)
            };
            assert_eq!(b.eps, bn["eps"].as_f64().unwrap(), "{}: {name}", e.name);
            assert_eq!(b.num_features as u64, bn["num_features"].as_u64().unwrap());
        }
        // Every torch layer that is a module of the spec has the same output shape, params, MACs.
        let mut compared = 0;
        for layer in m["layers"].as_array().unwrap() {
            let name = layer["name"].as_str().unwrap();
            let Some(i) = graph.nodes.iter().position(|n| n.name == name) else {
                continue;
            };
            let row = &s.rows[i];
            assert_eq!(
                row.output_shape,
                shape(&layer["output_shape"]),
                "{}: {name}",
                e.name
            );
            assert_eq!(
                row.params,
                layer["params"].as_u64().unwrap(),
                "{}: {name} params",
                e.name
            );
            assert_eq!(
                row.macs,
                layer["macs"].as_u64().unwrap(),
                "{}: {name} MACs",
                e.name
            );
            compared += 1;
        }
        assert!(
            compared * 2 > graph.nodes.iter().filter(|n| n.module.is_some()).count(),
            "{}: only {compared} layers compared",
            e.name
        );
    }
}

fn read_npy(path: &Path) -> Tensor {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let data: Vec<f32> = npy.into_vec().unwrap();
    Tensor::new(shape, data)
}

fn load_state_dict(path: &Path) -> StateDict {
    let ckpt = checkpoint::open(path, &Options::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ckpt.tensors
        .iter()
        .map(|t| (t.name.clone(), Tensor::new(t.shape.clone(), t.to_f32())))
        .collect()
}

/// Sample `i` of a batch, with the batch dimension 1.
fn sample(batch: &Tensor, i: usize) -> Tensor {
    let n = batch.data.len() / batch.shape[0];
    let mut shape = batch.shape.clone();
    shape[0] = 1;
    Tensor::new(shape, batch.data[i * n..(i + 1) * n].to_vec())
}

fn max_relative_error(got: &Tensor, want: &Tensor) -> f64 {
    let scale = want
        .data
        .iter()
        .fold(0f64, |m, x| m.max(x.abs() as f64))
        .max(1e-12);
    got.data
        .iter()
        .zip(&want.data)
        .fold(0f64, |m, (a, b)| m.max((a - b).abs() as f64))
        / scale
}

#[test]
fn folded_graph_matches_torch_outputs() {
    let mut checked = 0;
    for e in catalog::ENTRIES {
        let dir = models_dir().join(e.name);
        if !dir.join("state_dict.pth").is_file() {
            continue;
        }
        let graph: Graph = bind(
            e.graph().unwrap(),
            load_state_dict(&dir.join("state_dict.pth")),
        )
        .unwrap_or_else(|err| panic!("{err}"));
        let folded = nnblob::passes::optimize(graph.clone());
        assert!(
            !folded
                .nodes
                .iter()
                .any(|n| matches!(n.op, Op::BatchNorm(_) | Op::Dropout)),
            "{}",
            e.name
        );
        let inputs = read_npy(&dir.join("inputs.npy"));
        let outputs = read_npy(&dir.join("outputs.npy"));
        for i in 0..inputs.shape[0] {
            let (x, want) = (sample(&inputs, i), sample(&outputs, i));
            for (label, g) in [("as written", &graph), ("folded", &folded)] {
                let got = evaluate(g, std::slice::from_ref(&x)).unwrap();
                let err = max_relative_error(&got[0], &want);
                assert!(
                    err <= 1e-5,
                    "{} ({label}) sample {i}: relative error {err:e}",
                    e.name
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} models had checkpoints");
}
