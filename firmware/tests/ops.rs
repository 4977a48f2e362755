//! Every non-conv op against a plain oracle written from PyTorch's definition.
//! Where the engine promises the oracle's order, results match bit for bit; transcendental
//! activations use the same `libm` calls, so they match bit for bit too.

mod common;
use common::*;
use nnblob_format::meta::{
    Activation, Binary, Broadcast, ChannelAffine, ConvTranspose2d, Op, Pool2d, Unary,
};
use nnblob_format::WeightDtype;
use proptest::prelude::*;

/// PyTorch's pooling output length (ceil_mode rule included).
fn pool_out(inp: usize, k: usize, s: usize, pb: usize, pe: usize, ceil: bool) -> usize {
    let room = inp + pb + pe - k;
    let mut o = if ceil { room.div_ceil(s) } else { room / s } + 1;
    if ceil && (o - 1) * s >= inp + pb {
        o -= 1;
    }
    o
}

#[allow(clippy::too_many_arguments)] // one argument per PyTorch parameter
fn pool_oracle(
    max: bool,
    cip: bool,
    c: usize,
    h: usize,
    w: usize,
    k: [usize; 2],
    s: [usize; 2],
    pad: [usize; 4],
    ceil: bool,
    x: &[f32],
) -> Vec<f32> {
    let oh = pool_out(h, k[0], s[0], pad[0], pad[2], ceil);
    let ow = pool_out(w, k[1], s[1], pad[1], pad[3], ceil);
    let mut y = Vec::new();
    for ch in 0..c {
        for oy in 0..oh {
            for ox in 0..ow {
                // PyTorch avg_pool2d: hend = min(hstart + k, H + pad) before clipping.
                let hs = (oy * s[0]) as isize - pad[0] as isize;
                let ws = (ox * s[1]) as isize - pad[1] as isize;
                let he = (hs + k[0] as isize).min((h + pad[2]) as isize);
                let we = (ws + k[1] as isize).min((w + pad[3]) as isize);
                let pool_size = (he - hs) * (we - ws);
                let (hs, ws, he, we) =
                    (hs.max(0), ws.max(0), he.min(h as isize), we.min(w as isize));
                let mut m = f32::NEG_INFINITY;
                let mut sum = 0.0f32;
                for y0 in hs..he {
                    for x0 in ws..we {
                        let v = x[(ch * h + y0 as usize) * w + x0 as usize];
                        if v > m || v.is_nan() {
                            m = v;
                        }
                        sum += v;
                    }
                }
                let div = if cip {
                    pool_size
                } else {
                    (he - hs) * (we - ws)
                };
                y.push(if max { m } else { sum / div as f32 });
            }
        }
    }
    y
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
    #[test]
    fn pools_match_oracle(c in 1usize..4, h in 1usize..12, w in 1usize..12, kh in 1usize..5, kw in 1usize..5,
                          sh in 1usize..4, sw in 1usize..4, pads in proptest::array::uniform4(0usize..3),
                          ceil in any::<bool>(), cip in any::<bool>(), max in any::<bool>(), seed in any::<u64>()) {
        let pad = [pads[0].min(kh / 2), pads[1].min(kw / 2), pads[2].min(kh / 2), pads[3].min(kw / 2)];
        prop_assume!(h + pad[0] + pad[2] >= kh && w + pad[1] + pad[3] >= kw);
        let x = Rng(seed | 1).vec(c * h * w);
        let want = pool_oracle(max, cip, c, h, w, [kh, kw], [sh, sw], pad, ceil, &x);
        let oh = pool_out(h, kh, sh, pad[0], pad[2], ceil);
        let ow = pool_out(w, kw, sw, pad[1], pad[3], ceil);
        let p = Pool2d { input: 0, output: 1, kernel: [kh as u32, kw as u32], stride: [sh as u32, sw as u32],
                         padding: pad.map(|v| v as u32), ceil_mode: ceil, count_include_pad: cip };
        let op = if max { Op::MaxPool2d(p) } else { Op::AvgPool2d(p) };
        let shapes: [&[u32]; 2] = [&[1, c as u32, h as u32, w as u32], &[1, c as u32, oh as u32, ow as u32]];
        let got = run(&model(WeightDtype::F32, &shapes, &[0], &[1], vec![op]), &[&x]);
        assert_bits(&got[0], &want);
    }

    #[test]
    fn adaptive_avg_pool_bins(c in 1usize..3, h in 1usize..10, w in 1usize..10, oh in 1usize..7, ow in 1usize..7, seed in any::<u64>()) {
        let x = Rng(seed | 1).vec(c * h * w);
        let mut want = Vec::new();
        for ch in 0..c { for oy in 0..oh { for ox in 0..ow {
            let (y0, y1) = (oy * h / oh, ((oy + 1) * h).div_ceil(oh));
            let (x0, x1) = (ox * w / ow, ((ox + 1) * w).div_ceil(ow));
            let mut s = 0.0f32;
            for y in y0..y1 { for xx in x0..x1 { s += x[(ch * h + y) * w + xx]; } }
            want.push(s / ((y1 - y0) * (x1 - x0)) as f32);
        }}}
        let shapes: [&[u32]; 2] = [&[1, c as u32, h as u32, w as u32], &[1, c as u32, oh as u32, ow as u32]];
        let got = run(&model(WeightDtype::F32, &shapes, &[0], &[1], vec![Op::AdaptiveAvgPool2d { input: 0, output: 1 }]), &[&x]);
        assert_bits(&got[0], &want);
    }

    #[test]
    fn adaptive_max_pool_bins(c in 1usize..3, h in 1usize..10, w in 1usize..10, oh in 1usize..7, ow in 1usize..7, seed in any::<u64>()) {
        let x = Rng(seed | 1).vec(c * h * w);
        let mut want = Vec::new();
        for ch in 0..c { for oy in 0..oh { for ox in 0..ow {
            let (y0, y1) = (oy * h / oh, ((oy + 1) * h).div_ceil(oh));
            let (x0, x1) = (ox * w / ow, ((ox + 1) * w).div_ceil(ow));
            let mut m = f32::NEG_INFINITY;
            for y in y0..y1 { for xx in x0..x1 { m = m.max(x[(ch * h + y) * w + xx]); } }
            want.push(m);
        }}}
        let shapes: [&[u32]; 2] = [&[1, c as u32, h as u32, w as u32], &[1, c as u32, oh as u32, ow as u32]];
        let got = run(&model(WeightDtype::F32, &shapes, &[0], &[1], vec![Op::AdaptiveMaxPool2d { input: 0, output: 1 }]), &[&x]);
        assert_bits(&got[0], &want);
    }

    #[test]
    fn conv_transpose_matches_oracle(groups in 1usize..3, cig in 1usize..3, cog in 1usize..3, h in 1usize..5, w in 1usize..6,
                                     kh in 1usize..4, kw in 1usize..4, sh in 1usize..4, sw in 1usize..4, dh in 1usize..3, dw in 1usize..3,
                                     ph in 0usize..3, pw in 0usize..3, oph in 0usize..3, opw in 0usize..3,
                                     f16 in any::<bool>(), bias in any::<bool>(), seed in any::<u64>()) {
        let (oph, opw) = (oph.min(sh.max(dh) - 1), opw.min(sw.max(dw) - 1));
        let oh = ((h - 1) * sh + dh * (kh - 1) + oph + 1).checked_sub(2 * ph);
        let ow = ((w - 1) * sw + dw * (kw - 1) + opw + 1).checked_sub(2 * pw);
        let (Some(oh), Some(ow)) = (oh.filter(|&n| n > 0), ow.filter(|&n| n > 0)) else {
            return Ok(());
        };
        let (ci, co) = (groups * cig, groups * cog);
        let dtype = if f16 { WeightDtype::F16 } else { WeightDtype::F32 };
        let mut rng = Rng(seed | 1);
        let x = rng.vec(ci * h * w);
        let wt = rng.vec(ci * cog * kh * kw);
        let b = bias.then(|| rng.vec(co));
        let ws = stored(dtype, &wt);
        // By the definition, gathered: output (oy, ox) takes input (iy, ix) through tap (ky, kx)
        // when iy * sh - ph + ky * dh = oy; bias, then input channels, rows, columns in order.
        let source = |o: usize, k: usize, s: usize, d: usize, p: usize, n: usize| {
            (o + p).checked_sub(k * d).filter(|t| t % s == 0 && t / s < n).map(|t| t / s)
        };
        let mut want = Vec::new();
        for o in 0..co {
            let (g, oc) = (o / cog, o % cog);
            for oy in 0..oh { for ox in 0..ow {
                let mut acc = b.as_ref().map_or(0.0, |b| b[o]);
                for ic in g * cig..(g + 1) * cig { for ky in 0..kh { for kx in 0..kw {
                    if let (Some(iy), Some(ix)) = (source(oy, ky, sh, dh, ph, h), source(ox, kx, sw, dw, pw, w)) {
                        acc += x[(ic * h + iy) * w + ix] * ws[((ic * cog + oc) * kh + ky) * kw + kx];
                    }
                }}}
                want.push(acc);
            }}
        }
        let u = |v: usize| v as u32;
        let op = Op::ConvTranspose2d(ConvTranspose2d {
            input: 0, output: 1, in_channels: u(ci), out_channels: u(co), kernel: [u(kh), u(kw)],
            stride: [u(sh), u(sw)], padding: [u(ph), u(pw)], output_padding: [u(oph), u(opw)],
            dilation: [u(dh), u(dw)], groups: u(groups), weight: wt, bias: b, act: Activation::None,
        });
        let shapes: [&[u32]; 2] = [&[1, u(ci), u(h), u(w)], &[1, u(co), u(oh), u(ow)]];
        let got = run(&model(dtype, &shapes, &[0], &[1], vec![op]), &[&x]);
        assert_bits(&got[0], &want);
    }

    #[test]
    fn linear_matches_oracle(rows in 1usize..4, fi in 1usize..150, fo in 1usize..41, f16 in any::<bool>(), bias in any::<bool>(), seed in any::<u64>()) {
        let dtype = if f16 { WeightDtype::F16 } else { WeightDtype::F32 };
        check_linear(rows, fi, fo, dtype, bias, 1.0, seed);
    }
}

