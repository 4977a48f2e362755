//! On the device: the example firmware under QEMU gives the same output bits as the engine
//! on the host, on a core with an FPU and on cores without.
//!
//! For each weight type, nine networks with seeded random weights — a small conv + linear
//! stand-in, one with two inputs and two outputs, one shaped like MLPerf-Tiny's ResNet-8, a micro network with every kind of
//! layer of the catalog's convolutional models, small enough for 16 KiB of RAM, a chain of
//! convolutions that takes every path of the engine's convolution (including its assembly on
//! the Cortex-M4F), depthwise convolutions in the geometries its depthwise assembly treats
//! apart, a chain of Linear layers in the shapes the device's Linear loops treat apart, and
//! a Linear and a convolution whose weights are fp16's special values — are encoded with the
//! format crate and run by the engine on the host (the reference). The blob and the
//! input go into the example firmware (`firmware/qemu`, embedded at build time), which runs
//! under `qemu-system-arm` on a Cortex-M4F (mps2-an386, `thumbv7em-none-eabihf`) and on a
//! Cortex-M3 (mps2-an385, `thumbv7m-none-eabi`: soft float), and under `qemu-system-riscv32` on
//! an RV32IMAC core (virt, `riscv32imac-unknown-none-elf`: soft float); the micro network also
//! on a Cortex-M0 (the BBC micro:bit, `thumbv6m-none-eabi`: ARMv6-M, soft float, 16 KiB of RAM).
//! Every output's bits must equal the host's. The firmware counts instructions with SysTick
//! (with `minstret` on RISC-V); QEMU also runs with the counting plugin
//! (`firmware/qemu/plugin/icount.c`), and the two counts must agree. The deepest stack must stay within the figure `nnblob footprint`
//! reports for the core (`nnblob::emit::ENGINE_TARGETS`). The counts are printed (run with
//! `--nocapture`); docs/DEVICE.md records them.
//!
//! Needs `qemu-system-arm`, `qemu-system-riscv32`, the four targets (tests/run.sh installs them),
//! a C compiler and `nm`, so a plain
//! `cargo test` skips it: run it with `cargo test -p nnblob-tests --test qemu_device -- --ignored`.

use nnblob_firmware::Model;
use nnblob_format::encode::{ModelRepr, OwnedOp, TensorRepr};
use nnblob_format::meta::{Activation, Binary, Broadcast, Conv2d, Linear, Op, Pool2d};
use nnblob_format::WeightDtype;
use nnblob_tests::qemu::{
    build_plugin, host_output_bits, Board, Embed, Firmware, CORTEX_M0, CORTEX_M3, CORTEX_M4F,
    RISCV32,
};
use std::collections::BTreeSet;
use std::path::Path;

/// The boards with 4 MiB of RAM for the firmware: the MPS2 boards (one core with an FPU, one
/// without) and RISC-V's virt (soft float).
const BIG_RAM: &[&Board] = &[&CORTEX_M4F, &CORTEX_M3, &RISCV32];
/// Every board; the micro:bit's 16 KiB of RAM take the smallest model only.
const ALL_BOARDS: &[&Board] = &[&CORTEX_M4F, &CORTEX_M3, &CORTEX_M0, &RISCV32];

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
    let mut net = Net::new(0x6e6e_626c_6f62, &[1, 3, 32, 32]);
    let x = net.conv(0, 16, 3, 1, 1, Activation::Relu);
    let x = net.maxpool2(x);
    let x = net.conv(x, 32, 3, 1, 1, Activation::Relu);
    let (flat, logits) = net.pool_and_linear(x, None, 0.4);
    sequential_model(
        "standin-conv-linear",
        dtype,
        &net.shapes,
        (flat, 32),
        net.ops,
        ("logits", logits),
    )
}

/// Two inputs and two outputs, as a network with two heads has them: `a + b` (ReLU) → conv
/// 4→8 3x3 pad 1, which is the second output (`features`) and goes on through a global average
/// pool and a linear layer to the first (`logits`).
fn two_inputs_two_outputs(dtype: WeightDtype) -> ModelRepr {
    let mut net = Net::new(0x7477_6f69_6f6f, &[1, 4, 6, 6]);
    let b = net.tensor(vec![1, 4, 6, 6]);
    let x = net.add(0, b);
    let features = net.conv(x, 8, 3, 1, 1, Activation::None);
    let (flat, logits) = net.pool_and_linear(features, None, 0.4);
    let mut m = sequential_model(
        "two-in-two-out",
        dtype,
        &net.shapes,
        (flat, 8),
        net.ops,
        ("logits", logits),
    );
    m.inputs = vec![("a".into(), 0), ("b".into(), b)];
    m.outputs = vec![("logits".into(), logits), ("features".into(), features)];
    m
}

