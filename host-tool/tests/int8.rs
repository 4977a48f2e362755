//! int8 end to end: quantization in the converter, the engine's int8 kernels and the format.
//!
//! - **Bits.** The engine's int8 outputs equal, bit for bit, those of the int8 reference evaluator
//!   (`nnblob::quant::reference`, written from the format's definitions, not from the kernels) on
//!   every catalog model with a torch checkpoint and on the digits demo.
//! - **Accuracy against PyTorch.** The digits demo, calibrated on training images
//!   (`examples/digits/calibration.npy`), keeps PyTorch's decision (`torch_outputs.npy`) on at
//!   least 99 % of the 450 held-out images.
//! - **RAM.** MLPerf-Tiny ResNet-8's int8 arena is at most TensorFlow Lite Micro's for the same
//!   network (54,340 bytes, measured on the same emulated board; docs/DEVICE.md).

use std::path::{Path, PathBuf};

use nnblob::blob::{self, Calibration, WeightDtype};
use nnblob::checkpoint::{self, Options};
use nnblob::graph::{bind, catalog, parse_spec, Graph, Tensor};
use nnblob::npy;
use nnblob::quant::calibrate::one_input_samples as samples;
use nnblob::quant::reference::{self, QValue};
use nnblob::quant::RangeMethod;
use nnblob::validate::metrics::argmax;
use nnblob_firmware::{Model, NoProfiler};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read_npy(path: &Path) -> npy::Array<f32> {
    npy::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn bound(graph: Graph, checkpoint: &Path) -> Graph {
    let ckpt = checkpoint::open(checkpoint, &Options::default()).unwrap();
    bind(graph, blob::state_dict(&ckpt)).unwrap_or_else(|e| panic!("{e}"))
}

/// Converts to int8, then checks the engine against the reference evaluator on `tests`.
/// Returns the blob and its quantized graph.
fn check_bits(
    name: &str,
    graph: Graph,
    calibration: &[Vec<Tensor>],
    tests: &[Vec<Tensor>],
) -> (Vec<u8>, Graph, usize) {
    let method = RangeMethod::MinMax;
    let calibration = Calibration {
        samples: calibration,
        method,
    };
    let (built, report, _) =
        blob::build_int8(graph, [0; 32], WeightDtype::F16, &calibration, |_, _| {})
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        report.float.is_empty(),
        "{name}: ops left in f32 {:?}",
        report.float
    );
    let model = Model::from_bytes(&built.bytes).unwrap();
    let g = &built.optimized;
    let mut arena = vec![0f32; model.arena_len()];
    for (i, sample) in tests.iter().enumerate() {
        let values = reference::evaluate(g, sample);
        let input: Vec<i8> = match values[g.inputs[0]].as_ref().unwrap() {
            QValue::I8 { q, .. } => q.clone(),
            QValue::F32(_) => panic!("{name}: the input is not int8"),
        };
        let want: Vec<i8> = match values[g.outputs[0]].as_ref().unwrap() {
            QValue::I8 { q, .. } => q.clone(),
            QValue::F32(_) => panic!("{name}: the output is not int8"),
        };
        let mut got = vec![0i8; want.len()];
        model
            .run_quantized(&[&input], &mut [&mut got], &mut arena, &mut NoProfiler)
            .unwrap();
        assert_eq!(got, want, "{name}: sample {i}: engine and reference differ");
        // The float entry point quantizes and dequantizes at the edges, to the same values.
        let mut real = vec![0f32; want.len()];
        model.run(&sample[0].data, &mut real, &mut arena).unwrap();
        let QValue::I8 { quant, .. } = values[g.outputs[0]].as_ref().unwrap() else {
            unreachable!()
        };
        let deq: Vec<f32> = want
            .iter()
            .map(|&q| nnblob::quant::params::dequantize_value(q, *quant))
            .collect();
        assert_eq!(real, deq, "{name}: sample {i}: the f32 edges differ");
    }
    let arena_bytes = model.arena_bytes();
    (built.bytes, built.optimized, arena_bytes)
}

