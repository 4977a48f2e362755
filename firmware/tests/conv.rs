//! Conv2d against the oracle on random geometries: odd sizes, strides, asymmetric padding,
//! dilation, groups, depthwise, 1x1, with and without bias, f16 and f32 weights. The engine
//! promises the oracle's summation order, so results must match bit for bit.

mod common;
use common::*;
use nnblob_format::WeightDtype;
use proptest::prelude::*;

fn check(p: &ConvP, dtype: WeightDtype, bias: bool, seed: u64) {
    let mut rng = Rng(seed | 1);
    let x = rng.vec(p.c * p.h * p.w);
    let w = rng.vec(p.o * p.c / p.g * p.k[0] * p.k[1]);
    let b = bias.then(|| rng.vec(p.o));
    check_values(p, dtype, x, w, b);
}

fn check_values(p: &ConvP, dtype: WeightDtype, x: Vec<f32>, w: Vec<f32>, b: Option<Vec<f32>>) {
    let want = conv_oracle(p, &x, &stored(dtype, &w), b.as_deref());
    let got = run(&conv_model(p, dtype, w, b), &[&x]);
    assert_bits(&got[0], &want);
}

fn conv_params() -> impl Strategy<Value = ConvP> {
    (
        1usize..4,
        1usize..5,
        1usize..11,
        1usize..4,
        1usize..4,
        1usize..3,
        1usize..3,
        0usize..3,
        0usize..3,
        0usize..3,
        0usize..3,
    )
        .prop_flat_map(|(g, ipg, opg, kh, kw, sh, sw, pt, pl, pb, pr)| {
            (1usize..3, 1usize..3, 1usize..13, 1usize..13).prop_filter_map(
                "window fits",
                move |(dh, dw, h, w)| {
                    let p = ConvP {
                        c: g * ipg,
                        h,
                        w,
                        o: g * opg,
                        k: [kh, kw],
                        s: [sh, sw],
                        pad: [pt, pl, pb, pr],
                        d: [dh, dw],
                        g,
                    };
                    (h + pt + pb > dh * (kh - 1) && w + pl + pr > dw * (kw - 1)).then_some(p)
                },
            )
        })
}

