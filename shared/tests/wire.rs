//! Pins the wire format: exact header bytes of an empty model, the section layout, and the
//! CRC against an independent bitwise CRC-32 (reflected polynomial 0xEDB88320).
#![cfg(feature = "std")]

use nnblob_format::encode::{ModelRepr, TensorRepr};
use nnblob_format::header::{field, HEADER_LEN};
use nnblob_format::meta::{Activation, Linear, Op, TENSOR_RECORD_LEN};
use nnblob_format::{BlobView, WeightDtype};

/// CRC-32/ISO-HDLC, bit by bit, straight from its definition.
fn crc32_bitwise(data: impl Iterator<Item = u8>) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn tiny(dtype: WeightDtype) -> ModelRepr {
    ModelRepr {
        name: "m".into(),
        source_sha256: [0xab; 32],
        converter: "c".into(),
        passes: "".into(),
        dtype,
        arena_bytes: 20,
        tensors: vec![
            TensorRepr::f32(vec![1, 2], 0),
            TensorRepr::f32(vec![1, 3], 8),
        ],
        inputs: vec![("x".into(), 0)],
        outputs: vec![("y".into(), 1)],
        ops: vec![Op::Linear(Linear {
            input: 0,
            output: 1,
            in_features: 2,
            out_features: 3,
            weight: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            bias: Some(vec![0.5, -0.5, 1.5]),
            act: Activation::None,
        })],
    }
}

#[test]
fn header_bytes_are_pinned() {
    let blob = tiny(WeightDtype::F16).to_vec().unwrap();
    assert_eq!(HEADER_LEN, 36);
    assert_eq!(&blob[field::MAGIC], b"NNBL");
    assert_eq!(&blob[field::VERSION], &[6, 0]);
    assert_eq!(&blob[field::FLAGS], &[1, 0], "f16 weights");
    assert_eq!(&blob[field::HEADER_LEN], &[36, 0]);
    assert_eq!(&blob[field::RESERVED], &[0, 0]);
    assert_eq!(&blob[field::TOTAL_LEN], &(blob.len() as u32).to_le_bytes());
    assert_eq!(&blob[field::META_OFFSET], &[36, 0, 0, 0]);
    let meta_len = u32::from_le_bytes(blob[field::META_LEN].try_into().unwrap()) as usize;
    let w_off = u32::from_le_bytes(blob[field::WEIGHTS_OFFSET].try_into().unwrap()) as usize;
    assert_eq!(w_off, (36 + meta_len).div_ceil(16) * 16);
    // Weights: 6 f16 (12 bytes), pad to 16, then 3 f32 bias.
    assert_eq!(&blob[field::WEIGHTS_LEN], &[28, 0, 0, 0]);
    assert_eq!(
        &blob[w_off..w_off + 4],
        &[0x00, 0x3c, 0x00, 0x40],
        "1.0 and 2.0 as binary16 LE"
    );
    assert_eq!(&blob[w_off + 16..w_off + 20], &0.5f32.to_le_bytes());
    let crc = crc32_bitwise(blob[..12].iter().chain(&blob[16..]).copied());
    assert_eq!(&blob[field::CRC32], &crc.to_le_bytes());
    // Metadata starts with the Info: name "m" as a postcard string, then the 32 hash bytes.
    assert_eq!(&blob[36..38], &[1, b'm']);
    assert_eq!(&blob[38..70], &[0xab; 32]);
    assert_eq!(TENSOR_RECORD_LEN, 27);
}

/// An int8 tensor record, byte for byte: rank, element type (1: int8), four u32 dims, the byte
/// offset, the f32 scale and the zero point.
#[test]
fn int8_tensor_record_bytes_are_pinned() {
    use nnblob_format::meta::{ElemType, Quant, TensorDesc};
    let t = TensorDesc {
        rank: 2,
        elem: ElemType::I8,
        dims: [1, 3, 1, 1],
        offset: 8,
        quant: Quant {
            scale: 0.5,
            zero_point: -3,
        },
    };
    let bytes = postcard::to_stdvec(&t).unwrap();
    let mut want = vec![2u8, 1];
    for d in [1u32, 3, 1, 1, 8] {
        want.extend_from_slice(&d.to_le_bytes());
    }
    want.extend_from_slice(&0.5f32.to_le_bytes());
    want.push(0xfd);
    assert_eq!(bytes, want);
    assert_eq!(bytes.len(), TENSOR_RECORD_LEN);
}

#[test]
fn view_reads_back_what_was_written() {
    let blob = tiny(WeightDtype::F32).to_vec().unwrap();
    let v = BlobView::new_checked(&blob).unwrap();
    assert_eq!(v.dtype(), WeightDtype::F32);
    assert_eq!(v.info().name, "m");
    assert_eq!(v.tensor(1).unwrap().shape(), &[1, 3]);
    assert_eq!(v.tensor(1).unwrap().offset, 8);
    assert_eq!(v.arena_bytes(), 20);
    assert_eq!(v.inputs().next().unwrap().name, "x");
    assert_eq!(v.outputs().next().unwrap().name, "y");
    assert_eq!(v.ops().count(), 1);
    assert!(v.tensor(2).is_err());
}