/// A few inputs of the model's shape, N(0, 1)-like from a fixed seed (any input does for bits).
fn seeded(shape: &[usize], n: usize) -> Vec<Vec<Tensor>> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..n)
        .map(|_| {
            let data = (0..shape.iter().product::<usize>())
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    ((state >> 40) as f32 / (1u64 << 23) as f32 - 1.0) * 1.7
                })
                .collect();
            vec![Tensor::new(shape.to_vec(), data)]
        })
        .collect()
}

/// The graph without a final softmax (its output becomes the logits): softmax runs in f32,
/// where the engine (f32) and the reference evaluator (f64) differ in the last bits, so the bits
/// are compared on the int8 part.
fn without_final_softmax(mut g: Graph) -> Graph {
    if let Some(last) = g.nodes.last() {
        if matches!(last.op, nnblob::graph::Op::Softmax(_)) && g.outputs == [last.output] {
            g.outputs = vec![last.inputs[0]];
            g.nodes.pop();
        }
    }
    g
}

#[test]
fn catalog_models_run_bit_exact_in_int8() {
    let dir = repo().join("tests/fixtures/models");
    for name in [
        "resnet8",
        "dscnn",
        "mobilenet_v1_025",
        "fc_autoencoder",
        "lenet5",
    ] {
        let graph = catalog::graph(name).unwrap();
        let shape = graph.shape(graph.inputs[0]).to_vec();
        let g = bound(graph, &dir.join(name).join("state_dict.pth"));
        let inputs = read_npy(&dir.join(name).join("inputs.npy"));
        let calibration = samples(&inputs, &shape);
        if name == "resnet8" {
            let calibration = Calibration {
                samples: &calibration,
                method: RangeMethod::MinMax,
            };
            let (built, _, _) = blob::build_int8(
                g.clone(),
                [0; 32],
                WeightDtype::F16,
                &calibration,
                |_, _| {},
            )
            .unwrap();
            let arena = built.plan.arena;
            println!(
                "resnet8 int8: arena {arena} bytes, lower bound {}",
                built.plan.lower_bound
            );
            assert!(
                arena <= 54_340,
                "ResNet-8 int8 arena {arena} > TFLite Micro's 54,340"
            );
        }
        let g = without_final_softmax(g);
        check_bits(name, g, &calibration, &seeded(&shape, 2));
    }
}

#[test]
fn digits_demo_in_int8_keeps_torchs_decisions() {
    let dir = repo().join("examples/digits");
    let text = std::fs::read_to_string(dir.join("digits.nnspec")).unwrap();
    let graph = parse_spec(&text, "digits.nnspec", "digits").unwrap();
    let shape = graph.shape(graph.inputs[0]).to_vec();
    let g = bound(graph, &dir.join("digits.pth"));
    let calibration = samples(&read_npy(&dir.join("calibration.npy")), &shape);
    let test = samples(&read_npy(&dir.join("test_images.npy")), &shape);
    let (bytes, _, _) = check_bits("digits", g, &calibration, &test[..16]);
    let torch = read_npy(&dir.join("torch_outputs.npy"));
    let model = Model::from_bytes(&bytes).unwrap();
    let mut arena = vec![0f32; model.arena_len()];
    let mut agree = 0;
    for (i, sample) in test.iter().enumerate() {
        let mut out = vec![0f32; 10];
        model.run(&sample[0].data, &mut out, &mut arena).unwrap();
        agree += usize::from(argmax(&out) == argmax(torch.row(i).unwrap().1));
    }
    let rate = agree as f64 / test.len() as f64;
    println!(
        "digits int8: PyTorch's decision on {agree}/{} held-out images",
        test.len()
    );
    assert!(
        rate >= 0.99,
        "int8 agrees with PyTorch on {agree}/{}",
        test.len()
    );
}

