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
    /// Size of the activation arena: in bytes from format version 3, in f32 elements before
    /// (read it through [`crate::BlobView::arena_bytes`], which converts).
    pub arena_size: u32,
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

/// Encoded size of one [`TensorDesc`] record (format version 3): rank and element type (1 byte
/// each), 4 dims and the offset (4 bytes each), the scale (4 bytes) and the zero point (1 byte).
pub const TENSOR_RECORD_LEN: usize = 1 + 1 + 4 * 4 + 4 + 4 + 1;

/// Encoded size of a tensor record in format versions 1 and 2 ([`TensorDescV2`]).
pub const TENSOR_RECORD_LEN_V2: usize = 1 + 4 * 4 + 4;

/// The element type of a tensor in the arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ElemType {
    /// IEEE binary32, 4 bytes (4-byte aligned in the arena).
    F32,
    /// Signed 8-bit integer holding an affine-quantized value ([`Quant`]), 1 byte.
    I8,
}

impl ElemType {
    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            ElemType::F32 => 4,
            ElemType::I8 => 1,
        }
    }
}

/// The affine quantization of an int8 tensor: `real = scale * (q - zero_point)`.
///
/// f32 tensors carry `{ scale: 1.0, zero_point: 0 }`, which nothing reads.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quant {
    /// A positive, finite f32.
    pub scale: f32,
    /// The integer that stands for the real 0.
    pub zero_point: i8,
}

impl Quant {
    /// The parameters of an f32 tensor.
    pub const NONE: Quant = Quant {
        scale: 1.0,
        zero_point: 0,
    };
}

/// A tensor: its shape (batch included, rank 0 to 4), element type and where it lives in the
/// arena.
///
/// Dimensions beyond `rank` are 1, so the element count is the product of all four.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TensorDesc {
    /// Number of dimensions, 0 to 4.
    pub rank: u8,
    /// Element type.
    pub elem: ElemType,
    /// Dimensions, outermost first; entries from `rank` on are 1.
    #[serde(with = "fixed_dims")]
    pub dims: [u32; 4],
    /// Byte offset of the first element in the arena, a multiple of 4.
    #[serde(with = "postcard::fixint::le")]
    pub offset: u32,
    /// Quantization of an [`ElemType::I8`] tensor.
    pub quant: Quant,
}

/// A tensor record of format versions 1 and 2: f32 only, offset in f32 elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorDescV2 {
    /// Number of dimensions, 0 to 4.
    pub rank: u8,
    /// Dimensions, outermost first; entries from `rank` on are 1.
    #[serde(with = "fixed_dims")]
    pub dims: [u32; 4],
    /// Offset of the first element in the arena, in f32 elements.
    #[serde(with = "postcard::fixint::le")]
    pub offset: u32,
}

impl TensorDescV2 {
    /// The same tensor in today's terms (offset in bytes), `None` if the offset overflows.
    pub fn upgrade(self) -> Option<TensorDesc> {
        Some(TensorDesc {
            rank: self.rank,
            elem: ElemType::F32,
            dims: self.dims,
            offset: self.offset.checked_mul(4)?,
            quant: Quant::NONE,
        })
    }
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

/// Bytes of one per-channel record of [`QConv2d::channels`] and [`QLinear::channels`]: the
/// bias, then the [`Requant`] multiplier and shift, each an `i32` little-endian.
pub const QCHANNEL_LEN: usize = 12;

/// How [`Op::QAdd`] aligns its operands before requantizing them: each `q - zero_point` is
/// shifted left by this many bits (room for the rounding of the two rescalings).
pub const QADD_LEFT_SHIFT: u32 = 20;

/// Integer rescaling of an `i32` value: `(x * multiplier + 2^(shift - 1)) >> shift`, computed in
/// 64 bits with an arithmetic shift (one rounding, half-way cases toward +infinity).
///
/// `multiplier` is in `[0, 2^31)`, `shift` in `1..=62`; the converter derives them from a real
/// factor `f = multiplier * 2^-shift` (docs/FORMAT.md, "int8").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requant {
    pub multiplier: i32,
    pub shift: i32,
}

