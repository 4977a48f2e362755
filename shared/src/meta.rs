//! The metadata section: postcard-encoded values, borrowed from the blob (no allocation).
//!
//! Order on the wire: one [`Info`], then `tensor_count` [`TensorDesc`] records of exactly
//! [`TENSOR_RECORD_LEN`] bytes each (fixed-width integers, so tensor `i` is found without
//! a scan), then `input_count` [`Io`], `output_count` [`Io`], and `op_count` [`Op`]s.
//!
//! The op types are generic over how weights are held: on the wire ([`WireOp`]) they are
//! references into the weights section; on the host ([`crate::encode`]) they are owned
//! PyTorch-layout `f32` vectors. One definition serves both.

use serde::{Deserialize, Serialize};

/// Everything about the model that is not a tensor, an input/output or an op.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Info<'a> {
    /// The model's name.
    pub name: &'a str,
    /// Where the blob came from.
    pub provenance: Provenance<'a>,
    /// Length of the activation arena, in f32 elements.
    pub arena_len: u32,
    /// Number of [`TensorDesc`] records.
    pub tensor_count: u32,
    /// Number of input [`Io`] entries.
    pub input_count: u32,
    /// Number of output [`Io`] entries.
    pub output_count: u32,
    /// Number of ops.
    pub op_count: u32,
}

/// Where a blob came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance<'a> {
    /// SHA-256 of the source checkpoint file.
    pub source_sha256: [u8; 32],
    /// Name and version of the converter, e.g. `nnblob 0.1.0`.
    pub converter: &'a str,
    /// The passes and their parameters (BatchNorm folding precision and eps, ...), free text.
    pub passes: &'a str,
}

/// Encoded size of one [`TensorDesc`] record: rank (1 byte) + 4 dims + offset (4 bytes each).
pub const TENSOR_RECORD_LEN: usize = 1 + 4 * 4 + 4;

/// A tensor: its shape (batch included, rank 0 to 4) and where it lives in the arena.
///
/// Dimensions beyond `rank` are 1, so the element count is the product of all four.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorDesc {
    /// Number of dimensions, 0 to 4.
    pub rank: u8,
    /// Dimensions, outermost first; entries from `rank` on are 1.
    #[serde(with = "fixed_dims")]
    pub dims: [u32; 4],
    /// Offset of the first element in the arena, in f32 elements.
    #[serde(with = "postcard::fixint::le")]
    pub offset: u32,
}

mod fixed_dims {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    pub fn serialize<S: Serializer>(d: &[u32; 4], s: S) -> Result<S::Ok, S::Error> {
        d.map(u32::to_le_bytes).serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u32; 4], D::Error> {
        Ok(<[[u8; 4]; 4]>::deserialize(d)?.map(u32::from_le_bytes))
    }
}

impl TensorDesc {
    /// The dimensions up to the rank (empty for a scalar). Ranks above 4 give all four.
    pub fn shape(&self) -> &[u32] {
        self.dims
            .get(..usize::from(self.rank))
            .unwrap_or(&self.dims)
    }
}

/// A named model input or output: the tensor it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Io<'a> {
    /// Name (as in the source model).
    pub name: &'a str,
    /// Index into the tensor table.
    pub tensor: u32,
}

/// A weight matrix in the weights section: elements of the blob's [`crate::WeightDtype`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatrixRef {
    /// Byte offset from the start of the weights section (16-byte aligned).
    pub offset: u32,
    /// Number of elements.
    pub len: u32,
}

/// A vector in the weights section (bias, scale, shift, slopes): always f32 elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VectorRef {
    /// Byte offset from the start of the weights section (16-byte aligned).
    pub offset: u32,
    /// Number of elements.
    pub len: u32,
}

/// A list of tensor indices, stored as little-endian u32s in a borrowed byte string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorList<'a>(#[serde(borrow)] pub &'a [u8]);

impl<'a> TensorList<'a> {
    /// The indices (a trailing partial entry, refused by validation, is ignored).
    pub fn iter(&self) -> impl Iterator<Item = u32> + 'a {
        self.0
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
    }
    /// Number of complete entries.
    pub fn len(&self) -> usize {
        self.0.len() / 4
    }
    /// True when the list has no entry.
    pub fn is_empty(&self) -> bool {
        self.0.len() < 4
    }
}