/// A network under construction: tensors laid out one after the other (see
/// [`sequential_model`]), seeded random weights, square feature maps.
struct Net {
    rng: Rng,
    shapes: Vec<Vec<u32>>,
    ops: Vec<OwnedOp>,
}

impl Net {
    /// A network on an input of `shape`, weights drawn from `seed`.
    fn new(seed: u64, shape: &[u32]) -> Net {
        Net {
            rng: Rng(seed),
            shapes: vec![shape.to_vec()],
            ops: Vec::new(),
        }
    }

    /// A new tensor of `shape`, the output of the next op.
    fn tensor(&mut self, shape: Vec<u32>) -> u32 {
        self.shapes.push(shape);
        self.shapes.len() as u32 - 1
    }

    /// A `k`x`k` convolution of `input` (padding `k / 2`) to `c_out` channels in `groups` groups.
    fn conv(
        &mut self,
        input: u32,
        c_out: u32,
        k: u32,
        stride: u32,
        groups: u32,
        act: Activation<Vec<f32>>,
    ) -> u32 {
        let spec = ConvSpec {
            c_out,
            kernel: [k, k],
            stride: [stride, stride],
            padding: [k / 2; 4],
            dilation: [1, 1],
            groups,
            bias: true,
        };
        self.conv_with(input, &spec, act)
    }

    /// A convolution of `input` of any geometry.
    fn conv_with(&mut self, input: u32, c: &ConvSpec, act: Activation<Vec<f32>>) -> u32 {
        let s = self.shapes[input as usize].clone();
        let out_len = |i: usize| {
            let span = c.dilation[i] * (c.kernel[i] - 1) + 1;
            (s[2 + i] + c.padding[i] + c.padding[2 + i] - span) / c.stride[i] + 1
        };
        let output = self.tensor(vec![1, c.c_out, out_len(0), out_len(1)]);
        // He-like scale keeps activations in a sensible range through the ReLUs.
        let fan_in = s[1] / c.groups * c.kernel[0] * c.kernel[1];
        let scale = (6.0 / fan_in as f32).sqrt();
        let weight = self.rng.vec((c.c_out * fan_in) as usize, scale);
        let bias = c.bias.then(|| self.rng.vec(c.c_out as usize, 0.1));
        self.ops.push(Op::Conv2d(Conv2d {
            input,
            output,
            in_channels: s[1],
            out_channels: c.c_out,
            kernel: c.kernel,
            stride: c.stride,
            padding: c.padding,
            dilation: c.dilation,
            groups: c.groups,
            weight,
            bias,
            act,
        }));
        output
    }

    /// `input`'s elements seen as `shape` (a copy the planner would make free: the new tensor
    /// must be [`sequential_model`]'s alias).
    fn reshape(&mut self, input: u32, shape: Vec<u32>) -> u32 {
        let output = self.tensor(shape);
        self.ops.push(Op::Copy { input, output });
        output
    }

    /// `relu(a + b)`.
    fn add(&mut self, a: u32, b: u32) -> u32 {
        let output = self.tensor(self.shapes[a as usize].clone());
        self.ops.push(Op::Add(Binary {
            a,
            b,
            output,
            broadcast: Broadcast::None,
            act: Activation::Relu,
        }));
        output
    }

    /// A 2x2 max pooling of `input`, stride 2.
    fn maxpool2(&mut self, input: u32) -> u32 {
        let s = &self.shapes[input as usize];
        let output = self.tensor(vec![1, s[1], s[2] / 2, s[3] / 2]);
        self.ops.push(Op::MaxPool2d(Pool2d {
            input,
            output,
            kernel: [2, 2],
            stride: [2, 2],
            padding: [0; 4],
            ceil_mode: false,
            count_include_pad: false,
        }));
        output
    }