impl Requant {
    /// Whether the parameters are in their documented ranges.
    pub const fn is_valid(self) -> bool {
        self.multiplier >= 0 && self.shift >= 1 && self.shift <= 62
    }

    /// Applies the rescaling (the definition above; callers check [`Requant::is_valid`]).
    #[inline]
    pub fn apply(self, x: i32) -> i32 {
        let shift = (self.shift as u32).clamp(1, 62);
        let p = i64::from(x) * i64::from(self.multiplier) + (1i64 << (shift - 1));
        // |x * multiplier| < 2^62, so the shifted value fits 32 bits unless the factor is
        // above 1 and x large: saturate rather than wrap.
        (p >> shift).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
    }
}

/// The shape parameters of a 2-D convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvGeometry {
    pub in_channels: u32,
    pub out_channels: u32,
    /// `[kh, kw]`.
    pub kernel: [u32; 2],
    /// `[sh, sw]`.
    pub stride: [u32; 2],
    /// `[top, left, bottom, right]` padding.
    pub padding: [u32; 4],
    /// `[dh, dw]`.
    pub dilation: [u32; 2],
    pub groups: u32,
}

impl<M, V> Conv2d<M, V> {
    /// The shape parameters (the fields of version 1's layout, gathered).
    pub fn geometry(&self) -> ConvGeometry {
        ConvGeometry {
            in_channels: self.in_channels,
            out_channels: self.out_channels,
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
            groups: self.groups,
        }
    }
}

impl<M, V> ConvTranspose2d<M, V> {
    /// The shape parameters in a convolution's terms: `padding` is cropped from both ends of
    /// each axis (`output_padding` stays with the op).
    pub fn geometry(&self) -> ConvGeometry {
        let [ph, pw] = self.padding;
        ConvGeometry {
            in_channels: self.in_channels,
            out_channels: self.out_channels,
            kernel: self.kernel,
            stride: self.stride,
            padding: [ph, pw, ph, pw],
            dilation: self.dilation,
            groups: self.groups,
        }
    }
}

/// Transposed 2-D convolution (format version 4), PyTorch's `ConvTranspose2d`: input pixel
/// `(iy, ix)` adds `x * w[ic][o % opg][ky][kx]` to output pixel `(iy * sh - ph + ky * dh, ix * sw -
/// pw + kx * dw)`. The output is `(in - 1) * s - 2 * p + d * (k - 1) + output_padding + 1` long on
/// each axis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConvTranspose2d<M, V> {
    pub input: u32,
    pub output: u32,
    pub in_channels: u32,
    pub out_channels: u32,
    /// `[kh, kw]`.
    pub kernel: [u32; 2],
    /// `[sh, sw]`.
    pub stride: [u32; 2],
    /// `[ph, pw]`, cropped from both ends of each axis.
    pub padding: [u32; 2],
    /// `[oph, opw]`, added at the end of each axis; each below its axis' stride or dilation.
    pub output_padding: [u32; 2],
    /// `[dh, dw]`.
    pub dilation: [u32; 2],
    pub groups: u32,
    /// `in_channels * out_channels / groups * kh * kw` values in PyTorch's layout
    /// `[in][out / groups][kh][kw]`.
    pub weight: M,
    pub bias: Option<V>,
    pub act: Activation<V>,
}

/// How [`Resize`] reads its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResizeMode {
    /// Each output element is one input element: f32 or int8 (of the input's quantization).
    Nearest,
    /// Linear along each axis (PyTorch's `linear` and `bilinear`); f32 only.
    Linear,
}