/// An activation function, standalone ([`Op::Activation`]) or fused into the op before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Activation<V> {
    /// Identity (nothing fused).
    None,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, 0), 6)`.
    Relu6,
    /// `x > 0 ? x : slope * x`.
    LeakyRelu(f32),
    /// Like LeakyRelu with one learned slope, or one per channel (dimension 1).
    PRelu(V),
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
    /// `x / (1 + exp(-x))`.
    Silu,
    /// `x * min(max(x + 3, 0), 6) / 6`.
    Hardswish,
    /// `min(max(x + 3, 0), 6) / 6`.
    Hardsigmoid,
    /// `x * 0.5 * (1 + erf(x / sqrt 2))`.
    Gelu,
    /// `0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3)))`.
    GeluTanh,
}

/// How the second operand of [`Op::Add`] / [`Op::Mul`] is broadcast against the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Broadcast {
    /// Same element count, element by element.
    None,
    /// One value per channel (dimension 1 of `a`), repeated over the dimensions after it.
    Channel,
    /// One value for all.
    Scalar,
}

/// 2-D convolution, `[1, C, H, W] -> [1, O, OH, OW]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conv2d<M, V> {
    pub input: u32,
    pub output: u32,
    pub in_channels: u32,
    pub out_channels: u32,
    /// `[kh, kw]`.
    pub kernel: [u32; 2],
    /// `[sh, sw]`.
    pub stride: [u32; 2],
    /// `[top, left, bottom, right]` zero padding.
    pub padding: [u32; 4],
    /// `[dh, dw]`.
    pub dilation: [u32; 2],
    pub groups: u32,
    /// `out_channels * in_channels / groups * kh * kw` elements, layout in [`crate::layout`].
    pub weight: M,
    /// `out_channels` elements.
    pub bias: Option<V>,
    pub act: Activation<V>,
}

/// Fully connected layer over the last dimension: `[.., in] -> [.., out]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Linear<M, V> {
    pub input: u32,
    pub output: u32,
    pub in_features: u32,
    pub out_features: u32,
    /// `[out][in]`, row-major (PyTorch's layout).
    pub weight: M,
    /// `out_features` elements.
    pub bias: Option<V>,
    pub act: Activation<V>,
}

/// Per-channel `x * scale[c] + shift[c]` over dimension 1 (an unfolded BatchNorm).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelAffine<V> {
    pub input: u32,
    pub output: u32,
    pub scale: V,
    pub shift: V,
    pub act: Activation<V>,
}

/// A standalone activation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unary<V> {
    pub input: u32,
    pub output: u32,
    pub act: Activation<V>,
}

/// MaxPool2d / AvgPool2d with PyTorch semantics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool2d {
    pub input: u32,
    pub output: u32,
    /// `[kh, kw]`.
    pub kernel: [u32; 2],
    /// `[sh, sw]`.
    pub stride: [u32; 2],
    /// `[top, left, bottom, right]`.
    pub padding: [u32; 4],
    pub ceil_mode: bool,
    /// Average pooling only: count padded positions in the divisor.
    pub count_include_pad: bool,
}

/// Element-wise binary op `output = act(a op broadcast(b))`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Binary<V> {
    pub a: u32,
    pub b: u32,
    pub output: u32,
    pub broadcast: Broadcast,
    pub act: Activation<V>,
}

