//! Hostile and broken blobs and buffers: each refused with its specific `Error`, never a panic.
//! Also replays the fuzzer's regression inputs in `tests/regressions/`.

mod common;
use common::*;
use nnblob_firmware::{Error, Model};
use nnblob_format::encode::ModelRepr;
use nnblob_format::header::{blob_crc, field};
use nnblob_format::meta::{
    Activation, Conv2d, ConvTranspose2d, Norm, Op, Pool2d, Resize, ResizeMode,
};
use nnblob_format::WeightDtype;

/// A small real model: conv 3x3 (f16) + ReLU fused, then global average pool.
fn small() -> ModelRepr {
    let conv = Op::Conv2d(Conv2d {
        input: 0,
        output: 1,
        in_channels: 2,
        out_channels: 3,
        kernel: [3, 3],
        stride: [1, 1],
        padding: [1, 1, 1, 1],
        dilation: [1, 1],
        groups: 1,
        weight: Rng(5).vec(3 * 2 * 9),
        bias: Some(vec![0.1, 0.2, 0.3]),
        act: Activation::Relu,
    });
    let shapes: [&[u32]; 3] = [&[1, 2, 5, 5], &[1, 3, 5, 5], &[1, 3, 1, 1]];
    model(
        WeightDtype::F16,
        &shapes,
        &[0],
        &[2],
        vec![
            conv,
            Op::AdaptiveAvgPool2d {
                input: 1,
                output: 2,
            },
        ],
    )
}