/// Resampling (format version 5), PyTorch's `F.interpolate` / `nn.Upsample` in modes `nearest`,
/// `linear` and `bilinear`: `[1, C, H, W]` -> `[1, C, OH, OW]`, each axis mapped on its own by
/// [`resize_taps`]. Linear output pixel `(y, x)` with taps `(y0, y1, wy0, wy1)` and `(x0, x1,
/// wx0, wx1)` is, in f32 and in this order,
/// `(in[y0][x0] * wx0 + in[y0][x1] * wx1) * wy0 + (in[y1][x0] * wx0 + in[y1][x1] * wx1) * wy1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resize {
    pub input: u32,
    pub output: u32,
    pub mode: ResizeMode,
    /// PyTorch's `align_corners` (linear only; always false for nearest).
    pub align_corners: bool,
    /// `[height, width]`: PyTorch's f32 factor from output to input coordinates, finite and not
    /// negative: `1 / scale_factor` when a scale factor was given, `in / out` otherwise, and
    /// `(in - 1) / (out - 1)` (0 for one output) with `align_corners`.
    pub scale: [f32; 2],
}

/// The input elements output index `o` of one resized axis reads, `(i0, i1, w0, w1)`: the value
/// is `in[i0] * w0 + in[i1] * w1` (nearest: `i1 == i0`, `w0 == 1`, `w1 == 0`). PyTorch's rules
/// in its f32 arithmetic (`nearest_idx`; `area_pixel_compute_source_index` and
/// `guard_index_and_lambda` for linear), its special cases included: an axis that keeps its
/// length is copied, and nearest doubling reads `o / 2`. `in_len` must be at least 1.
pub fn resize_taps(
    mode: ResizeMode,
    align_corners: bool,
    scale: f32,
    in_len: usize,
    out_len: usize,
    o: usize,
) -> (usize, usize, f32, f32) {
    let last = in_len.saturating_sub(1);
    if out_len == in_len {
        return (o, o, 1.0, 0.0);
    }
    match mode {
        ResizeMode::Nearest => {
            let i = if out_len == 2 * in_len {
                o >> 1
            } else {
                // Not negative: truncation is `floor`.
                ((o as f32 * scale) as usize).min(last)
            };
            (i, i, 1.0, 0.0)
        }
        ResizeMode::Linear => {
            let real = if align_corners {
                scale * o as f32
            } else {
                (scale * (o as f32 + 0.5) - 0.5).max(0.0)
            };
            let i0 = (real as usize).min(last);
            let w1 = (real - i0 as f32).clamp(0.0, 1.0);
            let i1 = if i0 < last { i0 + 1 } else { i0 };
            (i0, i1, 1.0 - w1, w1)
        }
    }
}

/// Normalization by the input's own statistics (format version 5), PyTorch's `LayerNorm` and
/// `GroupNorm`: the f32 input is runs of `group_len` contiguous elements, each normalized by its
/// own mean and biased variance, then scaled and shifted: element `i` of the tensor becomes
/// `(x - mean) * rstd * weight[a] + bias[a]` with `a = (i / repeat) % weight.len`, each factor
/// absent when its vector is. `mean` and the variance are compensated (Kahan) f32 sums in index
/// order divided by `group_len`, the variance's of `(x - mean)²`; `rstd = 1 / sqrt(var + eps)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Norm<V> {
    pub input: u32,
    pub output: u32,
    /// Elements normalized together: LayerNorm's normalized shape; a GroupNorm group's channels
    /// times its positions.
    pub group_len: u32,
    /// Consecutive elements sharing one entry of `weight` and `bias`: 1 for LayerNorm, the
    /// positions of a channel for GroupNorm.
    pub repeat: u32,
    pub eps: f32,
    pub weight: Option<V>,
    pub bias: Option<V>,
}

/// The cell of a recurrent layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cell {
    /// PyTorch's `GRU`: gates `r, z, n` (3 per hidden unit), state `h`.
    Gru,
    /// PyTorch's `LSTM`: gates `i, f, g, o` (4 per hidden unit), state `h` then `c`.
    Lstm,
}

impl Cell {
    /// Gate pre-activations per hidden unit: the rows of each weight matrix per unit.
    pub const fn gates(self) -> usize {
        match self {
            Cell::Gru => 3,
            Cell::Lstm => 4,
        }
    }

    /// Vectors of `hidden` values the state holds: `h` (GRU), `h` and `c` (LSTM).
    pub const fn state_vectors(self) -> usize {
        match self {
            Cell::Gru => 1,
            Cell::Lstm => 2,
        }
    }
}

