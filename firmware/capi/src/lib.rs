//! The nnblob engine from C: the calls of `include/nnblob.h` over [`nnblob_firmware::Model`].
//!
//! In: a blob, input and output buffers and an arena, as C pointers and lengths. Out: the
//! engine's results and an `int` code per call (`NNB_OK` or one negative code per engine error
//! and per bad argument, [`CODES`]). Every pointer is checked for NULL and alignment, every
//! pointer-and-length for wrapping the address space, and the buffers of a run for overlaps
//! that would make Rust's references alias; after that the engine itself is the safe Rust of
//! `nnblob-firmware`. Nothing is allocated. The header is the contract: `tests/header.rs`
//! checks it against the constants here and a C program's `sizeof`.
//!
//! `no_std` with a panic handler of its own on bare-metal targets (`target_os = "none"`); on
//! hosted targets the library links std and uses its handler. The code cannot panic (the same
//! lints as the engine deny it); the handler exists because a `no_std` static library needs one.
#![cfg_attr(target_os = "none", no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use core::ffi::{c_char, c_int, c_void, CStr};
use core::mem::{align_of, size_of, MaybeUninit};
use core::ops::Range;

use nnblob_firmware::{ElemType, Error, IoInfo, Model, OpKind, Profiler};
use nnblob_format::Error as BlobError;

/// The most inputs, and the most outputs, a model may have here: a run keeps one slice per
/// buffer on the stack (`NNB_MAX_IO`).
pub const MAX_IO: usize = 16;

/// The most dimensions a tensor has (`NNB_MAX_RANK`).
pub const MAX_RANK: usize = 4;

/// Bytes of `nnb_model` on 32-bit targets (`NNB_MODEL_BYTES_32`).
pub const MODEL_BYTES_32: usize = 256;
/// Bytes of `nnb_model` on 64-bit targets (`NNB_MODEL_BYTES_64`).
pub const MODEL_BYTES_64: usize = 384;
/// Bytes of `nnb_model` on this target (`NNB_MODEL_BYTES`): the Rust `Model` with room to grow
/// (about 150 bytes on 32-bit targets, 230 on 64-bit ones).
pub const MODEL_BYTES: usize = if size_of::<usize>() > 4 {
    MODEL_BYTES_64
} else {
    MODEL_BYTES_32
};

/// The required alignment of an arena, in bytes (`NNB_ARENA_ALIGN`): that of `f32`.
pub const ARENA_ALIGN: usize = align_of::<f32>();

/// `NNB_TYPE_F32`: an input or output of floats.
pub const NNB_TYPE_F32: c_int = 0;
/// `NNB_TYPE_INT8`: an input or output of int8 values in its tensor's quantization.
pub const NNB_TYPE_INT8: c_int = 1;

/// `NNB_OP_BEGIN`: the hook's `phase` before an op runs.
pub const NNB_OP_BEGIN: c_int = 0;
/// `NNB_OP_END`: the hook's `phase` after it ran.
pub const NNB_OP_END: c_int = 1;

/// `nnb_op_hook`: called with the hook's `user` pointer, the op's index, its kind's name
/// (NUL-terminated, valid during the call) and `NNB_OP_BEGIN` or `NNB_OP_END`.
pub type OpHook =
    unsafe extern "C" fn(user: *mut c_void, op: usize, kind: *const c_char, phase: c_int);

macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident = $value:literal, $msg:literal;)*) => {
        $($(#[$doc])* pub const $name: c_int = $value;)*
        /// Every code: its name in `nnblob.h`, its value and the sentence `nnb_error_str` gives.
        pub const CODES: &[(&str, c_int, &CStr)] = &[$((stringify!($name), $value, $msg)),*];
    };
}

codes! {
    /// Success.
    NNB_OK = 0, c"success";
    /// A required pointer is NULL.
    NNB_ERR_NULL = -1, c"a required pointer is NULL";
    /// A pointer is not aligned as the call requires (model storage, arena, a buffer).
    NNB_ERR_ALIGN = -2, c"a pointer is not suitably aligned";
    /// A pointer plus its length runs past the end of the address space.
    NNB_ERR_RANGE = -3, c"a pointer plus its length runs past the end of the address space";
    /// Run buffers overlap: an output with another buffer, or the arena with an input or the blob.
    NNB_ERR_OVERLAP = -4, c"an output or the arena overlaps another buffer of the run";
    /// The model was never initialized, or its nnb_model_init failed.
    NNB_ERR_MODEL_INVALID = -5, c"the model is not initialized (nnb_model_init failed or was not called)";
    /// The model has more than NNB_MAX_IO inputs or outputs.
    NNB_ERR_TOO_MANY_IO = -6, c"the model has more inputs or outputs than NNB_MAX_IO";
    /// The model has no input, or no output, of that index.
    NNB_ERR_NO_SUCH_IO = -7, c"the model has no input or output of that index";
    /// An input or output is not of the type the call needs (int8 for nnb_run_int8 and the
    /// quantization queries).
    NNB_ERR_IO_TYPE = -8, c"an input or output is not of the type the call needs";
    /// The blob is shorter than its header or a section claims.
    NNB_ERR_TRUNCATED = -10, c"blob truncated";
    /// The blob does not start with the nnblob magic.
    NNB_ERR_BAD_MAGIC = -11, c"not an nnblob blob (bad magic)";
    /// The blob's format version is not one this engine reads.
    NNB_ERR_UNSUPPORTED_VERSION = -12, c"unsupported blob format version";
    /// The header's flags have bits this version does not define.
    NNB_ERR_UNKNOWN_FLAGS = -13, c"unknown header flags";
    /// The header length field is wrong for the version.
    NNB_ERR_BAD_HEADER_LEN = -14, c"header length field is wrong for this version";
    /// The CRC-32 does not match the contents: the blob is corrupted.
    NNB_ERR_CRC_MISMATCH = -15, c"CRC-32 mismatch (blob corrupted)";
    /// A section lies outside the blob, overlaps another or is misaligned.
    NNB_ERR_BAD_SECTION = -16, c"a section is outside the blob, overlapping or misaligned";
    /// A metadata value cannot be decoded.
    NNB_ERR_BAD_METADATA = -17, c"metadata cannot be decoded";
    /// The metadata has bytes after its last op.
    NNB_ERR_TRAILING_METADATA = -18, c"unexpected bytes after the last op";
    /// A tensor record has a rank above 4 or a dimension beyond its rank that is not 1.
    NNB_ERR_BAD_TENSOR_RECORD = -19, c"a tensor record is malformed";
    /// A tensor, input or output index is past the end of its table.
    NNB_ERR_INDEX_OUT_OF_RANGE = -20, c"an index in the blob is out of range";
    /// An op is of a kind added after the format version the blob declares.
    NNB_ERR_OP_NOT_IN_VERSION = -21, c"an op is of a kind the blob's format version does not have";
    /// A tensor's element count overflows or its range is outside the arena.
    NNB_ERR_TENSOR_OUTSIDE_ARENA = -30, c"a tensor is too large or lies outside the arena";
    /// An op names a tensor that does not exist.
    NNB_ERR_OP_TENSOR = -31, c"an op uses a tensor that does not exist";
    /// A tensor's shape does not match what its op computes.
    NNB_ERR_OP_SHAPE = -32, c"a tensor's shape does not match its op's parameters";
    /// An op parameter is zero, inconsistent or too large.
    NNB_ERR_OP_PARAM = -33, c"an op parameter is invalid";
    /// A weight reference is outside the weights section, misaligned or of the wrong length.
    NNB_ERR_OP_WEIGHT = -34, c"a weight is outside the weights section or has the wrong length";
    /// An op's output overlaps one of its inputs in a way the kernel cannot do.
    NNB_ERR_OP_OVERLAP = -35, c"an op's output overlaps one of its inputs in the arena";
    /// The arena is smaller than nnb_arena_bytes.
    NNB_ERR_ARENA_TOO_SMALL = -36, c"arena too small";
    /// The engine was given another number of buffers than the model has (a bug of this library).
    NNB_ERR_IO_COUNT = -37, c"wrong number of input or output buffers";
    /// An input buffer has the wrong length (a bug of this library: lengths come from the model).
    NNB_ERR_INPUT_LEN = -38, c"an input buffer has the wrong length";
    /// An output buffer has the wrong length (a bug of this library: lengths come from the model).
    NNB_ERR_OUTPUT_LEN = -39, c"an output buffer has the wrong length";
    /// A load-time check failed at run time: a bug of the engine, never the blob's fault.
    NNB_ERR_INTERNAL = -40, c"internal engine error";
    /// An engine error newer than this list.
    NNB_ERR_UNKNOWN = -41, c"unknown engine error";
    /// A recurrent layer's state is shared with another tensor or op (it must persist between
    /// runs).
    NNB_ERR_STATE_SHARED = -42, c"a recurrent state is shared with another tensor or op";
}

/// The code of an engine error: one per variant, and per variant of the format's errors.
pub fn code(e: Error) -> c_int {
    match e {
        Error::Blob(b) => match b {
            BlobError::Truncated { .. } => NNB_ERR_TRUNCATED,
            BlobError::BadMagic => NNB_ERR_BAD_MAGIC,
            BlobError::UnsupportedVersion(_) => NNB_ERR_UNSUPPORTED_VERSION,
            BlobError::UnknownFlags(_) => NNB_ERR_UNKNOWN_FLAGS,
            BlobError::BadHeaderLen(_) => NNB_ERR_BAD_HEADER_LEN,
            BlobError::CrcMismatch { .. } => NNB_ERR_CRC_MISMATCH,
            BlobError::BadSection { .. } => NNB_ERR_BAD_SECTION,
            BlobError::BadMetadata { .. } => NNB_ERR_BAD_METADATA,
            BlobError::TrailingMetadata { .. } => NNB_ERR_TRAILING_METADATA,
            BlobError::BadTensorRecord { .. } => NNB_ERR_BAD_TENSOR_RECORD,
            BlobError::IndexOutOfRange { .. } => NNB_ERR_INDEX_OUT_OF_RANGE,
            BlobError::OpNotInVersion { .. } => NNB_ERR_OP_NOT_IN_VERSION,
            _ => NNB_ERR_UNKNOWN,
        },
        Error::TensorOutsideArena { .. } => NNB_ERR_TENSOR_OUTSIDE_ARENA,
        Error::OpTensor { .. } => NNB_ERR_OP_TENSOR,
        Error::OpShape { .. } => NNB_ERR_OP_SHAPE,
        Error::OpParam { .. } => NNB_ERR_OP_PARAM,
        Error::OpWeight { .. } => NNB_ERR_OP_WEIGHT,
        Error::OpOverlap { .. } => NNB_ERR_OP_OVERLAP,
        Error::StateShared { .. } => NNB_ERR_STATE_SHARED,
        Error::ArenaTooSmall { .. } => NNB_ERR_ARENA_TOO_SMALL,
        Error::IoCount { .. } => NNB_ERR_IO_COUNT,
        Error::InputLen { .. } => NNB_ERR_INPUT_LEN,
        Error::OutputLen { .. } => NNB_ERR_OUTPUT_LEN,
        Error::IoType { .. } => NNB_ERR_IO_TYPE,
        Error::Internal => NNB_ERR_INTERNAL,
        _ => NNB_ERR_UNKNOWN,
    }
}

/// `nnb_model`: the caller's storage holding a validated [`Model`] and the blob it borrows.
/// Fields are private; C sees `NNB_MODEL_BYTES` opaque bytes aligned like `size_t`.
#[repr(C)]
pub struct NnbModel {
    /// [`MAGIC`] once `nnb_model_init` succeeded, anything else before.
    magic: usize,
    /// The blob's bytes, for the overlap checks of a run.
    blob: *const u8,
    blob_len: usize,
    /// The function a run calls around every op (`nnb_set_op_hook`), and its argument.
    hook: Option<OpHook>,
    user: *mut c_void,
    /// Initialized when `magic == MAGIC`. `'static` stands for the caller's promise that the
    /// blob outlives the model (documented in `nnblob.h`).
    model: MaybeUninit<Model<'static>>,
}

/// Marks an initialized `nnb_model` ("nnbl").
const MAGIC: usize = 0x6e6e_626c;

// The C declaration must hold the Rust value: its size is `NNB_MODEL_BYTES` and its union has a
// `size_t` member, so it is at least as aligned as `usize`. A model is plain borrowed data: C
// may copy it with memcpy and need never destroy it.
const _: () = assert!(size_of::<NnbModel>() <= MODEL_BYTES);
const _: () = assert!(align_of::<NnbModel>() <= align_of::<usize>());
const _: () = assert!(!core::mem::needs_drop::<Model<'static>>());

fn aligned(p: *const c_void, align: usize) -> bool {
    (p as usize) % align == 0
}

/// The address range of `len` bytes at `p`, if it neither wraps nor exceeds `isize::MAX` bytes
/// (what `core::slice::from_raw_parts` requires of a length).
fn span(p: *const c_void, len: usize) -> Option<Range<usize>> {
    if len > isize::MAX as usize {
        return None;
    }
    let start = p as usize;
    Some(start..start.checked_add(len)?)
}

/// The model in `*model`: `NNB_ERR_NULL`, `NNB_ERR_ALIGN` or `NNB_ERR_MODEL_INVALID` if there is
/// none.
///
/// # Safety
/// A non-NULL `model` points to `NNB_MODEL_BYTES` readable bytes, which no one writes while the
/// returned reference lives.
unsafe fn model_ref<'m>(model: *const NnbModel) -> Result<&'m NnbModel, c_int> {
    if model.is_null() {
        return Err(NNB_ERR_NULL);
    }
    if !aligned(model.cast(), align_of::<NnbModel>()) {
        return Err(NNB_ERR_ALIGN);
    }
    // SAFETY: non-NULL and aligned; the caller gives NNB_MODEL_BYTES readable bytes (the size
    // assertion above: they hold an `NnbModel`). Any bits are a valid `usize`.
    let magic = unsafe { core::ptr::addr_of!((*model).magic).read() };
    if magic != MAGIC {
        return Err(NNB_ERR_MODEL_INVALID);
    }
    // SAFETY: `magic == MAGIC` only after `nnb_model_init` wrote a whole `NnbModel` with an
    // initialized `model` (it clears `magic` first and sets it last, in one write of the value).
    Ok(unsafe { &*model })
}

impl NnbModel {
    fn get(&self) -> &Model<'static> {
        // SAFETY: an `NnbModel` reachable by reference passed `model_ref`'s magic check, which
        // only a successful `nnb_model_init` sets, together with the model.
        unsafe { self.model.assume_init_ref() }
    }
}

/// Input `index` (or output, when `output`) of `*model`.
///
/// # Safety
/// As [`model_ref`].
unsafe fn io(model: *const NnbModel, output: bool, index: usize) -> Option<IoInfo<'static>> {
    // SAFETY: the caller's contract is model_ref's.
    let m = unsafe { model_ref(model) }.ok()?.get();
    if output {
        m.output(index)
    } else {
        m.input(index)
    }
}