/// Linear with `rows` input rows against the oracle: `bias (or 0) + w[o][0] * x[0] + ...` in
/// increasing input index; weights uniform in `[-scale, scale)`.
fn check_linear(
    rows: usize,
    fi: usize,
    fo: usize,
    dtype: WeightDtype,
    bias: bool,
    scale: f32,
    seed: u64,
) {
    let mut rng = Rng(seed | 1);
    let x = rng.vec(rows * fi);
    let wt: Vec<f32> = rng.vec(fo * fi).iter().map(|w| w * scale).collect();
    let b = bias.then(|| rng.vec(fo));
    let want = linear_oracle(rows, fi, fo, &x, &stored(dtype, &wt), b.as_deref());
    let got = run(&linear_model(rows, fi, fo, dtype, wt, b), &[&x]);
    assert_bits(&got[0], &want);
}

/// Linear shapes each kernel path must get right, in both weight types: the Arm loop's
/// 8-input steps with no tail (64, 640) or with a tail (37, 13, 9, 84), fp16 rows off the
/// 4-byte boundary (odd inputs), fewer than one step (1, 7), blocks of 4 outputs with 1 to 3
/// missing lanes, several input rows, inputs longer than a decoded tile (640), and fp16
/// weights so small that they are subnormal.
#[test]
fn linear_named_cases() {
    let cases = [
        (1, 640, 128),
        (1, 128, 8),
        (1, 8, 128),
        (3, 37, 13),
        (2, 13, 6),
        (2, 64, 10),
        (1, 84, 10),
        (4, 9, 7),
        (1, 7, 5),
        (3, 1, 1),
    ];
    for dtype in [WeightDtype::F16, WeightDtype::F32] {
        for (k, &(rows, fi, fo)) in cases.iter().enumerate() {
            check_linear(rows, fi, fo, dtype, k % 3 != 1, 1.0, k as u64);
        }
        check_linear(2, 40, 6, dtype, true, 1e-5, 99);
    }
}

