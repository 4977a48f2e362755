//! Load-time validation: every op's tensors, shapes, parameters and weight references,
//! checked once so that the kernels cannot index out of bounds. In: the checked blob view.
//! Out: `Ok` or the first fault, with the op index and the field.

use crate::weights::Weights;
use crate::{Error, Tensor};
use nnblob_format::meta::{
    Activation, Broadcast, ByteRef, ConvGeometry, ElemType, MatrixRef, Op, Recurrent, Requant,
    ResizeMode, VectorRef, WireOp, QCHANNEL_LEN,
};
use nnblob_format::BlobView;

/// The element types an op's tensors must have.
enum Types {
    /// Every tensor f32.
    F32,
    /// Every tensor int8.
    I8,
    /// Input f32, output int8 (`Quantize`) or the reverse (`Dequantize`).
    Convert(ElemType, ElemType),
    /// Inputs and output of one type; int8 ones of the same quantization (values move, not
    /// change).
    Same,
}

fn types(op: &WireOp<'_>) -> Types {
    match op {
        Op::Conv2d(_)
        | Op::ConvTranspose2d(_)
        | Op::Linear(_)
        | Op::ChannelAffine(_)
        | Op::Activation(_)
        | Op::Add(_)
        | Op::Mul(_)
        | Op::Softmax { .. }
        | Op::Norm(_)
        | Op::MatMul { .. }
        | Op::Recurrent(_) => Types::F32,
        Op::Resize(r) if r.mode == ResizeMode::Linear => Types::F32,
        Op::QConv2d(_) | Op::QLinear(_) | Op::QAdd(_) => Types::I8,
        Op::Quantize { .. } => Types::Convert(ElemType::F32, ElemType::I8),
        Op::Dequantize { .. } => Types::Convert(ElemType::I8, ElemType::F32),
        Op::MaxPool2d(_)
        | Op::AvgPool2d(_)
        | Op::AdaptiveAvgPool2d { .. }
        | Op::AdaptiveMaxPool2d { .. }
        | Op::ZeroPad2d { .. }
        | Op::Concat { .. }
        | Op::Permute { .. }
        | Op::Copy { .. }
        | Op::Slice { .. }
        | Op::Resize(_) => Types::Same,
    }
}

/// The op's input tensors (a list for `Concat`).
fn for_each_input(
    op: &WireOp<'_>,
    mut f: impl FnMut(u32) -> Result<(), Error>,
) -> Result<(), Error> {
    match op {
        Op::Conv2d(c) => f(c.input),
        Op::ConvTranspose2d(c) => f(c.input),
        Op::Resize(r) => f(r.input),
        Op::Norm(n) => f(n.input),
        Op::Recurrent(r) => f(r.input),
        Op::MatMul { a, b, .. } => {
            f(*a)?;
            f(*b)
        }
        Op::Linear(l) => f(l.input),
        Op::ChannelAffine(a) => f(a.input),
        Op::Activation(u) => f(u.input),
        Op::MaxPool2d(p) | Op::AvgPool2d(p) => f(p.input),
        Op::Add(b) | Op::Mul(b) => {
            f(b.a)?;
            f(b.b)
        }
        Op::QConv2d(c) => f(c.input),
        Op::QLinear(l) => f(l.input),
        Op::QAdd(q) => {
            f(q.a)?;
            f(q.b)
        }
        Op::Concat { inputs, .. } => inputs.iter().try_for_each(f),
        Op::AdaptiveAvgPool2d { input, .. }
        | Op::AdaptiveMaxPool2d { input, .. }
        | Op::ZeroPad2d { input, .. }
        | Op::Softmax { input, .. }
        | Op::Permute { input, .. }
        | Op::Copy { input, .. }
        | Op::Slice { input, .. }
        | Op::Quantize { input, .. }
        | Op::Dequantize { input, .. } => f(*input),
    }
}