/// One op. `M`: weight matrix, `V`: f32 vector, `L`: list of tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Op<M, V, L> {
    Conv2d(Conv2d<M, V>),
    Linear(Linear<M, V>),
    ChannelAffine(ChannelAffine<V>),
    Activation(Unary<V>),
    MaxPool2d(Pool2d),
    AvgPool2d(Pool2d),
    /// Output size taken from the output tensor; PyTorch's bins.
    AdaptiveAvgPool2d {
        input: u32,
        output: u32,
    },
    /// `[top, left, bottom, right]`.
    ZeroPad2d {
        input: u32,
        output: u32,
        padding: [u32; 4],
    },
    Add(Binary<V>),
    Mul(Binary<V>),
    /// Concatenation along `axis` of `inputs`, in order.
    Concat {
        inputs: L,
        output: u32,
        axis: u8,
    },
    Softmax {
        input: u32,
        output: u32,
        axis: u8,
    },
    /// `output.dims[i] = input.dims[perm[i]]` for `i < rank`.
    Permute {
        input: u32,
        output: u32,
        perm: [u8; 4],
    },
    Copy {
        input: u32,
        output: u32,
    },
    /// `output = input[.., start : start + step * n : step, ..]` on `axis`, where `n` is the
    /// output's size on that axis; every other axis is the input's.
    Slice {
        input: u32,
        output: u32,
        axis: u8,
        start: u32,
        step: u32,
    },
}

/// An op as stored in a blob.
pub type WireOp<'a> = Op<MatrixRef, VectorRef, TensorList<'a>>;

/// The kind of an op without its parameters (for profiling and messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpKind {
    Conv2d,
    Linear,
    ChannelAffine,
    Activation,
    MaxPool2d,
    AvgPool2d,
    AdaptiveAvgPool2d,
    ZeroPad2d,
    Add,
    Mul,
    Concat,
    Softmax,
    Permute,
    Copy,
    Slice,
}

impl OpKind {
    /// The format version that added this op kind.
    pub const fn since(self) -> u16 {
        match self {
            OpKind::Slice => 2,
            _ => 1,
        }
    }

    /// The op's name as in PyTorch where there is one.
    pub const fn name(self) -> &'static str {
        match self {
            OpKind::Conv2d => "Conv2d",
            OpKind::Linear => "Linear",
            OpKind::ChannelAffine => "ChannelAffine",
            OpKind::Activation => "Activation",
            OpKind::MaxPool2d => "MaxPool2d",
            OpKind::AvgPool2d => "AvgPool2d",
            OpKind::AdaptiveAvgPool2d => "AdaptiveAvgPool2d",
            OpKind::ZeroPad2d => "ZeroPad2d",
            OpKind::Add => "Add",
            OpKind::Mul => "Mul",
            OpKind::Concat => "Concat",
            OpKind::Softmax => "Softmax",
            OpKind::Permute => "Permute",
            OpKind::Copy => "Copy",
            OpKind::Slice => "Slice",
        }
    }
}

impl<A> Activation<A> {
    /// Converts the parameter storage.
    pub fn map<B, E>(self, f: &mut impl FnMut(A) -> Result<B, E>) -> Result<Activation<B>, E> {
        Ok(match self {
            Activation::None => Activation::None,
            Activation::Relu => Activation::Relu,
            Activation::Relu6 => Activation::Relu6,
            Activation::LeakyRelu(s) => Activation::LeakyRelu(s),
            Activation::PRelu(v) => Activation::PRelu(f(v)?),
            Activation::Sigmoid => Activation::Sigmoid,
            Activation::Tanh => Activation::Tanh,
            Activation::Silu => Activation::Silu,
            Activation::Hardswish => Activation::Hardswish,
            Activation::Hardsigmoid => Activation::Hardsigmoid,
            Activation::Gelu => Activation::Gelu,
            Activation::GeluTanh => Activation::GeluTanh,
        })
    }
}

impl<M, V, L> Op<M, V, L> {
    /// The op's kind.
    pub fn kind(&self) -> OpKind {
        match self {
            Op::Conv2d(_) => OpKind::Conv2d,
            Op::Linear(_) => OpKind::Linear,
            Op::ChannelAffine(_) => OpKind::ChannelAffine,
            Op::Activation(_) => OpKind::Activation,
            Op::MaxPool2d(_) => OpKind::MaxPool2d,
            Op::AvgPool2d(_) => OpKind::AvgPool2d,
            Op::AdaptiveAvgPool2d { .. } => OpKind::AdaptiveAvgPool2d,
            Op::ZeroPad2d { .. } => OpKind::ZeroPad2d,
            Op::Add(_) => OpKind::Add,
            Op::Mul(_) => OpKind::Mul,
            Op::Concat { .. } => OpKind::Concat,
            Op::Softmax { .. } => OpKind::Softmax,
            Op::Permute { .. } => OpKind::Permute,
            Op::Copy { .. } => OpKind::Copy,
            Op::Slice { .. } => OpKind::Slice,
        }
    }