/// Every activation, standalone, against its PyTorch formula.
#[test]
fn activations() {
    let x: Vec<f32> = (-40..40)
        .map(|i| i as f32 * 0.23)
        .chain([f32::INFINITY, f32::NEG_INFINITY, -0.0])
        .collect();
    let n = x.len() as u32;
    let r6 = |v: f32| v.clamp(0.0, 6.0);
    type Case = (Activation<Vec<f32>>, Box<dyn Fn(f32) -> f32>);
    let cases: Vec<Case> = vec![
        (
            Activation::Relu,
            Box::new(|v: f32| if v < 0.0 { 0.0 } else { v }),
        ),
        (Activation::Relu6, Box::new(r6)),
        (
            Activation::LeakyRelu(0.1),
            Box::new(|v: f32| if v > 0.0 { v } else { v * 0.1 }),
        ),
        (
            Activation::PRelu(vec![0.25]),
            Box::new(|v: f32| if v > 0.0 { v } else { v * 0.25 }),
        ),
        (
            Activation::Sigmoid,
            Box::new(|v: f32| 1.0 / (1.0 + libm::expf(-v))),
        ),
        (Activation::Tanh, Box::new(libm::tanhf)),
        (
            Activation::Silu,
            Box::new(|v: f32| v / (1.0 + libm::expf(-v))),
        ),
        (
            Activation::Hardswish,
            Box::new(move |v: f32| v * r6(v + 3.0) / 6.0),
        ),
        (
            Activation::Hardsigmoid,
            Box::new(move |v: f32| r6(v + 3.0) / 6.0),
        ),
        (
            Activation::Gelu,
            Box::new(|v: f32| v * 0.5 * (1.0 + libm::erff(v * std::f32::consts::FRAC_1_SQRT_2))),
        ),
        (
            Activation::GeluTanh,
            Box::new(|v: f32| {
                0.5 * v * (1.0 + libm::tanhf(0.797_884_6 * (v + 0.044715 * v * v * v)))
            }),
        ),
    ];
    for (act, f) in cases {
        let name = format!("{act:?}");
        let op = Op::Activation(Unary {
            input: 0,
            output: 1,
            act,
        });
        let got = run(
            &model(WeightDtype::F32, &[&[n], &[n]], &[0], &[1], vec![op]),
            &[&x],
        );
        let want: Vec<f32> = x.iter().map(|&v| f(v)).collect();
        assert_bits(&got[0], &want);
        // Reference values from a second implementation (std's), loose: catches formula slips.
        for (g, v) in got[0].iter().zip(&x) {
            if name == "Tanh" && v.is_finite() {
                assert!((g - v.tanh()).abs() < 1e-6, "{name} at {v}");
            }
        }
    }
}

