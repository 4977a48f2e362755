//! Every pass on generated networks: evaluate before and after the pass on random inputs and
//! random weights (BatchNorm statistics randomized too) and require the same outputs within 1e-5
//! relative. The generator draws convolutions with every padding form, stride, dilation, group
//! count (depthwise included), with or without bias, followed or not by BatchNorm, activations,
//! Dropout and ZeroPad2d, residual adds, and linear layers with BatchNorm1d.

use nnblob::eval::evaluate;
use nnblob::graph::random::{random_inputs, random_state_dict, Rng};
use nnblob::graph::{bind, parse_spec, Graph, Op};
use nnblob::passes::{fold_batchnorm, PIPELINE};

const ACTIVATIONS: &[&str] = &[
    "relu",
    "relu6",
    "sigmoid",
    "tanh",
    "silu",
    "hardswish",
    "hardsigmoid",
    "gelu",
];

/// A random spec: a chain of convolution blocks on a small image, then a linear head.
fn random_spec(rng: &mut Rng) -> String {
    let (mut c, mut h, mut w) = (rng.range(1, 4), rng.range(6, 12), rng.range(6, 12));
    let mut decls = format!("input x: [{c}, {h}, {w}]\n");
    let mut fwd = String::new();
    for b in 0..rng.range(1, 4) {
        let residual = rng.range(0, 3) == 0;
        if residual {
            fwd += "    r = x\n";
        }
        if rng.range(0, 2) == 0 && !residual {
            let p: Vec<usize> = (0..4).map(|_| rng.range(0, 2)).collect();
            decls += &format!(
                "pad{b} = ZeroPad2d(({}, {}, {}, {}))\n",
                p[0], p[1], p[2], p[3]
            );
            fwd += &format!("    x = pad{b}(x)\n");
            (h, w) = (h + p[2] + p[3], w + p[0] + p[1]);
        }
        let depthwise = rng.range(0, 3) == 0;
        let groups = if depthwise {
            c
        } else {
            [1, c]
                .into_iter()
                .filter(|g| c % g == 0)
                .nth(rng.range(0, 1))
                .unwrap_or(1)
        };
        let cout = if depthwise || residual {
            c
        } else {
            groups * rng.range(1, 3)
        };
        let mut k = rng.range(1, 3);
        let (stride, dilation) = if residual {
            (1, 1)
        } else {
            (rng.range(1, 2), rng.range(1, 2))
        };
        let padding = if residual {
            "'same'".to_string()
        } else {
            rng.range(0, 1).to_string()
        };
        let pad = if residual {
            0
        } else {
            padding.parse::<usize>().unwrap_or(0)
        };
        if h.min(w) + 2 * pad < dilation * (k - 1) + 1 {
            k = 1;
        }
        let bias = if rng.range(0, 1) == 0 {
            "False"
        } else {
            "True"
        };
        decls += &format!("conv{b} = Conv2d({c}, {cout}, {k}, stride={stride}, padding={padding}, dilation={dilation}, groups={groups}, bias={bias})\n");
        let mut expr = format!("conv{b}(x)");
        let span = dilation * (k - 1) + 1;
        if !residual {
            h = (h + 2 * pad - span) / stride + 1;
            w = (w + 2 * pad - span) / stride + 1;
        }
        let bn_first = rng.range(0, 3) > 0;
        if bn_first {
            decls += &format!(
                "bn{b} = BatchNorm2d({cout}, eps={})\n",
                if rng.range(0, 1) == 0 { "1e-3" } else { "1e-5" }
            );
            expr = format!("bn{b}({expr})");
        }
        if residual {
            expr = format!("{expr} + r");
        }
        let act = ACTIVATIONS[rng.range(0, ACTIVATIONS.len() - 1)];
        expr = format!("{act}({expr})");
        if !bn_first && rng.range(0, 1) == 0 {
            decls += &format!("bn{b} = BatchNorm2d({cout})\n");
            expr = format!("bn{b}({expr})");
        }
        if rng.range(0, 2) == 0 {
            decls += &format!("drop{b} = Dropout(0.5)\n");
            expr = format!("drop{b}({expr})");
        }
        fwd += &format!("    x = {expr}\n");
        c = cout;
    }
    let features = c * h * w;
    let hidden = rng.range(2, 6);
    decls += &format!("fc1 = Linear({features}, {hidden}, bias={})\nbnf = BatchNorm1d({hidden})\nfc2 = Linear({hidden}, 3)\n", if rng.range(0, 1) == 0 { "False" } else { "True" });
    fwd += "    x = relu(bnf(fc1(flatten(x, 1))))\n    return fc2(x), x\n";
    format!("{decls}forward:\n{fwd}")
}

