//! Malformed int8 blobs (format version 3): every new field is checked by `Model::from_bytes`,
//! each fault with its own error, and a well-formed one runs.

mod common;
use common::*;
use nnblob_firmware::{Error, Model, NoProfiler};
use nnblob_format::encode::{ModelRepr, TensorRepr};
use nnblob_format::meta::{ConvGeometry, ElemType, Op, QConv2d, Quant, Requant, QCHANNEL_LEN};
use nnblob_format::WeightDtype;

fn q(scale: f32, zero_point: i8) -> Quant {
    Quant { scale, zero_point }
}

/// int8 `[1,2,4,4]` -> QConv2d 3x3 pad 1 -> `[1,3,4,4]` -> MaxPool2d 2 -> `[1,3,2,2]`.
fn small_int8() -> ModelRepr {
    let int8 = |shape: Vec<u32>, offset: u32, quant: Quant| TensorRepr {
        shape,
        offset,
        elem: ElemType::I8,
        quant,
    };
    let mut channels = Vec::new();
    for c in 0..3i32 {
        for word in [100 * c - 50, 1 << 30, 38] {
            channels.extend_from_slice(&word.to_le_bytes());
        }
    }
    let weight: Vec<u8> = (0..3 * 2 * 9).map(|i| (i * 37 % 255) as u8).collect();
    let conv = Op::QConv2d(QConv2d {
        input: 0,
        output: 1,
        geom: ConvGeometry {
            in_channels: 2,
            out_channels: 3,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1, 1, 1],
            dilation: [1, 1],
            groups: 1,
        },
        weight,
        channels,
        clamp: [-128, 127],
    });
    let mut m = model(WeightDtype::F16, &[], &[0], &[2], vec![conv]);
    m.tensors = vec![
        int8(vec![1, 2, 4, 4], 0, q(0.05, 3)),
        int8(vec![1, 3, 4, 4], 32, q(0.1, -5)),
        int8(vec![1, 3, 2, 2], 80, q(0.1, -5)),
    ];
    m.arena_bytes = 92;
    m.ops.push(Op::MaxPool2d(nnblob_format::meta::Pool2d {
        input: 1,
        output: 2,
        kernel: [2, 2],
        stride: [2, 2],
        padding: [0; 4],
        ceil_mode: false,
        count_include_pad: false,
    }));
    m
}

fn refused(m: &ModelRepr) -> Error {
    Model::from_bytes(&m.to_vec().unwrap()).unwrap_err()
}

#[test]
fn a_well_formed_int8_blob_runs_both_ways() {
    let bytes = small_int8().to_vec().unwrap();
    let model = Model::from_bytes(&bytes).unwrap();
    assert!(model.is_quantized());
    assert_eq!(model.arena_bytes(), 92);
    assert_eq!(model.arena_len(), 23);
    let mut arena = vec![0f32; model.arena_len()];
    let input: Vec<i8> = (0..32).map(|i| (i * 7 % 256) as i8).collect();
    let mut out = vec![0i8; 12];
    model
        .run_quantized(&[&input], &mut [&mut out], &mut arena, &mut NoProfiler)
        .unwrap();
    // The f32 entry point: inputs that quantize to the same int8 give the dequantized outputs.
    let real: Vec<f32> = input
        .iter()
        .map(|&v| (i32::from(v) - 3) as f32 * 0.05)
        .collect();
    let mut y = vec![0f32; 12];
    model.run(&real, &mut y, &mut arena).unwrap();
    let want: Vec<f32> = out
        .iter()
        .map(|&v| (i32::from(v) + 5) as f32 * 0.1)
        .collect();
    assert_eq!(y, want);
    // run_quantized refuses f32 edges.
    let f32_model = common::model(WeightDtype::F32, &[&[1, 2]], &[0], &[0], vec![]);
    let b = f32_model.to_vec().unwrap();
    let m = Model::from_bytes(&b).unwrap();
    let mut a = vec![0f32; m.arena_len()];
    let x = [0i8; 2];
    let mut o = [0i8; 2];
    assert_eq!(
        m.run_quantized(&[&x], &mut [&mut o], &mut a, &mut NoProfiler),
        Err(Error::IoType {
            index: 0,
            input: true
        })
    );
}

#[test]
fn every_int8_field_is_checked() {
    let fmt = |t| Error::Blob(nnblob_format::Error::BadTensorRecord { tensor: t });
    // Scales: zero, negative, NaN, infinite.
    for scale in [0.0, -1.0, f32::NAN, f32::INFINITY] {
        let mut m = small_int8();
        m.tensors[1].quant.scale = scale;
        assert_eq!(refused(&m), fmt(1), "scale {scale}");
    }
    // Offsets not 4-byte aligned.
    let mut m = small_int8();
    m.tensors[2].offset = 81;
    assert_eq!(refused(&m), fmt(2));
    // An int8 op on an f32 tensor, and a pool that would change the quantization.
    let mut m = small_int8();
    m.tensors[0].elem = ElemType::F32;
    m.tensors[0].quant = Quant::NONE;
    (m.tensors[0].offset, m.arena_bytes) = (128, 256);
    assert_eq!(refused(&m), Error::OpType { op: 0, tensor: 0 });
    let mut m = small_int8();
    m.tensors[2].quant.zero_point = 0;
    assert_eq!(refused(&m), Error::OpType { op: 1, tensor: 1 });
    // A rescaling out of its range, a reversed clamp, a short channel table, short weights.
    let bad_requant = |r: Requant| {
        let mut m = small_int8();
        if let Op::QConv2d(c) = &mut m.ops[0] {
            c.channels[QCHANNEL_LEN + 4..QCHANNEL_LEN + 8]
                .copy_from_slice(&r.multiplier.to_le_bytes());
            c.channels[QCHANNEL_LEN + 8..QCHANNEL_LEN + 12].copy_from_slice(&r.shift.to_le_bytes());
        }
        refused(&m)
    };
    let channels_field = Error::OpParam {
        op: 0,
        field: "conv channels",
    };
    for r in [
        Requant {
            multiplier: -1,
            shift: 31,
        },
        Requant {
            multiplier: 1,
            shift: 0,
        },
        Requant {
            multiplier: 1,
            shift: 63,
        },
    ] {
        assert_eq!(bad_requant(r), channels_field, "{r:?}");
    }
    let mut m = small_int8();
    if let Op::QConv2d(c) = &mut m.ops[0] {
        c.clamp = [10, -10];
    }
    assert_eq!(
        refused(&m),
        Error::OpParam {
            op: 0,
            field: "clamp"
        }
    );
    let mut m = small_int8();
    if let Op::QConv2d(c) = &mut m.ops[0] {
        c.channels.pop();
    }
    assert_eq!(
        refused(&m),
        Error::OpWeight {
            op: 0,
            field: "conv channels"
        }
    );
    let mut m = small_int8();
    if let Op::QConv2d(c) = &mut m.ops[0] {
        c.weight.pop();
    }
    assert_eq!(
        refused(&m),
        Error::OpWeight {
            op: 0,
            field: "conv weight"
        }
    );
    // The arena must hold the int8 tensors' bytes.
    let mut m = small_int8();
    m.arena_bytes = 91;
    assert_eq!(refused(&m), Error::TensorOutsideArena { tensor: 2 });
}

/// Writes the int8 seed blob for the fuzzer when `NNBLOB_WRITE_FUZZ_SEEDS` names a folder.
#[test]
fn write_fuzz_seeds() {
    write_fuzz_seed("small-int8", &small_int8());
}
