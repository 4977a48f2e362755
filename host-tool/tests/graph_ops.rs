//! The reference evaluator and every pass against PyTorch, op by op.
//!
//! `graph_ops/cases.json` is made by `graph_ops/make_cases.py` (torch, eval mode, randomized
//! weights and BatchNorm statistics): for each case a spec, its state_dict, inputs and torch's
//! outputs. Each case is evaluated as written, after every prefix of the pass pipeline, and the
//! outputs must match torch's within 1e-5 relative to the output's largest magnitude. An output
//! `forward` returns by a plain name (`return logits, feat`) has that name, after every pass too.

use nnblob::eval::evaluate;
use nnblob::graph::ops::Op;
use nnblob::graph::Tensor;
use nnblob::passes::PIPELINE;
mod op_cases;
use op_cases::{bound, cases};

/// max |got - want| / max |want| over every output.
fn max_relative_error(got: &[Tensor], want: &[Tensor]) -> f64 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(g, w)| {
            assert_eq!(g.shape, w.shape);
            let scale = w
                .data
                .iter()
                .fold(0f64, |m, x| m.max(x.abs() as f64))
                .max(1e-12);
            g.data
                .iter()
                .zip(&w.data)
                .fold(0f64, |m, (a, b)| m.max((a - b).abs() as f64))
                / scale
        })
        .fold(0.0, f64::max)
}

#[test]
fn evaluator_and_every_pass_prefix_match_torch() {
    let cases = cases();
    for (name, case) in cases {
        let inputs: Vec<Tensor> = op_cases::tensors(&case, "inputs");
        let want: Vec<Tensor> = op_cases::tensors(&case, "outputs");
        let names: Vec<Option<String>> = case["output_names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().map(str::to_string))
            .collect();
        let named_as_returned = |graph: &nnblob::graph::Graph, stage: &str| {
            assert_eq!(graph.outputs.len(), names.len(), "{name} {stage}");
            for (&v, want) in graph.outputs.iter().zip(&names) {
                if let Some(want) = want {
                    assert_eq!(&graph.values[v].name, want, "{name} {stage}:\n{graph}");
                }
            }
        };
        let mut graph = bound(&name, &case);
        named_as_returned(&graph, "as written");
        let err = max_relative_error(&evaluate(&graph, &inputs).unwrap(), &want);
        assert!(err <= 1e-5, "{name} as written: relative error {err:e}");
        for (pass, apply) in PIPELINE {
            graph = apply(graph);
            graph
                .check()
                .unwrap_or_else(|e| panic!("{name} after {pass}: {e}"));
            named_as_returned(&graph, &format!("after {pass}"));
            let err = max_relative_error(&evaluate(&graph, &inputs).unwrap(), &want);
            assert!(
                err <= 1e-5,
                "{name} after {pass}: relative error {err:e}\n{graph}"
            );
        }
    }
}

/// The passes do what they claim on these cases: no Dropout, no ZeroPad2d before a convolution,
/// no BatchNorm left (folded or turned into scale-and-shift), no standalone activation after a
/// convolution.
#[test]
fn passes_leave_the_expected_ops() {
    use nnblob::graph::Op;
    for (name, case) in cases() {
        let graph = nnblob::passes::optimize(bound(&name, &case));
        let kinds: Vec<String> = graph.nodes.iter().map(|n| n.op.kind()).collect();
        assert!(
            !graph
                .nodes
                .iter()
                .any(|n| matches!(n.op, Op::Dropout | Op::BatchNorm(_))),
            "{name}: {kinds:?}"
        );
        match name.as_str() {
            "two_inputs_unfoldable_batchnorms" => {
                // After a concat, an activation and a pool: none of the three can be folded.
                let scale_shifts = graph
                    .nodes
                    .iter()
                    .filter(|n| matches!(n.op, Op::ScaleShift(_)))
                    .count();
                assert_eq!(scale_shifts, 3, "{kinds:?}");
            }
            "padding_forms_dropout" => {
                assert!(
                    !graph.nodes.iter().any(|n| matches!(n.op, Op::ZeroPad(_))),
                    "{kinds:?}"
                );
                assert_eq!(
                    graph.nodes.iter().filter(|n| n.fused.is_some()).count(),
                    1,
                    "{kinds:?}"
                );
            }
            "grouped_dilated_conv_bn_prelu" => assert_eq!(kinds, ["Conv2d", "PReLU"]),
            "conv1d_bn1d_silu" => assert_eq!(kinds, ["Conv1d"]),
            // BatchNorm folds into a 1-d conv before a 1-d max pool; the pools stay 1-d.
            "sensor_cnn_1d" => assert_eq!(
                kinds,
                [
                    "Conv1d",
                    "MaxPool1d",
                    "Conv1d",
                    "MaxPool1d",
                    "AdaptiveAvgPool1d",
                    "Flatten",
                    "Linear"
                ]
            ),
            // BatchNorm folds into a transposed convolution (grouped, or 1-d and dilated), and
            // the activation after it fuses.
            "conv_transpose_2d_bn_relu" => {
                assert_eq!(kinds, ["ConvTranspose2d"; 3]);
                assert!(graph.nodes[0].fused.is_some(), "{kinds:?}");
            }
            "conv_transpose_1d_bn" => {
                assert_eq!(kinds, ["ConvTranspose1d"; 2]);
                assert!(graph.nodes[1].fused.is_some(), "{kinds:?}");
            }
            "linear_bn1d_3d_and_2d" => {
                // Linear on [1, 5, 7] has its features on the last axis, BatchNorm1d on axis 1:
                // not foldable. The second pair folds.
                assert_eq!(
                    kinds,
                    ["Linear", "ScaleShift", "Flatten", "Linear"],
                    "{graph}"
                );
            }
            _ => {}
        }
    }
}

/// `nnblob spec`: each case's graph written back as spec text reads back to a network that
/// binds the same state_dict and evaluates to the same values (the printed forms of every op,
/// functional ones included).
#[test]
fn every_case_prints_as_a_spec_that_reads_back() {
    for (name, case) in cases() {
        let graph = bound(&name, &case);
        // A recurrent module of several layers or directions is several nodes, which the
        // printer does not gather back into one declaration yet: it says so.
        let stacked = graph
            .nodes
            .iter()
            .any(|n| matches!(&n.op, Op::Recurrent(r) if r.num_layers > 1 || r.bidirectional));
        let printed = nnblob::graph::to_spec(&graph, &[]);
        if stacked {
            let e = printed.expect_err(&name);
            assert!(e.contains("has no spec form yet"), "{name}: {e}");
            continue;
        }
        let text = printed.unwrap_or_else(|e| panic!("{name}: {e}"));
        let reread = nnblob::graph::parse_spec(&text, &name, &name)
            .unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
        let reread = nnblob::graph::bind(reread, op_cases::state_dict(&case))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let inputs: Vec<Tensor> = op_cases::tensors(&case, "inputs");
        assert_eq!(
            evaluate(&graph, &inputs).unwrap(),
            evaluate(&reread, &inputs).unwrap(),
            "{name}:\n{text}"
        );
    }
}