/// Sizes of a pooling/conv window along one axis.
pub(crate) struct Axis {
    pub inp: usize,
    pub k: usize,
    pub s: usize,
    pub d: usize,
    pub pad_begin: usize,
    pub pad_end: usize,
}

impl Axis {
    /// PyTorch's output length, `None` if the window does not fit or a value overflows.
    pub fn out_len(&self, ceil_mode: bool) -> Option<usize> {
        if self.k == 0 || self.s == 0 || self.d == 0 {
            return None;
        }
        let padded = self
            .inp
            .checked_add(self.pad_begin)?
            .checked_add(self.pad_end)?;
        let span = self.d.checked_mul(self.k - 1)?.checked_add(1)?;
        let room = padded.checked_sub(span)?;
        let mut out = if ceil_mode {
            room.div_ceil(self.s)
        } else {
            room / self.s
        } + 1;
        // The last window must start inside the input or the left padding.
        if ceil_mode && (out - 1) * self.s >= self.inp + self.pad_begin {
            out -= 1;
        }
        Some(out)
    }
}

pub(crate) struct Checker<'v, 'a> {
    pub view: &'v BlobView<'a>,
    pub weights: Weights<'a>,
    pub op: u32,
}

fn overlaps(a: &Tensor, b: &Tensor) -> bool {
    a.bytes > 0 && b.bytes > 0 && a.offset < b.offset + b.bytes && b.offset < a.offset + a.bytes
}

