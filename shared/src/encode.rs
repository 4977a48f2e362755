//! Encoding (host side, `std` feature): an owned model with PyTorch-layout f32 weights in,
//! blob bytes out.
//!
//! The caller describes ops with [`OwnedOp`] exactly as PyTorch holds them (conv weight
//! `[out][in/groups][kh][kw]`, linear weight `[out][in]`, vectors per channel); [`ModelRepr::to_vec`]
//! reorders conv weights into the kernels' layout ([`crate::layout`]), converts matrices to
//! the chosen [`WeightDtype`], aligns every tensor, writes the metadata and the CRC.
//! It checks only what it needs to encode; the firmware's `Model::from_bytes` is the full
//! validator and the host should run it on the result.

use crate::header::{blob_crc, Header, HEADER_LEN, VERSION};
use crate::layout::{align_up, for_each_conv_weight, ConvWeightShape, WEIGHT_ALIGN};
use crate::meta::{
    ByteRef, ElemType, Info, Io, MatrixRef, Op, OpKind, Provenance, Quant, TensorDesc, TensorList,
    VectorRef,
};
use crate::WeightDtype;
use std::fmt;

/// An op with owned PyTorch-layout f32 weights, an owned list of tensor indices and owned
/// int8 payloads (the bytes as they go on the wire: int8 weights, per-channel records).
pub type OwnedOp = Op<Vec<f32>, Vec<f32>, Vec<u32>, Vec<u8>>;

/// A tensor: shape (batch included, rank 0 to 4), element type and arena offset in bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRepr {
    /// Dimensions, outermost first.
    pub shape: Vec<u32>,
    /// Offset in the arena, in bytes (a multiple of 4).
    pub offset: u32,
    /// Element type.
    pub elem: ElemType,
    /// Quantization of an int8 tensor ([`Quant::NONE`] for f32).
    pub quant: Quant,
}

impl TensorRepr {
    /// An f32 tensor at byte `offset`.
    pub fn f32(shape: Vec<u32>, offset: u32) -> TensorRepr {
        TensorRepr {
            shape,
            offset,
            elem: ElemType::F32,
            quant: Quant::NONE,
        }
    }
}

/// A whole model, owned: what the converter builds and [`ModelRepr::to_vec`] writes.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRepr {
    /// Model name.
    pub name: String,
    /// SHA-256 of the source checkpoint.
    pub source_sha256: [u8; 32],
    /// Converter name and version.
    pub converter: String,
    /// Passes and their parameters, free text.
    pub passes: String,
    /// Element type of weight matrices in the blob.
    pub dtype: WeightDtype,
    /// Arena size in bytes.
    pub arena_bytes: u32,
    /// The tensor table.
    pub tensors: Vec<TensorRepr>,
    /// Named inputs: (name, tensor index).
    pub inputs: Vec<(String, u32)>,
    /// Named outputs: (name, tensor index).
    pub outputs: Vec<(String, u32)>,
    /// Ops in execution order.
    pub ops: Vec<OwnedOp>,
}

/// Why a model could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// A tensor has more than 4 dimensions.
    RankTooHigh { tensor: usize, rank: usize },
    /// A conv weight's length does not match its parameters.
    ConvWeightLen {
        op: usize,
        expected: usize,
        got: usize,
    },
    /// The blob would exceed 4 GiB, or a count does not fit in u32.
    TooLarge,
    /// postcard refused a value (should not happen).
    Postcard,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::RankTooHigh { tensor, rank } => {
                write!(f, "tensor {tensor} has rank {rank}; at most 4 is supported")
            }
            EncodeError::ConvWeightLen { op, expected, got } => {
                write!(
                    f,
                    "op {op}: conv weight has {got} elements, its parameters need {expected}"
                )
            }
            EncodeError::TooLarge => {
                write!(f, "model too large for the blob format (4 GiB, u32 counts)")
            }
            EncodeError::Postcard => write!(f, "metadata serialization failed"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Serializes a tensor list as a postcard byte string, like [`TensorList`] on the wire.
struct ListBytes(Vec<u8>);

impl serde::Serialize for ListBytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        TensorList(&self.0).serialize(s)
    }
}

fn u32_of(n: usize) -> Result<u32, EncodeError> {
    u32::try_from(n).map_err(|_| EncodeError::TooLarge)
}

/// Appends weight tensors to the weights section, each aligned.
struct WeightWriter {
    dtype: WeightDtype,
    bytes: Vec<u8>,
}

impl WeightWriter {
    fn start(&mut self) -> Result<u32, EncodeError> {
        self.bytes.resize(align_up(self.bytes.len()), 0);
        u32_of(self.bytes.len())
    }
    fn matrix(&mut self, w: &[f32]) -> Result<MatrixRef, EncodeError> {
        let offset = self.start()?;
        for &x in w {
            match self.dtype {
                WeightDtype::F32 => self.bytes.extend_from_slice(&x.to_le_bytes()),
                WeightDtype::F16 => self
                    .bytes
                    .extend_from_slice(&half::f16::from_f32(x).to_le_bytes()),
            }
        }
        Ok(MatrixRef {
            offset,
            len: u32_of(w.len())?,
        })
    }
    fn raw(&mut self, b: &[u8]) -> Result<ByteRef, EncodeError> {
        let offset = self.start()?;
        self.bytes.extend_from_slice(b);
        Ok(ByteRef {
            offset,
            len: u32_of(b.len())?,
        })
    }
    fn vector(&mut self, v: &[f32]) -> Result<VectorRef, EncodeError> {
        let offset = self.start()?;
        for &x in v {
            self.bytes.extend_from_slice(&x.to_le_bytes());
        }
        Ok(VectorRef {
            offset,
            len: u32_of(v.len())?,
        })
    }
}