/// Per-channel PReLU, ChannelAffine (in place), and channel-broadcast Add/Mul (SE block).
#[test]
fn channel_ops_and_broadcasts() {
    let (c, hw) = (3usize, 5usize);
    let mut rng = Rng(42);
    let x = rng.vec(c * hw);
    let (scale, shift, slopes, gate) = (rng.vec(c), rng.vec(c), rng.vec(c), rng.vec(c));
    let shape: &[u32] = &[1, c as u32, 1, hw as u32];
    // t0 input, t1 = affine(t0) with PReLU, t2 gate [1,C,1,1], t3 = t1 * gate, t4 = t3 + t0, t5 = t4 + 0.5
    let scalar = vec![0.5f32];
    let ops = vec![
        Op::ChannelAffine(ChannelAffine {
            input: 0,
            output: 1,
            scale: scale.clone(),
            shift: shift.clone(),
            act: Activation::PRelu(slopes.clone()),
        }),
        Op::Mul(Binary {
            a: 1,
            b: 2,
            output: 3,
            broadcast: Broadcast::Channel,
            act: Activation::None,
        }),
        Op::Add(Binary {
            a: 3,
            b: 0,
            output: 4,
            broadcast: Broadcast::None,
            act: Activation::Relu,
        }),
        Op::Add(Binary {
            a: 4,
            b: 5,
            output: 4,
            broadcast: Broadcast::Scalar,
            act: Activation::None,
        }),
    ];
    let shapes: [&[u32]; 6] = [shape, shape, &[1, c as u32, 1, 1], shape, shape, &[1]];
    let got = run(
        &model(WeightDtype::F16, &shapes, &[0, 2, 5], &[4], ops),
        &[&x, &gate, &scalar],
    );
    let want: Vec<f32> = (0..c * hw)
        .map(|i| {
            let ch = i / hw;
            let a = x[i] * scale[ch] + shift[ch];
            let a = if a > 0.0 { a } else { a * slopes[ch] };
            let m = a * gate[ch];
            let s = m + x[i];
            (if s < 0.0 { 0.0 } else { s }) + 0.5
        })
        .collect();
    assert_bits(&got[0], &want);
}