    /// `input`'s channels averaged over the map (`pool`: a `k`x`k` AvgPool2d, else adaptive),
    /// flattened, and a linear layer to 10 logits with weights in `[-scale, scale)`: the flat
    /// tensor (which aliases the pooled one) and the logits.
    fn pool_and_linear(&mut self, input: u32, pool: Option<u32>, scale: f32) -> (u32, u32) {
        let c = self.shapes[input as usize][1];
        let pooled = self.tensor(vec![1, c, 1, 1]);
        self.ops.push(match pool {
            Some(k) => Op::AvgPool2d(Pool2d {
                input,
                output: pooled,
                kernel: [k, k],
                stride: [k, k],
                padding: [0; 4],
                ceil_mode: false,
                count_include_pad: true,
            }),
            None => Op::AdaptiveAvgPool2d {
                input,
                output: pooled,
            },
        });
        // Flatten: the pooled range seen as `[1, c]`.
        let flat = self.tensor(vec![1, c]);
        self.ops.push(Op::Copy {
            input: pooled,
            output: flat,
        });
        (flat, self.linear(flat, 10, scale))
    }

    /// A linear layer from `[1, n]` to `out` features, weights in `[-scale, scale)`.
    fn linear(&mut self, input: u32, out: u32, scale: f32) -> u32 {
        let n = self.shapes[input as usize][1];
        let output = self.tensor(vec![1, out]);
        let weight = self.rng.vec((out * n) as usize, scale);
        let bias = Some(self.rng.vec(out as usize, 0.1));
        self.ops.push(Op::Linear(Linear {
            input,
            output,
            in_features: n,
            out_features: out,
            weight,
            bias,
            act: Activation::None,
        }));
        output
    }

    /// [`Net::pool_and_linear`] and a softmax: the model, named `name`.
    fn classifier(
        mut self,
        input: u32,
        pool: Option<u32>,
        name: &str,
        dtype: WeightDtype,
    ) -> ModelRepr {
        let (flat, logits) = self.pool_and_linear(input, pool, 0.3);
        let probs = self.tensor(vec![1, 10]);
        self.ops.push(Op::Softmax {
            input: logits,
            output: probs,
            axis: 1,
        });
        let c = self.shapes[flat as usize][1];
        sequential_model(
            name,
            dtype,
            &self.shapes,
            (flat, c),
            self.ops,
            ("probabilities", probs),
        )
    }
}

/// MLPerf-Tiny ResNet-8's shape (BatchNorm folded into the convolutions, as the converter
/// does) with seeded random weights: `[1,3,32,32]` → conv 3→16 + ReLU → residual stack
/// 16 (two 3x3 convs, identity shortcut) → stack 32 (stride 2, 1x1 stride-2 shortcut) →
/// stack 64 (the same) → AvgPool2d(8) → flatten → Linear 64→10 → softmax.
/// 12,501,632 MACs, like the catalog's `resnet8`.
fn resnet8(dtype: WeightDtype) -> ModelRepr {
    let mut net = Net::new(0x0072_6573_6e65_7438, &[1, 3, 32, 32]);
    let x = net.conv(0, 16, 3, 1, 1, Activation::Relu);
    let y = net.conv(x, 16, 3, 1, 1, Activation::Relu);
    let y = net.conv(y, 16, 3, 1, 1, Activation::None);
    let mut x = net.add(x, y);
    for c in [32, 64] {
        let y = net.conv(x, c, 3, 2, 1, Activation::Relu);
        let y = net.conv(y, c, 3, 1, 1, Activation::None);
        let s = net.conv(x, c, 1, 2, 1, Activation::None);
        x = net.add(y, s);
    }
    net.classifier(x, Some(8), "resnet8-shaped", dtype)
}

/// A network for the micro:bit's 16 KiB of RAM with every kind of layer of the catalog's
/// convolutional models: `[1,3,8,8]` → conv 3→8 3x3 + ReLU → maxpool 2 → depthwise 3x3 + ReLU
/// → pointwise 8→16 + ReLU → conv 16→16 3x3 stride 2 + ReLU → conv 16→16 3x3, identity
/// shortcut, Add + ReLU → global average pool → flatten → Linear 16→10 → softmax.
fn micro(dtype: WeightDtype) -> ModelRepr {
    let mut net = Net::new(0x6d69_6372_6f30, &[1, 3, 8, 8]);
    let x = net.conv(0, 8, 3, 1, 1, Activation::Relu);
    let x = net.maxpool2(x);
    let x = net.conv(x, 8, 3, 1, 8, Activation::Relu);
    let x = net.conv(x, 16, 1, 1, 1, Activation::Relu);
    let x = net.conv(x, 16, 3, 2, 1, Activation::Relu);
    let y = net.conv(x, 16, 3, 1, 1, Activation::None);
    let x = net.add(x, y);
    net.classifier(x, None, "micro", dtype)
}