/// Rewrites the CRC so that a deliberate edit reaches the checks behind it.
fn reseal(blob: &mut [u8]) {
    let crc = blob_crc(blob);
    blob[field::CRC32].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn every_single_bit_flip_is_rejected() {
    let blob = small().to_vec().unwrap();
    assert!(Model::from_bytes(&blob).is_ok());
    for byte in 0..blob.len() {
        for bit in 0..8 {
            let mut b = blob.clone();
            b[byte] ^= 1 << bit;
            assert!(
                Model::from_bytes(&b).is_err(),
                "flip of bit {bit} in byte {byte} accepted"
            );
        }
    }
}

#[test]
fn truncated_blobs() {
    let blob = small().to_vec().unwrap();
    for len in 0..blob.len() {
        assert!(
            matches!(
                Model::from_bytes(&blob[..len]),
                Err(Error::Blob(nnblob_format::Error::Truncated { .. }))
            ),
            "len {len}"
        );
    }
    // Bytes after the blob (a larger flash region) are ignored.
    let mut padded = blob.clone();
    padded.extend_from_slice(&[0xff; 64]);
    assert!(Model::from_bytes(&padded).is_ok());
}

#[test]
fn header_faults_have_their_own_errors() {
    let blob = small().to_vec().unwrap();
    let mut b = blob.clone();
    b[0] = b'X';
    assert_eq!(
        Model::from_bytes(&b).unwrap_err(),
        Error::Blob(nnblob_format::Error::BadMagic)
    );
    let mut b = blob.clone();
    let next = nnblob_format::header::VERSION + 1;
    b[field::VERSION].copy_from_slice(&next.to_le_bytes());
    assert_eq!(
        Model::from_bytes(&b).unwrap_err(),
        Error::Blob(nnblob_format::Error::UnsupportedVersion(next))
    );
    let mut b = blob.clone();
    b[field::VERSION].copy_from_slice(&0u16.to_le_bytes());
    reseal(&mut b);
    assert_eq!(
        Model::from_bytes(&b).unwrap_err(),
        Error::Blob(nnblob_format::Error::UnsupportedVersion(0))
    );
    let mut b = blob.clone();
    b[field::FLAGS].copy_from_slice(&0x10u16.to_le_bytes());
    reseal(&mut b);
    assert_eq!(
        Model::from_bytes(&b).unwrap_err(),
        Error::Blob(nnblob_format::Error::UnknownFlags(0x10))
    );
    let mut b = blob.clone();
    b[field::WEIGHTS_LEN].copy_from_slice(&u32::MAX.to_le_bytes());
    reseal(&mut b);
    assert!(matches!(
        Model::from_bytes(&b).unwrap_err(),
        Error::Blob(nnblob_format::Error::BadSection { .. })
    ));
    let mut b = blob.clone();
    let last = b.len() - 1;
    b[last] ^= 1;
    assert!(matches!(
        Model::from_bytes(&b).unwrap_err(),
        Error::Blob(nnblob_format::Error::CrcMismatch { .. })
    ));
}

#[test]
fn semantic_faults_name_the_op_tensor_or_field() {
    // Weight offset past the end of the weights section.
    let mut m = small();
    m.tensors[1].offset = 1_000_000;
    assert_eq!(
        Model::from_bytes(&m.to_vec().unwrap()).unwrap_err(),
        Error::TensorOutsideArena { tensor: 1 }
    );
    // Shapes whose element count overflows.
    let mut m = small();
    m.tensors[2].shape = vec![u32::MAX, u32::MAX, u32::MAX, u32::MAX];
    assert_eq!(
        Model::from_bytes(&m.to_vec().unwrap()).unwrap_err(),
        Error::TensorOutsideArena { tensor: 2 }
    );
    // Output shape inconsistent with the conv's parameters.
    let mut m = small();
    if let Op::Conv2d(c) = &mut m.ops[0] {
        c.stride = [2, 2];
    }
    assert_eq!(
        Model::from_bytes(&m.to_vec().unwrap()).unwrap_err(),
        Error::OpShape { op: 0, tensor: 1 }
    );
    // Missing tensor.
    let mut m = small();
    m.ops[1] = Op::AdaptiveAvgPool2d {
        input: 9,
        output: 2,
    };
    assert_eq!(
        Model::from_bytes(&m.to_vec().unwrap()).unwrap_err(),
        Error::OpTensor { op: 1, tensor: 9 }
    );
    // Bias of the wrong length.
    let mut m = small();
    if let Op::Conv2d(c) = &mut m.ops[0] {
        c.bias = Some(vec![0.0; 2]);
    }
    assert_eq!(
        Model::from_bytes(&m.to_vec().unwrap()).unwrap_err(),
        Error::OpWeight {
            op: 0,
            field: "conv bias"
        }
    );
    // PReLU slopes neither 1 nor one per channel.
    let mut m = small();
    if let Op::Conv2d(c) = &mut m.ops[0] {
        c.act = Activation::PRelu(vec![0.1, 0.2]);
    }
    assert_eq!(
        Model::from_bytes(&m.to_vec().unwrap()).unwrap_err(),
        Error::OpWeight {
            op: 0,
            field: "prelu slopes"
        }
    );
    // Output overlapping the input.
    let mut m = small();
    m.tensors[1].offset = 40;
    assert_eq!(
        Model::from_bytes(&m.to_vec().unwrap()).unwrap_err(),
        Error::OpOverlap { op: 0, tensor: 0 }
    );
    // Zero groups.
    let mut m = small();
    if let Op::Conv2d(c) = &mut m.ops[0] {
        c.groups = 0;
    }
    assert_eq!(
        Model::from_bytes(&m.to_vec().unwrap()).unwrap_err(),
        Error::OpParam {
            op: 0,
            field: "groups"
        }
    );
}

#[test]
fn buffers_too_small() {
    let blob = small().to_vec().unwrap();
    let model = Model::from_bytes(&blob).unwrap();
    let input = vec![0.5; model.input_len(0)];
    let mut out = vec![0.0; model.output_len(0)];
    let mut arena = vec![0.0; model.arena_len()];
    assert_eq!(
        model.run(&input, &mut out, &mut arena[1..]),
        Err(Error::ArenaTooSmall {
            needed: 128,
            got: 127
        })
    );
    assert_eq!(
        model.run(&input[1..], &mut out, &mut arena),
        Err(Error::InputLen {
            input: 0,
            needed: 50,
            got: 49
        })
    );
    assert_eq!(
        model.run(&input, &mut out[1..], &mut arena),
        Err(Error::OutputLen {
            output: 0,
            needed: 3,
            got: 2
        })
    );
    assert_eq!(
        model.run_multi(&[], &mut [&mut out], &mut arena),
        Err(Error::IoCount {
            expected: 1,
            got: 0
        })
    );
    assert!(model.run(&input, &mut out, &mut arena).is_ok());
}

/// Feeds a blob the way the fuzz target does; must not panic.
fn exercise(data: &[u8]) {
    if let Ok(model) = Model::from_bytes(data) {
        if model.arena_len() > 1 << 20 {
            return;
        }
        let inputs: Vec<Vec<f32>> = (0..model.input_count())
            .map(|i| vec![0.5; model.input_len(i)])
            .collect();
        let mut outputs: Vec<Vec<f32>> = (0..model.output_count())
            .map(|i| vec![0.0; model.output_len(i)])
            .collect();
        let mut arena = vec![0.0; model.arena_len()];
        let ins: Vec<&[f32]> = inputs.iter().map(|v| v.as_slice()).collect();
        let mut outs: Vec<&mut [f32]> = outputs.iter_mut().map(|v| v.as_mut_slice()).collect();
        let _ = model.run_multi(&ins, &mut outs, &mut arena);
    }
}

#[test]
fn fuzz_regressions_replay() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        exercise(&std::fs::read(&path).unwrap());
        n += 1;
    }
    exercise(&small().to_vec().unwrap());
    eprintln!("{n} regression inputs replayed");
}