fn max_relative_error(a: &[nnblob::graph::Tensor], b: &[nnblob::graph::Tensor]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let scale = y
                .data
                .iter()
                .fold(0f64, |m, v| m.max(v.abs() as f64))
                .max(1e-6);
            x.data
                .iter()
                .zip(&y.data)
                .fold(0f64, |m, (p, q)| m.max((p - q).abs() as f64))
                / scale
        })
        .fold(0.0, f64::max)
}

fn random_bound_graph(seed: u64) -> (String, Graph) {
    let spec = random_spec(&mut Rng::new(seed));
    let graph =
        parse_spec(&spec, "generated", "generated").unwrap_or_else(|e| panic!("{e}\n{spec}"));
    let sd = random_state_dict(&graph, seed ^ 0x5eed);
    (
        spec.clone(),
        bind(graph, sd).unwrap_or_else(|e| panic!("{e}\n{spec}")),
    )
}

#[test]
fn each_pass_preserves_outputs_on_generated_networks() {
    for seed in 0..150 {
        let (spec, graph) = random_bound_graph(seed);
        let inputs = random_inputs(&graph, seed);
        let want = evaluate(&graph, &inputs).unwrap();
        for (name, pass) in PIPELINE {
            let after = pass(graph.clone());
            after
                .check()
                .unwrap_or_else(|e| panic!("seed {seed}, {name}: {e}\n{spec}"));
            let got = evaluate(&after, &inputs).unwrap();
            let err = max_relative_error(&got, &want);
            assert!(
                err <= 1e-5,
                "seed {seed}, {name}: relative error {err:e}\n{spec}\n{after}"
            );
        }
        let all = nnblob::passes::optimize(graph.clone());
        let err = max_relative_error(&evaluate(&all, &inputs).unwrap(), &want);
        assert!(
            err <= 1e-5,
            "seed {seed}, whole pipeline: relative error {err:e}\n{spec}\n{all}"
        );
    }
}

/// Folding really happens: over the generated networks most BatchNorms disappear into their
/// convolution, and no pass leaves a Dropout, a BatchNorm or a ZeroPad2d feeding a convolution.
#[test]
fn pipeline_removes_what_it_should() {
    let (mut before, mut folded) = (0, 0);
    for seed in 0..150 {
        let (_, graph) = random_bound_graph(seed);
        let bns = graph
            .nodes
            .iter()
            .filter(|n| matches!(n.op, Op::BatchNorm(_)))
            .count();
        let out = nnblob::passes::optimize(graph);
        let scale_shift = out
            .nodes
            .iter()
            .filter(|n| matches!(n.op, Op::ScaleShift(_)))
            .count();
        before += bns;
        folded += bns - scale_shift;
        assert!(!out
            .nodes
            .iter()
            .any(|n| matches!(n.op, Op::Dropout | Op::BatchNorm(_))));
        for n in &out.nodes {
            if let Op::Conv(_) = n.op {
                let p = out.producer(n.inputs[0]);
                assert!(!p.is_some_and(|p| matches!(out.nodes[p].op, Op::ZeroPad(_))));
            }
        }
    }
    assert!(
        folded * 2 > before,
        "only {folded} of {before} BatchNorms folded"
    );
}

/// `scale_shift` is BatchNorm's definition rewritten: y = x * s + t. Checked on values where the
/// arithmetic is exact in binary floating point.
#[test]
fn scale_shift_is_batchnorm_in_affine_form() {
    // gamma 3, beta 1, mean 2, var 4 - eps, eps: s = 3 / 2 = 1.5, t = 1 - 2 * 1.5 = -2.
    let eps = 0.25;
    let (s, t) =
        fold_batchnorm::scale_shift(&[3.0], &[1.0], &[2.0], &[4.0 - eps as f32], eps).unwrap();
    assert_eq!((s[0], t[0]), (1.5, -2.0));
    assert!(fold_batchnorm::scale_shift(&[1.0], &[0.0], &[0.0], &[-1.0], 1e-5).is_err());
}
