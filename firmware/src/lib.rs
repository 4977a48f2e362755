//! The nnblob firmware engine.
//!
//! In: a blob (`&[u8]`, read in place from flash) and caller-owned input, output and
//! arena buffers. Out: the network's outputs. Nothing is allocated and nothing panics.
//!
//! ```text
//! let model = Model::from_bytes(BLOB)?;       // validates everything, once
//! let mut arena = [0.0f32; ARENA_LEN];        // >= model.arena_len()
//! model.run(&input, &mut output, &mut arena)?;
//! ```
//!
//! [`Model::from_bytes`] checks the header, the CRC-32, and every tensor and op (shapes,
//! parameters, weight ranges and lengths, arena ranges, overlaps); after it succeeds the
//! kernels cannot index out of bounds, and `run` fails only on wrongly sized buffers.
//! Numerics are deterministic: f32 arithmetic in a fixed order (docs/FIRMWARE.md), no fused
//! multiply-add, transcendentals from `libm`, so every target gives the same bits.
#![no_std]
#![deny(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod act;
mod error;
mod kernels;
mod validate;
mod weights;

pub use error::Error;
pub use kernels::simd;
pub use nnblob_format::meta::{OpKind, TensorDesc};
pub use nnblob_format::WeightDtype;

use kernels::elementwise::BinOp;
use nnblob_format::meta::{Activation, Binary, Op, VectorRef, WireOp};
use nnblob_format::BlobView;
use weights::Weights;

/// A validated model, borrowing its blob.
#[derive(Debug, Clone)]
pub struct Model<'a> {
    view: BlobView<'a>,
}

/// A model input or output: its name and tensor (shape and element count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoInfo<'a> {
    /// Name given by the converter.
    pub name: &'a str,
    /// Shape (batch included).
    pub tensor: TensorDesc,
}

impl IoInfo<'_> {
    /// Dimensions.
    pub fn shape(&self) -> &[u32] {
        self.tensor.shape()
    }
    /// Number of f32 elements.
    pub fn len(&self) -> usize {
        self.tensor.dims.iter().map(|&d| d as usize).product()
    }
    /// True for a tensor without elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Receives a call before and after every op of a profiled run.
pub trait Profiler {
    /// Op `index` of kind `kind` is about to run.
    fn begin(&mut self, index: u32, kind: OpKind);
    /// Op `index` has finished.
    fn end(&mut self, index: u32, kind: OpKind);
}

/// The profiler that does nothing.
pub struct NoProfiler;

impl Profiler for NoProfiler {
    fn begin(&mut self, _: u32, _: OpKind) {}
    fn end(&mut self, _: u32, _: OpKind) {}
}

/// A tensor resolved for the engine: arena range, dims padded with 1s.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tensor {
    pub offset: usize,
    pub count: usize,
    pub rank: u8,
    pub dims: [usize; 4],
}

impl Tensor {
    /// Tensor `i` of the view with its element count; errors if the count overflows.
    pub fn get(view: &BlobView<'_>, i: u32) -> Result<Tensor, Error> {
        let d = view.tensor(i)?;
        let dims = d.dims.map(|x| x as usize);
        let count = dims
            .iter()
            .try_fold(1usize, |a, &b| a.checked_mul(b))
            .ok_or(Error::TensorOutsideArena { tensor: i })?;
        Ok(Tensor {
            offset: d.offset as usize,
            count,
            rank: d.rank,
            dims,
        })
    }
    fn range(&self) -> core::ops::Range<usize> {
        self.offset..self.offset + self.count
    }
    /// Size of dimension 1 (channels), 1 below rank 2.
    pub fn channels(&self) -> usize {
        if self.rank >= 2 {
            self.dims[1]
        } else {
            1
        }
    }
    /// Elements per channel: product of the dimensions after 1.
    pub fn inner(&self) -> usize {
        if self.rank >= 2 {
            self.dims[2] * self.dims[3]
        } else {
            1
        }
    }
    /// Last dimension (1 for a scalar).
    pub fn last(&self) -> usize {
        dim(self, usize::from(self.rank).wrapping_sub(1))
    }
}