/// One direction of one layer of a GRU or an LSTM over a sequence (format version 6), with
/// PyTorch's equations and gate order. `G` is [`Cell::gates`], `H` is `hidden`.
///
/// At each time step (increasing, or decreasing when `reverse`) and for each sequence of the
/// batch, in that order: `gx = bias_ih + weight_ih · x_t` and `gh = bias_hh + weight_hh · h`,
/// each as a [`Linear`] layer sums (products added in increasing input index, from the bias or
/// 0), into `scratch`; then per unit `j`, with `σ(v) = 1 / (1 + exp(-v))`:
/// - GRU: `r = σ(gx_r + gh_r)`, `z = σ(gx_z + gh_z)`, `n = tanh(gx_n + r · gh_n)`,
///   `h' = n + z · (h - n)` (PyTorch's form);
/// - LSTM: `i = σ(gx_i + gh_i)`, `f = σ(gx_f + gh_f)`, `g = tanh(gx_g + gh_g)`,
///   `o = σ(gx_o + gh_o)`, `c' = f · c + i · g`, `h' = o · tanh(c')`.
///
/// `h'` is the output's frame `t`; `h` is the previous frame's output, or the state's `h` at the
/// first step. After the last step the state holds the final `h` (and `c`), which is where the
/// next stepping run continues (the engine's `Model::step`); a plain run starts from a zero
/// state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recurrent<M, V> {
    /// f32 `[B, T, I]` when `batch_first`, else `[T, B, I]`.
    pub input: u32,
    /// f32, the input's layout with `H` for `I`: the hidden state after every step.
    pub output: u32,
    /// f32 `[S, B, H]` with `S` = [`Cell::state_vectors`]: the recurrent state, kept between
    /// runs; no other op or tensor may touch its bytes.
    pub state: u32,
    /// f32, `2 * G * H` elements: `gx` then `gh` of one step; nothing outlives the op in it.
    pub scratch: u32,
    pub cell: Cell,
    /// `H`.
    pub hidden: u32,
    pub batch_first: bool,
    /// Steps taken from the last frame to the first (the reverse half of a bidirectional layer).
    pub reverse: bool,
    /// `[G * H][I]`, row-major, PyTorch's `weight_ih_l{k}`.
    pub weight_ih: M,
    /// `[G * H][H]`, PyTorch's `weight_hh_l{k}`.
    pub weight_hh: M,
    /// `G * H` elements.
    pub bias_ih: Option<V>,
    pub bias_hh: Option<V>,
}

/// int8 2-D convolution (format version 3): `[1, C, H, W]` int8 -> `[1, O, OH, OW]` int8.
///
/// `acc[o] = bias[o] + sum (x - x_zero_point) * w`, then
/// `y = clamp(requant[o](acc) + y_zero_point, clamp[0], clamp[1])`. Padding stands for the real
/// 0, that is `x_zero_point`. The zero points and scales are the tensors' ([`TensorDesc::quant`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QConv2d<B> {
    pub input: u32,
    pub output: u32,
    pub geom: ConvGeometry,
    /// `out_channels * in_channels / groups * kh * kw` int8 values, PyTorch's layout
    /// `[out][in / groups][kh][kw]`, symmetric per output channel (zero point 0).
    pub weight: B,
    /// `out_channels` records of [`QCHANNEL_LEN`] bytes.
    pub channels: B,
    /// `[low, high]`: the fused ReLU/ReLU6 as a range, or the full int8 range.
    pub clamp: [i8; 2],
}

/// int8 fully connected layer over the last dimension (format version 3), arithmetic as
/// [`QConv2d`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QLinear<B> {
    pub input: u32,
    pub output: u32,
    pub in_features: u32,
    pub out_features: u32,
    /// `[out][in]` int8, symmetric per output row.
    pub weight: B,
    /// `out_features` records of [`QCHANNEL_LEN`] bytes.
    pub channels: B,
    pub clamp: [i8; 2],
}