/// Depthwise geometries: maps 1 to 40 rows and 1 to 60 columns (rows of one block or
/// several, a last block of any width; planes that fit the depthwise path's buffer whole or
/// only in bands), strides 1 to 3, row and column dilations 1 or 2 (the strides and
/// dilations the depthwise path does not take go to the general path).
fn depthwise_params() -> impl Strategy<Value = ConvP> {
    (
        1usize..4,
        1usize..6,
        1usize..6,
        1usize..4,
        1usize..4,
        [1usize..3, 1usize..3],
        [0usize..3, 0usize..3, 0usize..3, 0usize..3],
        1usize..41,
        1usize..61,
    )
        .prop_filter_map("window fits", |(c, kh, kw, sh, sw, d, pad, h, w)| {
            let p = ConvP {
                c,
                h,
                w,
                o: c,
                k: [kh, kw],
                s: [sh, sw],
                pad,
                d,
                g: c,
            };
            let fits = |len: usize, k: usize, d: usize| len > d * (k - 1);
            (fits(h + pad[0] + pad[2], kh, d[0]) && fits(w + pad[1] + pad[3], kw, d[1]))
                .then_some(p)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
    #[test]
    fn depthwise_matches_oracle(p in depthwise_params(), f16 in any::<bool>(), bias in any::<bool>(), seed in any::<u64>()) {
        check(&p, if f16 { WeightDtype::F16 } else { WeightDtype::F32 }, bias, seed);
    }

    #[test]
    fn conv_matches_oracle(p in conv_params(), f16 in any::<bool>(), bias in any::<bool>(), seed in any::<u64>()) {
        check(&p, if f16 { WeightDtype::F16 } else { WeightDtype::F32 }, bias, seed);
    }

    #[test]
    fn conv1d_matches_oracle(p in conv1d_params(), f16 in any::<bool>(), bias in any::<bool>(), seed in any::<u64>()) {
        check(&p, if f16 { WeightDtype::F16 } else { WeightDtype::F32 }, bias, seed);
    }
}

#[test]
fn depthwise_3x3_stride2_tf_same_padding() {
    // TF 'same' at stride 2 pads one more at the bottom/right than at the top/left.
    let p = ConvP {
        c: 8,
        h: 10,
        w: 10,
        o: 8,
        k: [3, 3],
        s: [2, 2],
        pad: [0, 0, 1, 1],
        d: [1, 1],
        g: 8,
    };
    check(&p, WeightDtype::F16, true, 3);
}

#[test]
fn depthwise_planes_in_bands() {
    // Padded planes larger than the depthwise path's buffer (on every target: 8,448 values
    // under an operating system, 1,024 on a Cortex-M4F): bands of output rows, the last one
    // shorter, whose padding rows must be zeroed again after the previous band's input
    // rows; rows of several blocks and a narrower last one; 3-wide kernels of 3 and 5 rows,
    // the second with a row dilation of 2.
    for (h, w, k, s, d, pad) in [
        (100, 90, [3, 3], [1, 1], [1, 1], [1, 1, 1, 1]),
        (101, 89, [3, 3], [2, 2], [1, 1], [1, 1, 1, 1]),
        (95, 89, [5, 3], [1, 2], [2, 1], [4, 0, 3, 2]),
    ] {
        let p = ConvP {
            c: 3,
            h,
            w,
            o: 3,
            k,
            s,
            pad,
            d,
            g: 3,
        };
        check(&p, WeightDtype::F16, true, 23);
    }
}

#[test]
fn depthwise_one_pixel_wide_and_one_row_high() {
    // Rows of one pixel (blocks of one, at both strides) and maps of one row.
    for (h, w, s) in [
        (9, 1, [1, 1]),
        (9, 1, [2, 2]),
        (1, 13, [1, 1]),
        (1, 19, [1, 2]),
    ] {
        let p = ConvP {
            c: 2,
            h,
            w,
            o: 2,
            k: [3, 3],
            s,
            pad: [1; 4],
            d: [1, 1],
            g: 2,
        };
        check(&p, WeightDtype::F32, false, 29);
    }
}

#[test]
fn pointwise_with_tail_pixels_and_tail_lanes() {
    // 1x1 stride 1: blocks inside a row take the tap-offset path, the 3-pixel tail of each
    // 7-wide row the kernel-row path; 7 output channels leave a 3-lane tail block.
    let p = ConvP {
        c: 5,
        h: 9,
        w: 7,
        o: 7,
        k: [1, 1],
        s: [1, 1],
        pad: [0; 4],
        d: [1, 1],
        g: 1,
    };
    check(&p, WeightDtype::F32, true, 5);
}

#[test]
fn many_taps_span_several_tiles() {
    // 60 * 3 * 3 = 540 taps: several weight tiles on every target (of 256 taps at most
    // under an operating system, 128 on a Cortex-M4F), partial sums stored between them.
    let p = ConvP {
        c: 60,
        h: 11,
        w: 13,
        o: 6,
        k: [3, 3],
        s: [1, 1],
        pad: [1, 1, 1, 1],
        d: [1, 1],
        g: 1,
    };
    check(&p, WeightDtype::F16, true, 9);
}

#[test]
fn depthwise_multiplier_and_dilation() {
    let p = ConvP {
        c: 3,
        h: 12,
        w: 12,
        o: 6,
        k: [3, 3],
        s: [1, 1],
        pad: [2, 2, 2, 2],
        d: [2, 2],
        g: 3,
    };
    check(&p, WeightDtype::F32, false, 11);
}

#[test]
fn kernel_rows_split_across_tiles() {
    // A 9x9 kernel over 5 input channels (405 taps): tiles of whole channels, with padding
    // cutting rows off at the top and bottom; then a 23x9 kernel, whose 23 rows are more
    // than a tile takes on any target: tiles of kernel rows. 12 output channels leave a
    // half-full block for the 8-lane vectors.
    for (c, h, k, pad) in [
        (5, 10, [9, 9], [4, 3, 4, 5]),
        (2, 24, [23, 9], [11, 3, 11, 5]),
    ] {
        let p = ConvP {
            c,
            h,
            w: 11,
            o: 12,
            k,
            s: [1, 1],
            pad,
            d: [1, 1],
            g: 1,
        };
        check(&p, WeightDtype::F16, true, 13);
    }
}

#[test]
fn kernel_row_wider_than_a_tile() {
    // A 1x70 kernel: one kernel row is split over two tiles; stride 2, padded both sides.
    let p = ConvP {
        c: 2,
        h: 3,
        w: 75,
        o: 6,
        k: [1, 70],
        s: [1, 2],
        pad: [0, 5, 0, 6],
        d: [1, 1],
        g: 1,
    };
    check(&p, WeightDtype::F32, true, 17);
}

#[test]
fn depthwise_kernel_larger_than_its_tile() {
    // One output channel per group: the depthwise path's weight buffer (1,024 taps under
    // an operating system, 512 on a Cortex-M4F) holds less than a 33x33 kernel.
    let p = ConvP {
        c: 2,
        h: 34,
        w: 35,
        o: 2,
        k: [33, 33],
        s: [1, 1],
        pad: [16, 16, 16, 16],
        d: [1, 1],
        g: 2,
    };
    check(&p, WeightDtype::F16, false, 19);
}

#[test]
fn resnet_shapes_stride_two_and_shortcut() {
    // The shapes of a ResNet stage entry: 3x3 stride 2 pad 1 and 1x1 stride 2, 16 -> 24
    // channels (an 8-channel block and a partial one), odd input size.
    for (k, pad) in [(3, 1), (1, 0)] {
        let p = ConvP {
            c: 16,
            h: 15,
            w: 17,
            o: 24,
            k: [k, k],
            s: [2, 2],
            pad: [pad; 4],
            d: [1, 1],
            g: 1,
        };
        check(&p, WeightDtype::F16, true, 23);
    }
}

#[test]
fn padding_is_zeros_not_skipped() {
    // Padded taps add `w * 0.0` as PyTorch's zero padding does; skipping them would differ
    // in two visible ways: a sum of -0.0 (bias -0.0, inputs -0.0) stays -0.0 when skipped
    // but becomes +0.0 when a padded `+0.0` is added; and an infinite weight over the
    // padding gives NaN (inf * 0) instead of being ignored.
    let p = ConvP {
        c: 2,
        h: 6,
        w: 7,
        o: 5,
        k: [3, 3],
        s: [1, 1],
        pad: [1, 1, 1, 1],
        d: [1, 1],
        g: 1,
    };
    let x = vec![-0.0; 2 * 6 * 7];
    let mut w = vec![1.0; 5 * 2 * 9];
    w[9 * 2 * 4] = f32::INFINITY; // channel 4, input channel 0, tap (0, 0)
    let b = Some(vec![-0.0; 5]);
    check_values(&p, WeightDtype::F32, x.clone(), w.clone(), b.clone());
    check_values(&p, WeightDtype::F16, x, w, b);
}

/// 1-d convolutions in both orientations — `K x 1` down a map one pixel wide (which the
/// engine runs as a row) and `1 x K` along a map one row high — with long kernels of even
/// and odd widths (pairs of taps, single taps, rows split over tiles), strides 1 to 5,
/// padding, dilation, groups.
fn conv1d_params() -> impl Strategy<Value = ConvP> {
    (
        any::<bool>(),
        1usize..3,
        1usize..4,
        1usize..10,
        1usize..80,
        1usize..6,
        1usize..3,
        0usize..40,
        0usize..40,
        1usize..300,
    )
        .prop_filter_map(
            "window fits",
            |(column, g, ipg, opg, k, s, d, p0, p1, n)| {
                let span = d * (k - 1) + 1;
                (n + p0 + p1 >= span && p0 < span && p1 < span).then(|| {
                    let p = ConvP {
                        c: g * ipg,
                        h: 1,
                        w: n,
                        o: g * opg,
                        k: [1, k],
                        s: [1, s],
                        pad: [0, p0, 0, p1],
                        d: [1, d],
                        g,
                    };
                    match column {
                        true => ConvP {
                            h: n,
                            w: 1,
                            k: [k, 1],
                            s: [s, 1],
                            pad: [p0, 0, p1, 0],
                            d: [d, 1],
                            ..p
                        },
                        false => p,
                    }
                })
            },
        )
}

#[test]
fn padded_row_wider_than_the_band_buffer() {
    // One output row whose padded input row (9,000 values) is longer than the band buffer
    // under an operating system (8,192): bands of output columns, the first and last reading
    // the padding. A 64-tap kernel at stride 4, in both orientations.
    let p = ConvP {
        c: 1,
        h: 1,
        w: 8940,
        o: 6,
        k: [1, 64],
        s: [1, 4],
        pad: [0, 30, 0, 30],
        d: [1, 1],
        g: 1,
    };
    check(&p, WeightDtype::F16, true, 23);
    let column = ConvP {
        h: p.w,
        w: 1,
        k: [64, 1],
        s: [4, 1],
        pad: [30, 0, 30, 0],
        ..p
    };
    check(&column, WeightDtype::F32, true, 29);
}
