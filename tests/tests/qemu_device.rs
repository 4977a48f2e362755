//! On the device: the example firmware under QEMU gives the same output bits as the engine
//! on the host, on a core with an FPU and on one without.
//!
//! For each weight type, two networks with seeded random weights — a small conv + linear
//! stand-in and one shaped like MLPerf-Tiny's ResNet-8 — are encoded with the format crate
//! and run by the engine on the host (the reference). The blob and the
//! input go into the example firmware (`firmware/qemu`, embedded at build time), which runs
//! under `qemu-system-arm` on a Cortex-M4F (mps2-an386, `thumbv7em-none-eabihf`) and on a
//! Cortex-M3 (mps2-an385, `thumbv7m-none-eabi`: soft float). Every output's bits must equal
//! the host's. The firmware counts instructions with SysTick; QEMU also runs with the
//! counting plugin (`firmware/qemu/plugin/icount.c`), and the two counts must agree. The
//! counts are printed (run with `--nocapture`); docs/DEVICE.md records them.
//!
//! Needs `qemu-system-arm`, the two targets (tests/run.sh installs them), a C compiler and
//! `nm`, so a plain
//! `cargo test` skips it: run it with `cargo test -p nnblob-tests --test qemu_device -- --ignored`.

use nnblob_firmware::Model;
use nnblob_format::encode::{ModelRepr, OwnedOp, TensorRepr};
use nnblob_format::meta::{Activation, Binary, Broadcast, Conv2d, Linear, Op, Pool2d};
use nnblob_format::WeightDtype;
use nnblob_tests::qemu::{build_plugin, Board, Embed, Firmware, CORTEX_M3, CORTEX_M4F};
use std::collections::BTreeSet;
use std::path::Path;

/// Both boards: one with an FPU, one without (soft float).
const BOARDS: [&Board; 2] = [&CORTEX_M4F, &CORTEX_M3];

/// A deterministic pseudo-random generator (xorshift), so the model is the same every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// `n` values uniform in [-scale, scale).
    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|_| ((self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0) * scale)
            .collect()
    }
}

/// The stand-in network, until the converter makes catalog models:
/// `[1,3,32,32]` → conv 3→16 3x3 pad 1 + ReLU → maxpool 2 → conv 16→32 3x3 pad 1 + ReLU
/// → global average pool → flatten → linear 32→10.
fn stand_in(dtype: WeightDtype) -> ModelRepr {
    let mut rng = Rng(0x6e6e_626c_6f62);
    let conv = |input, output, c_in: u32, c_out: u32, rng: &mut Rng| {
        // He-like scale keeps activations in a sensible range through the ReLUs.
        let scale = (6.0 / (c_in * 9) as f32).sqrt();
        Op::Conv2d(Conv2d {
            input,
            output,
            in_channels: c_in,
            out_channels: c_out,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1, 1, 1],
            dilation: [1, 1],
            groups: 1,
            weight: rng.vec((c_out * c_in * 9) as usize, scale),
            bias: Some(rng.vec(c_out as usize, 0.1)),
            act: Activation::Relu,
        })
    };
    let ops: Vec<OwnedOp> = vec![
        conv(0, 1, 3, 16, &mut rng),
        Op::MaxPool2d(Pool2d {
            input: 1,
            output: 2,
            kernel: [2, 2],
            stride: [2, 2],
            padding: [0; 4],
            ceil_mode: false,
            count_include_pad: false,
        }),
        conv(2, 3, 16, 32, &mut rng),
        Op::AdaptiveAvgPool2d {
            input: 3,
            output: 4,
        },
        // Flatten: the same arena range seen as `[1, 32]`.
        Op::Copy {
            input: 4,
            output: 5,
        },
        Op::Linear(Linear {
            input: 5,
            output: 6,
            in_features: 32,
            out_features: 10,
            weight: rng.vec(320, 0.4),
            bias: Some(rng.vec(10, 0.1)),
            act: Activation::None,
        }),
    ];
    // Arena: each tensor after the one before, except the flatten, which aliases its input.
    let shapes: [&[u32]; 7] = [
        &[1, 3, 32, 32],
        &[1, 16, 32, 32],
        &[1, 16, 16, 16],
        &[1, 32, 16, 16],
        &[1, 32, 1, 1],
        &[1, 32],
        &[1, 10],
    ];
    // The flatten (tensor 5) aliases its input, the 32 elements before it.
    sequential_model(
        "standin-conv-linear",
        dtype,
        &shapes,
        (5, 32),
        ops,
        ("logits", 6),
    )
}