/// Validates `blob` and makes `*model` a view of it. See `nnblob.h`.
///
/// # Safety
/// `model` is NULL or points to `NNB_MODEL_BYTES` writable bytes; `blob` is NULL or points to
/// `blob_len` readable bytes that stay unchanged while the model is used.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nnb_model_init(
    model: *mut NnbModel,
    blob: *const u8,
    blob_len: usize,
) -> c_int {
    if model.is_null() {
        return NNB_ERR_NULL;
    }
    if !aligned(model.cast(), align_of::<NnbModel>()) {
        return NNB_ERR_ALIGN;
    }
    // SAFETY: non-NULL, aligned, NNB_MODEL_BYTES writable bytes (the caller's contract). The
    // model is invalid until the end, whatever happens below.
    unsafe { core::ptr::addr_of_mut!((*model).magic).write(0) };
    if blob.is_null() {
        return NNB_ERR_NULL;
    }
    if span(blob.cast(), blob_len).is_none() {
        return NNB_ERR_RANGE;
    }
    // SAFETY: non-NULL (a `u8` needs no alignment), `blob_len` readable bytes that the caller
    // keeps unchanged for as long as the model is used; the length fits `isize` (`span`).
    // `'static` is that promise: the bytes are only reached through the model.
    let bytes: &'static [u8] = unsafe { core::slice::from_raw_parts(blob, blob_len) };
    let m = match Model::from_bytes(bytes) {
        Ok(m) => m,
        Err(e) => return code(e),
    };
    if m.input_count() > MAX_IO || m.output_count() > MAX_IO {
        return NNB_ERR_TOO_MANY_IO;
    }
    let value = NnbModel {
        magic: MAGIC,
        blob,
        blob_len,
        hook: None,
        user: core::ptr::null_mut(),
        model: MaybeUninit::new(m),
    };
    // SAFETY: as the write above; the storage holds an `NnbModel` (size assertion).
    unsafe { model.write(value) };
    NNB_OK
}

