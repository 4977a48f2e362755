//! The nnblob firmware engine.
//!
//! In: a blob (`&[u8]`, read in place from flash) and caller-owned input, output and
//! arena buffers. Out: the network's outputs. Nothing is allocated and nothing panics.
//!
//! ```text
//! let model = Model::from_bytes(BLOB)?;       // validates everything, once
//! let mut arena = [0.0f32; ARENA_LEN];        // >= model.arena_len() (f32s: 4-byte aligned)
//! model.run(&input, &mut output, &mut arena)?;
//! ```
//!
//! The arena is bytes underneath (format version 3): f32 and int8 tensors share it, each at a
//! 4-byte aligned offset. It is taken as `[f32]` so that its alignment is the type's. An int8
//! model keeps float edges: [`Model::run`] quantizes its inputs and dequantizes its outputs;
//! [`Model::run_quantized`] takes and gives the int8 values themselves.
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
pub use nnblob_format::meta::{ElemType, OpKind, Quant, TensorDesc};
pub use nnblob_format::WeightDtype;

use kernels::elementwise::BinOp;
use nnblob_format::meta::{Activation, Binary, ByteRef, Op, ResizeMode, VectorRef, WireOp};
use nnblob_format::BlobView;
use weights::Weights;

/// A validated model, borrowing its blob.
#[derive(Debug, Clone)]
pub struct Model<'a> {
    view: BlobView<'a>,
}

/// A model input or output: its name and tensor (shape and element count).
#[derive(Debug, Clone, Copy, PartialEq)]
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
    /// Number of elements.
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

/// A tensor resolved for the engine: arena byte range, element type, dims padded with 1s.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tensor {
    /// Byte offset in the arena.
    pub offset: usize,
    /// Number of elements.
    pub count: usize,
    /// Number of bytes (`count` times the element size).
    pub bytes: usize,
    pub elem: ElemType,
    pub quant: Quant,
    pub rank: u8,
    pub dims: [usize; 4],
}

impl Tensor {
    /// Tensor `i` of the view with its element count; errors if the size overflows.
    pub fn get(view: &BlobView<'_>, i: u32) -> Result<Tensor, Error> {
        let d = view.tensor(i)?;
        let dims = d.dims.map(|x| x as usize);
        let too_large = Error::TensorOutsideArena { tensor: i };
        let count = dims
            .iter()
            .try_fold(1usize, |a, &b| a.checked_mul(b))
            .ok_or(too_large)?;
        Ok(Tensor {
            offset: d.offset as usize,
            count,
            bytes: count.checked_mul(d.elem.size()).ok_or(too_large)?,
            elem: d.elem,
            quant: d.quant,
            rank: d.rank,
            dims,
        })
    }
    /// The byte range in the arena.
    pub fn range(&self) -> core::ops::Range<usize> {
        self.offset..self.offset + self.bytes
    }
    /// The zero point, as the int8 kernels use it.
    pub fn zero_point(&self) -> i32 {
        i32::from(self.quant.zero_point)
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

/// An element type of arena tensors.
pub(crate) trait Elem: bytemuck::Pod {
    /// The format's name for it (validation made every tensor's match its use).
    const TYPE: ElemType;
}

impl Elem for f32 {
    const TYPE: ElemType = ElemType::F32;
}

impl Elem for i8 {
    const TYPE: ElemType = ElemType::I8;
}

/// The elements of a tensor's bytes; fails on a type or alignment the load-time checks exclude.
fn typed<'x, T: Elem>(t: &Tensor, bytes: &'x [u8]) -> Result<&'x [T], Error> {
    if t.elem != T::TYPE {
        return Err(Error::Internal);
    }
    bytemuck::try_cast_slice(bytes).map_err(|_| Error::Internal)
}

/// Like [`typed`], mutable.
fn typed_mut<'x, T: Elem>(t: &Tensor, bytes: &'x mut [u8]) -> Result<&'x mut [T], Error> {
    if t.elem != T::TYPE {
        return Err(Error::Internal);
    }
    bytemuck::try_cast_slice_mut(bytes).map_err(|_| Error::Internal)
}