/// A blob of format version 2 (written before int8 existed; f32 tensors, offsets in f32
/// elements) still loads, and computes what today's blob of the same checkpoint computes.
#[test]
fn version_2_blobs_run_as_before() {
    let dir = repo().join("examples/digits");
    let old = std::fs::read(repo().join("firmware/tests/fixtures/digits-v2.nnb")).unwrap();
    assert_eq!(&old[4..6], &[2, 0]);
    let text = std::fs::read_to_string(dir.join("digits.nnspec")).unwrap();
    let graph = parse_spec(&text, "digits.nnspec", "digits").unwrap();
    let g = bound(graph, &dir.join("digits.pth"));
    let new = blob::build(g, [0; 32], WeightDtype::F16).unwrap().bytes;
    let (old, new) = (
        Model::from_bytes(&old).unwrap(),
        Model::from_bytes(&new).unwrap(),
    );
    assert_eq!(old.arena_bytes(), new.arena_bytes());
    let test = read_npy(&dir.join("test_images.npy"));
    let mut arena = vec![0f32; new.arena_len()];
    for r in 0..8 {
        let x = test.row(r).unwrap().1;
        let (mut a, mut b) = (vec![0f32; 10], vec![0f32; 10]);
        old.run(x, &mut a, &mut arena).unwrap();
        new.run(x, &mut b, &mut arena).unwrap();
        assert_eq!(
            a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }
}

/// Geometries the catalog does not have — dilation, groups, unequal strides, padding wider than
/// the kernel's reach, a Conv1d, max and average pools with padding (2-d and 1-d), adaptive max
/// pools with uneven bins, an addition of two scales, ReLU6 — with seeded weights: the engine's
/// int8 kernels equal the reference bit for bit.
#[test]
fn awkward_geometries_run_bit_exact_in_int8() {
    let spec = "\
input x: [4, 9, 11]
a = Conv2d(4, 6, 3, stride=(2, 1), padding=2, dilation=2, groups=2)
b = Conv2d(6, 6, (1, 5), padding=(0, 2), groups=6)
c = Conv2d(6, 6, 1)
d = Conv1d(6, 5, 4, stride=3, padding=1)
p = MaxPool2d(3, stride=2, padding=1)
q = AvgPool2d(2, stride=1, padding=1, count_include_pad=False)
mp = MaxPool1d(2, stride=1, padding=1, ceil_mode=True)
ap = AvgPool1d(3, stride=2, padding=1, count_include_pad=False)
amp = AdaptiveMaxPool1d(3)
forward:
    y = relu6(a(x))
    z = relu(b(y))
    s = c(z) + y
    t = adaptive_max_pool2d(q(p(s)), (3, 5))
    u = flatten(t, 2)
    return amp(ap(mp(d(u))))
";
    let graph = parse_spec(spec, "t.nnspec", "awkward").unwrap();
    let shape = graph.shape(graph.inputs[0]).to_vec();
    let g = with_seeded_weights(graph);
    check_bits("awkward", g, &seeded(&shape, 8), &seeded(&shape, 3));
}

/// Nearest upsampling moves int8 values as they are (no conversion to f32 around it), by
/// factor and by size, 2-d and 1-d.
#[test]
fn nearest_upsampling_runs_in_int8() {
    let spec = "\
input x: [3, 5, 6]
a = Conv2d(3, 4, 3, padding=1)
b = Conv2d(4, 2, 3, padding=1)
c = Conv1d(2, 2, 3)
forward:
    y = relu(a(x))
    z = interpolate(y, scale_factor=2)
    w = b(interpolate(z, size=(7, 13), mode='nearest'))
    return c(interpolate(flatten(w, 2), scale_factor=1.5))
";
    let graph = parse_spec(spec, "t.nnspec", "upsample").unwrap();
    let shape = graph.shape(graph.inputs[0]).to_vec();
    let g = with_seeded_weights(graph);
    check_bits("upsample", g, &seeded(&shape, 8), &seeded(&shape, 3));
}

/// The graph bound to weights drawn from a fixed seed, in [-0.5, 0.5).
fn with_seeded_weights(graph: Graph) -> Graph {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    };
    let mut sd = nnblob::graph::StateDict::new();
    for n in &graph.nodes {
        for (suffix, pshape) in n.op.params() {
            let len = pshape.iter().product();
            let data = (0..len).map(|_| next() * 0.5).collect();
            let key = format!("{}.{suffix}", n.module.clone().unwrap());
            sd.insert(key, Tensor::new(pshape, data));
        }
    }
    bind(graph, sd).unwrap_or_else(|e| panic!("{e}"))
}