/// A 1-d model (as the converter writes one): `[1, 2, 1, 9]` max pooled (3, stride 2, padding
/// 1, ceil_mode), average pooled (2, stride 1, padding 1, without the padding in the divisor),
/// then adaptive max pooled to 4.
fn pools_1d() -> ModelRepr {
    let pool = |input, output, k, s, p, ceil_mode| Pool2d {
        input,
        output,
        kernel: [1, k],
        stride: [1, s],
        padding: [0, p, 0, p],
        ceil_mode,
        count_include_pad: false,
    };
    let shapes: [&[u32]; 4] = [&[1, 2, 1, 9], &[1, 2, 1, 5], &[1, 2, 1, 6], &[1, 2, 1, 4]];
    model(
        WeightDtype::F32,
        &shapes,
        &[0],
        &[3],
        vec![
            Op::MaxPool2d(pool(0, 1, 3, 2, 1, true)),
            Op::AvgPool2d(pool(1, 2, 2, 1, 1, false)),
            Op::AdaptiveMaxPool2d {
                input: 2,
                output: 3,
            },
        ],
    )
}

#[test]
fn adaptive_max_pools_are_checked_like_the_average_ones() {
    assert_eq!(run(&pools_1d(), &[&Rng(3).vec(18)])[0].len(), 8);
    // Another channel count, an empty output, a missing tensor: each refused by name.
    for (output_dims, op_tensor) in [
        ([1u32, 1, 1, 4], None),
        ([1, 2, 1, 0], None),
        ([1, 2, 1, 4], Some(9)),
    ] {
        let mut m = pools_1d();
        m.tensors[3].shape = output_dims.to_vec();
        let want = match op_tensor {
            Some(t) => {
                m.ops[2] = Op::AdaptiveMaxPool2d {
                    input: t,
                    output: 3,
                };
                Error::OpTensor { op: 2, tensor: t }
            }
            None => Error::OpShape { op: 2, tensor: 3 },
        };
        assert_eq!(Model::from_bytes(&m.to_vec().unwrap()).unwrap_err(), want);
    }
}

type OwnedConvTranspose = ConvTranspose2d<Vec<f32>, Vec<f32>>;

/// A transposed convolution `[1, 4, 3, 3]` -> `[1, 2, 6, 6]` (kernel 3, stride 2, padding 1,
/// output padding 1, 2 groups), f16 weights, bias and a fused ReLU.
fn upsampler() -> ModelRepr {
    let op = Op::ConvTranspose2d(ConvTranspose2d {
        input: 0,
        output: 1,
        in_channels: 4,
        out_channels: 2,
        kernel: [3, 3],
        stride: [2, 2],
        padding: [1, 1],
        output_padding: [1, 1],
        dilation: [1, 1],
        groups: 2,
        weight: Rng(9).vec(4 * 9),
        bias: Some(vec![0.5, -0.5]),
        act: Activation::Relu,
    });
    let shapes: [&[u32]; 2] = [&[1, 4, 3, 3], &[1, 2, 6, 6]];
    model(WeightDtype::F16, &shapes, &[0], &[1], vec![op])
}