/// Number of inputs, 0 without a valid model.
///
/// # Safety
/// `model` is NULL or points to `NNB_MODEL_BYTES` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nnb_num_inputs(model: *const NnbModel) -> usize {
    // SAFETY: the caller's contract is model_ref's.
    unsafe { model_ref(model) }.map_or(0, |m| m.get().input_count())
}

/// Number of outputs, 0 without a valid model.
///
/// # Safety
/// As [`nnb_num_inputs`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nnb_num_outputs(model: *const NnbModel) -> usize {
    // SAFETY: the caller's contract is model_ref's.
    unsafe { model_ref(model) }.map_or(0, |m| m.get().output_count())
}

/// Elements of input `index`, 0 without a valid model or such an input.
///
/// # Safety
/// As [`nnb_num_inputs`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nnb_input_len(model: *const NnbModel, index: usize) -> usize {
    // SAFETY: the caller's contract is io's.
    unsafe { io(model, false, index) }.map_or(0, |io| io.len())
}

/// Elements of output `index`, 0 without a valid model or such an output.
///
/// # Safety
/// As [`nnb_num_inputs`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nnb_output_len(model: *const NnbModel, index: usize) -> usize {
    // SAFETY: the caller's contract is io's.
    unsafe { io(model, true, index) }.map_or(0, |io| io.len())
}