/// int8 element-wise addition of two tensors of the same element count (format version 3):
/// `s = a_requant((a - za) << QADD_LEFT_SHIFT) + b_requant((b - zb) << QADD_LEFT_SHIFT)`,
/// `y = clamp(out_requant(s) + zy, clamp[0], clamp[1])`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QAdd {
    pub a: u32,
    pub b: u32,
    pub output: u32,
    pub a_requant: Requant,
    pub b_requant: Requant,
    pub out_requant: Requant,
    pub clamp: [i8; 2],
}

/// A byte range in the weights section (int8 weights, per-channel records).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByteRef {
    /// Byte offset from the start of the weights section (16-byte aligned).
    pub offset: u32,
    /// Number of bytes.
    pub len: u32,
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

/// One op. `M`: weight matrix, `V`: f32 vector, `L`: list of tensors, `B`: raw bytes (int8
/// weights and per-channel records).
///
/// New kinds are appended, so the variant indices of older versions keep their meaning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Op<M, V, L, B> {
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
    /// f32 -> int8 with the output's quantization: `clamp(round(x / scale) + zero_point)`,
    /// rounding half-way cases to even.
    Quantize {
        input: u32,
        output: u32,
    },
    /// int8 -> f32 with the input's quantization: `(q - zero_point) as f32 * scale`.
    Dequantize {
        input: u32,
        output: u32,
    },
    QConv2d(QConv2d<B>),
    QLinear(QLinear<B>),
    QAdd(QAdd),
    /// Output size taken from the output tensor; PyTorch's bins (those of
    /// [`Op::AdaptiveAvgPool2d`]), the maximum of each (format version 4).
    AdaptiveMaxPool2d {
        input: u32,
        output: u32,
    },
    ConvTranspose2d(ConvTranspose2d<M, V>),
    Resize(Resize),
    Norm(Norm<V>),
    /// `output = a @ b` (format version 5), f32: `[.., M, K] @ [.., K, N]` over the leading
    /// (batch) dimensions of the output, which each operand has too or has all 1 (one matrix
    /// for every batch); each element is `0 + Σ a[m][k] · b[k][n]` with `k` increasing.
    MatMul {
        a: u32,
        b: u32,
        output: u32,
    },
    Recurrent(Recurrent<M, V>),
}

/// An op as stored in a blob.
pub type WireOp<'a> = Op<MatrixRef, VectorRef, TensorList<'a>, ByteRef>;

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
    Quantize,
    Dequantize,
    QConv2d,
    QLinear,
    QAdd,
    AdaptiveMaxPool2d,
    ConvTranspose2d,
    Resize,
    Norm,
    MatMul,
    Recurrent,
}