/// A convolution's geometry: output channels, kernel, stride, padding (top, left, bottom,
/// right), dilation, groups; and whether it has a bias.
struct ConvSpec {
    c_out: u32,
    kernel: [u32; 2],
    stride: [u32; 2],
    padding: [u32; 4],
    dilation: [u32; 2],
    groups: u32,
    bias: bool,
}

impl ConvSpec {
    /// A convolution with a bias.
    fn new(
        c_out: u32,
        kernel: [u32; 2],
        stride: [u32; 2],
        padding: [u32; 4],
        dilation: [u32; 2],
        groups: u32,
    ) -> ConvSpec {
        ConvSpec {
            c_out,
            kernel,
            stride,
            padding,
            dilation,
            groups,
            bias: true,
        }
    }
}

/// A chain of convolutions, no activations (so that every difference reaches the output),
/// whose geometries take every path of the engine's convolution: a row too wide for a padded
/// band (patches, in place and at both borders), strides 1, 2 and 3, kernels of 1, 3 and 5
/// and 1x3/1x5, dilation 2, groups, depthwise at stride 1 and 2, maps whose width is not a
/// multiple of the 4-pixel block, output channels not a multiple of the 4-channel block, and
/// the pointwise path with a partial last block. `[1,1,1,1000]` → ... → `[1,9,1,3]`.
fn conv_zoo(dtype: WeightDtype) -> ModelRepr {
    let c = ConvSpec::new;
    let mut net = Net::new(0x7a6f_6f21, &[1, 1, 1, 1000]);
    let mut x = 0;
    for spec in [
        c(4, [1, 3], [1, 1], [0, 1, 0, 1], [1, 1], 1),
        c(3, [1, 5], [1, 2], [0, 2, 0, 2], [1, 1], 1),
    ] {
        x = net.conv_with(x, &spec, Activation::None);
    }
    let reshaped = net.reshape(x, vec![1, 6, 10, 25]);
    x = reshaped;
    for spec in [
        c(6, [3, 3], [1, 1], [1; 4], [1, 1], 1),
        c(6, [3, 3], [1, 1], [1; 4], [1, 1], 6),
        c(5, [3, 3], [2, 2], [1; 4], [1, 1], 1),
        c(7, [1, 1], [1, 1], [0; 4], [1, 1], 1),
        c(8, [5, 5], [1, 1], [2; 4], [1, 1], 1),
        c(8, [3, 3], [1, 1], [2; 4], [2, 2], 1),
        c(8, [3, 3], [2, 2], [1; 4], [1, 1], 8),
        c(6, [3, 3], [3, 3], [1; 4], [1, 1], 2),
        c(9, [1, 1], [1, 1], [0; 4], [1, 1], 1),
    ] {
        x = net.conv_with(x, &spec, Activation::None);
    }
    assert_eq!(net.shapes[x as usize], [1, 9, 1, 3], "the zoo's shapes");
    sequential_model(
        "conv-zoo",
        dtype,
        &net.shapes,
        (reshaped, 1500),
        net.ops,
        ("output", x),
    )
}

/// Linear layers in the shapes the device's loops treat apart: 3 input rows; inputs 37 and
/// 13 (fp16 rows off the 4-byte boundary, and a tail after the 8-input steps), 24 and 16
/// (whole steps); outputs 13 and 5 (blocks of 4 with missing lanes); one layer without bias.
/// `[3,37]` → 37→13 → 13→24 + ReLU → 24→16 (no bias) → 16→5.
fn linears(dtype: WeightDtype) -> ModelRepr {
    let mut rng = Rng(0x6c69_6e65_6172);
    let dims = [37u32, 13, 24, 16, 5];
    let shapes: Vec<Vec<u32>> = dims.iter().map(|&d| vec![3, d]).collect();
    let ops = (0..dims.len() - 1)
        .map(|l| {
            let (fi, fo) = (dims[l], dims[l + 1]);
            Op::Linear(Linear {
                input: l as u32,
                output: l as u32 + 1,
                in_features: fi,
                out_features: fo,
                weight: rng.vec((fi * fo) as usize, (3.0 / fi as f32).sqrt()),
                bias: (l != 2).then(|| rng.vec(fo as usize, 0.1)),
                act: if l == 1 {
                    Activation::Relu
                } else {
                    Activation::None
                },
            })
        })
        .collect();
    let last = dims.len() as u32 - 1;
    sequential_model("linears", dtype, &shapes, NO_ALIAS, ops, ("y", last))
}