fn name_of(io: Option<IoInfo<'static>>, name_len: *mut usize) -> *const c_char {
    let Some(io) = io else {
        return core::ptr::null();
    };
    if !name_len.is_null() {
        if !aligned(name_len.cast(), align_of::<usize>()) {
            return core::ptr::null();
        }
        // SAFETY: non-NULL and aligned; the caller gives a writable `size_t` (nnblob.h).
        unsafe { name_len.write(io.name.len()) };
    }
    io.name.as_ptr().cast()
}

/// Name of input `index`: its bytes in the blob (not NUL-terminated), length in `*name_len`.
///
/// # Safety
/// As [`nnb_num_inputs`]; `name_len` is NULL or points to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nnb_input_name(
    model: *const NnbModel,
    index: usize,
    name_len: *mut usize,
) -> *const c_char {
    // SAFETY: the caller's contract is io's.
    name_of(unsafe { io(model, false, index) }, name_len)
}

/// Name of output `index`, as [`nnb_input_name`].
///
/// # Safety
/// As [`nnb_input_name`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nnb_output_name(
    model: *const NnbModel,
    index: usize,
    name_len: *mut usize,
) -> *const c_char {
    // SAFETY: the caller's contract is io's.
    name_of(unsafe { io(model, true, index) }, name_len)
}

/// Rank of input `index`, 0 without a valid model or such an input.
///
/// # Safety
/// As [`nnb_num_inputs`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nnb_input_rank(model: *const NnbModel, index: usize) -> usize {
    // SAFETY: the caller's contract is io's.
    unsafe { io(model, false, index) }.map_or(0, |io| io.shape().len())
}

/// Rank of output `index`, 0 without a valid model or such an output.
///
/// # Safety
/// As [`nnb_num_inputs`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nnb_output_rank(model: *const NnbModel, index: usize) -> usize {
    // SAFETY: the caller's contract is io's.
    unsafe { io(model, true, index) }.map_or(0, |io| io.shape().len())
}

fn dim_of(io: Option<IoInfo<'static>>, axis: usize) -> usize {
    io.and_then(|io| io.shape().get(axis).map(|&d| d as usize))
        .unwrap_or(0)
}

/// Dimension `axis` of input `index`, 0 when the model, input or axis does not exist.
///
/// # Safety
/// As [`nnb_num_inputs`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nnb_input_dim(model: *const NnbModel, index: usize, axis: usize) -> usize {
    // SAFETY: the caller's contract is io's.
    dim_of(unsafe { io(model, false, index) }, axis)
}

/// Dimension `axis` of output `index`, 0 when the model, output or axis does not exist.
///
/// # Safety
/// As [`nnb_num_inputs`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nnb_output_dim(
    model: *const NnbModel,
    index: usize,
    axis: usize,
) -> usize {
    // SAFETY: the caller's contract is io's.
    dim_of(unsafe { io(model, true, index) }, axis)
}

/// Bytes of arena a run needs, 0 without a valid model.
///
/// # Safety
/// As [`nnb_num_inputs`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nnb_arena_bytes(model: *const NnbModel) -> usize {
    // SAFETY: the caller's contract is model_ref's.
    unsafe { model_ref(model) }.map_or(0, |m| m.get().arena_len().saturating_mul(size_of::<f32>()))
}

/// A buffer of a run: its address range, and whether the run writes it.
#[derive(Clone, Copy)]
struct Buf {
    span: (usize, usize),
    written: bool,
}

/// `NNB_ERR_OVERLAP` if a written buffer shares a byte with another buffer.
fn check_overlaps(bufs: &[Buf]) -> Result<(), c_int> {
    for (i, a) in bufs.iter().enumerate() {
        for b in bufs.iter().skip(i + 1) {
            let overlap = a.span.0 < b.span.1 && b.span.0 < a.span.1;
            if overlap && (a.written || b.written) {
                return Err(NNB_ERR_OVERLAP);
            }
        }
    }
    Ok(())
}

