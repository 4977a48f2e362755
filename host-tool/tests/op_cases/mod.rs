//! The op-level PyTorch cases shared by the evaluator, lowering and ONNX-export tests.
//!
//! `graph_ops/cases.json` is made by `graph_ops/make_cases.py` (torch, eval mode, randomized
//! weights and BatchNorm statistics): per case a spec, its state_dict, inputs and torch's outputs.
//! In: that file. Out: the cases by name, their tensors, and each case's graph bound to its
//! state_dict.
#![allow(dead_code)] // each test crate uses part of it

use nnblob::graph::{bind, parse_spec, Graph, StateDict, Tensor};
use serde_json::Value;

/// A tensor written as `{"shape": [...], "data": [...]}`.
pub fn tensor(v: &Value) -> Tensor {
    let shape = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let data = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    Tensor::new(shape, data)
}

/// The case's `"inputs"` or `"outputs"`, as tensors.
pub fn tensors(case: &Value, key: &str) -> Vec<Tensor> {
    case[key].as_array().unwrap().iter().map(tensor).collect()
}

/// How many cases `make_cases.py` writes: a shorter file lost some.
const CASES: usize = 24;

/// Every case, by name.
pub fn cases() -> Vec<(String, Value)> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/graph_ops/cases.json"
    ))
    .unwrap();
    let all: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(all.len(), CASES, "cases.json lost cases");
    all.into_iter().collect()
}

/// The case's spec parsed and its state_dict bound strictly.
pub fn bound(name: &str, case: &Value) -> Graph {
    let graph =
        parse_spec(case["spec"].as_str().unwrap(), name, name).unwrap_or_else(|e| panic!("{e}"));
    bind(graph, state_dict(case)).unwrap_or_else(|e| panic!("{e}"))
}

/// The case's state_dict.
pub fn state_dict(case: &Value) -> StateDict {
    case["state_dict"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), tensor(v)))
        .collect()
}