/// Reorders a PyTorch conv weight into the blocked layout of [`crate::layout`].
fn pack_conv(
    op: usize,
    c: &crate::meta::Conv2d<Vec<f32>, Vec<f32>>,
) -> Result<Vec<f32>, EncodeError> {
    let groups = c.groups.max(1) as usize;
    let s = ConvWeightShape {
        groups,
        out_per_group: c.out_channels as usize / groups,
        taps: c.in_channels as usize / groups * c.kernel[0] as usize * c.kernel[1] as usize,
    };
    let expected = s.groups * s.out_per_group * s.taps;
    if expected != c.weight.len() || expected != c.out_channels as usize * s.taps {
        return Err(EncodeError::ConvWeightLen {
            op,
            expected,
            got: c.weight.len(),
        });
    }
    let mut packed = vec![0.0; expected];
    for_each_conv_weight(s, |p, t| packed[p] = c.weight[t]);
    Ok(packed)
}

impl ModelRepr {
    /// Encodes the model as a blob.
    pub fn to_vec(&self) -> Result<Vec<u8>, EncodeError> {
        let weights = std::cell::RefCell::new(WeightWriter {
            dtype: self.dtype,
            bytes: Vec::new(),
        });
        let mut meta = Vec::new();
        let push = |meta: &mut Vec<u8>, v: &dyn erased::Ser| -> Result<(), EncodeError> {
            meta.extend_from_slice(&v.to_bytes()?);
            Ok(())
        };
        let info = Info {
            name: &self.name,
            provenance: Provenance {
                source_sha256: self.source_sha256,
                converter: &self.converter,
                passes: &self.passes,
            },
            arena_size: self.arena_bytes,
            tensor_count: u32_of(self.tensors.len())?,
            input_count: u32_of(self.inputs.len())?,
            output_count: u32_of(self.outputs.len())?,
            op_count: u32_of(self.ops.len())?,
        };
        push(&mut meta, &info)?;
        for (i, t) in self.tensors.iter().enumerate() {
            if t.shape.len() > 4 {
                return Err(EncodeError::RankTooHigh {
                    tensor: i,
                    rank: t.shape.len(),
                });
            }
            let mut dims = [1u32; 4];
            dims[..t.shape.len()].copy_from_slice(&t.shape);
            push(
                &mut meta,
                &TensorDesc {
                    rank: t.shape.len() as u8,
                    elem: t.elem,
                    dims,
                    offset: t.offset,
                    quant: t.quant,
                },
            )?;
        }
        for (name, tensor) in self.inputs.iter().chain(&self.outputs) {
            push(
                &mut meta,
                &Io {
                    name,
                    tensor: *tensor,
                },
            )?;
        }
        for (i, op) in self.ops.iter().enumerate() {
            let mut op = op.clone();
            if let Op::Conv2d(c) = &mut op {
                c.weight = pack_conv(i, c)?;
            }
            let wire = op.map(
                &mut |_: OpKind, m: Vec<f32>| weights.borrow_mut().matrix(&m),
                &mut |v: Vec<f32>| weights.borrow_mut().vector(&v),
                &mut |l: Vec<u32>| Ok(ListBytes(l.iter().flat_map(|x| x.to_le_bytes()).collect())),
                &mut |b: Vec<u8>| weights.borrow_mut().raw(&b),
            );
            push(&mut meta, &wire?)?;
        }
        let weights = weights.into_inner();
        let meta_start = HEADER_LEN;
        let weights_start = align_up(meta_start + meta.len());
        let total = weights_start + weights.bytes.len();
        let mut blob = vec![0u8; total];
        blob[meta_start..meta_start + meta.len()].copy_from_slice(&meta);
        blob[weights_start..].copy_from_slice(&weights.bytes);
        debug_assert_eq!(weights_start % WEIGHT_ALIGN, 0);
        let mut header = Header {
            version: VERSION,
            dtype: self.dtype,
            crc32: 0,
            total_len: u32_of(total)?,
            meta: u32_of(meta_start)?..u32_of(meta_start + meta.len())?,
            weights: u32_of(weights_start)?..u32_of(total)?,
        };
        let mut hb = [0u8; HEADER_LEN];
        header.emit(&mut hb);
        blob[..HEADER_LEN].copy_from_slice(&hb);
        header.crc32 = blob_crc(&blob);
        header.emit(&mut hb);
        blob[..HEADER_LEN].copy_from_slice(&hb);
        Ok(blob)
    }
}

mod erased {
    use super::EncodeError;
    /// Object-safe postcard serialization, so one helper appends any metadata value.
    pub trait Ser {
        fn to_bytes(&self) -> Result<Vec<u8>, EncodeError>;
    }
    impl<T: serde::Serialize> Ser for T {
        fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
            postcard::to_stdvec(self).map_err(|_| EncodeError::Postcard)
        }
    }
}