/// MLPerf-Tiny ResNet-8's shape (BatchNorm folded into the convolutions, as the converter
/// does) with seeded random weights: `[1,3,32,32]` → conv 3→16 + ReLU → residual stack
/// 16 (two 3x3 convs, identity shortcut) → stack 32 (stride 2, 1x1 stride-2 shortcut) →
/// stack 64 (the same) → AvgPool2d(8) → flatten → Linear 64→10 → softmax.
/// 12,501,632 MACs, like the catalog's `resnet8`.
fn resnet8(dtype: WeightDtype) -> ModelRepr {
    let mut rng = Rng(0x0072_6573_6e65_7438);
    let mut shapes: Vec<Vec<u32>> = vec![vec![1, 3, 32, 32]];
    let mut ops: Vec<OwnedOp> = Vec::new();
    let mut conv = |ops: &mut Vec<OwnedOp>,
                    shapes: &mut Vec<Vec<u32>>,
                    input: u32,
                    c_out: u32,
                    k: u32,
                    stride: u32,
                    act: Activation<Vec<f32>>| {
        let s = shapes[input as usize].clone();
        let (c_in, h) = (s[1], s[2]);
        let pad = k / 2;
        let oh = (h + 2 * pad - k) / stride + 1;
        shapes.push(vec![1, c_out, oh, oh]);
        let scale = (6.0 / (c_in * k * k) as f32).sqrt();
        ops.push(Op::Conv2d(Conv2d {
            input,
            output: shapes.len() as u32 - 1,
            in_channels: c_in,
            out_channels: c_out,
            kernel: [k, k],
            stride: [stride, stride],
            padding: [pad; 4],
            dilation: [1, 1],
            groups: 1,
            weight: rng.vec((c_out * c_in * k * k) as usize, scale),
            bias: Some(rng.vec(c_out as usize, 0.1)),
            act,
        }));
        shapes.len() as u32 - 1
    };
    let add = |ops: &mut Vec<OwnedOp>, shapes: &mut Vec<Vec<u32>>, a: u32, b: u32| {
        shapes.push(shapes[a as usize].clone());
        ops.push(Op::Add(Binary {
            a,
            b,
            output: shapes.len() as u32 - 1,
            broadcast: Broadcast::None,
            act: Activation::Relu,
        }));
        shapes.len() as u32 - 1
    };
    let x = conv(&mut ops, &mut shapes, 0, 16, 3, 1, Activation::Relu);
    let y = conv(&mut ops, &mut shapes, x, 16, 3, 1, Activation::Relu);
    let y = conv(&mut ops, &mut shapes, y, 16, 3, 1, Activation::None);
    let mut x = add(&mut ops, &mut shapes, x, y);
    for c in [32, 64] {
        let y = conv(&mut ops, &mut shapes, x, c, 3, 2, Activation::Relu);
        let y = conv(&mut ops, &mut shapes, y, c, 3, 1, Activation::None);
        let s = conv(&mut ops, &mut shapes, x, c, 1, 2, Activation::None);
        x = add(&mut ops, &mut shapes, y, s);
    }
    shapes.push(vec![1, 64, 1, 1]);
    let pooled = shapes.len() as u32 - 1;
    ops.push(Op::AvgPool2d(Pool2d {
        input: x,
        output: pooled,
        kernel: [8, 8],
        stride: [8, 8],
        padding: [0; 4],
        ceil_mode: false,
        count_include_pad: true,
    }));
    // Flatten: the pooled range seen as `[1, 64]`.
    shapes.push(vec![1, 64]);
    let flat = shapes.len() as u32 - 1;
    ops.push(Op::Copy {
        input: pooled,
        output: flat,
    });
    shapes.push(vec![1, 10]);
    let logits = shapes.len() as u32 - 1;
    ops.push(Op::Linear(Linear {
        input: flat,
        output: logits,
        in_features: 64,
        out_features: 10,
        weight: rng.vec(640, 0.3),
        bias: Some(rng.vec(10, 0.1)),
        act: Activation::None,
    }));
    shapes.push(vec![1, 10]);
    let probs = shapes.len() as u32 - 1;
    ops.push(Op::Softmax {
        input: logits,
        output: probs,
        axis: 1,
    });
    sequential_model(
        "resnet8-shaped",
        dtype,
        &shapes,
        (flat, 64),
        ops,
        ("probabilities", probs),
    )
}