/// The buffer of `len` elements of `T` at `p`, checked: its address range.
fn elem_span<T>(p: *const T, len: usize) -> Result<(usize, usize), c_int> {
    if p.is_null() {
        return Err(NNB_ERR_NULL);
    }
    if !aligned(p.cast(), align_of::<T>()) {
        return Err(NNB_ERR_ALIGN);
    }
    let bytes = len.checked_mul(size_of::<T>()).ok_or(NNB_ERR_RANGE)?;
    let r = span(p.cast(), bytes).ok_or(NNB_ERR_RANGE)?;
    Ok((r.start, r.end))
}

/// The element types a run takes at its edges: `f32` (`nnb_run`, any model) and `i8`
/// (`nnb_run_int8`, a model whose inputs and outputs are all int8).
trait Edge: Copy + 'static {
    fn run(
        model: &Model<'static>,
        inputs: &[&[Self]],
        outputs: &mut [&mut [Self]],
        arena: &mut [f32],
        profiler: &mut Hook,
    ) -> Result<(), Error>;
}

impl Edge for f32 {
    fn run(
        model: &Model<'static>,
        inputs: &[&[f32]],
        outputs: &mut [&mut [f32]],
        arena: &mut [f32],
        profiler: &mut Hook,
    ) -> Result<(), Error> {
        model.run_profiled(inputs, outputs, arena, profiler)
    }
}

impl Edge for i8 {
    fn run(
        model: &Model<'static>,
        inputs: &[&[i8]],
        outputs: &mut [&mut [i8]],
        arena: &mut [f32],
        profiler: &mut Hook,
    ) -> Result<(), Error> {
        model.run_quantized(inputs, outputs, arena, profiler)
    }
}

/// The op hook of `nnb_set_op_hook`, if any, as the engine's profiler: one profiler type for
/// every run, so that the engine's op loop is compiled once (not once with a hook and once
/// without: about 13 KB on the Cortex-M4 each).
struct Hook {
    hook: Option<OpHook>,
    user: *mut c_void,
}

impl Hook {
    fn call(&mut self, index: u32, kind: OpKind, phase: c_int) {
        let Some(hook) = self.hook else {
            return;
        };
        // The name NUL-terminated, valid for the call (nnblob.h); names are ASCII words far
        // shorter than the buffer, and a longer one would be cut, never overrun.
        let mut name = [0u8; 32];
        for (d, s) in name.iter_mut().zip(kind.name().bytes().take(31)) {
            *d = s;
        }
        // SAFETY: the caller of nnb_set_op_hook gave a function of this signature, callable
        // during runs with `user`; the name lives until it returns.
        unsafe { hook(self.user, index as usize, name.as_ptr().cast(), phase) };
    }
}

impl Profiler for Hook {
    fn begin(&mut self, index: u32, kind: OpKind) {
        self.call(index, kind, NNB_OP_BEGIN);
    }
    fn end(&mut self, index: u32, kind: OpKind) {
        self.call(index, kind, NNB_OP_END);
    }
}

/// Runs the model once on buffers of `T`. See `nnblob.h` (`nnb_run`, `nnb_run_int8`).
///
/// # Safety
/// `model` as [`nnb_num_inputs`]; `inputs` is NULL or an array of `nnb_num_inputs` pointers,
/// each NULL or to `nnb_input_len` readable elements; `outputs` likewise with writable
/// elements; `arena` is NULL or points to `arena_bytes` writable bytes. No one else touches
/// them during the call.
unsafe fn run_c<T: Edge>(
    model: *const NnbModel,
    inputs: *const *const T,
    outputs: *const *mut T,
    arena: *mut c_void,
    arena_bytes: usize,
) -> c_int {
    // SAFETY: the caller's contract is model_ref's and run's.
    match unsafe { model_ref(model) }
        .and_then(|m| unsafe { run(m, inputs, outputs, arena, arena_bytes) })
    {
        Ok(()) => NNB_OK,
        Err(c) => c,
    }
}

/// Runs the model once on floats. See `nnblob.h`.
///
/// # Safety
/// As [`run_c`] with `float` elements.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nnb_run(
    model: *const NnbModel,
    inputs: *const *const f32,
    outputs: *const *mut f32,
    arena: *mut c_void,
    arena_bytes: usize,
) -> c_int {
    // SAFETY: the same contract.
    unsafe { run_c(model, inputs, outputs, arena, arena_bytes) }
}

/// Runs an all-int8 model once on its raw int8 values. See `nnblob.h`.
///
/// # Safety
/// As [`run_c`] with `int8_t` elements.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nnb_run_int8(
    model: *const NnbModel,
    inputs: *const *const i8,
    outputs: *const *mut i8,
    arena: *mut c_void,
    arena_bytes: usize,
) -> c_int {
    // SAFETY: the same contract.
    unsafe { run_c(model, inputs, outputs, arena, arena_bytes) }
}