/// Read access to the parts of the arena that are not the output.
struct Reader<'x> {
    lo: &'x [u8],
    hi: &'x [u8],
    hi_start: usize,
}

impl Reader<'_> {
    fn bytes(&self, t: &Tensor) -> Result<&[u8], Error> {
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
    fn get<T: Elem>(&self, t: &Tensor) -> Result<&[T], Error> {
        typed(t, self.bytes(t)?)
    }
}

/// Splits the arena into the output (mutable, of element type `T`) and the rest (readable).
fn split<'x, T: Elem>(
    arena: &'x mut [u8],
    out: &Tensor,
) -> Result<(Reader<'x>, &'x mut [T]), Error> {
    if out.offset + out.bytes > arena.len() {
        return Err(Error::Internal);
    }
    let (lo, rest) = arena.split_at_mut(out.offset);
    let (o, hi) = rest.split_at_mut(out.bytes);
    Ok((
        Reader {
            lo,
            hi,
            hi_start: out.offset + out.bytes,
        },
        typed_mut(out, o)?,
    ))
}

/// The byte ranges of `tensors` as separate mutable slices, in the order given; they must be
/// pairwise disjoint (validation checked it for the ops that use this).
fn parts_mut<'x, const N: usize>(
    mut arena: &'x mut [u8],
    tensors: &[Tensor; N],
) -> Result<[&'x mut [u8]; N], Error> {
    let mut order: [usize; N] = core::array::from_fn(|i| i);
    order.sort_unstable_by_key(|&i| tensors.get(i).map_or(0, |t| t.offset));
    let mut parts: [&'x mut [u8]; N] = core::array::from_fn(|_| Default::default());
    let mut base = 0;
    for i in order {
        let (Some(t), Some(part)) = (tensors.get(i), parts.get_mut(i)) else {
            return Err(Error::Internal);
        };
        let skip = t.offset.checked_sub(base).ok_or(Error::Internal)?;
        let rest = core::mem::take(&mut arena);
        let (_, rest) = rest.split_at_mut_checked(skip).ok_or(Error::Internal)?;
        let (bytes, rest) = rest.split_at_mut_checked(t.bytes).ok_or(Error::Internal)?;
        *part = bytes;
        arena = rest;
        base = t.offset + t.bytes;
    }
    Ok(parts)
}

/// The output, holding a copy of `src` (nothing copied when `src` is the output itself).
fn in_place<'x, T: Elem>(
    arena: &'x mut [u8],
    src: &Tensor,
    out: &Tensor,
) -> Result<(Reader<'x>, &'x mut [T]), Error> {
    let same = src.offset == out.offset;
    let (r, o) = split::<T>(arena, out)?;
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
        let arena_bytes = view.arena_bytes() as usize;
        for i in 0..view.tensor_count() {
            let t = Tensor::get(&view, i)?;
            match t.offset.checked_add(t.bytes) {
                Some(end) if end <= arena_bytes => {}
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
        validate::check_states(&view)?;
        Ok(Model { view })
    }

    /// Required arena length, in f32 elements (the arena's bytes rounded up to whole f32s).
    pub fn arena_len(&self) -> usize {
        self.arena_bytes().div_ceil(4)
    }
    /// Required arena size in bytes.
    pub fn arena_bytes(&self) -> usize {
        self.view.arena_bytes() as usize
    }
    /// Model name.
    pub fn name(&self) -> &'a str {
        self.view.info().name
    }
    /// Provenance (source checkpoint hash, converter, passes).
    pub fn provenance(&self) -> &nnblob_format::meta::Provenance<'a> {
        &self.view.info().provenance
    }
    /// Element type of the weight matrices (of the ops that are not int8).
    pub fn dtype(&self) -> WeightDtype {
        self.view.dtype()
    }
    /// Whether the model has int8 tensors (it was converted with `--dtype int8`).
    pub fn is_quantized(&self) -> bool {
        (0..self.view.tensor_count())
            .any(|i| self.view.tensor(i).is_ok_and(|t| t.elem == ElemType::I8))
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

    /// Like [`Model::run_multi`], calling `profiler` around every op. Inputs and outputs are
    /// f32 whatever their tensors: an int8 input is quantized with its tensor's parameters
    /// (as [`OpKind::Quantize`] does), an int8 output dequantized.
    pub fn run_profiled(
        &self,
        inputs: &[&[f32]],
        outputs: &mut [&mut [f32]],
        arena: &mut [f32],
        profiler: &mut impl Profiler,
    ) -> Result<(), Error> {
        self.reset_state(arena)?;
        self.step_profiled(inputs, outputs, arena, profiler)
    }

    /// Whether the model keeps a state between runs (it has GRU or LSTM layers): then
    /// [`Model::step`] continues from where the last run left it.
    pub fn has_state(&self) -> bool {
        self.states().next().is_some()
    }

    /// Bytes of the arena that hold the recurrent state (0 without GRU / LSTM layers).
    pub fn state_bytes(&self) -> usize {
        self.states().map(|t| t.bytes).sum()
    }

    /// The state tensors of the recurrent layers (load-time validation resolved them).
    fn states(&self) -> impl Iterator<Item = Tensor> + '_ {
        self.view.ops().filter_map(|op| match op {
            Ok(Op::Recurrent(r)) => self.t(r.state).ok(),
            _ => None,
        })
    }

    /// Zeroes the recurrent state in `arena`: the next [`Model::step`] starts a new sequence,
    /// as [`Model::run`] always does.
    pub fn reset_state(&self, arena: &mut [f32]) -> Result<(), Error> {
        let arena = self.arena_bytes_of(arena)?;
        for t in self.states() {
            arena.get_mut(t.range()).ok_or(Error::Internal)?.fill(0);
        }
        Ok(())
    }

    /// Runs a model with one input and one output from the recurrent state `arena` holds:
    /// the previous [`Model::step`]'s, or zero after [`Model::reset_state`]. A recurrent
    /// network converted for one frame (`--input-shape` with a time length of 1) then takes
    /// a sequence frame by frame, with the bits of the whole-sequence run. Without recurrent
    /// layers it is [`Model::run`]. The arena must not be changed between steps.
    pub fn step(&self, input: &[f32], output: &mut [f32], arena: &mut [f32]) -> Result<(), Error> {
        self.step_profiled(&[input], &mut [output], arena, &mut NoProfiler)
    }

    /// [`Model::step`] with any number of inputs and outputs, calling `profiler` around every
    /// op.
    pub fn step_profiled(
        &self,
        inputs: &[&[f32]],
        outputs: &mut [&mut [f32]],
        arena: &mut [f32],
        profiler: &mut impl Profiler,
    ) -> Result<(), Error> {
        self.check_io(inputs, outputs, None)?;
        let arena = self.arena_bytes_of(arena)?;
        for (io, buf) in self.view.inputs().zip(inputs) {
            let t = Tensor::get(&self.view, io.tensor)?;
            let dst = arena.get_mut(t.range()).ok_or(Error::Internal)?;
            match t.elem {
                ElemType::F32 => typed_mut::<f32>(&t, dst)?.copy_from_slice(buf),
                ElemType::I8 => kernels::int8::convert::quantize(buf, t.quant, typed_mut(&t, dst)?),
            }
        }
        self.exec_all(arena, profiler)?;
        for (io, buf) in self.view.outputs().zip(outputs.iter_mut()) {
            let t = Tensor::get(&self.view, io.tensor)?;
            let src = arena.get(t.range()).ok_or(Error::Internal)?;
            match t.elem {
                ElemType::F32 => buf.copy_from_slice(typed(&t, src)?),
                ElemType::I8 => kernels::int8::convert::dequantize(typed(&t, src)?, t.quant, buf),
            }
        }
        Ok(())
    }

    /// Runs a model whose inputs and outputs are all int8 on their raw values (for firmware
    /// that has quantized data already): `inputs[i]` in input `i`'s quantization, outputs in
    /// theirs ([`IoInfo::tensor`] has the scales and zero points). A model with an f32 input or
    /// output is refused ([`Error::IoType`]).
    pub fn run_quantized(
        &self,
        inputs: &[&[i8]],
        outputs: &mut [&mut [i8]],
        arena: &mut [f32],
        profiler: &mut impl Profiler,
    ) -> Result<(), Error> {
        self.check_io(inputs, outputs, Some(ElemType::I8))?;
        self.reset_state(arena)?;
        let arena = self.arena_bytes_of(arena)?;
        for (io, buf) in self.view.inputs().zip(inputs) {
            let t = Tensor::get(&self.view, io.tensor)?;
            let dst = arena.get_mut(t.range()).ok_or(Error::Internal)?;
            typed_mut::<i8>(&t, dst)?.copy_from_slice(buf);
        }
        self.exec_all(arena, profiler)?;
        for (io, buf) in self.view.outputs().zip(outputs.iter_mut()) {
            let t = Tensor::get(&self.view, io.tensor)?;
            let src = arena.get(t.range()).ok_or(Error::Internal)?;
            buf.copy_from_slice(typed(&t, src)?);
        }
        Ok(())
    }

    /// The caller's arena as bytes, refused when shorter than the model's.
    fn arena_bytes_of<'x>(&self, arena: &'x mut [f32]) -> Result<&'x mut [u8], Error> {
        if arena.len() < self.arena_len() {
            return Err(Error::ArenaTooSmall {
                needed: u32_len(self.arena_len()),
                got: u32_len(arena.len()),
            });
        }
        Ok(bytemuck::cast_slice_mut(arena))
    }

    /// Checks the buffer counts and lengths and, with `elem`, the type of every input and
    /// output tensor.
    fn check_io<A, B>(
        &self,
        inputs: &[&[A]],
        outputs: &[&mut [B]],
        elem: Option<ElemType>,
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
        let check_type = |t: &Tensor, index: usize, input: bool| match elem {
            Some(e) if e != t.elem => Err(Error::IoType {
                index: u32_len(index),
                input,
            }),
            _ => Ok(()),
        };
        for (i, (io, buf)) in self.view.inputs().zip(inputs).enumerate() {
            let t = Tensor::get(&self.view, io.tensor)?;
            check_type(&t, i, true)?;
            if buf.len() != t.count {
                return Err(Error::InputLen {
                    input: u32_len(i),
                    needed: u32_len(t.count),
                    got: u32_len(buf.len()),
                });
            }
        }
        for (i, (io, buf)) in self.view.outputs().zip(outputs).enumerate() {
            let t = Tensor::get(&self.view, io.tensor)?;
            check_type(&t, i, false)?;
            if buf.len() != t.count {
                return Err(Error::OutputLen {
                    output: u32_len(i),
                    needed: u32_len(t.count),
                    got: u32_len(buf.len()),
                });
            }
        }
        Ok(())
    }

    /// Runs every op in order on the arena (inputs in place).
    fn exec_all(&self, arena: &mut [u8], profiler: &mut impl Profiler) -> Result<(), Error> {
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
        Ok(())
    }

    fn t(&self, i: u32) -> Result<Tensor, Error> {
        Tensor::get(&self.view, i).map_err(|_| Error::Internal)
    }

    /// A GRU / LSTM layer; not inlined into [`Model::exec`], so that its four tensors take
    /// stack only while a recurrent layer runs.
    #[inline(never)]
    fn exec_recurrent(
        &self,
        c: &nnblob_format::meta::Recurrent<nnblob_format::meta::MatrixRef, VectorRef>,
        w: Weights<'_>,
        arena: &mut [u8],
    ) -> Result<(), Error> {
        let vector = |v: VectorRef| w.vector(v).ok_or(Error::Internal);
        let it = self.t(c.input)?;
        let tensors = [it, self.t(c.output)?, self.t(c.state)?, self.t(c.scratch)?];
        let [x, y, state, scratch] = parts_mut(arena, &tensors)?;
        let (d0, d1) = (dim(&it, 0), dim(&it, 1));
        let (batch, steps) = if c.batch_first { (d0, d1) } else { (d1, d0) };
        let g = kernels::recurrent::Geom {
            cell: c.cell,
            batch,
            steps,
            input: dim(&it, 2),
            hidden: c.hidden as usize,
            batch_first: c.batch_first,
            reverse: c.reverse,
        };
        let p = kernels::recurrent::Params {
            weight_ih: w.matrix(c.weight_ih).ok_or(Error::Internal)?,
            weight_hh: w.matrix(c.weight_hh).ok_or(Error::Internal)?,
            bias_ih: c.bias_ih.map(vector).transpose()?,
            bias_hh: c.bias_hh.map(vector).transpose()?,
        };
        let [it, ot, st, sc] = &tensors;
        let (x, y) = (typed_mut(it, x)?, typed_mut(ot, y)?);
        let (state, scratch) = (typed_mut(st, state)?, typed_mut(sc, scratch)?);
        kernels::recurrent::recurrent(&g, &p, x, y, state, scratch);
        Ok(())
    }

    fn exec(&self, op: &WireOp<'_>, w: Weights<'_>, arena: &mut [u8]) -> Result<(), Error> {
        let vector = |v: VectorRef| w.vector(v).ok_or(Error::Internal);
        let act = |a: &Activation<VectorRef>| a.clone().map(&mut |v| vector(v));
        let bytes = |b: ByteRef| w.bytes(b).ok_or(Error::Internal);
        match op {
            Op::Conv2d(c) => {
                let (it, ot) = (self.t(c.input)?, self.t(c.output)?);
                let g = conv_geom(&it, &ot, &c.geometry());
                let weight = w.matrix(c.weight).ok_or(Error::Internal)?;
                let bias = c.bias.map(vector).transpose()?;
                let (r, out) = split(arena, &ot)?;
                kernels::conv::conv2d(&g, r.get(&it)?, out, weight, bias);
                act::apply(&act(&c.act)?, out, ot.channels(), ot.inner());
            }
            Op::ConvTranspose2d(c) => {
                let (it, ot) = (self.t(c.input)?, self.t(c.output)?);
                // The convolution's geometry: its padding before each axis is what the
                // transposed convolution crops from the start.
                let g = conv_geom(&it, &ot, &c.geometry());
                let weight = w.matrix(c.weight).ok_or(Error::Internal)?;
                let bias = c.bias.map(vector).transpose()?;
                let (r, out) = split(arena, &ot)?;
                kernels::conv_transpose::conv_transpose2d(&g, r.get(&it)?, out, weight, bias);
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
                let max = matches!(op, Op::MaxPool2d(_));
                match ot.elem {
                    ElemType::F32 => {
                        let (r, out) = split(arena, &ot)?;
                        if max {
                            kernels::pool::max_pool(&g, r.get(&it)?, out);
                        } else {
                            kernels::pool::avg_pool(&g, p.count_include_pad, r.get(&it)?, out);
                        }
                    }
                    ElemType::I8 => {
                        let (r, out) = split(arena, &ot)?;
                        if max {
                            kernels::int8::pool::max_pool(&g, r.get(&it)?, out);
                        } else {
                            let z = it.zero_point();
                            let inp = r.get(&it)?;
                            kernels::int8::pool::avg_pool(&g, p.count_include_pad, z, inp, out);
                        }
                    }
                }
            }
            Op::AdaptiveAvgPool2d { input, output } | Op::AdaptiveMaxPool2d { input, output } => {
                let (it, ot) = (self.t(*input)?, self.t(*output)?);
                let g = pool_geom(&it, &ot, [1, 1], [1, 1], [0; 4]);
                let max = matches!(op, Op::AdaptiveMaxPool2d { .. });
                match ot.elem {
                    ElemType::F32 => {
                        let (r, out) = split(arena, &ot)?;
                        if max {
                            kernels::pool::adaptive_max_pool(&g, r.get(&it)?, out);
                        } else {
                            kernels::pool::adaptive_avg_pool(&g, r.get(&it)?, out);
                        }
                    }
                    ElemType::I8 => {
                        let (r, out) = split(arena, &ot)?;
                        if max {
                            kernels::int8::pool::adaptive_max_pool(&g, r.get(&it)?, out);
                        } else {
                            let z = it.zero_point();
                            kernels::int8::pool::adaptive_avg_pool(&g, z, r.get(&it)?, out);
                        }
                    }
                }
            }
            Op::MatMul { a, b, output } => {
                let (at, bt, ot) = (self.t(*a)?, self.t(*b)?, self.t(*output)?);
                let g = kernels::matmul::Geom::of(&at, &bt, &ot).ok_or(Error::Internal)?;
                let (r, out) = split(arena, &ot)?;
                kernels::matmul::matmul(&g, r.get(&at)?, r.get(&bt)?, out);
            }
            Op::Recurrent(c) => self.exec_recurrent(c, w, arena)?,
            Op::Norm(n) => {
                let ot = self.t(n.output)?;
                let g = kernels::norm::Geom {
                    group_len: n.group_len as usize,
                    repeat: n.repeat as usize,
                    eps: n.eps,
                };
                let weight = n.weight.map(vector).transpose()?;
                let bias = n.bias.map(vector).transpose()?;
                let (r, out) = split(arena, &ot)?;
                kernels::norm::norm(&g, weight, bias, r.get(&self.t(n.input)?)?, out);
            }
            Op::Resize(z) => {
                let (it, ot) = (self.t(z.input)?, self.t(z.output)?);
                let g = kernels::resize::Geom {
                    c: dim(&it, 1),
                    h: dim(&it, 2),
                    w: dim(&it, 3),
                    oh: dim(&ot, 2),
                    ow: dim(&ot, 3),
                    align_corners: z.align_corners,
                    scale: z.scale,
                };
                match (z.mode, ot.elem) {
                    (ResizeMode::Linear, _) => {
                        let (r, out) = split(arena, &ot)?;
                        kernels::resize::linear(&g, r.get(&it)?, out);
                    }
                    (ResizeMode::Nearest, ElemType::F32) => {
                        let (r, out) = split::<f32>(arena, &ot)?;
                        kernels::resize::nearest(&g, r.get(&it)?, out);
                    }
                    (ResizeMode::Nearest, ElemType::I8) => {
                        let (r, out) = split::<i8>(arena, &ot)?;
                        kernels::resize::nearest(&g, r.get(&it)?, out);
                    }
                }
            }
            Op::ZeroPad2d { output, .. }
            | Op::Concat { output, .. }
            | Op::Permute { output, .. }
            | Op::Copy { output, .. }
            | Op::Slice { output, .. } => {
                let ot = self.t(*output)?;
                match ot.elem {
                    ElemType::F32 => self.exec_move(op, 0.0f32, arena)?,
                    ElemType::I8 => self.exec_move(op, ot.quant.zero_point, arena)?,
                }
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
            Op::Quantize { input, output } => {
                let (it, ot) = (self.t(*input)?, self.t(*output)?);
                let (r, out) = split(arena, &ot)?;
                kernels::int8::convert::quantize(r.get(&it)?, ot.quant, out);
            }
            Op::Dequantize { input, output } => {
                let (it, ot) = (self.t(*input)?, self.t(*output)?);
                let (r, out) = split(arena, &ot)?;
                kernels::int8::convert::dequantize(r.get(&it)?, it.quant, out);
            }
            Op::QConv2d(c) => {
                let (it, ot) = (self.t(c.input)?, self.t(c.output)?);
                let g = conv_geom(&it, &ot, &c.geom);
                let (weight, records) = (bytes(c.weight)?, bytes(c.channels)?);
                let (r, out) = split(arena, &ot)?;
                let ends = kernels::int8::Ends {
                    zx: it.zero_point(),
                    zy: ot.zero_point(),
                    clamp: c.clamp,
                };
                let weight = bytemuck::cast_slice(weight);
                kernels::int8::conv::conv2d(&g, r.get(&it)?, out, weight, records, ends);
            }
            Op::QLinear(l) => {
                let (it, ot) = (self.t(l.input)?, self.t(l.output)?);
                let (fi, fo) = (l.in_features as usize, l.out_features as usize);
                let (weight, records) = (bytes(l.weight)?, bytes(l.channels)?);
                let (r, out) = split(arena, &ot)?;
                kernels::int8::linear::linear(
                    (it.count / fi.max(1), fi, fo),
                    r.get(&it)?,
                    out,
                    bytemuck::cast_slice(weight),
                    records,
                    kernels::int8::Ends {
                        zx: it.zero_point(),
                        zy: ot.zero_point(),
                        clamp: l.clamp,
                    },
                );
            }
            Op::QAdd(q) => {
                let (at, bt, ot) = (self.t(q.a)?, self.t(q.b)?, self.t(q.output)?);
                // Addition commutes, but the rescalings belong to their operands: when the
                // output is `b`'s range, swap operands and rescalings together.
                let b_is_out = bt.offset == ot.offset && at.offset != ot.offset;
                let (q, first, second) = if b_is_out {
                    let swapped = nnblob_format::meta::QAdd {
                        a_requant: q.b_requant,
                        b_requant: q.a_requant,
                        ..q.clone()
                    };
                    (swapped, &bt, &at)
                } else {
                    (q.clone(), &at, &bt)
                };
                let (r, out) = in_place(arena, first, &ot)?;
                let (za, zb) = (first.zero_point(), second.zero_point());
                kernels::int8::add::add(&q, za, zb, ot.zero_point(), out, r.get(second)?);
            }
        }
        Ok(())
    }

    /// The ops that move values without computing on them, for either element type; `zero` is
    /// what padding holds (0.0, or an int8 tensor's zero point: the real 0).
    fn exec_move<T: Elem>(&self, op: &WireOp<'_>, zero: T, arena: &mut [u8]) -> Result<(), Error> {
        match op {
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
                let pad = padding.map(|p| p as usize);
                kernels::shape::zero_pad(c, h, wd, pad, zero, rd.get(&it)?, out);
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
                let (r, out) = split::<T>(arena, &ot)?;
                let mut at = 0;
                for i in inputs.iter() {
                    let t = self.t(i)?;
                    let block = dim(&t, ax) * inner;
                    kernels::shape::concat_part(outer, block, stride, at, r.get(&t)?, out);
                    at += block;
                }
            }
            Op::Permute {
                input,
                output,
                perm,
            } => {
                let (it, ot) = (self.t(*input)?, self.t(*output)?);
                let (r, out) = split::<T>(arena, &ot)?;
                let perm = perm.map(|p| usize::from(p).min(3));
                kernels::shape::permute(it.dims, perm, r.get(&it)?, out);
            }
            Op::Copy { input, output } => {
                let (it, ot) = (self.t(*input)?, self.t(*output)?);
                in_place::<T>(arena, &it, &ot)?;
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
                let (r, out) = split::<T>(arena, &ot)?;
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
            _ => return Err(Error::Internal),
        }
        Ok(())
    }
}

/// The convolution geometry of an op's tensors and parameters.
fn conv_geom(
    it: &Tensor,
    ot: &Tensor,
    c: &nnblob_format::meta::ConvGeometry,
) -> kernels::conv::Geom {
    kernels::conv::Geom {
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