impl Checker<'_, '_> {
    fn tensor(&self, i: u32) -> Result<Tensor, Error> {
        Tensor::get(self.view, i).map_err(|_| Error::OpTensor {
            op: self.op,
            tensor: i,
        })
    }
    fn shape(&self, t: u32) -> Error {
        Error::OpShape {
            op: self.op,
            tensor: t,
        }
    }
    fn param(&self, field: &'static str) -> Error {
        Error::OpParam { op: self.op, field }
    }
    fn ensure(&self, ok: bool, e: Error) -> Result<(), Error> {
        if ok {
            Ok(())
        } else {
            Err(e)
        }
    }
    /// The output must be disjoint from the input (`in_place`: or exactly the same range).
    fn disjoint(&self, input: (u32, &Tensor), out: &Tensor, in_place: bool) -> Result<(), Error> {
        let same = input.1.offset == out.offset && input.1.bytes == out.bytes;
        self.ensure(
            !overlaps(input.1, out) || (in_place && same),
            Error::OpOverlap {
                op: self.op,
                tensor: input.0,
            },
        )
    }
    fn matrix(&self, m: &MatrixRef, len: Option<usize>, field: &'static str) -> Result<(), Error> {
        let ok = self.weights.matrix(*m).is_some() && len == Some(m.len as usize);
        self.ensure(ok, Error::OpWeight { op: self.op, field })
    }
    /// An int8 weight string of `len` bytes.
    fn bytes(&self, b: &ByteRef, len: Option<usize>, field: &'static str) -> Result<(), Error> {
        let ok = self.weights.bytes(*b).is_some() && len == Some(b.len as usize);
        self.ensure(ok, Error::OpWeight { op: self.op, field })
    }
    /// A table of `channels` per-channel records, each rescaling in its documented range.
    fn records(&self, b: &ByteRef, channels: usize, field: &'static str) -> Result<(), Error> {
        self.bytes(b, channels.checked_mul(QCHANNEL_LEN), field)?;
        let table = self.weights.bytes(*b).unwrap_or(&[]);
        for c in 0..channels {
            let ch = crate::kernels::int8::channel(table, c);
            self.requant(ch.requant, field)?;
        }
        Ok(())
    }
    fn requant(&self, r: Requant, field: &'static str) -> Result<(), Error> {
        self.ensure(r.is_valid(), self.param(field))
    }
    fn clamp(&self, c: [i8; 2]) -> Result<(), Error> {
        self.ensure(c[0] <= c[1], self.param("clamp"))
    }
    /// The element types of the op's tensors ([`types`]).
    fn types(&self, op: &WireOp<'_>) -> Result<(), Error> {
        let out_i = op.output();
        let out = self.tensor(out_i)?;
        let rule = types(op);
        for_each_input(op, |i| {
            let t = self.tensor(i)?;
            let ok = match rule {
                Types::F32 => t.elem == ElemType::F32 && out.elem == ElemType::F32,
                Types::I8 => t.elem == ElemType::I8 && out.elem == ElemType::I8,
                Types::Convert(a, b) => t.elem == a && out.elem == b,
                Types::Same => {
                    t.elem == out.elem && (t.elem == ElemType::F32 || t.quant == out.quant)
                }
            };
            self.ensure(
                ok,
                Error::OpType {
                    op: self.op,
                    tensor: i,
                },
            )
        })
    }
    /// Shape and parameter checks of a convolution; returns the weight count.
    fn conv(&self, input: u32, output: u32, c: &ConvGeometry) -> Result<Option<usize>, Error> {
        let (it, ot) = (self.tensor(input)?, self.tensor(output)?);
        let [ci, h, w] = self.nchw(&it, input)?;
        let [co, oh, ow] = self.nchw(&ot, output)?;
        let g = c.groups as usize;
        self.ensure(g > 0 && ci % g == 0 && co % g == 0, self.param("groups"))?;
        self.ensure(ci == c.in_channels as usize, self.shape(input))?;
        self.ensure(co == c.out_channels as usize, self.shape(output))?;
        let [pt, pl, pb, pr] = c.padding.map(|p| p as usize);
        let y = Axis {
            inp: h,
            k: c.kernel[0] as usize,
            s: c.stride[0] as usize,
            d: c.dilation[0] as usize,
            pad_begin: pt,
            pad_end: pb,
        };
        let x = Axis {
            inp: w,
            k: c.kernel[1] as usize,
            s: c.stride[1] as usize,
            d: c.dilation[1] as usize,
            pad_begin: pl,
            pad_end: pr,
        };
        let (ey, ex) = (
            y.out_len(false)
                .ok_or(self.param("kernel/stride/dilation/padding"))?,
            x.out_len(false)
                .ok_or(self.param("kernel/stride/dilation/padding"))?,
        );
        self.ensure(ey == oh && ex == ow, self.shape(output))?;
        let taps = (ci / g).checked_mul(y.k).and_then(|n| n.checked_mul(x.k));
        self.ensure(
            taps.is_some_and(|t| t <= u32::MAX as usize),
            self.param("kernel"),
        )?;
        self.disjoint((input, &it), &ot, false)?;
        Ok(taps.and_then(|t| t.checked_mul(co)))
    }
    /// Shape checks of a fully connected layer.
    fn linear(&self, input: u32, output: u32, fi: usize, fo: usize) -> Result<(), Error> {
        let (it, ot) = (self.tensor(input)?, self.tensor(output)?);
        self.ensure(it.rank >= 1 && it.last() == fi && fi > 0, self.shape(input))?;
        let rows = it.count / fi;
        self.ensure(
            ot.rank >= 1 && ot.last() == fo && rows.checked_mul(fo) == Some(ot.count),
            self.shape(output),
        )?;
        self.disjoint((input, &it), &ot, false)
    }
    fn vector(&self, v: &VectorRef, len: usize, field: &'static str) -> Result<(), Error> {
        let ok = self.weights.vector(*v).is_some() && v.len as usize == len;
        self.ensure(ok, Error::OpWeight { op: self.op, field })
    }
    fn act(&self, act: &Activation<VectorRef>, out: &Tensor) -> Result<(), Error> {
        if let Activation::PRelu(v) = act {
            let len = if v.len == 1 { 1 } else { out.channels() };
            self.vector(v, len, "prelu slopes")?;
        }
        Ok(())
    }
    fn same_shape(&self, a: &Tensor, b: &Tensor, bi: u32) -> Result<(), Error> {
        self.ensure(a.rank == b.rank && a.dims == b.dims, self.shape(bi))
    }
    /// Shapes, weights and overlaps of a GRU / LSTM layer (the state's isolation from the rest
    /// of the model is [`check_states`]'s).
    fn recurrent(&self, r: &Recurrent<MatrixRef, VectorRef>) -> Result<(), Error> {
        let (it, ot) = (self.tensor(r.input)?, self.tensor(r.output)?);
        let (st, sc) = (self.tensor(r.state)?, self.tensor(r.scratch)?);
        let h = r.hidden as usize;
        self.ensure(h > 0, self.param("hidden"))?;
        let [d0, d1, i, _] = it.dims;
        self.ensure(it.rank == 3 && it.count > 0, self.shape(r.input))?;
        let batch = if r.batch_first { d0 } else { d1 };
        self.ensure(
            ot.rank == 3 && ot.dims == [d0, d1, h, 1],
            self.shape(r.output),
        )?;
        let f32s = |t: &Tensor, ti: u32| {
            self.ensure(
                t.elem == ElemType::F32,
                Error::OpType {
                    op: self.op,
                    tensor: ti,
                },
            )
        };
        f32s(&st, r.state)?;
        f32s(&sc, r.scratch)?;
        let vectors = r.cell.state_vectors();
        self.ensure(
            st.rank == 3 && st.dims == [vectors, batch, h, 1],
            self.shape(r.state),
        )?;
        let gates = r.cell.gates() * h;
        self.ensure(
            Some(sc.count) == gates.checked_mul(2),
            self.shape(r.scratch),
        )?;
        self.matrix(&r.weight_ih, gates.checked_mul(i), "weight_ih")?;
        self.matrix(&r.weight_hh, gates.checked_mul(h), "weight_hh")?;
        if let Some(b) = &r.bias_ih {
            self.vector(b, gates, "bias_ih")?;
        }
        if let Some(b) = &r.bias_hh {
            self.vector(b, gates, "bias_hh")?;
        }
        // Four separate buffers: the kernel holds them all at once.
        let all = [
            (r.input, it),
            (r.output, ot),
            (r.state, st),
            (r.scratch, sc),
        ];
        for (k, (_, a)) in all.iter().enumerate() {
            for (bi, b) in all.iter().skip(k + 1) {
                self.disjoint((*bi, b), a, false)?;
            }
        }
        Ok(())
    }