/// Concat on channels and on the last axis, Softmax, Permute, ZeroPad2d, Copy; several outputs.
#[test]
fn data_movement_ops() {
    let mut rng = Rng(7);
    let (a, b) = (rng.vec(2 * 3 * 4), rng.vec(3 * 3 * 4));
    let shapes: [&[u32]; 8] = [
        &[1, 2, 3, 4], // 0 a
        &[1, 3, 3, 4], // 1 b
        &[1, 5, 3, 4], // 2 concat(a, b) on channels
        &[1, 5, 3, 4], // 3 softmax over axis 1
        &[1, 4, 5, 3], // 4 permute [0, 3, 1, 2]
        &[1, 4, 8, 6], // 5 zero pad (1, 2, 2, 1)
        &[1, 4, 8, 6], // 6 copy
        &[1, 2, 3, 8], // 7 concat(a, a) on the last axis
    ];
    let list = |v: &[u32]| v.to_vec();
    let ops = vec![
        Op::Concat {
            inputs: list(&[0, 1]),
            output: 2,
            axis: 1,
        },
        Op::Softmax {
            input: 2,
            output: 3,
            axis: 1,
        },
        Op::Permute {
            input: 3,
            output: 4,
            perm: [0, 3, 1, 2],
        },
        Op::ZeroPad2d {
            input: 4,
            output: 5,
            padding: [1, 2, 2, 1],
        },
        Op::Copy {
            input: 5,
            output: 6,
        },
        Op::Concat {
            inputs: list(&[0, 0]),
            output: 7,
            axis: 3,
        },
    ];
    let got = run(
        &model(WeightDtype::F32, &shapes, &[0, 1], &[6, 7], ops),
        &[&a, &b],
    );
    // Oracle, step by step with explicit indices.
    let cat: Vec<f32> = a.iter().chain(&b).copied().collect();
    let mut sm = vec![0.0f32; 60];
    for p in 0..12 {
        let mx = (0..5)
            .map(|c| cat[c * 12 + p])
            .fold(f32::NEG_INFINITY, f32::max);
        let mut s = 0.0f32;
        for c in 0..5 {
            sm[c * 12 + p] = libm::expf(cat[c * 12 + p] - mx);
            s += sm[c * 12 + p];
        }
        for c in 0..5 {
            sm[c * 12 + p] /= s;
        }
    }
    let mut perm = vec![0.0f32; 60]; // [1,4,5,3][0][w][c][h] = sm[0][c][h][w]
    for w in 0..4 {
        for c in 0..5 {
            for h in 0..3 {
                perm[(w * 5 + c) * 3 + h] = sm[(c * 3 + h) * 4 + w];
            }
        }
    }
    let mut pad = vec![0.0f32; 4 * 8 * 6];
    for ch in 0..4 {
        for y in 0..5 {
            for x in 0..3 {
                pad[(ch * 8 + y + 1) * 6 + x + 2] = perm[(ch * 5 + y) * 3 + x];
            }
        }
    }
    assert_bits(&got[0], &pad);
    let mut cat2 = Vec::new();
    for row in a.chunks(4) {
        cat2.extend_from_slice(row);
        cat2.extend_from_slice(row);
    }
    assert_bits(&got[1], &cat2);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
    /// Slice on any axis of a 1- to 4-d tensor, any start, step and length that fit, against an
    /// oracle that walks the output's multi-index.
    #[test]
    fn slice_matches_oracle(
        dims in proptest::collection::vec(1u32..6, 1..=4),
        axis_pick in any::<usize>(),
        start_pick in any::<u32>(),
        step in 1u32..4,
        len_pick in any::<u32>(),
        seed in any::<u64>(),
    ) {
        let axis = axis_pick % dims.len();
        let n = dims[axis];
        let start = start_pick % n;
        let len = 1 + len_pick % ((n - 1 - start) / step + 1);
        let mut out_dims = dims.clone();
        out_dims[axis] = len;
        let x = Rng(seed).vec(dims.iter().product::<u32>() as usize);
        let m = model(
            WeightDtype::F32,
            &[&dims, &out_dims],
            &[0],
            &[1],
            vec![Op::Slice { input: 0, output: 1, axis: axis as u8, start, step }],
        );
        let got = run(&m, &[&x]);
        let (d, o) = (&dims, &out_dims);
        let mut want = Vec::new();
        let total: u32 = o.iter().product();
        for flat in 0..total {
            let (mut rest, mut src, mut scale) = (flat, 0u32, 1u32);
            for a in (0..o.len()).rev() {
                let i = rest % o[a];
                rest /= o[a];
                let i = if a == axis { start + i * step } else { i };
                src += i * scale;
                scale *= d[a];
            }
            want.push(x[src as usize]);
        }
        assert_bits(&got[0], &want);
    }
}