#[test]
fn transposed_convolutions_are_checked_field_by_field() {
    assert_eq!(run(&upsampler(), &[&Rng(4).vec(36)])[0].len(), 72);
    let refused = |f: &dyn Fn(&mut OwnedConvTranspose)| {
        let mut m = upsampler();
        if let Op::ConvTranspose2d(c) = &mut m.ops[0] {
            f(c);
        }
        Model::from_bytes(&m.to_vec().unwrap()).unwrap_err()
    };
    let param = |field| Error::OpParam { op: 0, field };
    let geometry = param("kernel/stride/dilation/padding");
    // Output padding not below the stride (nor the dilation); a zero stride; an output length
    // the rule does not give; groups that do not divide; a short weight and bias.
    assert_eq!(refused(&|c| c.output_padding = [2, 1]), geometry);
    assert_eq!(refused(&|c| c.stride = [0, 2]), geometry);
    assert_eq!(
        refused(&|c| c.output_padding = [0, 0]),
        Error::OpShape { op: 0, tensor: 1 }
    );
    assert_eq!(refused(&|c| c.groups = 3), param("groups"));
    assert_eq!(
        refused(&|c| c.in_channels = 2),
        Error::OpShape { op: 0, tensor: 0 }
    );
    assert_eq!(
        refused(&|c| c.weight.truncate(35)),
        Error::OpWeight {
            op: 0,
            field: "conv transpose weight"
        }
    );
    assert_eq!(
        refused(&|c| c.bias = Some(vec![0.0])),
        Error::OpWeight {
            op: 0,
            field: "conv transpose bias"
        }
    );
}

/// A resize `[1, 2, 3, 4]` -> `[1, 2, 7, 9]` by sizes (PyTorch's factors `in / out`).
fn resizer(mode: ResizeMode) -> ModelRepr {
    let op = Op::Resize(Resize {
        input: 0,
        output: 1,
        mode,
        align_corners: false,
        scale: [3.0 / 7.0, 4.0 / 9.0],
    });
    let shapes: [&[u32]; 2] = [&[1, 2, 3, 4], &[1, 2, 7, 9]];
    model(WeightDtype::F32, &shapes, &[0], &[1], vec![op])
}

#[test]
fn resizes_are_checked_field_by_field() {
    for mode in [ResizeMode::Nearest, ResizeMode::Linear] {
        let input = Rng(4).vec(24);
        let out = &run(&resizer(mode), &[&input])[0];
        assert_eq!(out.len(), 126);
        // Every output lies within its inputs' range (linear taps are a convex combination).
        let (lo, hi) = input
            .iter()
            .fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
        assert!(out.iter().all(|&v| (lo..=hi).contains(&v)), "{mode:?}");
    }
    let refused = |mode, f: &dyn Fn(&mut Resize)| {
        let mut m = resizer(mode);
        if let Op::Resize(r) = &mut m.ops[0] {
            f(r);
        }
        Model::from_bytes(&m.to_vec().unwrap()).unwrap_err()
    };
    let param = |field| Error::OpParam { op: 0, field };
    for bad in [f32::NAN, f32::INFINITY, -0.5] {
        assert_eq!(
            refused(ResizeMode::Linear, &|r| r.scale[1] = bad),
            param("scale")
        );
    }
    assert_eq!(
        refused(ResizeMode::Nearest, &|r| r.align_corners = true),
        param("align_corners")
    );
    assert_eq!(
        refused(ResizeMode::Linear, &|r| r.output = 0),
        Error::OpOverlap { op: 0, tensor: 0 }
    );
    // No channels and a vast map (an empty output the kernel would still walk, row by row;
    // the fuzzer's `regressions/resize-empty-channels-vast-map`).
    let mut m = resizer(ResizeMode::Nearest);
    let shapes: [&[u32]; 2] = [&[1, 0, 3, 4], &[1, 0, 1 << 20, 1 << 20]];
    (m.tensors, m.arena_bytes) = common::tensors(&shapes);
    assert_eq!(
        Model::from_bytes(&m.to_vec().unwrap()).unwrap_err(),
        Error::OpShape { op: 0, tensor: 1 }
    );
}

/// A GroupNorm `[1, 4, 3, 5]`: 2 groups of 2 channels, one weight and bias per channel.
fn group_norm() -> ModelRepr {
    let op = Op::Norm(Norm {
        input: 0,
        output: 1,
        group_len: 30,
        repeat: 15,
        eps: 1e-5,
        weight: Some(vec![0.5, 1.0, 1.5, 2.0]),
        bias: Some(vec![0.0, 0.1, 0.2, 0.3]),
    });
    let shapes: [&[u32]; 2] = [&[1, 4, 3, 5], &[1, 4, 3, 5]];
    model(WeightDtype::F32, &shapes, &[0], &[1], vec![op])
}

