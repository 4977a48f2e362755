//! Every SIMD level of this host (`nnblob_firmware::simd`) against the portable loops and
//! the oracle, bit for bit, on shapes that end where vectors do not: odd channel counts,
//! rows of every length modulo the vector widths (tails of 1 to 7 pixels or outputs),
//! padding on every side, strides 1 and 2 (the de-interleaving loads), dilation, several
//! tiles and bands. Each case runs once per level the CPU offers, the level forced with
//! `simd::set_limit`; a path that changed one bit fails here, on the machine that has it.

mod common;
use common::*;
use nnblob_firmware::simd::{self, Level};
use nnblob_format::encode::ModelRepr;
use nnblob_format::WeightDtype;
use proptest::prelude::*;
use std::sync::Mutex;

/// The level is global: the cases of this file take turns.
static LEVEL: Mutex<()> = Mutex::new(());

/// The levels to compare: all up to the detected one.
fn levels() -> Vec<Level> {
    let all = [Level::Portable, Level::Sse2, Level::Avx2];
    all.into_iter().filter(|&l| l <= simd::detected()).collect()
}

/// Runs `m` at every level; each level's outputs must be the oracle's bits.
fn check_every_level(m: &ModelRepr, x: &[f32], want: &[f32]) {
    let _turn = LEVEL.lock().unwrap_or_else(|e| e.into_inner());
    for level in levels() {
        simd::set_limit(level);
        assert_eq!(simd::active(), level, "the limit selects the level");
        let got = run(m, &[x]);
        if let Some(bad) = (0..want.len()).find(|&i| {
            let (g, w) = (got[0][i], want[i]);
            g.to_bits() != w.to_bits() && !(g.is_nan() && w.is_nan())
        }) {
            simd::set_limit(Level::Avx2);
            panic!(
                "level {level:?}, element {bad}: got {}, want {}",
                got[0][bad], want[bad]
            );
        }
    }
    simd::set_limit(Level::Avx2);
}

fn conv_case(p: &ConvP, dtype: WeightDtype, bias: bool, seed: u64) {
    let mut rng = Rng(seed | 1);
    let x = rng.vec(p.c * p.h * p.w);
    let w = rng.vec(p.o * p.c / p.g * p.k[0] * p.k[1]);
    let b = bias.then(|| rng.vec(p.o));
    let want = conv_oracle(p, &x, &stored(dtype, &w), b.as_deref());
    check_every_level(&conv_model(p, dtype, w, b), &x, &want);
}

fn linear_case(rows: usize, fi: usize, fo: usize, dtype: WeightDtype, w: Vec<f32>, seed: u64) {
    let mut rng = Rng(seed | 1);
    let x = rng.vec(rows * fi);
    let b = (seed % 3 != 0).then(|| rng.vec(fo));
    let want = linear_oracle(rows, fi, fo, &x, &stored(dtype, &w), b.as_deref());
    check_every_level(&linear_model(rows, fi, fo, dtype, w, b), &x, &want);
}

fn dtype(f16: bool) -> WeightDtype {
    if f16 {
        WeightDtype::F16
    } else {
        WeightDtype::F32
    }
}