    /// A `[1, C, H, W]` tensor.
    fn nchw(&self, t: &Tensor, ti: u32) -> Result<[usize; 3], Error> {
        self.ensure(t.rank == 4 && t.dims[0] == 1, self.shape(ti))?;
        Ok([t.dims[1], t.dims[2], t.dims[3]])
    }

    // `dims` are `[usize; 4]`; every index is below a rank the format crate checked to be
    // at most 4 (and at least 2 where `r - 2` is used), or taken `% 4`/`min(3)`.
    #[allow(clippy::indexing_slicing)]
    pub fn check(&self, op: &WireOp<'_>) -> Result<(), Error> {
        self.types(op)?;
        match op {
            Op::Conv2d(c) => {
                let weights = self.conv(c.input, c.output, &c.geometry())?;
                self.matrix(&c.weight, weights, "conv weight")?;
                if let Some(b) = &c.bias {
                    self.vector(b, c.out_channels as usize, "conv bias")?;
                }
                self.act(&c.act, &self.tensor(c.output)?)
            }
            Op::ConvTranspose2d(c) => {
                let (it, ot) = (self.tensor(c.input)?, self.tensor(c.output)?);
                let [ci, h, w] = self.nchw(&it, c.input)?;
                let [co, oh, ow] = self.nchw(&ot, c.output)?;
                let g = c.groups as usize;
                self.ensure(g > 0 && ci % g == 0 && co % g == 0, self.param("groups"))?;
                self.ensure(ci == c.in_channels as usize, self.shape(c.input))?;
                self.ensure(co == c.out_channels as usize, self.shape(c.output))?;
                let u = |v: u32| v as usize;
                // PyTorch's output length, `None` on a zero parameter, an output padding not
                // below the stride or dilation, an empty output or an overflow.
                let out_len = |axis: usize, inp: usize| -> Option<usize> {
                    let (k, s, d) = (u(c.kernel[axis]), u(c.stride[axis]), u(c.dilation[axis]));
                    let (p, op) = (u(c.padding[axis]), u(c.output_padding[axis]));
                    if k == 0 || s == 0 || d == 0 || (op >= s && op >= d) {
                        return None;
                    }
                    inp.checked_sub(1)?
                        .checked_mul(s)?
                        .checked_add(d.checked_mul(k - 1)?)?
                        .checked_add(op.checked_add(1)?)?
                        .checked_sub(p.checked_mul(2)?)
                        .filter(|&n| n > 0)
                };
                let (ey, ex) = (out_len(0, h), out_len(1, w));
                self.ensure(
                    ey.is_some() && ex.is_some(),
                    self.param("kernel/stride/dilation/padding"),
                )?;
                self.ensure(ey == Some(oh) && ex == Some(ow), self.shape(c.output))?;
                let weights = ci
                    .checked_mul(co / g)
                    .and_then(|n| n.checked_mul(u(c.kernel[0])))
                    .and_then(|n| n.checked_mul(u(c.kernel[1])));
                self.matrix(&c.weight, weights, "conv transpose weight")?;
                if let Some(b) = &c.bias {
                    self.vector(b, co, "conv transpose bias")?;
                }
                self.act(&c.act, &ot)?;
                self.disjoint((c.input, &it), &ot, false)
            }
            Op::Linear(l) => {
                let (fi, fo) = (l.in_features as usize, l.out_features as usize);
                self.linear(l.input, l.output, fi, fo)?;
                self.matrix(&l.weight, fi.checked_mul(fo), "linear weight")?;
                if let Some(b) = &l.bias {
                    self.vector(b, fo, "linear bias")?;
                }
                self.act(&l.act, &self.tensor(l.output)?)
            }
            Op::QConv2d(c) => {
                let weights = self.conv(c.input, c.output, &c.geom)?;
                self.bytes(&c.weight, weights, "conv weight")?;
                self.records(&c.channels, c.geom.out_channels as usize, "conv channels")?;
                self.clamp(c.clamp)
            }
            Op::QLinear(l) => {
                let (fi, fo) = (l.in_features as usize, l.out_features as usize);
                self.linear(l.input, l.output, fi, fo)?;
                self.bytes(&l.weight, fi.checked_mul(fo), "linear weight")?;
                self.records(&l.channels, fo, "linear channels")?;
                self.clamp(l.clamp)
            }
            Op::QAdd(q) => {
                let (at, bt, ot) = (self.tensor(q.a)?, self.tensor(q.b)?, self.tensor(q.output)?);
                self.same_shape(&at, &ot, q.output)?;
                self.same_shape(&bt, &ot, q.b)?;
                self.requant(q.a_requant, "a_requant")?;
                self.requant(q.b_requant, "b_requant")?;
                self.requant(q.out_requant, "out_requant")?;
                self.clamp(q.clamp)?;
                // One operand may be the output itself; the other must not touch it.
                let a_out = at.offset == ot.offset;
                self.disjoint((q.a, &at), &ot, true)?;
                self.disjoint((q.b, &bt), &ot, !a_out)
            }
            Op::Quantize { input, output } | Op::Dequantize { input, output } => {
                let (it, ot) = (self.tensor(*input)?, self.tensor(*output)?);
                self.same_shape(&it, &ot, *output)?;
                self.disjoint((*input, &it), &ot, false)
            }
            Op::ChannelAffine(a) => {
                let (it, ot) = (self.tensor(a.input)?, self.tensor(a.output)?);
                self.same_shape(&it, &ot, a.output)?;
                self.vector(&a.scale, ot.channels(), "scale")?;
                self.vector(&a.shift, ot.channels(), "shift")?;
                self.act(&a.act, &ot)?;
                self.disjoint((a.input, &it), &ot, true)
            }
            Op::Activation(u) => {
                let (it, ot) = (self.tensor(u.input)?, self.tensor(u.output)?);
                self.same_shape(&it, &ot, u.output)?;
                self.act(&u.act, &ot)?;
                self.disjoint((u.input, &it), &ot, true)
            }
            Op::MaxPool2d(p) | Op::AvgPool2d(p) => {
                let (it, ot) = (self.tensor(p.input)?, self.tensor(p.output)?);
                let [c, h, w] = self.nchw(&it, p.input)?;
                let [oc, oh, ow] = self.nchw(&ot, p.output)?;
                self.ensure(c == oc, self.shape(p.output))?;
                let [pt, pl, pb, pr] = p.padding.map(|v| v as usize);
                let (kh, kw) = (p.kernel[0] as usize, p.kernel[1] as usize);
                // PyTorch: padding at most half the kernel, so no window is only padding.
                self.ensure(
                    pt.max(pb) <= kh / 2 && pl.max(pr) <= kw / 2,
                    self.param("padding"),
                )?;
                let y = Axis {
                    inp: h,
                    k: kh,
                    s: p.stride[0] as usize,
                    d: 1,
                    pad_begin: pt,
                    pad_end: pb,
                };
                let x = Axis {
                    inp: w,
                    k: kw,
                    s: p.stride[1] as usize,
                    d: 1,
                    pad_begin: pl,
                    pad_end: pr,
                };
                let e = (y.out_len(p.ceil_mode), x.out_len(p.ceil_mode));
                self.ensure(
                    e.0.is_some() && e.1.is_some(),
                    self.param("kernel/stride/padding"),
                )?;
                self.ensure(e == (Some(oh), Some(ow)), self.shape(p.output))?;
                self.disjoint((p.input, &it), &ot, false)
            }
            Op::MatMul { a, b, output } => {
                let (at, bt, ot) = (self.tensor(*a)?, self.tensor(*b)?, self.tensor(*output)?);
                let formed = crate::kernels::matmul::Geom::of(&at, &bt, &ot).is_some();
                self.ensure(formed, self.shape(*output))?;
                self.disjoint((*a, &at), &ot, false)?;
                self.disjoint((*b, &bt), &ot, false)
            }
            Op::Recurrent(r) => self.recurrent(r),
            Op::Norm(n) => {
                let (it, ot) = (self.tensor(n.input)?, self.tensor(n.output)?);
                self.ensure(it.dims == ot.dims, self.shape(n.output))?;
                let (group, repeat) = (n.group_len as usize, n.repeat as usize);
                self.ensure(group > 0 && it.count % group == 0, self.param("group_len"))?;
                self.ensure(n.eps.is_finite() && n.eps >= 0.0, self.param("eps"))?;
                // One period of the affine vectors (`repeat` elements per entry) tiles the tensor.
                let len = n.weight.or(n.bias).map_or(1, |v| v.len as usize);
                let tiles = repeat
                    .checked_mul(len)
                    .is_some_and(|p| p > 0 && it.count % p == 0);
                self.ensure(tiles, self.param("repeat"))?;
                if let Some(w) = &n.weight {
                    self.vector(w, len, "norm weight")?;
                }
                if let Some(b) = &n.bias {
                    self.vector(b, len, "norm bias")?;
                }
                self.disjoint((n.input, &it), &ot, false)
            }
            Op::Resize(r) => {
                let (it, ot) = (self.tensor(r.input)?, self.tensor(r.output)?);
                let [c, h, w] = self.nchw(&it, r.input)?;
                let [oc, oh, ow] = self.nchw(&ot, r.output)?;
                // No empty axis: an empty output of a vast height would still loop over it.
                self.ensure(
                    c == oc && c > 0 && h > 0 && w > 0 && oh > 0 && ow > 0,
                    self.shape(r.output),
                )?;
                let scale_ok = r.scale.iter().all(|s| s.is_finite() && *s >= 0.0);
                self.ensure(scale_ok, self.param("scale"))?;
                self.ensure(
                    r.mode == ResizeMode::Linear || !r.align_corners,
                    self.param("align_corners"),
                )?;
                self.disjoint((r.input, &it), &ot, false)
            }
            Op::AdaptiveAvgPool2d { input, output } | Op::AdaptiveMaxPool2d { input, output } => {
                let (it, ot) = (self.tensor(*input)?, self.tensor(*output)?);
                let [c, h, w] = self.nchw(&it, *input)?;
                let [oc, oh, ow] = self.nchw(&ot, *output)?;
                self.ensure(
                    c == oc && h > 0 && w > 0 && oh > 0 && ow > 0,
                    self.shape(*output),
                )?;
                // Bin bounds are computed as (o + 1) * in; keep them in range.
                self.ensure(
                    oh.checked_mul(h).is_some() && ow.checked_mul(w).is_some(),
                    self.shape(*output),
                )?;
                self.disjoint((*input, &it), &ot, false)
            }
            Op::ZeroPad2d {
                input,
                output,
                padding,
            } => {
                let (it, ot) = (self.tensor(*input)?, self.tensor(*output)?);
                let r = usize::from(it.rank);
                self.ensure(r >= 2 && it.rank == ot.rank, self.shape(*output))?;
                let [pt, pl, pb, pr] = padding.map(|v| v as usize);
                let want_h = it.dims[r - 2]
                    .checked_add(pt)
                    .and_then(|v| v.checked_add(pb));
                let want_w = it.dims[r - 1]
                    .checked_add(pl)
                    .and_then(|v| v.checked_add(pr));
                let lead_same = it.dims[..r - 2] == ot.dims[..r - 2];
                self.ensure(
                    lead_same && want_h == Some(ot.dims[r - 2]) && want_w == Some(ot.dims[r - 1]),
                    self.shape(*output),
                )?;
                self.disjoint((*input, &it), &ot, false)
            }
            Op::Add(b) | Op::Mul(b) => {
                let (at, bt, ot) = (self.tensor(b.a)?, self.tensor(b.b)?, self.tensor(b.output)?);
                self.same_shape(&at, &ot, b.output)?;
                let want = match b.broadcast {
                    Broadcast::None => at.count,
                    Broadcast::Scalar => 1,
                    Broadcast::Channel => at.channels(),
                };
                self.ensure(bt.count == want, self.shape(b.b))?;
                self.act(&b.act, &ot)?;
                let ((ai, a), (bi, bb)) = crate::binary_operands(b, &at, &bt, &ot);
                self.disjoint((ai, a), &ot, true)?;
                self.disjoint((bi, bb), &ot, false)
            }
            Op::Concat {
                inputs,
                output,
                axis,
            } => {
                let ot = self.tensor(*output)?;
                let ax = usize::from(*axis);
                self.ensure(
                    inputs.0.len() % 4 == 0 && !inputs.is_empty(),
                    self.param("inputs"),
                )?;
                self.ensure(ax < usize::from(ot.rank), self.param("axis"))?;
                let mut total = 0usize;
                for i in inputs.iter() {
                    let t = self.tensor(i)?;
                    let mut same = t.rank == ot.rank;
                    for a in 0..4 {
                        same &= a == ax || t.dims[a] == ot.dims[a];
                    }
                    self.ensure(same, self.shape(i))?;
                    total = total.checked_add(t.dims[ax]).ok_or(self.shape(i))?;
                    self.disjoint((i, &t), &ot, false)?;
                }
                self.ensure(total == ot.dims[ax], self.shape(*output))
            }
            Op::Softmax {
                input,
                output,
                axis,
            } => {
                let (it, ot) = (self.tensor(*input)?, self.tensor(*output)?);
                self.same_shape(&it, &ot, *output)?;
                self.ensure(
                    usize::from(*axis) < usize::from(it.rank).max(1),
                    self.param("axis"),
                )?;
                self.disjoint((*input, &it), &ot, true)
            }
            Op::Permute {
                input,
                output,
                perm,
            } => {
                let (it, ot) = (self.tensor(*input)?, self.tensor(*output)?);
                let r = usize::from(it.rank);
                let mut seen = [false; 4];
                let mut ok = it.rank == ot.rank;
                for (a, &p) in perm.iter().enumerate() {
                    let p = usize::from(p);
                    ok &= p < 4 && !seen[p.min(3)] && (a < r || p == a);
                    seen[p.min(3)] = true;
                }
                self.ensure(ok, self.param("perm"))?;
                for (a, &p) in perm.iter().enumerate() {
                    self.ensure(ot.dims[a] == it.dims[usize::from(p)], self.shape(*output))?;
                }
                self.disjoint((*input, &it), &ot, false)
            }
            Op::Copy { input, output } => {
                let (it, ot) = (self.tensor(*input)?, self.tensor(*output)?);
                self.ensure(it.count == ot.count, self.shape(*output))?;
                self.disjoint((*input, &it), &ot, true)
            }
            Op::Slice {
                input,
                output,
                axis,
                start,
                step,
            } => {
                let (it, ot) = (self.tensor(*input)?, self.tensor(*output)?);
                let ax = usize::from(*axis);
                self.ensure(ax < usize::from(it.rank), self.param("axis"))?;
                self.ensure(*step >= 1, self.param("step"))?;
                let mut same = it.rank == ot.rank;
                for a in 0..4 {
                    same &= a == ax || it.dims[a] == ot.dims[a];
                }
                self.ensure(same && ot.dims[ax] >= 1, self.shape(*output))?;
                // The last index read, `start + step * (n - 1)`, inside the input's axis.
                let last = (ot.dims[ax] - 1)
                    .checked_mul(*step as usize)
                    .and_then(|v| v.checked_add(*start as usize));
                self.ensure(last.is_some_and(|l| l < it.dims[ax]), self.param("start"))?;
                self.disjoint((*input, &it), &ot, false)
            }
        }
    }
}

