//! The lowering of every op outside the catalog, against PyTorch: the cases of
//! `graph_ops/cases.json` (made by `graph_ops/make_cases.py` with torch: grouped, dilated and 1-d
//! convolutions, every activation, PReLU, pools with ceil_mode and count_include_pad, adaptive
//! pooling, permute, reshape, squeeze-excitation's channel-broadcast mul, concat, softmax, several
//! inputs and outputs, unfoldable BatchNorms, padding forms) are converted to f32 and fp16 blobs
//! and run on the firmware engine. (Dilated max pooling has no engine op: its refusal is checked.) The f32 blob must give torch's outputs within 1e-5 relative;
//! the fp16 blob the host evaluator's outputs for the same f16-rounded weights within 1e-5.

use nnblob::blob::{self, BlobError, WeightDtype};
use nnblob::eval::evaluate;
use nnblob::graph::{bind, parse_spec, Tensor};
use nnblob_format::meta::OpKind;
use nnblob_format::BlobView;
mod op_cases;
use op_cases::{bound, cases};

mod blob_common;
use blob_common::{relative_error, run_engine, with_f16_weights};

fn op_kinds(bytes: &[u8]) -> Vec<OpKind> {
    let view = BlobView::new_checked(bytes).unwrap();
    view.ops().map(|op| op.unwrap().kind()).collect()
}

#[test]
fn every_op_case_runs_on_the_engine_like_torch() {
    let cases = cases();
    let mut kinds = std::collections::HashSet::new();
    let mut refused = Vec::new();
    for (name, case) in cases {
        let inputs: Vec<Tensor> = op_cases::tensors(&case, "inputs");
        let mut want: Vec<Tensor> = op_cases::tensors(&case, "outputs");
        let slices: Vec<&[f32]> = inputs.iter().map(|t| t.data.as_slice()).collect();
        let mut graph = bound(&name, &case);
        // The engine has no dilated max pooling: the converter must refuse it by name; the
        // case's other outputs are then checked without it.
        while let Err(e) = blob::build(graph.clone(), [0; 32], WeightDtype::F32) {
            let BlobError::Unsupported { layer, .. } = &e else {
                panic!("{name}: {e}")
            };
            assert!(e.to_string().contains("dilation"), "{name}: {e}");
            refused.push(layer.clone());
            let node = graph.nodes.iter().position(|n| &n.name == layer).unwrap();
            let output = graph.nodes[node].output;
            let k = graph.outputs.iter().position(|&v| v == output).unwrap();
            graph.outputs.remove(k);
            want.remove(k);
            graph.nodes.remove(node);
            graph.compact();
        }

        let f32_blob = blob::build(graph.clone(), [0; 32], WeightDtype::F32)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        kinds.extend(op_kinds(&f32_blob.bytes));
        let got = run_engine(&f32_blob.bytes, &slices);
        assert_eq!(got.len(), want.len(), "{name}");
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            let err = relative_error(g, &w.data);
            assert!(err <= 1e-5, "{name} output {k}: f32 blob vs torch {err:e}");
        }

        let f16_blob =
            blob::build(graph, [0; 32], WeightDtype::F16).unwrap_or_else(|e| panic!("{name}: {e}"));
        let got = run_engine(&f16_blob.bytes, &slices);
        let reference = evaluate(&with_f16_weights(&f16_blob.optimized), &inputs).unwrap();
        for (k, (g, w)) in got.iter().zip(&reference).enumerate() {
            let err = relative_error(g, &w.data);
            assert!(
                err <= 1e-5,
                "{name} output {k}: fp16 blob vs evaluator {err:e}"
            );
        }
    }
    assert_eq!(refused, ["max_pool2d_1", "max_pool1d_2"]);
    // Flatten and reshape (several cases have them) are aliases in the arena, never copies.
    assert!(!kinds.contains(&OpKind::Copy), "{kinds:?}");
    // The cases reach these engine ops (a case that stops lowering to one would lose its teeth).
    for k in [
        OpKind::Conv2d,
        OpKind::ConvTranspose2d,
        OpKind::Linear,
        OpKind::ChannelAffine,
        OpKind::Activation,
        OpKind::MaxPool2d,
        OpKind::AvgPool2d,
        OpKind::AdaptiveAvgPool2d,
        OpKind::AdaptiveMaxPool2d,
        OpKind::Mul,
        OpKind::Concat,
        OpKind::Softmax,
        OpKind::Permute,
    ] {
        assert!(kinds.contains(&k), "no case lowers to {k:?}: {kinds:?}");
    }
}