/// Orders the operands of an Add/Mul: when the output is `b`'s range and there is no
/// broadcast, the (commutative) operands are swapped so that the kernel works in place on
/// the first. Returns `((index, tensor) of the first, (index, tensor) of the second)`.
pub(crate) fn binary_operands<'t, V>(
    b: &Binary<V>,
    at: &'t Tensor,
    bt: &'t Tensor,
    ot: &Tensor,
) -> ((u32, &'t Tensor), (u32, &'t Tensor)) {
    let b_is_out = bt.offset == ot.offset && bt.count == ot.count;
    let a_is_out = at.offset == ot.offset && at.count == ot.count;
    if b_is_out && !a_is_out && b.broadcast == nnblob_format::meta::Broadcast::None {
        ((b.b, bt), (b.a, at))
    } else {
        ((b.a, at), (b.b, bt))
    }
}

/// Read access to the parts of the arena that are not the output.
struct Reader<'x> {
    lo: &'x [f32],
    hi: &'x [f32],
    hi_start: usize,
}

impl Reader<'_> {
    fn get(&self, t: &Tensor) -> Result<&[f32], Error> {
        let r = t.range();
        if r.end <= self.lo.len() {
            self.lo.get(r).ok_or(Error::Internal)
        } else if r.start >= self.hi_start {
            self.hi
                .get(r.start - self.hi_start..r.end - self.hi_start)
                .ok_or(Error::Internal)
        } else {
            Err(Error::Internal)
        }
    }
}

/// Splits the arena into the output (mutable) and the rest (readable).
fn split<'x>(arena: &'x mut [f32], out: &Tensor) -> Result<(Reader<'x>, &'x mut [f32]), Error> {
    if out.offset + out.count > arena.len() {
        return Err(Error::Internal);
    }
    let (lo, rest) = arena.split_at_mut(out.offset);
    let (o, hi) = rest.split_at_mut(out.count);
    Ok((
        Reader {
            lo,
            hi,
            hi_start: out.offset + out.count,
        },
        o,
    ))
}

/// The output, holding a copy of `src` (nothing copied when `src` is the output itself).
fn in_place<'x>(
    arena: &'x mut [f32],
    src: &Tensor,
    out: &Tensor,
) -> Result<(Reader<'x>, &'x mut [f32]), Error> {
    let same = src.offset == out.offset;
    let (r, o) = split(arena, out)?;
    if !same {
        o.copy_from_slice(r.get(src)?);
    }
    Ok((r, o))
}

