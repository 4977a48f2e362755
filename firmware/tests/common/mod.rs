//! Test helpers: build one-op (or small) blobs with the format crate's encoder, run them,
//! and plain, obviously correct reference implementations ("oracles") written from
//! PyTorch's definitions, one loop per mathematical sum, in the documented order.
#![allow(dead_code)]

use nnblob_firmware::Model;
use nnblob_format::encode::{ModelRepr, OwnedOp, TensorRepr};
use nnblob_format::meta::{Activation, Conv2d, Linear, Op};
use nnblob_format::WeightDtype;

/// A deterministic pseudo-random generator (xorshift), so failures reproduce.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in [-1, 1).
    pub fn f(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f()).collect()
    }
}

/// Lays f32 tensors out one after another in the arena; returns them and the arena's bytes.
pub fn tensors(shapes: &[&[u32]]) -> (Vec<TensorRepr>, u32) {
    let mut off = 0;
    let ts = shapes
        .iter()
        .map(|s| {
            let t = TensorRepr::f32(s.to_vec(), off);
            off += 4 * s.iter().product::<u32>();
            t
        })
        .collect();
    (ts, off)
}

/// A model whose inputs are tensors `inputs`, outputs `outputs`, with the given ops.
pub fn model(
    dtype: WeightDtype,
    shapes: &[&[u32]],
    inputs: &[u32],
    outputs: &[u32],
    ops: Vec<OwnedOp>,
) -> ModelRepr {
    let (tensors, arena_bytes) = tensors(shapes);
    ModelRepr {
        name: "test".into(),
        source_sha256: [7; 32],
        converter: "nnblob-tests".into(),
        passes: "none".into(),
        dtype,
        arena_bytes,
        tensors,
        inputs: inputs
            .iter()
            .enumerate()
            .map(|(i, &t)| (format!("in{i}"), t))
            .collect(),
        outputs: outputs
            .iter()
            .enumerate()
            .map(|(i, &t)| (format!("out{i}"), t))
            .collect(),
        ops,
    }
}

/// Encodes, loads and runs a model; returns the outputs.
pub fn run(m: &ModelRepr, inputs: &[&[f32]]) -> Vec<Vec<f32>> {
    let blob = m.to_vec().expect("encode");
    let model = Model::from_bytes(&blob).expect("valid blob");
    let mut outs: Vec<Vec<f32>> = (0..model.output_count())
        .map(|i| vec![f32::NAN; model.output_len(i)])
        .collect();
    let mut arena = vec![f32::NAN; model.arena_len()];
    let mut refs: Vec<&mut [f32]> = outs.iter_mut().map(|v| v.as_mut_slice()).collect();
    model.run_multi(inputs, &mut refs, &mut arena).expect("run");
    outs
}

/// The weight as the blob stores it: rounded through binary16 in f16 mode.
pub fn stored(dtype: WeightDtype, w: &[f32]) -> Vec<f32> {
    match dtype {
        WeightDtype::F32 => w.to_vec(),
        WeightDtype::F16 => w.iter().map(|&x| half::f16::from_f32(x).to_f32()).collect(),
    }
}

/// Bitwise equality (NaN payloads aside), with a readable failure.
pub fn assert_bits(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
            "element {i}: got {g}, want {w}"
        );
    }
}

/// Conv2d parameters for the oracle.
#[derive(Clone, Debug)]
pub struct ConvP {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub k: [usize; 2],
    pub s: [usize; 2],
    pub pad: [usize; 4],
    pub d: [usize; 2],
    pub g: usize,
}

impl ConvP {
    pub fn out_hw(&self) -> (usize, usize) {
        let oh =
            (self.h + self.pad[0] + self.pad[2] - self.d[0] * (self.k[0] - 1) - 1) / self.s[0] + 1;
        let ow =
            (self.w + self.pad[1] + self.pad[3] - self.d[1] * (self.k[1] - 1) - 1) / self.s[1] + 1;
        (oh, ow)
    }
}