    /// The output tensor.
    pub fn output(&self) -> u32 {
        match self {
            Op::Conv2d(c) => c.output,
            Op::Linear(l) => l.output,
            Op::ChannelAffine(a) => a.output,
            Op::Activation(u) => u.output,
            Op::MaxPool2d(p) | Op::AvgPool2d(p) => p.output,
            Op::AdaptiveAvgPool2d { output, .. }
            | Op::ZeroPad2d { output, .. }
            | Op::Concat { output, .. }
            | Op::Softmax { output, .. }
            | Op::Permute { output, .. }
            | Op::Copy { output, .. }
            | Op::Slice { output, .. } => *output,
            Op::Add(b) | Op::Mul(b) => b.output,
        }
    }

    /// Converts the weight storage: `m` for matrices (given the op's kind), `v` for vectors,
    /// `l` for tensor lists. The one place that lists every op's weights.
    pub fn map<M2, V2, L2, E>(
        self,
        m: &mut impl FnMut(OpKind, M) -> Result<M2, E>,
        v: &mut impl FnMut(V) -> Result<V2, E>,
        l: &mut impl FnMut(L) -> Result<L2, E>,
    ) -> Result<Op<M2, V2, L2>, E> {
        Ok(match self {
            Op::Conv2d(c) => Op::Conv2d(Conv2d {
                input: c.input,
                output: c.output,
                in_channels: c.in_channels,
                out_channels: c.out_channels,
                kernel: c.kernel,
                stride: c.stride,
                padding: c.padding,
                dilation: c.dilation,
                groups: c.groups,
                weight: m(OpKind::Conv2d, c.weight)?,
                bias: c.bias.map(&mut *v).transpose()?,
                act: c.act.map(v)?,
            }),
            Op::Linear(x) => Op::Linear(Linear {
                input: x.input,
                output: x.output,
                in_features: x.in_features,
                out_features: x.out_features,
                weight: m(OpKind::Linear, x.weight)?,
                bias: x.bias.map(&mut *v).transpose()?,
                act: x.act.map(v)?,
            }),
            Op::ChannelAffine(a) => Op::ChannelAffine(ChannelAffine {
                input: a.input,
                output: a.output,
                scale: v(a.scale)?,
                shift: v(a.shift)?,
                act: a.act.map(v)?,
            }),
            Op::Activation(u) => Op::Activation(Unary {
                input: u.input,
                output: u.output,
                act: u.act.map(v)?,
            }),
            Op::MaxPool2d(p) => Op::MaxPool2d(p),
            Op::AvgPool2d(p) => Op::AvgPool2d(p),
            Op::AdaptiveAvgPool2d { input, output } => Op::AdaptiveAvgPool2d { input, output },
            Op::ZeroPad2d {
                input,
                output,
                padding,
            } => Op::ZeroPad2d {
                input,
                output,
                padding,
            },
            Op::Add(b) => Op::Add(b.map(v)?),
            Op::Mul(b) => Op::Mul(b.map(v)?),
            Op::Concat {
                inputs,
                output,
                axis,
            } => Op::Concat {
                inputs: l(inputs)?,
                output,
                axis,
            },
            Op::Softmax {
                input,
                output,
                axis,
            } => Op::Softmax {
                input,
                output,
                axis,
            },
            Op::Permute {
                input,
                output,
                perm,
            } => Op::Permute {
                input,
                output,
                perm,
            },
            Op::Copy { input, output } => Op::Copy { input, output },
            Op::Slice {
                input,
                output,
                axis,
                start,
                step,
            } => Op::Slice {
                input,
                output,
                axis,
                start,
                step,
            },
        })
    }
}

impl<A> Binary<A> {
    fn map<B, E>(self, f: &mut impl FnMut(A) -> Result<B, E>) -> Result<Binary<B>, E> {
        Ok(Binary {
            a: self.a,
            b: self.b,
            output: self.output,
            broadcast: self.broadcast,
            act: self.act.map(f)?,
        })
    }
}