/// Depthwise convolutions of the geometries the depthwise path's assembly handles differently,
/// with seeded random weights: `[1,3,48,40]` → 3x3 stride 1 (planes in bands, rows of whole
/// blocks and a narrower last one) → 3x3 stride 2 → 5x3 with row dilation 2 → 3x3 unpadded →
/// 3x3 stride 2 TF-'same' → 3x3 stride 2 unpadded → 3x3 stride (1, 2) to a 1-pixel-wide map →
/// 3x3 on it → 3x1 (a width the assembly leaves to the general path) → flatten → Linear →
/// 10 outputs.
fn depthwise_shapes(dtype: WeightDtype) -> ModelRepr {
    let mut rng = Rng(0x6477_636f_6e76);
    let c = 3u32;
    let mut shapes: Vec<Vec<u32>> = vec![vec![1, c, 48, 40]];
    let mut ops: Vec<OwnedOp> = Vec::new();
    // (kernel, stride, padding [top, left, bottom, right], dilation, bias)
    let layers: [([u32; 2], [u32; 2], [u32; 4], [u32; 2], bool); 9] = [
        ([3, 3], [1, 1], [1; 4], [1, 1], true),
        ([3, 3], [2, 2], [1; 4], [1, 1], false),
        ([5, 3], [1, 1], [4, 1, 4, 1], [2, 1], true),
        ([3, 3], [1, 1], [0; 4], [1, 1], true),
        ([3, 3], [2, 2], [0, 0, 1, 1], [1, 1], true),
        ([3, 3], [2, 2], [0; 4], [1, 1], true),
        ([3, 3], [1, 2], [1, 0, 1, 0], [1, 1], false),
        ([3, 3], [1, 1], [1; 4], [1, 1], true),
        ([3, 1], [1, 1], [1, 0, 1, 0], [1, 1], true),
    ];
    for (k, stride, pad, dil, bias) in layers {
        let s = shapes.last().expect("a shape").clone();
        let out = |len: u32, i: usize| {
            (len + pad[i] + pad[i + 2] - dil[i] * (k[i] - 1) - 1) / stride[i] + 1
        };
        shapes.push(vec![1, c, out(s[2], 0), out(s[3], 1)]);
        ops.push(Op::Conv2d(Conv2d {
            input: shapes.len() as u32 - 2,
            output: shapes.len() as u32 - 1,
            in_channels: c,
            out_channels: c,
            kernel: k,
            stride,
            padding: pad,
            dilation: dil,
            groups: c,
            weight: rng.vec((c * k[0] * k[1]) as usize, 0.5),
            bias: bias.then(|| rng.vec(c as usize, 0.1)),
            act: Activation::None,
        }));
    }
    let last = shapes.last().expect("a shape").clone();
    let features: u32 = last.iter().product();
    shapes.push(vec![1, features]);
    let flat = shapes.len() as u32 - 1;
    ops.push(Op::Copy {
        input: flat - 1,
        output: flat,
    });
    shapes.push(vec![1, 10]);
    let logits = shapes.len() as u32 - 1;
    ops.push(Op::Linear(Linear {
        input: flat,
        output: logits,
        in_features: features,
        out_features: 10,
        weight: rng.vec(10 * features as usize, 0.3),
        bias: Some(rng.vec(10, 0.1)),
        act: Activation::None,
    }));
    sequential_model(
        "depthwise-shapes",
        dtype,
        &shapes,
        (flat, features),
        ops,
        ("logits", logits),
    )
}

/// A model whose tensors lie one after the other in the arena, except `alias.0`, a free flatten
/// that lies on the `alias.1` elements of its input; input tensor 0, one named output.
fn sequential_model<S: AsRef<[u32]>>(
    name: &str,
    dtype: WeightDtype,
    shapes: &[S],
    alias: (u32, u32),
    ops: Vec<OwnedOp>,
    output: (&str, u32),
) -> ModelRepr {
    let mut tensors = Vec::new();
    let mut offset = 0;
    for (i, shape) in shapes.iter().enumerate() {
        if i as u32 == alias.0 {
            offset -= alias.1;
        }
        tensors.push(TensorRepr {
            shape: shape.as_ref().to_vec(),
            offset,
        });
        offset += shape.as_ref().iter().product::<u32>();
    }
    ModelRepr {
        name: name.into(),
        source_sha256: [0; 32],
        converter: "nnblob-tests qemu_device".into(),
        passes: "none".into(),
        dtype,
        arena_len: offset,
        tensors,
        inputs: vec![("input".into(), 0)],
        outputs: vec![(output.0.into(), output.1)],
        ops,
    }
}

/// Multiply-accumulates of the model's convolutions and linear layers.
fn macs(m: &ModelRepr) -> u64 {
    let count = |t: u32| -> u64 {
        m.tensors[t as usize]
            .shape
            .iter()
            .map(|&d| d as u64)
            .product()
    };
    m.ops
        .iter()
        .map(|op| match op {
            Op::Conv2d(c) => {
                count(c.output) * u64::from(c.in_channels / c.groups * c.kernel[0] * c.kernel[1])
            }
            Op::Linear(l) => count(l.output) * u64::from(l.in_features),
            _ => 0,
        })
        .sum()
}

/// Versions of `package` in a Cargo.lock.
fn locked_versions(lock: &str, package: &str) -> BTreeSet<String> {
    let name = format!("name = \"{package}\"");
    let mut lines = lock.lines();
    let mut found = BTreeSet::new();
    while let Some(line) = lines.next() {
        if line == name {
            if let Some(v) = lines.next().and_then(|l| l.strip_prefix("version = ")) {
                found.insert(v.trim_matches('"').to_string());
            }
        }
    }
    found
}