/// One Linear 8→11 whose output `o` is `w * x[o % 8]` for one special weight `w` (the other
/// weights zero, no bias): subnormals, the extremes, infinities and NaNs with payloads, in
/// both halves of a 32-bit word. The device widens fp16 with `VCVTB`/`VCVTT`, the host with
/// integer code; the outputs' bits show both widen every such value alike. (No negative
/// NaN: the soft-float arithmetic of the core without an FPU does not keep a NaN's sign
/// through `w * x`, whatever the decoding.)
fn special_weights(dtype: WeightDtype) -> ModelRepr {
    special_weights_in(dtype, false)
}

/// [`special_weights`] as a 1x1 convolution on `[1,8,1,1]`: its weights go through the
/// convolution's decoder, which widens whole 4-channel blocks with the FPU on the device.
fn special_conv_weights(dtype: WeightDtype) -> ModelRepr {
    special_weights_in(dtype, true)
}

fn special_weights_in(dtype: WeightDtype, conv: bool) -> ModelRepr {
    let specials = [
        f32::from_bits(0x3380_0000), // 2^-24, the least fp16 subnormal
        -3.0 * f32::from_bits(0x3380_0000),
        1023.0 * f32::from_bits(0x3380_0000), // the largest fp16 subnormal
        f32::from_bits(0x3880_0000),          // 2^-14, the least fp16 normal
        65504.0,
        -65504.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::from_bits(0x7fc0_0000),
        f32::from_bits(0x7fc0_2000), // a payload that fp16 keeps
        -2.5,
    ];
    let (fi, fo) = (8usize, specials.len());
    let mut weight = vec![0.0f32; fi * fo];
    for (o, &w) in specials.iter().enumerate() {
        weight[o * fi + o % fi] = w;
    }
    let (shapes, op) = if conv {
        let op = Op::Conv2d(Conv2d {
            input: 0,
            output: 1,
            in_channels: fi as u32,
            out_channels: fo as u32,
            kernel: [1, 1],
            stride: [1, 1],
            padding: [0; 4],
            dilation: [1, 1],
            groups: 1,
            weight,
            bias: None,
            act: Activation::None,
        });
        ([vec![1, fi as u32, 1, 1], vec![1, fo as u32, 1, 1]], op)
    } else {
        let op = Op::Linear(Linear {
            input: 0,
            output: 1,
            in_features: fi as u32,
            out_features: fo as u32,
            weight,
            bias: None,
            act: Activation::None,
        });
        ([vec![1, fi as u32], vec![1, fo as u32]], op)
    };
    sequential_model(
        "special-weights",
        dtype,
        &shapes,
        NO_ALIAS,
        vec![op],
        ("y", 1),
    )
}

/// For [`sequential_model`]: no tensor aliases another.
const NO_ALIAS: (u32, u32) = (u32::MAX, 0);