/// Regression cases, engine against the host evaluator (itself checked against torch above), with
/// seeded random weights: element-wise ops whose two operands are the same memory (`y * y`,
/// `x + x`, a value plus a reshape of itself). The planner must not write the result over an
/// operand that is read again at the same step, or the engine refuses the blob.
#[test]
fn operands_sharing_one_buffer() {
    use nnblob::graph::random::{random_inputs, random_state_dict};
    let specs = [
        "input x: [4, 3, 3]\nc = Conv2d(4, 4, 1)\nforward:\n    y = c(x)\n    return y * y\n",
        "input x: [4, 3, 3]\nforward:\n    return relu(x + x)\n",
        "input x: [4, 3, 3]\nc = Conv2d(4, 4, 1)\nforward:\n    y = c(x)\n    \
         return flatten(y, 1) + reshape(y, [1, 36])\n",
    ];
    for (i, spec) in specs.iter().enumerate() {
        let graph = parse_spec(spec, "case.nnspec", "case").unwrap();
        let graph = bind(graph.clone(), random_state_dict(&graph, i as u64)).unwrap();
        let inputs = random_inputs(&graph, 7);
        let built = blob::build(graph, [0; 32], WeightDtype::F32)
            .unwrap_or_else(|e| panic!("case {i}: {e}"));
        let slices: Vec<&[f32]> = inputs.iter().map(|t| t.data.as_slice()).collect();
        let got = run_engine(&built.bytes, &slices);
        let want = evaluate(&built.optimized, &inputs).unwrap();
        let err = relative_error(&got[0], &want[0].data);
        assert!(err <= 1e-6, "case {i}: engine vs evaluator {err:e}");
    }
}

/// Engine against the evaluator (seeded random weights) when the broadcast operand comes first:
/// the lowering swaps the operands (add and mul commute exactly), per channel and scalar.
#[test]
fn broadcast_operand_first_is_swapped() {
    use nnblob::graph::random::{random_inputs, random_state_dict};
    let spec = "input x: [4, 3, 5]\nc = Conv2d(4, 1, 3, padding=1)\nforward:\n    \
                s = adaptive_avg_pool2d(x, 1)\n    t = adaptive_avg_pool2d(c(x), 1)\n    \
                return s * x, s + x, t * x\n";
    let graph = parse_spec(spec, "case.nnspec", "case").unwrap();
    let graph = bind(graph.clone(), random_state_dict(&graph, 3)).unwrap();
    let inputs = random_inputs(&graph, 5);
    let built = blob::build(graph, [0; 32], WeightDtype::F32).unwrap_or_else(|e| panic!("{e}"));
    let slices: Vec<&[f32]> = inputs.iter().map(|t| t.data.as_slice()).collect();
    let got = run_engine(&built.bytes, &slices);
    let want = evaluate(&built.optimized, &inputs).unwrap();
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        let err = relative_error(g, &w.data);
        assert!(err <= 1e-6, "output {k}: engine vs evaluator {err:e}");
    }
}

/// A broadcast of two partial shapes has no engine op: refused, naming the layer and the shapes.
#[test]
fn unsupported_broadcast_is_refused_by_name() {
    use nnblob::graph::random::random_state_dict;
    let spec = "input x: [4, 3, 5]\nforward:\n    a = adaptive_avg_pool2d(x, (1, None))\n    \
                b = adaptive_avg_pool2d(x, (None, 1))\n    return a * b\n";
    let graph = parse_spec(spec, "case.nnspec", "case").unwrap();
    let graph = bind(graph.clone(), random_state_dict(&graph, 3)).unwrap();
    let err = blob::build(graph, [0; 32], WeightDtype::F32).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, BlobError::Unsupported { .. }), "{msg}");
    assert!(msg.contains("layer 'mul_1'"), "{msg}");
    assert!(msg.contains("[1, 4, 1, 5] with [1, 4, 3, 1]"), "{msg}");
}

/// Every output of `spec` (seeded random weights and inputs) on the engine against the host
/// evaluator on the graph as written (before the passes), within 1e-6 relative.
fn engine_matches_the_graph_as_written(spec: &str) {
    use nnblob::graph::random::{random_inputs, random_state_dict};
    let graph = parse_spec(spec, "case.nnspec", "case").unwrap();
    let graph = bind(graph.clone(), random_state_dict(&graph, 3)).unwrap();
    let inputs = random_inputs(&graph, 5);
    let want = evaluate(&graph, &inputs).unwrap();
    let built = blob::build(graph, [0; 32], WeightDtype::F32).unwrap_or_else(|e| panic!("{e}"));
    let slices: Vec<&[f32]> = inputs.iter().map(|t| t.data.as_slice()).collect();
    let got = run_engine(&built.bytes, &slices);
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let err = relative_error(g, &w.data);
        assert!(
            err <= 1e-6,
            "output {i}: engine vs evaluator {err:e}\n{spec}"
        );
    }
}

#[test]
fn an_output_read_by_the_last_element_wise_op_is_not_overwritten() {
    // The planner must not let relu(y) take y's memory in place: y is returned too.
    engine_matches_the_graph_as_written(
        "input x: [4]\nfc = Linear(4, 6)\nforward:\n    y = fc(x)\n    return y, relu(y)\n",
    );
    engine_matches_the_graph_as_written(
        "input x: [4]\nforward:\n    y = x * x\n    return y, sigmoid(y)\n",
    );
}

#[test]
fn a_broadcast_where_neither_operand_has_the_output_size_is_refused() {
    // [1, 3, 1] * [1, 1, 4] -> [1, 3, 4]: the engine broadcasts the second operand only.
    let spec = "input a: [3, 1]\ninput b: [1, 4]\nforward:\n    return a * b\n";
    let graph = parse_spec(spec, "case.nnspec", "case").unwrap();
    let e = blob::build(graph, [0; 32], WeightDtype::F32).unwrap_err();
    assert!(matches!(e, BlobError::Unsupported { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("broadcasting [1, 3, 1] with [1, 1, 4] is not supported"),
        "{e}"
    );
}