/// [`run_c`] on a valid model.
///
/// # Safety
/// As [`run_c`].
unsafe fn run<T: Edge>(
    m: &NnbModel,
    inputs: *const *const T,
    outputs: *const *mut T,
    arena: *mut c_void,
    arena_bytes: usize,
) -> Result<(), c_int> {
    let model = m.get();
    let (n_in, n_out) = (model.input_count(), model.output_count());
    if (inputs.is_null() && n_in > 0) || (outputs.is_null() && n_out > 0) || arena.is_null() {
        return Err(NNB_ERR_NULL);
    }
    if !aligned(arena, ARENA_ALIGN) {
        return Err(NNB_ERR_ALIGN);
    }
    span(arena, arena_bytes).ok_or(NNB_ERR_RANGE)?;
    let arena_len = model.arena_len();
    if arena_bytes / size_of::<f32>() < arena_len {
        return Err(NNB_ERR_ARENA_TOO_SMALL);
    }
    let mut bufs = [Buf {
        span: (0, 0),
        written: false,
    }; 2 * MAX_IO + 2];
    let mut n = 0;
    let mut push = |span: (usize, usize), written: bool| {
        if let Some(b) = bufs.get_mut(n) {
            *b = Buf { span, written };
            n += 1;
        }
    };
    let blob = span(m.blob.cast(), m.blob_len).ok_or(NNB_ERR_RANGE)?;
    push((blob.start, blob.end), false);
    push(elem_span(arena.cast::<f32>(), arena_len)?, true);
    let mut in_ptrs = [core::ptr::null::<T>(); MAX_IO];
    let mut out_ptrs = [core::ptr::null_mut::<T>(); MAX_IO];
    for (i, slot) in in_ptrs.iter_mut().enumerate().take(n_in) {
        // SAFETY: `inputs` is non-NULL here and has `n_in` elements (the caller's contract).
        *slot = unsafe { inputs.add(i).read() };
        push(elem_span(*slot, model.input_len(i))?, false);
    }
    for (i, slot) in out_ptrs.iter_mut().enumerate().take(n_out) {
        // SAFETY: as for the inputs.
        *slot = unsafe { outputs.add(i).read() };
        push(elem_span(*slot, model.output_len(i))?, true);
    }
    check_overlaps(bufs.get(..n).ok_or(NNB_ERR_INTERNAL)?)?;
    let mut ins: [&[T]; MAX_IO] = [&[][..]; MAX_IO];
    for (i, (slot, &p)) in ins.iter_mut().zip(&in_ptrs).enumerate().take(n_in) {
        // SAFETY: checked non-NULL, aligned, not wrapping (`elem_span`); the caller gives
        // `input_len` readable elements; no buffer the run writes overlaps it (`check_overlaps`).
        *slot = unsafe { core::slice::from_raw_parts(p, model.input_len(i)) };
    }
    let mut outs: [&mut [T]; MAX_IO] = core::array::from_fn(|_| <&mut [T]>::default());
    for (i, (slot, &p)) in outs.iter_mut().zip(&out_ptrs).enumerate().take(n_out) {
        // SAFETY: as for the inputs, writable, and disjoint from every other buffer of the run.
        *slot = unsafe { core::slice::from_raw_parts_mut(p, model.output_len(i)) };
    }
    // SAFETY: checked non-NULL and aligned for f32; `arena_len * 4 <= arena_bytes` writable
    // bytes (the caller's contract), disjoint from the blob, the inputs and the outputs.
    let arena = unsafe { core::slice::from_raw_parts_mut(arena.cast::<f32>(), arena_len) };
    let ins = ins.get(..n_in).ok_or(NNB_ERR_INTERNAL)?;
    let outs = outs.get_mut(..n_out).ok_or(NNB_ERR_INTERNAL)?;
    let mut hook = Hook {
        hook: m.hook,
        user: m.user,
    };
    T::run(model, ins, outs, arena, &mut hook).map_err(code)
}