/// Depthwise convolutions of the geometries the depthwise path's assembly handles differently,
/// with seeded random weights: `[1,3,48,40]` → 3x3 stride 1 (planes in bands, rows of whole
/// blocks and a narrower last one) → 3x3 stride 2 → 5x3 with row dilation 2 → 3x3 unpadded →
/// 3x3 stride 2 TF-'same' → 3x3 stride 2 unpadded → 3x3 stride (1, 2) to a 1-pixel-wide map →
/// 3x3 on it → 3x1 (a width the assembly leaves to the general path) → flatten → Linear →
/// 10 outputs.
fn depthwise_shapes(dtype: WeightDtype) -> ModelRepr {
    let mut net = Net::new(0x6477_636f_6e76, &[1, 3, 48, 40]);
    let c =
        |kernel, stride, padding, dilation| ConvSpec::new(3, kernel, stride, padding, dilation, 3);
    let no_bias = |spec| ConvSpec {
        bias: false,
        ..spec
    };
    let mut x = 0;
    for spec in [
        c([3, 3], [1, 1], [1; 4], [1, 1]),
        no_bias(c([3, 3], [2, 2], [1; 4], [1, 1])),
        c([5, 3], [1, 1], [4, 1, 4, 1], [2, 1]),
        c([3, 3], [1, 1], [0; 4], [1, 1]),
        c([3, 3], [2, 2], [0, 0, 1, 1], [1, 1]),
        c([3, 3], [2, 2], [0; 4], [1, 1]),
        no_bias(c([3, 3], [1, 2], [1, 0, 1, 0], [1, 1])),
        c([3, 3], [1, 1], [1; 4], [1, 1]),
        c([3, 1], [1, 1], [1, 0, 1, 0], [1, 1]),
    ] {
        x = net.conv_with(x, &spec, Activation::None);
    }
    let features: u32 = net.shapes[x as usize].iter().product();
    let flat = net.reshape(x, vec![1, features]);
    let logits = net.linear(flat, 10, 0.3);
    sequential_model(
        "depthwise-shapes",
        dtype,
        &net.shapes,
        (flat, features),
        net.ops,
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
            offset -= 4 * alias.1;
        }
        tensors.push(TensorRepr::f32(shape.as_ref().to_vec(), offset));
        offset += 4 * shape.as_ref().iter().product::<u32>();
    }
    ModelRepr {
        name: name.into(),
        source_sha256: [0; 32],
        converter: "nnblob-tests qemu_device".into(),
        passes: "none".into(),
        dtype,
        arena_bytes: offset,
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
#[ignore = "needs QEMU and the bare-metal targets; tests/run.sh runs it"]
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
#[ignore = "needs QEMU and the bare-metal targets; tests/run.sh runs it"]
fn device_outputs_are_bit_identical_to_host() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("qemu_device");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let plugin = build_plugin(&dir);
    let models: [(&str, ModelBuilder, &[&Board]); 9] = [
        ("standin", stand_in, BIG_RAM),
        ("two-in-two-out", two_inputs_two_outputs, BIG_RAM),
        ("resnet8", resnet8, BIG_RAM),
        ("micro", micro, ALL_BOARDS),
        ("conv-zoo", conv_zoo, BIG_RAM),
        ("depthwise", depthwise_shapes, BIG_RAM),
        ("linears", linears, BIG_RAM),
        ("special-weights", special_weights, BIG_RAM),
        ("special-conv-weights", special_conv_weights, BIG_RAM),
    ];
    for ((name, build, boards), dtype) in models
        .iter()
        .flat_map(|m| [(m, WeightDtype::F16), (m, WeightDtype::F32)])
    {
        let repr = build(dtype);
        let blob = repr.to_vec().expect("encodes");
        let model = Model::from_bytes(&blob).expect("the engine accepts the blob");
        // Every input, one after the other, as the firmware embeds them.
        let input_len = (0..model.input_count()).map(|i| model.input_len(i)).sum();
        let input = Rng(0x1234_5678).vec(input_len, 1.0);
        let host_bits = host_output_bits(&model, &input);
        // A reference of zeros or copies would make the comparison weak.
        assert!(
            host_bits.iter().collect::<BTreeSet<_>>().len() == host_bits.len(),
            "{name}: the outputs should all differ: {host_bits:x?}"
        );

        let dir = dir.join(format!("{name}-{dtype:?}"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let blob_path = dir.join("model.nnb");
        let input_path = dir.join("input.bin");
        std::fs::write(&blob_path, &blob).expect("write blob");
        let input_bytes: Vec<u8> = input.iter().flat_map(|x| x.to_le_bytes()).collect();
        std::fs::write(&input_path, input_bytes).expect("write input");

        let macs = macs(&repr);
        for board in *boards {
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
            device
                .assert_counts_and_stack(board, &format!("{name} {dtype:?} on {}", board.machine));
            println!(
                "{name} {} {:?}: {} instructions per inference (plugin: {}), {} MACs, {:.2} instructions per MAC, est. M4 cycles per MAC {}, stack {} bytes",
                board.machine,
                dtype,
                run.inference_insns,
                device.plugin_insns,
                macs,
                run.inference_insns as f64 / macs as f64,
                device.cycles_per_mac(board, macs),
                run.stack_bytes
            );
            for (i, ((kind, insns), cycles)) in run.ops.iter().zip(&device.op_cycles).enumerate() {
                if board.core == "cortex-m4" {
                    println!("  op {i} {kind}: {insns} instructions, {cycles} est. M4 cycles");
                } else {
                    println!("  op {i} {kind}: {insns} instructions");
                }
            }
        }
    }
}