/// The firmware package has its own lock file; the crates that decide the engine's numerics
/// and decoding must resolve to the versions the host uses, or "bit-identical" would compare
/// two different engines.
#[test]
#[ignore = "needs qemu-system-arm and the thumb targets; tests/run.sh runs it"]
fn firmware_and_host_lock_the_same_engine_dependencies() {
    let root = nnblob_tests::workspace_root();
    let host = std::fs::read_to_string(root.join("Cargo.lock")).expect("root Cargo.lock");
    let device =
        std::fs::read_to_string(root.join("firmware/qemu/Cargo.lock")).expect("firmware lock");
    for package in ["half", "libm", "postcard", "serde", "crc", "crc-catalog"] {
        let on_device = locked_versions(&device, package);
        assert!(
            !on_device.is_empty(),
            "{package} is not in the firmware's lock file"
        );
        assert!(
            on_device.is_subset(&locked_versions(&host, package)),
            "{package}: firmware locks {on_device:?}, the host {:?}; run `cargo update -p {package} --precise VERSION` in firmware/qemu",
            locked_versions(&host, package)
        );
    }
}

/// Builds one of the test models with weights of the given dtype.
type ModelBuilder = fn(WeightDtype) -> ModelRepr;

#[test]
#[ignore = "needs qemu-system-arm and the thumb targets; tests/run.sh runs it"]
fn device_outputs_are_bit_identical_to_host() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("qemu_device");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let plugin = build_plugin(&dir);
    let models: [(&str, ModelBuilder); 3] = [
        ("standin", stand_in),
        ("resnet8", resnet8),
        ("depthwise", depthwise_shapes),
    ];
    for ((name, build), dtype) in models
        .iter()
        .flat_map(|m| [(m, WeightDtype::F16), (m, WeightDtype::F32)])
    {
        let repr = build(dtype);
        let blob = repr.to_vec().expect("encodes");
        let model = Model::from_bytes(&blob).expect("the engine accepts the blob");
        let input = Rng(0x1234_5678).vec(model.input_len(0), 1.0);
        let mut host_out = vec![0.0f32; model.output_len(0)];
        let mut arena = vec![0.0f32; model.arena_len()];
        model
            .run(&input, &mut host_out, &mut arena)
            .expect("runs on the host");
        let host_bits: Vec<u32> = host_out.iter().map(|x| x.to_bits()).collect();
        // A reference of zeros or copies would make the comparison weak.
        assert!(
            host_bits.iter().collect::<BTreeSet<_>>().len() == host_bits.len(),
            "{name}: the outputs should all differ: {host_out:?}"
        );

        let dir = dir.join(format!("{name}-{dtype:?}"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let blob_path = dir.join("model.nnb");
        let input_path = dir.join("input.bin");
        std::fs::write(&blob_path, &blob).expect("write blob");
        let input_bytes: Vec<u8> = input.iter().flat_map(|x| x.to_le_bytes()).collect();
        std::fs::write(&input_path, input_bytes).expect("write input");

        let macs = macs(&repr);
        for board in BOARDS {
            let firmware = Firmware {
                board,
                embed: Embed::Blob(&blob_path),
                input: &input_path,
            };
            let device = firmware.run(&firmware.build(), &plugin);
            let run = &device.profile;
            assert_eq!(
                run.outputs, host_bits,
                "{} {dtype:?}: device output bits differ from the host's",
                board.machine
            );
            assert_eq!(run.ops.len(), repr.ops.len(), "one count per op");
            assert!(
                run.stack_bytes > 0,
                "{}: no stack use measured",
                board.machine
            );
            // SysTick counts in steps of 40 instructions and its window sits inside the
            // plugin's (the clock reads and the marker calls are outside it): a wrong
            // clock rate or a mishandled wrap shows as a difference far beyond this.
            assert!(
                run.inference_insns <= device.plugin_insns + 40
                    && device.plugin_insns <= run.inference_insns + 200,
                "{} {dtype:?}: SysTick counts {} instructions, the plugin {}",
                board.machine,
                run.inference_insns,
                device.plugin_insns
            );
            println!(
                "{name} {} {:?}: {} instructions per inference (plugin: {}), {} MACs, {:.2} instructions per MAC, stack {} bytes",
                board.machine,
                dtype,
                run.inference_insns,
                device.plugin_insns,
                macs,
                run.inference_insns as f64 / macs as f64,
                run.stack_bytes
            );
            for (i, (kind, insns)) in run.ops.iter().enumerate() {
                println!("  op {i} {kind}: {insns} instructions");
            }
        }
    }
}