#[test]
fn normalizations_are_checked_field_by_field() {
    let out = &run(&group_norm(), &[&Rng(6).vec(60)])[0];
    // Undoing each channel's weight and bias leaves each group of two channels with mean 0
    // and variance 1.
    let (w, b) = ([0.5, 1.0, 1.5, 2.0], [0.0, 0.1, 0.2, 0.3]);
    for group in out.chunks(30).enumerate() {
        let z: Vec<f64> = (0..30)
            .map(|j| {
                let c = (group.0 * 30 + j) / 15;
                (f64::from(group.1[j]) - b[c]) / w[c]
            })
            .collect();
        let mean = z.iter().sum::<f64>() / 30.0;
        let var = z.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 30.0;
        assert!(
            mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-4,
            "{mean} {var}"
        );
    }
    let refused = |f: &dyn Fn(&mut Norm<Vec<f32>>)| {
        let mut m = group_norm();
        if let Op::Norm(n) = &mut m.ops[0] {
            f(n);
        }
        Model::from_bytes(&m.to_vec().unwrap()).unwrap_err()
    };
    let param = |field| Error::OpParam { op: 0, field };
    assert_eq!(refused(&|n| n.group_len = 0), param("group_len"));
    assert_eq!(refused(&|n| n.group_len = 7), param("group_len"));
    assert_eq!(refused(&|n| n.repeat = 0), param("repeat"));
    assert_eq!(refused(&|n| n.repeat = 7), param("repeat"));
    assert_eq!(refused(&|n| n.eps = f32::NAN), param("eps"));
    assert_eq!(refused(&|n| n.eps = -1.0), param("eps"));
    assert_eq!(
        refused(&|n| n.bias = Some(vec![0.0; 3])),
        Error::OpWeight {
            op: 0,
            field: "norm bias"
        }
    );
    assert_eq!(
        refused(&|n| n.output = 0),
        Error::OpOverlap { op: 0, tensor: 0 }
    );
}

/// Attention's product `[1, 2, 3, 4] @ [1, 1, 4, 5]`: two heads, one matrix for both.
fn matmul() -> ModelRepr {
    let op = Op::MatMul {
        a: 0,
        b: 1,
        output: 2,
    };
    let shapes: [&[u32]; 3] = [&[1, 2, 3, 4], &[1, 1, 4, 5], &[1, 2, 3, 5]];
    model(WeightDtype::F32, &shapes, &[0, 1], &[2], vec![op])
}

#[test]
fn matrix_products_are_checked_shape_by_shape() {
    let (a, b) = (Rng(7).vec(24), Rng(8).vec(20));
    let out = &run(&matmul(), &[&a, &b])[0];
    // Row 2 of head 1 against column 4: the sum in order of k, from 0.
    let want = (0..4).fold(0.0f32, |acc, k| acc + a[12 + 2 * 4 + k] * b[k * 5 + 4]);
    assert_eq!(out[15 + 2 * 5 + 4].to_bits(), want.to_bits());
    let refused = |shapes: [&[u32]; 3]| {
        let mut m = matmul();
        (m.tensors, m.arena_bytes) = common::tensors(&shapes);
        Model::from_bytes(&m.to_vec().unwrap()).unwrap_err()
    };
    let shape = Error::OpShape { op: 0, tensor: 2 };
    // Inner dimensions that differ; batch dimensions neither equal nor 1; an output of the
    // wrong size; operands of different ranks.
    assert_eq!(
        refused([&[1, 2, 3, 4], &[1, 1, 3, 5], &[1, 2, 3, 5]]),
        shape
    );
    assert_eq!(
        refused([&[1, 2, 3, 4], &[1, 3, 4, 5], &[1, 2, 3, 5]]),
        shape
    );
    assert_eq!(
        refused([&[1, 2, 3, 4], &[1, 1, 4, 5], &[1, 2, 3, 6]]),
        shape
    );
    assert_eq!(refused([&[1, 2, 3, 4], &[4, 5], &[1, 2, 3, 5]]), shape);
    // Empty matrices: the kernel walks rows of k and n values.
    assert_eq!(
        refused([&[1, 2, 3, 0], &[1, 1, 0, 5], &[1, 2, 3, 5]]),
        shape
    );
    assert_eq!(
        refused([&[1, 2, 3, 4], &[1, 1, 4, 0], &[1, 2, 3, 0]]),
        shape
    );
}

/// Writes seed blobs for the fuzzer when `NNBLOB_WRITE_FUZZ_SEEDS` names a folder.
#[test]
fn write_fuzz_seeds() {
    write_fuzz_seed("small", &small());
    write_fuzz_seed("pools-1d", &pools_1d());
    write_fuzz_seed("conv-transpose", &upsampler());
    write_fuzz_seed("resize-linear", &resizer(ResizeMode::Linear));
    write_fuzz_seed("group-norm", &group_norm());
    write_fuzz_seed("matmul", &matmul());
}