/// On x86-64 the SIMD levels exist, so that the cases below compare something.
#[test]
#[cfg(target_arch = "x86_64")]
fn x86_64_has_sse2_at_least() {
    assert!(simd::detected() >= Level::Sse2);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// General convolutions: 1 to 7 input and 1 to 13 output channels (blocks of 4 with
    /// missing lanes), rows of 1 to 70 output pixels (groups of 2 and 1 vectors and the
    /// 4-pixel tail of AVX2, a partial last block), kernels 1 to 5, strides 1 to 3.
    #[test]
    fn conv_at_every_level(
        c in 1usize..8, o in 1usize..14, h in 1usize..8, w in 1usize..72,
        kh in 1usize..4, kw in 1usize..6, sh in 1usize..3, sw in 1usize..4,
        pad in [0usize..3, 0usize..3, 0usize..3, 0usize..3], dw in 1usize..3,
        f16 in any::<bool>(), bias in any::<bool>(), seed in any::<u64>(),
    ) {
        let p = ConvP { c, h, w, o, k: [kh, kw], s: [sh, sw], pad, d: [1, dw], g: 1 };
        prop_assume!(h + pad[0] + pad[2] >= kh && w + pad[1] + pad[3] > dw * (kw - 1));
        conv_case(&p, dtype(f16), bias, seed);
    }

    /// Depthwise convolutions: rows of 1 to 80 pixels (runs of whole blocks as one row of
    /// pixels, last blocks of every width down the band), kernels 1 to 5 wide, strides 1
    /// and 2, padding, a channel multiplier of 1 or 2.
    #[test]
    fn depthwise_at_every_level(
        c in 1usize..6, mult in 1usize..3, h in 1usize..12, w in 1usize..80,
        kh in 1usize..4, kw in 1usize..6, s in [1usize..3, 1usize..3],
        pad in [0usize..3, 0usize..3, 0usize..3, 0usize..3],
        f16 in any::<bool>(), bias in any::<bool>(), seed in any::<u64>(),
    ) {
        let p = ConvP { c, h, w, o: c * mult, k: [kh, kw], s, pad, d: [1, 1], g: c };
        prop_assume!(h + pad[0] + pad[2] >= kh && w + pad[1] + pad[3] >= kw);
        conv_case(&p, dtype(f16), bias, seed);
    }

    /// Linear: 1 to 40 outputs (groups of 2 and 1 vectors, 1 to 7 left to the portable
    /// loop), 1 to 40 inputs (squares of 4 or 8 and a tail), 1 to 3 input rows.
    #[test]
    fn linear_at_every_level(
        rows in 1usize..4, fi in 1usize..41, fo in 1usize..41,
        f16 in any::<bool>(), seed in any::<u64>(),
    ) {
        let w = Rng(seed ^ 0x5eed).vec(fo * fi);
        linear_case(rows, fi, fo, dtype(f16), w, seed);
    }
}

/// Named shapes: a map of one pixel, maps too large for one band, the stride-2 first layer
/// of a network, a pointwise convolution over a map whose pixel count ends off every width.
#[test]
fn named_convolutions_at_every_level() {
    let conv = |c, h, w, o, k: [usize; 2], s: [usize; 2], pad: [usize; 4], g| ConvP {
        c,
        h,
        w,
        o,
        k,
        s,
        pad,
        d: [1, 1],
        g,
    };
    let cases = [
        conv(3, 1, 1, 5, [1, 1], [1, 1], [0; 4], 1),
        conv(3, 1, 1, 5, [3, 3], [1, 1], [1; 4], 1),
        conv(3, 33, 35, 9, [3, 3], [2, 2], [1, 1, 1, 1], 1),
        conv(13, 7, 11, 11, [1, 1], [1, 1], [0; 4], 1),
        conv(5, 70, 90, 7, [3, 3], [1, 1], [1, 2, 1, 0], 1),
        conv(4, 100, 95, 4, [3, 3], [2, 2], [1, 1, 1, 1], 4),
        conv(6, 45, 67, 6, [5, 5], [1, 1], [2, 2, 2, 2], 6),
    ];
    for (k, p) in cases.iter().enumerate() {
        conv_case(p, dtype(k % 2 == 0), k % 3 != 2, k as u64);
    }
}

/// Linear with fp16's special values among ordinary ones: subnormals, the extremes, both
/// zeros and infinities, and NaN (one per row, so that its payload is the only one), at
/// widths that put them in the SIMD squares and in the tails.
#[test]
fn linear_special_fp16_weights_at_every_level() {
    let specials: [u16; 9] = [
        0x0001, 0x03ff, 0x8001, 0x0400, 0x7bff, 0xfbff, 0x8000, 0x7c00, 0xfc00,
    ];
    for (fi, fo) in [(37, 19), (8, 16), (13, 24)] {
        let mut rng = Rng(fi as u64 * 31 + fo as u64);
        let mut w = rng.vec(fo * fi);
        for (o, row) in w.chunks_mut(fi).enumerate() {
            row[o % fi] = half::f16::from_bits(specials[o % specials.len()]).to_f32();
            if o % 5 == 4 {
                row[(o * 7) % fi] = half::f16::from_bits(0x7e01).to_f32();
            }
        }
        linear_case(2, fi, fo, WeightDtype::F16, w, fo as u64);
    }
}