impl OpKind {
    /// The format version that added this op kind.
    pub const fn since(self) -> u16 {
        match self {
            OpKind::Slice => 2,
            OpKind::Quantize
            | OpKind::Dequantize
            | OpKind::QConv2d
            | OpKind::QLinear
            | OpKind::QAdd => 3,
            OpKind::AdaptiveMaxPool2d | OpKind::ConvTranspose2d => 4,
            OpKind::Resize | OpKind::Norm | OpKind::MatMul => 5,
            OpKind::Recurrent => 6,
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
            OpKind::Quantize => "Quantize",
            OpKind::Dequantize => "Dequantize",
            OpKind::QConv2d => "QConv2d",
            OpKind::QLinear => "QLinear",
            OpKind::QAdd => "QAdd",
            OpKind::AdaptiveMaxPool2d => "AdaptiveMaxPool2d",
            OpKind::ConvTranspose2d => "ConvTranspose2d",
            OpKind::Resize => "Resize",
            OpKind::Norm => "Norm",
            OpKind::MatMul => "MatMul",
            OpKind::Recurrent => "Recurrent",
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

impl<M, V, L, B> Op<M, V, L, B> {
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
            Op::Quantize { .. } => OpKind::Quantize,
            Op::Dequantize { .. } => OpKind::Dequantize,
            Op::QConv2d(_) => OpKind::QConv2d,
            Op::QLinear(_) => OpKind::QLinear,
            Op::QAdd(_) => OpKind::QAdd,
            Op::AdaptiveMaxPool2d { .. } => OpKind::AdaptiveMaxPool2d,
            Op::ConvTranspose2d(_) => OpKind::ConvTranspose2d,
            Op::Resize(_) => OpKind::Resize,
            Op::Norm(_) => OpKind::Norm,
            Op::MatMul { .. } => OpKind::MatMul,
            Op::Recurrent(_) => OpKind::Recurrent,
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
            | Op::AdaptiveMaxPool2d { output, .. }
            | Op::ZeroPad2d { output, .. }
            | Op::Concat { output, .. }
            | Op::Softmax { output, .. }
            | Op::Permute { output, .. }
            | Op::Copy { output, .. }
            | Op::Slice { output, .. }
            | Op::Quantize { output, .. }
            | Op::Dequantize { output, .. } => *output,
            Op::Add(b) | Op::Mul(b) => b.output,
            Op::QConv2d(c) => c.output,
            Op::QLinear(l) => l.output,
            Op::QAdd(a) => a.output,
            Op::ConvTranspose2d(c) => c.output,
            Op::Resize(r) => r.output,
            Op::Norm(n) => n.output,
            Op::MatMul { output, .. } => *output,
            Op::Recurrent(r) => r.output,
        }
    }

    /// Converts the weight storage: `m` for matrices (given the op's kind), `v` for vectors,
    /// `l` for tensor lists, `b` for byte strings. The one place that lists every op's weights.
    pub fn map<M2, V2, L2, B2, E>(
        self,
        m: &mut impl FnMut(OpKind, M) -> Result<M2, E>,
        v: &mut impl FnMut(V) -> Result<V2, E>,
        l: &mut impl FnMut(L) -> Result<L2, E>,
        b: &mut impl FnMut(B) -> Result<B2, E>,
    ) -> Result<Op<M2, V2, L2, B2>, E> {
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
            Op::Quantize { input, output } => Op::Quantize { input, output },
            Op::Dequantize { input, output } => Op::Dequantize { input, output },
            Op::QConv2d(c) => Op::QConv2d(QConv2d {
                input: c.input,
                output: c.output,
                geom: c.geom,
                weight: b(c.weight)?,
                channels: b(c.channels)?,
                clamp: c.clamp,
            }),
            Op::QLinear(x) => Op::QLinear(QLinear {
                input: x.input,
                output: x.output,
                in_features: x.in_features,
                out_features: x.out_features,
                weight: b(x.weight)?,
                channels: b(x.channels)?,
                clamp: x.clamp,
            }),
            Op::QAdd(a) => Op::QAdd(a),
            Op::AdaptiveMaxPool2d { input, output } => Op::AdaptiveMaxPool2d { input, output },
            Op::ConvTranspose2d(c) => Op::ConvTranspose2d(ConvTranspose2d {
                input: c.input,
                output: c.output,
                in_channels: c.in_channels,
                out_channels: c.out_channels,
                kernel: c.kernel,
                stride: c.stride,
                padding: c.padding,
                output_padding: c.output_padding,
                dilation: c.dilation,
                groups: c.groups,
                weight: m(OpKind::ConvTranspose2d, c.weight)?,
                bias: c.bias.map(&mut *v).transpose()?,
                act: c.act.map(v)?,
            }),
            Op::Resize(r) => Op::Resize(r),
            Op::Norm(n) => Op::Norm(Norm {
                input: n.input,
                output: n.output,
                group_len: n.group_len,
                repeat: n.repeat,
                eps: n.eps,
                weight: n.weight.map(&mut *v).transpose()?,
                bias: n.bias.map(v).transpose()?,
            }),
            Op::MatMul { a, b, output } => Op::MatMul { a, b, output },
            Op::Recurrent(r) => Op::Recurrent(Recurrent {
                input: r.input,
                output: r.output,
                state: r.state,
                scratch: r.scratch,
                cell: r.cell,
                hidden: r.hidden,
                batch_first: r.batch_first,
                reverse: r.reverse,
                weight_ih: m(OpKind::Recurrent, r.weight_ih)?,
                weight_hh: m(OpKind::Recurrent, r.weight_hh)?,
                bias_ih: r.bias_ih.map(&mut *v).transpose()?,
                bias_hh: r.bias_hh.map(v).transpose()?,
            }),
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