/// The recurrent states of a model, once every op is checked: each state tensor belongs to one
/// op and shares no byte with any other tensor, nor is it a model input or output, so that
/// nothing but its op changes it between runs.
pub(crate) fn check_states(view: &BlobView<'_>) -> Result<(), Error> {
    for (k, op) in view.ops().enumerate() {
        let Op::Recurrent(r) = op? else { continue };
        let shared = Error::StateShared {
            op: u32::try_from(k).unwrap_or(u32::MAX),
            tensor: r.state,
        };
        let st = Tensor::get(view, r.state)?;
        for j in (0..view.tensor_count()).filter(|&j| j != r.state) {
            if overlaps(&st, &Tensor::get(view, j)?) {
                return Err(shared);
            }
        }
        let io = view
            .inputs()
            .chain(view.outputs())
            .any(|io| io.tensor == r.state);
        let mut used = false;
        for (m, other) in view.ops().enumerate() {
            let other = other?;
            let mut uses = |t: u32| {
                used |= t == r.state;
                Ok(())
            };
            for_each_input(&other, &mut uses)?;
            uses(other.output())?;
            if let Op::Recurrent(o) = &other {
                uses(o.scratch)?;
                if m != k {
                    uses(o.state)?;
                }
            }
        }
        if io || used {
            return Err(shared);
        }
    }
    Ok(())
}