/// PyTorch's Conv2d: `y[o][oy][ox] = b[o] + sum_{i,ky,kx} w[o][i][ky][kx] * x[g*ipg+i][iy][ix]`,
/// summed in `(i, ky, kx)` order from the bias, over every tap: one in the zero padding
/// contributes `w * 0.0`.
pub fn conv_oracle(p: &ConvP, x: &[f32], w: &[f32], b: Option<&[f32]>) -> Vec<f32> {
    let (oh, ow) = p.out_hw();
    let (ipg, opg) = (p.c / p.g, p.o / p.g);
    let mut y = vec![0.0; p.o * oh * ow];
    for o in 0..p.o {
        let grp = o / opg;
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = b.map_or(0.0, |b| b[o]);
                for i in 0..ipg {
                    for ky in 0..p.k[0] {
                        for kx in 0..p.k[1] {
                            let iy = (oy * p.s[0] + ky * p.d[0]) as isize - p.pad[0] as isize;
                            let ix = (ox * p.s[1] + kx * p.d[1]) as isize - p.pad[1] as isize;
                            let outside =
                                iy < 0 || ix < 0 || iy >= p.h as isize || ix >= p.w as isize;
                            let xv = if outside {
                                0.0
                            } else {
                                x[((grp * ipg + i) * p.h + iy as usize) * p.w + ix as usize]
                            };
                            acc += w[((o * ipg + i) * p.k[0] + ky) * p.k[1] + kx] * xv;
                        }
                    }
                }
                y[(o * oh + oy) * ow + ox] = acc;
            }
        }
    }
    y
}

/// PyTorch's Linear on `rows` input rows: `y[m][o] = b[o] (or 0) + w[o][0] * x[m][0] + ...`,
/// summed in increasing input index.
pub fn linear_oracle(
    rows: usize,
    fi: usize,
    fo: usize,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
) -> Vec<f32> {
    let mut y = Vec::with_capacity(rows * fo);
    for m in 0..rows {
        for o in 0..fo {
            let mut acc = b.map_or(0.0, |b| b[o]);
            for i in 0..fi {
                acc += w[o * fi + i] * x[m * fi + i];
            }
            y.push(acc);
        }
    }
    y
}

/// A model of one Conv2d (input tensor 0, output tensor 1, no activation).
pub fn conv_model(p: &ConvP, dtype: WeightDtype, w: Vec<f32>, b: Option<Vec<f32>>) -> ModelRepr {
    let (oh, ow) = p.out_hw();
    let op = Op::Conv2d(Conv2d {
        input: 0,
        output: 1,
        in_channels: p.c as u32,
        out_channels: p.o as u32,
        kernel: p.k.map(|v| v as u32),
        stride: p.s.map(|v| v as u32),
        padding: p.pad.map(|v| v as u32),
        dilation: p.d.map(|v| v as u32),
        groups: p.g as u32,
        weight: w,
        bias: b,
        act: Activation::None,
    });
    let shapes: [&[u32]; 2] = [
        &[1, p.c as u32, p.h as u32, p.w as u32],
        &[1, p.o as u32, oh as u32, ow as u32],
    ];
    model(dtype, &shapes, &[0], &[1], vec![op])
}

/// A model of one Linear on `rows` input rows (input tensor 0, output tensor 1).
pub fn linear_model(
    rows: usize,
    fi: usize,
    fo: usize,
    dtype: WeightDtype,
    w: Vec<f32>,
    b: Option<Vec<f32>>,
) -> ModelRepr {
    let op = Op::Linear(Linear {
        input: 0,
        output: 1,
        in_features: fi as u32,
        out_features: fo as u32,
        weight: w,
        bias: b,
        act: Activation::None,
    });
    let shapes: [&[u32]; 2] = [&[rows as u32, fi as u32], &[rows as u32, fo as u32]];
    model(dtype, &shapes, &[0], &[1], vec![op])
}

/// Writes `model` as the fuzzer's seed `name` when `NNBLOB_WRITE_FUZZ_SEEDS` names a folder
/// (firmware/fuzz/seeds; docs/FIRMWARE.md).
#[allow(dead_code)] // not every test crate writes a seed
pub fn write_fuzz_seed(name: &str, model: &ModelRepr) {
    if let Some(dir) = std::env::var_os("NNBLOB_WRITE_FUZZ_SEEDS") {
        std::fs::write(
            std::path::Path::new(&dir).join(name),
            model.to_vec().unwrap(),
        )
        .unwrap();
    }
}