/// A model ending in a Slice of channels 1..3 of the pooled output.
fn sliced() -> ModelRepr {
    let mut m = small();
    m.tensors.push(nnblob_format::encode::TensorRepr::f32(
        vec![1, 2, 1, 1],
        m.tensors[0].offset,
    ));
    m.outputs[0].1 = 3;
    m.ops.push(Op::Slice {
        input: 2,
        output: 3,
        axis: 1,
        start: 1,
        step: 1,
    });
    m
}

/// A blob of format version 2 written before version 3 existed (the digits demo: f32 tensor
/// records, offsets in f32 elements) reads; so does the same bytes declared version 1, as it has
/// no Slice.
#[test]
fn version_1_and_2_blobs_read() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/digits-v2.nnb");
    let mut b = std::fs::read(path).unwrap();
    assert_eq!(&b[field::VERSION], &2u16.to_le_bytes());
    let m = Model::from_bytes(&b).unwrap();
    assert_eq!(m.arena_bytes(), 4 * m.arena_len());
    assert_eq!(m.input(0).unwrap().tensor.offset % 4, 0);
    b[field::VERSION].copy_from_slice(&1u16.to_le_bytes());
    reseal(&mut b);
    assert!(Model::from_bytes(&b).is_ok());
}

/// An op of a kind newer than the blob's declared version is refused by the format crate (a
/// model without tensors, so that only the op decides).
#[test]
fn blobs_may_not_hold_ops_newer_than_their_version() {
    let newer = [
        (
            Op::Slice {
                input: 0,
                output: 0,
                axis: 0,
                start: 0,
                step: 1,
            },
            1u16,
        ),
        (
            Op::Quantize {
                input: 0,
                output: 0,
            },
            2,
        ),
        (
            Op::Dequantize {
                input: 0,
                output: 0,
            },
            2,
        ),
        (
            Op::AdaptiveMaxPool2d {
                input: 0,
                output: 0,
            },
            3,
        ),
    ];
    let mut newer = newer.to_vec();
    if let Some(op) = upsampler().ops.pop() {
        newer.push((op, 3));
    }
    if let Some(op) = resizer(ResizeMode::Nearest).ops.pop() {
        newer.push((op, 4));
    }
    for op in [group_norm().ops.pop(), matmul().ops.pop()]
        .into_iter()
        .flatten()
    {
        newer.push((op, 4));
    }
    for (op, version) in newer {
        let mut m = model(WeightDtype::F32, &[], &[], &[], vec![op]);
        m.arena_bytes = 0;
        let mut b = m.to_vec().unwrap();
        b[field::VERSION].copy_from_slice(&version.to_le_bytes());
        reseal(&mut b);
        assert_eq!(
            Model::from_bytes(&b).unwrap_err(),
            Error::Blob(nnblob_format::Error::OpNotInVersion { op: 0, version })
        );
    }
}

#[test]
fn slices_outside_their_input_are_refused() {
    let set = |f: &mut dyn FnMut(&mut u32, &mut u32, &mut u8)| {
        let mut m = sliced();
        if let Some(Op::Slice {
            start, step, axis, ..
        }) = m.ops.last_mut()
        {
            f(start, step, axis);
        }
        Model::from_bytes(&m.to_vec().unwrap()).unwrap_err()
    };
    // Channels 2..4 of 3: the last index read is past the axis.
    assert_eq!(
        set(&mut |start, _, _| *start = 2),
        Error::OpParam {
            op: 2,
            field: "start"
        }
    );
    // Step 2 from channel 1 reads channel 3 of 3.
    assert_eq!(
        set(&mut |_, step, _| *step = 2),
        Error::OpParam {
            op: 2,
            field: "start"
        }
    );
    assert_eq!(
        set(&mut |_, step, _| *step = 0),
        Error::OpParam {
            op: 2,
            field: "step"
        }
    );
    assert_eq!(
        set(&mut |_, _, axis| *axis = 4),
        Error::OpParam {
            op: 2,
            field: "axis"
        }
    );
    // Slicing axis 2 leaves channels differing from the input's.
    assert!(matches!(
        set(&mut |start, _, axis| {
            *axis = 2;
            *start = 0
        }),
        Error::OpShape { .. }
    ));
}