fn u32_len(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl<'a> Model<'a> {
    /// Parses and validates a blob: header, CRC-32, metadata, every tensor (element count
    /// without overflow, range inside the arena) and every op (see [`Error`] for what is
    /// refused). The blob is borrowed, not copied.
    pub fn from_bytes(blob: &'a [u8]) -> Result<Model<'a>, Error> {
        let view = BlobView::new_checked(blob)?;
        let arena_len = view.info().arena_len as usize;
        for i in 0..view.tensor_count() {
            let t = Tensor::get(&view, i)?;
            match t.offset.checked_add(t.count) {
                Some(end) if end <= arena_len => {}
                _ => return Err(Error::TensorOutsideArena { tensor: i }),
            }
        }
        let weights = Weights {
            bytes: view.weights(),
            dtype: view.dtype(),
        };
        for (i, op) in view.ops().enumerate() {
            let op = op?;
            validate::Checker {
                view: &view,
                weights,
                op: u32_len(i),
            }
            .check(&op)?;
        }
        Ok(Model { view })
    }

    /// Required arena length, in f32 elements.
    pub fn arena_len(&self) -> usize {
        self.view.info().arena_len as usize
    }
    /// Model name.
    pub fn name(&self) -> &'a str {
        self.view.info().name
    }
    /// Provenance (source checkpoint hash, converter, passes).
    pub fn provenance(&self) -> &nnblob_format::meta::Provenance<'a> {
        &self.view.info().provenance
    }
    /// Element type of the weight matrices.
    pub fn dtype(&self) -> WeightDtype {
        self.view.dtype()
    }
    /// Number of ops.
    pub fn op_count(&self) -> usize {
        self.view.info().op_count as usize
    }
    /// Number of inputs.
    pub fn input_count(&self) -> usize {
        self.view.info().input_count as usize
    }
    /// Number of outputs.
    pub fn output_count(&self) -> usize {
        self.view.info().output_count as usize
    }
    /// Input `i`, if it exists.
    pub fn input(&self, i: usize) -> Option<IoInfo<'a>> {
        let io = self.view.inputs().nth(i)?;
        Some(IoInfo {
            name: io.name,
            tensor: self.view.tensor(io.tensor).ok()?,
        })
    }
    /// Output `i`, if it exists.
    pub fn output(&self, i: usize) -> Option<IoInfo<'a>> {
        let io = self.view.outputs().nth(i)?;
        Some(IoInfo {
            name: io.name,
            tensor: self.view.tensor(io.tensor).ok()?,
        })
    }
    /// Element count of input `i` (0 if there is none).
    pub fn input_len(&self, i: usize) -> usize {
        self.input(i).map_or(0, |io| io.len())
    }
    /// Element count of output `i` (0 if there is none).
    pub fn output_len(&self, i: usize) -> usize {
        self.output(i).map_or(0, |io| io.len())
    }

    /// Runs a model with one input and one output.
    pub fn run(&self, input: &[f32], output: &mut [f32], arena: &mut [f32]) -> Result<(), Error> {
        self.run_profiled(&[input], &mut [output], arena, &mut NoProfiler)
    }

    /// Runs a model with any number of inputs and outputs, in the model's order.
    pub fn run_multi(
        &self,
        inputs: &[&[f32]],
        outputs: &mut [&mut [f32]],
        arena: &mut [f32],
    ) -> Result<(), Error> {
        self.run_profiled(inputs, outputs, arena, &mut NoProfiler)
    }

    /// Like [`Model::run_multi`], calling `profiler` around every op.
    pub fn run_profiled(
        &self,
        inputs: &[&[f32]],
        outputs: &mut [&mut [f32]],
        arena: &mut [f32],
        profiler: &mut impl Profiler,
    ) -> Result<(), Error> {
        let check_count = |expected: usize, got: usize| {
            if expected == got {
                Ok(())
            } else {
                Err(Error::IoCount {
                    expected: u32_len(expected),
                    got: u32_len(got),
                })
            }
        };
        check_count(self.input_count(), inputs.len())?;
        check_count(self.output_count(), outputs.len())?;
        if arena.len() < self.arena_len() {
            return Err(Error::ArenaTooSmall {
                needed: u32_len(self.arena_len()),
                got: u32_len(arena.len()),
            });
        }
        for (i, (io, buf)) in self.view.inputs().zip(inputs.iter()).enumerate() {
            let t = Tensor::get(&self.view, io.tensor)?;
            if buf.len() != t.count {
                return Err(Error::InputLen {
                    input: u32_len(i),
                    needed: u32_len(t.count),
                    got: u32_len(buf.len()),
                });
            }
        }
        for (i, (io, buf)) in self.view.outputs().zip(outputs.iter()).enumerate() {
            let t = Tensor::get(&self.view, io.tensor)?;
            if buf.len() != t.count {
                return Err(Error::OutputLen {
                    output: u32_len(i),
                    needed: u32_len(t.count),
                    got: u32_len(buf.len()),
                });
            }
        }
        for (io, buf) in self.view.inputs().zip(inputs) {
            let t = Tensor::get(&self.view, io.tensor)?;
            arena
                .get_mut(t.range())
                .ok_or(Error::Internal)?
                .copy_from_slice(buf);
        }
        let weights = Weights {
            bytes: self.view.weights(),
            dtype: self.view.dtype(),
        };
        for (i, op) in self.view.ops().enumerate() {
            let op = op?;
            let index = u32_len(i);
            profiler.begin(index, op.kind());
            self.exec(&op, weights, arena)?;
            profiler.end(index, op.kind());
        }
        for (io, buf) in self.view.outputs().zip(outputs.iter_mut()) {
            let t = Tensor::get(&self.view, io.tensor)?;
            buf.copy_from_slice(arena.get(t.range()).ok_or(Error::Internal)?);
        }
        Ok(())
    }

    fn t(&self, i: u32) -> Result<Tensor, Error> {
        Tensor::get(&self.view, i).map_err(|_| Error::Internal)
    }

    fn exec(&self, op: &WireOp<'_>, w: Weights<'_>, arena: &mut [f32]) -> Result<(), Error> {
        let vector = |v: VectorRef| w.vector(v).ok_or(Error::Internal);
        let act = |a: &Activation<VectorRef>| a.clone().map(&mut |v| vector(v));
        match op {
            Op::Conv2d(c) => {
                let (it, ot) = (self.t(c.input)?, self.t(c.output)?);
                let g = kernels::conv::Geom {
                    c_in: it.dims[1],
                    h: it.dims[2],
                    w: it.dims[3],
                    c_out: ot.dims[1],
                    oh: ot.dims[2],
                    ow: ot.dims[3],
                    kh: c.kernel[0] as usize,
                    kw: c.kernel[1] as usize,
                    sh: c.stride[0] as usize,
                    sw: c.stride[1] as usize,
                    dh: c.dilation[0] as usize,
                    dw: c.dilation[1] as usize,
                    pt: c.padding[0] as usize,
                    pl: c.padding[1] as usize,
                    groups: c.groups as usize,
                };
                let weight = w.matrix(c.weight).ok_or(Error::Internal)?;
                let bias = c.bias.map(vector).transpose()?;
                let (r, out) = split(arena, &ot)?;
                kernels::conv::conv2d(&g, r.get(&it)?, out, weight, bias);
                act::apply(&act(&c.act)?, out, ot.channels(), ot.inner());
            }
            Op::Linear(l) => {
                let (it, ot) = (self.t(l.input)?, self.t(l.output)?);
                let (fi, fo) = (l.in_features as usize, l.out_features as usize);
                let weight = w.matrix(l.weight).ok_or(Error::Internal)?;
                let bias = l.bias.map(vector).transpose()?;
                let (r, out) = split(arena, &ot)?;
                kernels::linear::linear(
                    it.count / fi.max(1),
                    fi,
                    fo,
                    r.get(&it)?,
                    out,
                    weight,
                    bias,
                );
                act::apply(&act(&l.act)?, out, ot.channels(), ot.inner());
            }
            Op::ChannelAffine(a) => {
                let (it, ot) = (self.t(a.input)?, self.t(a.output)?);
                let (_, out) = in_place(arena, &it, &ot)?;
                kernels::elementwise::channel_affine(
                    out,
                    ot.channels(),
                    ot.inner(),
                    vector(a.scale)?,
                    vector(a.shift)?,
                );
                act::apply(&act(&a.act)?, out, ot.channels(), ot.inner());
            }
            Op::Activation(u) => {
                let (it, ot) = (self.t(u.input)?, self.t(u.output)?);
                let (_, out) = in_place(arena, &it, &ot)?;
                act::apply(&act(&u.act)?, out, ot.channels(), ot.inner());
            }
            Op::MaxPool2d(p) | Op::AvgPool2d(p) => {
                let (it, ot) = (self.t(p.input)?, self.t(p.output)?);
                let g = pool_geom(&it, &ot, p.kernel, p.stride, p.padding);
                let (r, out) = split(arena, &ot)?;
                if let Op::MaxPool2d(_) = op {
                    kernels::pool::max_pool(&g, r.get(&it)?, out);
                } else {
                    kernels::pool::avg_pool(&g, p.count_include_pad, r.get(&it)?, out);
                }
            }
            Op::AdaptiveAvgPool2d { input, output } => {
                let (it, ot) = (self.t(*input)?, self.t(*output)?);
                let g = pool_geom(&it, &ot, [1, 1], [1, 1], [0; 4]);
                let (r, out) = split(arena, &ot)?;
                kernels::pool::adaptive_avg_pool(&g, r.get(&it)?, out);
            }
            Op::ZeroPad2d {
                input,
                output,
                padding,
            } => {
                let (it, ot) = (self.t(*input)?, self.t(*output)?);
                let r = usize::from(it.rank).clamp(2, 4);
                let (h, wd) = (dim(&it, r - 2), dim(&it, r - 1));
                let c = it.count / (h * wd).max(1);
                let (rd, out) = split(arena, &ot)?;
                kernels::shape::zero_pad(c, h, wd, padding.map(|p| p as usize), rd.get(&it)?, out);
            }
            Op::Add(b) | Op::Mul(b) => {
                let (at, bt, ot) = (self.t(b.a)?, self.t(b.b)?, self.t(b.output)?);
                let ((_, first), (_, second)) = binary_operands(b, &at, &bt, &ot);
                let (r, out) = in_place(arena, first, &ot)?;
                let kind = if let Op::Add(_) = op {
                    BinOp::Add
                } else {
                    BinOp::Mul
                };
                kernels::elementwise::binary(
                    kind,
                    b.broadcast,
                    out,
                    r.get(second)?,
                    ot.channels(),
                    ot.inner(),
                );
                act::apply(&act(&b.act)?, out, ot.channels(), ot.inner());
            }
            Op::Concat {
                inputs,
                output,
                axis,
            } => {
                let ot = self.t(*output)?;
                let ax = usize::from(*axis).min(3);
                let inner: usize = ot.dims.iter().skip(ax + 1).product();
                let outer: usize = ot.dims.iter().take(ax).product();
                let stride = dim(&ot, ax) * inner;
                let (r, out) = split(arena, &ot)?;
                let mut at = 0;
                for i in inputs.iter() {
                    let t = self.t(i)?;
                    let block = dim(&t, ax) * inner;
                    kernels::shape::concat_part(outer, block, stride, at, r.get(&t)?, out);
                    at += block;
                }
            }
            Op::Softmax {
                input,
                output,
                axis,
            } => {
                let (it, ot) = (self.t(*input)?, self.t(*output)?);
                let ax = usize::from(*axis).min(3);
                let inner: usize = ot.dims.iter().skip(ax + 1).product();
                let outer: usize = ot.dims.iter().take(ax).product();
                let (_, out) = in_place(arena, &it, &ot)?;
                kernels::shape::softmax(outer, dim(&ot, ax), inner, out);
            }
            Op::Permute {
                input,
                output,
                perm,
            } => {
                let (it, ot) = (self.t(*input)?, self.t(*output)?);
                let (r, out) = split(arena, &ot)?;
                kernels::shape::permute(
                    it.dims,
                    perm.map(|p| usize::from(p).min(3)),
                    r.get(&it)?,
                    out,
                );
            }
            Op::Copy { input, output } => {
                let (it, ot) = (self.t(*input)?, self.t(*output)?);
                in_place(arena, &it, &ot)?;
            }
            Op::Slice {
                input,
                output,
                axis,
                start,
                step,
            } => {
                let (it, ot) = (self.t(*input)?, self.t(*output)?);
                let ax = usize::from(*axis).min(3);
                let inner: usize = ot.dims.iter().skip(ax + 1).product();
                let outer: usize = ot.dims.iter().take(ax).product();
                let (r, out) = split(arena, &ot)?;
                kernels::shape::slice(
                    kernels::shape::SliceGeom {
                        outer,
                        n: dim(&it, ax),
                        inner,
                        start: *start as usize,
                        step: *step as usize,
                        len: dim(&ot, ax),
                    },
                    r.get(&it)?,
                    out,
                );
            }
        }
        Ok(())
    }
}

fn dim(t: &Tensor, a: usize) -> usize {
    t.dims.get(a).copied().unwrap_or(1)
}

fn pool_geom(
    it: &Tensor,
    ot: &Tensor,
    k: [u32; 2],
    s: [u32; 2],
    pad: [u32; 4],
) -> kernels::pool::Geom {
    kernels::pool::Geom {
        c: dim(it, 1),
        h: dim(it, 2),
        w: dim(it, 3),
        oh: dim(ot, 2),
        ow: dim(ot, 3),
        kh: k[0] as usize,
        kw: k[1] as usize,
        sh: s[0] as usize,
        sw: s[1] as usize,
        pad: pad.map(|p| p as usize),
    }
}