/// Sets (or, with a NULL `hook`, clears) the function a run calls before and after every op.
/// See `nnblob.h`.
///
/// # Safety
/// `model` is NULL or points to `NNB_MODEL_BYTES` writable bytes that no run uses during the
/// call; `hook` is NULL or a function that may be called with `user` during the model's runs.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nnb_set_op_hook(
    model: *mut NnbModel,
    hook: Option<OpHook>,
    user: *mut c_void,
) -> c_int {
    // SAFETY: the caller's contract is model_ref's, writable as well.
    if let Err(c) = unsafe { model_ref(model) } {
        return c;
    }
    // SAFETY: a valid model (just checked), writable and used by no run (the contract).
    unsafe {
        core::ptr::addr_of_mut!((*model).hook).write(hook);
        core::ptr::addr_of_mut!((*model).user).write(user);
    }
    NNB_OK
}

/// The element type of input `index` (or output), as an `NNB_TYPE_*` code.
///
/// # Safety
/// As [`nnb_num_inputs`].
unsafe fn type_of(model: *const NnbModel, output: bool, index: usize) -> c_int {
    // SAFETY: the caller's contract is model_ref's.
    let m = match unsafe { model_ref(model) } {
        Ok(m) => m.get(),
        Err(c) => return c,
    };
    let io = if output {
        m.output(index)
    } else {
        m.input(index)
    };
    match io.map(|io| io.tensor.elem) {
        Some(ElemType::F32) => NNB_TYPE_F32,
        Some(ElemType::I8) => NNB_TYPE_INT8,
        None => NNB_ERR_NO_SUCH_IO,
    }
}

/// The element type of input `index`: `NNB_TYPE_F32`, `NNB_TYPE_INT8` or a negative code.
///
/// # Safety
/// As [`nnb_num_inputs`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nnb_input_type(model: *const NnbModel, index: usize) -> c_int {
    // SAFETY: the same contract.
    unsafe { type_of(model, false, index) }
}

/// The element type of output `index`, as [`nnb_input_type`].
///
/// # Safety
/// As [`nnb_num_inputs`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nnb_output_type(model: *const NnbModel, index: usize) -> c_int {
    // SAFETY: the same contract.
    unsafe { type_of(model, true, index) }
}

/// The quantization of int8 input `index` (or output) into `*scale` and `*zero_point`.
///
/// # Safety
/// As [`nnb_num_inputs`]; `scale` and `zero_point` are NULL or writable.
unsafe fn quant_of(
    model: *const NnbModel,
    output: bool,
    index: usize,
    scale: *mut f32,
    zero_point: *mut i32,
) -> c_int {
    // SAFETY: the caller's contract is model_ref's.
    let m = match unsafe { model_ref(model) } {
        Ok(m) => m.get(),
        Err(c) => return c,
    };
    if scale.is_null() || zero_point.is_null() {
        return NNB_ERR_NULL;
    }
    if !aligned(scale.cast(), align_of::<f32>()) || !aligned(zero_point.cast(), align_of::<i32>()) {
        return NNB_ERR_ALIGN;
    }
    let io = if output {
        m.output(index)
    } else {
        m.input(index)
    };
    let Some(t) = io.map(|io| io.tensor) else {
        return NNB_ERR_NO_SUCH_IO;
    };
    if t.elem != ElemType::I8 {
        return NNB_ERR_IO_TYPE;
    }
    // SAFETY: non-NULL, aligned and writable (the caller's contract).
    unsafe {
        scale.write(t.quant.scale);
        zero_point.write(i32::from(t.quant.zero_point));
    }
    NNB_OK
}

/// The scale and zero point of int8 input `index`: real = scale * (q - zero_point). `NNB_OK`,
/// or `NNB_ERR_IO_TYPE` for an f32 input, or another negative code.
///
/// # Safety
/// As [`nnb_num_inputs`]; `scale` and `zero_point` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nnb_input_quant(
    model: *const NnbModel,
    index: usize,
    scale: *mut f32,
    zero_point: *mut i32,
) -> c_int {
    // SAFETY: the same contract.
    unsafe { quant_of(model, false, index, scale, zero_point) }
}

/// The scale and zero point of int8 output `index`, as [`nnb_input_quant`].
///
/// # Safety
/// As [`nnb_input_quant`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nnb_output_quant(
    model: *const NnbModel,
    index: usize,
    scale: *mut f32,
    zero_point: *mut i32,
) -> c_int {
    // SAFETY: the same contract.
    unsafe { quant_of(model, true, index, scale, zero_point) }
}

/// The sentence of `code`: a static NUL-terminated string, never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn nnb_error_str(code: c_int) -> *const c_char {
    CODES
        .iter()
        .find(|c| c.1 == code)
        .map_or(c"unknown error code", |c| c.2)
        .as_ptr()
}

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // Unreachable: the lints deny every panicking construct in this crate and the engine.
    loop {
        core::hint::spin_loop();
    }
}
