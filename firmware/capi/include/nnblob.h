/*
 * nnblob.h: the nnblob inference engine from C.
 *
 * The engine is the Rust crate nnblob-firmware; this header is the C API of the static
 * library built from firmware/capi (libnnblob_capi.a, docs/C.md). C99 or later, C++ too.
 *
 *   static nnb_model model;
 *   static float arena[MYNET_ARENA_LEN];            // from `nnblob emit --c`: mynet.h
 *   int rc = nnb_model_init(&model, mynet_blob, MYNET_BLOB_BYTES);  // validates everything once
 *   const float *in[1] = { input };
 *   float *out[1] = { output };
 *   if (rc == NNB_OK) rc = nnb_run(&model, in, out, arena, sizeof arena);
 *   if (rc != NNB_OK) printf("nnblob: %s\n", nnb_error_str(rc));
 *
 * Memory. The caller owns all of it; nothing is allocated, nothing is kept between calls
 * besides the nnb_model.
 * - The blob is read in place and never copied: the model borrows it. It must stay readable
 *   and unchanged for as long as the model is used (a const array in flash is the usual case).
 *   Any address is accepted; place it at a multiple of NNB_BLOB_ALIGN (as `nnblob emit --c`
 *   does) so that every weight tensor is 16-byte aligned and the fast paths of the Cortex-M
 *   kernels read it with word loads (a misaligned blob gives the same bits, more slowly).
 * - The arena is scratch memory for one run at a time: at least nnb_arena_bytes(model) bytes,
 *   aligned to NNB_ARENA_ALIGN (a float array is). Its contents need no initialization and
 *   mean nothing after a run.
 * - Input and output buffers are float arrays of nnb_input_len / nnb_output_len elements, in
 *   the model's order. Inputs may share memory with each other and with the blob; an output
 *   may overlap nothing else, and the arena neither the blob nor a buffer (NNB_ERR_OVERLAP).
 * - nnb_model is plain data: it may be copied with memcpy and needs no destruction.
 *
 * Every pointer is checked: NULL, misalignment and a pointer plus length that wraps the
 * address space give an error code, not a crash. What cannot be checked is that a pointer
 * points to as many valid bytes as its length says, and that a model passed to the other
 * calls went through nnb_model_init first (a zero-filled nnb_model, such as a static one, or
 * one whose nnb_model_init failed, gives NNB_ERR_MODEL_INVALID; uninitialized stack memory is
 * undefined). Calls on one model may run concurrently except nnb_model_init and
 * nnb_set_op_hook; each concurrent run needs its own arena and outputs.
 *
 * int8 models (`nnblob convert --dtype int8`): nnb_run takes and gives floats whatever the
 * model, quantizing int8 inputs and dequantizing int8 outputs with their tensors' scales;
 * nnb_run_int8 takes the int8 values themselves, for firmware whose sensor data is quantized
 * already (nnb_input_type, nnb_input_quant say what a model expects).
 *
 * Numerics: f32 with a fixed order of every sum and no fused multiply-add, or integers only
 * (int8): the same blob gives the same bits on every target (docs/FIRMWARE.md). On a Cortex-M with an FPU the engine assumes
 * the FPSCR's reset settings (no flush-to-zero, no default NaN, IEEE half precision).
 */
#ifndef NNBLOB_H
#define NNBLOB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Size of nnb_model in bytes. It holds the Rust engine's model view (pointers and lengths into
 * the blob): about 150 bytes on 32-bit targets and 230 on 64-bit ones, hence a size per pointer
 * width, with room for the view to grow without changing the ABI. The library asserts at
 * compile time, for its target, that the view fits; the tests check sizeof(nnb_model).
 */
#define NNB_MODEL_BYTES_32 256
#define NNB_MODEL_BYTES_64 384
#if SIZE_MAX > 0xFFFFFFFFu
#define NNB_MODEL_BYTES NNB_MODEL_BYTES_64
#else
#define NNB_MODEL_BYTES NNB_MODEL_BYTES_32
#endif

/* The most inputs, and the most outputs, of a model this library runs (NNB_ERR_TOO_MANY_IO). */
#define NNB_MAX_IO 16
/* The most dimensions of a tensor. */
#define NNB_MAX_RANK 4
/* Required alignment of the arena, in bytes (that of float). */
#define NNB_ARENA_ALIGN 4
/* Recommended alignment of the blob, in bytes (any is accepted). */
#define NNB_BLOB_ALIGN 16

/*
 * Storage for one model. Opaque: only the library reads or writes its bytes. The union makes
 * it aligned like a pointer, a size_t, a uint64_t and a double, at least what the library
 * needs (nnb_model_init refuses misaligned storage with NNB_ERR_ALIGN).
 */
typedef struct nnb_model {
    union {
        void *align_pointer;
        size_t align_size;
        uint64_t align_u64;
        double align_double;
        unsigned char bytes[NNB_MODEL_BYTES];
    } opaque;
} nnb_model;

/*
 * Return codes. Stable: a code keeps its number in later versions; new codes get new numbers.
 * nnb_error_str gives a sentence for each.
 */
#define NNB_OK 0
/* Arguments (checked by this library). */
#define NNB_ERR_NULL (-1)                  /* a required pointer is NULL */
#define NNB_ERR_ALIGN (-2)                 /* model storage, arena or a buffer misaligned */
#define NNB_ERR_RANGE (-3)                 /* a pointer plus its length wraps the address space */
#define NNB_ERR_OVERLAP (-4)               /* an output or the arena overlaps another buffer */
#define NNB_ERR_MODEL_INVALID (-5)         /* nnb_model_init never succeeded on this model */
#define NNB_ERR_TOO_MANY_IO (-6)           /* more than NNB_MAX_IO inputs or outputs */
#define NNB_ERR_NO_SUCH_IO (-7)            /* no input or output of that index */
#define NNB_ERR_IO_TYPE (-8)               /* an input or output is not int8 (int8 calls) */
/* The blob's framing (nnb_model_init). */
#define NNB_ERR_TRUNCATED (-10)            /* shorter than its header or a section claims */
#define NNB_ERR_BAD_MAGIC (-11)            /* not an nnblob blob */
#define NNB_ERR_UNSUPPORTED_VERSION (-12)  /* a format version this engine does not read */
#define NNB_ERR_UNKNOWN_FLAGS (-13)        /* header flags this version does not define */
#define NNB_ERR_BAD_HEADER_LEN (-14)       /* header length field wrong for the version */
#define NNB_ERR_CRC_MISMATCH (-15)         /* CRC-32 mismatch: the blob is corrupted */
#define NNB_ERR_BAD_SECTION (-16)          /* a section outside the blob, overlapping, misaligned */
#define NNB_ERR_BAD_METADATA (-17)         /* a metadata value cannot be decoded */
#define NNB_ERR_TRAILING_METADATA (-18)    /* bytes after the last op */
#define NNB_ERR_BAD_TENSOR_RECORD (-19)    /* rank above 4, or a dimension past the rank not 1 */
#define NNB_ERR_INDEX_OUT_OF_RANGE (-20)   /* a tensor, input or output index past its table */
#define NNB_ERR_OP_NOT_IN_VERSION (-21)    /* an op kind newer than the blob's version */
/* The blob's contents (nnb_model_init). */
#define NNB_ERR_TENSOR_OUTSIDE_ARENA (-30) /* a tensor too large or outside the arena */
#define NNB_ERR_OP_TENSOR (-31)            /* an op uses a tensor that does not exist */
#define NNB_ERR_OP_SHAPE (-32)             /* a shape does not match its op's parameters */
#define NNB_ERR_OP_PARAM (-33)             /* an op parameter zero, inconsistent or too large */
#define NNB_ERR_OP_WEIGHT (-34)            /* a weight outside its section or of a wrong length */
#define NNB_ERR_OP_OVERLAP (-35)           /* an op's output overlaps its input in the arena */
#define NNB_ERR_STATE_SHARED (-42)         /* a recurrent state shares bytes with another tensor */
/* A run (nnb_run). */
#define NNB_ERR_ARENA_TOO_SMALL (-36)      /* arena_bytes < nnb_arena_bytes(model) */
#define NNB_ERR_IO_COUNT (-37)             /* not expected from this API: a library bug */
#define NNB_ERR_INPUT_LEN (-38)            /* not expected from this API: a library bug */
#define NNB_ERR_OUTPUT_LEN (-39)           /* not expected from this API: a library bug */
#define NNB_ERR_INTERNAL (-40)             /* a load-time check failed at run time: an engine bug */
#define NNB_ERR_UNKNOWN (-41)              /* an engine error newer than this list */

/*
 * Validates the blob (header, CRC-32, every tensor, op, offset and weight range) and makes
 * *model a view of it. The blob is borrowed: it must outlive every use of the model. On
 * failure *model is marked invalid. Returns NNB_OK, NNB_ERR_NULL (model or blob), NNB_ERR_ALIGN
 * (model storage), NNB_ERR_RANGE, NNB_ERR_TOO_MANY_IO, or the blob's error (-10 to -35).
 */
int nnb_model_init(nnb_model *model, const uint8_t *blob, size_t blob_len);

/* Numbers of inputs and outputs; 0 for a NULL or invalid model. */
size_t nnb_num_inputs(const nnb_model *model);
size_t nnb_num_outputs(const nnb_model *model);

/* Elements (floats) of input or output `index`; 0 for a NULL or invalid model or an index
 * out of range. */
size_t nnb_input_len(const nnb_model *model, size_t index);
size_t nnb_output_len(const nnb_model *model, size_t index);

/*
 * Name of input or output `index`: a pointer into the blob, NOT NUL-terminated, and its length
 * in bytes in *name_len (when name_len is not NULL). Print it with printf("%.*s", (int)len,
 * name). NULL for a NULL or invalid model, an index out of range or a misaligned name_len
 * (*name_len untouched).
 */
const char *nnb_input_name(const nnb_model *model, size_t index, size_t *name_len);
const char *nnb_output_name(const nnb_model *model, size_t index, size_t *name_len);

/* Rank (0 to NNB_MAX_RANK) of input or output `index`, batch included; 0 for a NULL or
 * invalid model or an index out of range. */
size_t nnb_input_rank(const nnb_model *model, size_t index);
size_t nnb_output_rank(const nnb_model *model, size_t index);

/* Dimension `axis` (0 = outermost) of input or output `index`; 0 for a NULL or invalid model,
 * an index out of range or an axis not below the rank. */
size_t nnb_input_dim(const nnb_model *model, size_t index, size_t axis);
size_t nnb_output_dim(const nnb_model *model, size_t index, size_t axis);

/* Bytes of arena nnb_run needs (4 times the blob's arena length); 0 for a NULL or invalid
 * model. `nnblob emit --c` gives the same figure at compile time: NAME_ARENA_BYTES. */
size_t nnb_arena_bytes(const nnb_model *model);

/*
 * Runs the model once: copies the inputs into the arena, runs every op, copies the outputs out.
 * inputs: nnb_num_inputs pointers, each to nnb_input_len(model, i) floats; outputs likewise
 * (may be NULL when the model has no inputs, or no outputs). arena: arena_bytes bytes, at
 * least nnb_arena_bytes(model), aligned to NNB_ARENA_ALIGN. For an int8 model the floats are
 * quantized on the way in and dequantized on the way out. Returns NNB_OK, NNB_ERR_NULL,
 * NNB_ERR_ALIGN, NNB_ERR_RANGE, NNB_ERR_OVERLAP, NNB_ERR_MODEL_INVALID or
 * NNB_ERR_ARENA_TOO_SMALL. After an error the outputs are unchanged.
 */
int nnb_run(const nnb_model *model, const float *const inputs[], float *const outputs[],
            void *arena, size_t arena_bytes);

/*
 * Runs a model whose inputs and outputs are all int8 on the raw int8 values, each in its
 * tensor's quantization (nnb_input_quant, nnb_output_quant): inputs[i] has nnb_input_len(model,
 * i) int8_t, outputs likewise. Same rules and codes as nnb_run, and NNB_ERR_IO_TYPE when an
 * input or output of the model is f32. The bits equal those nnb_run computes before its own
 * dequantization.
 */
int nnb_run_int8(const nnb_model *model, const int8_t *const inputs[], int8_t *const outputs[],
                 void *arena, size_t arena_bytes);

/* Element types of an input or output. */
#define NNB_TYPE_F32 0
#define NNB_TYPE_INT8 1

/* The element type of input or output `index`: NNB_TYPE_F32 or NNB_TYPE_INT8; or
 * NNB_ERR_NULL, NNB_ERR_ALIGN, NNB_ERR_MODEL_INVALID, NNB_ERR_NO_SUCH_IO. */
int nnb_input_type(const nnb_model *model, size_t index);
int nnb_output_type(const nnb_model *model, size_t index);

/*
 * The quantization of int8 input or output `index`: real = scale * (q - zero_point), into
 * *scale and *zero_point. Returns NNB_OK; NNB_ERR_IO_TYPE for an f32 one (*scale and
 * *zero_point untouched); NNB_ERR_NULL, NNB_ERR_ALIGN, NNB_ERR_MODEL_INVALID,
 * NNB_ERR_NO_SUCH_IO.
 */
int nnb_input_quant(const nnb_model *model, size_t index, float *scale, int32_t *zero_point);
int nnb_output_quant(const nnb_model *model, size_t index, float *scale, int32_t *zero_point);

/*
 * Profiling: a function every run of the model (nnb_run, nnb_run_int8) calls with `user`
 * before (NNB_OP_BEGIN) and after (NNB_OP_END) each op, with the op's index in the blob and
 * its kind's name ("Conv2d", "QLinear", ...: NUL-terminated, valid during the call). Read a
 * cycle counter there (DWT->CYCCNT on a Cortex-M3/M4/M7) to time each layer. The hook must not
 * call into the model. nnb_set_op_hook(model, NULL, NULL) removes it; nnb_model_init starts
 * without one. Returns NNB_OK, NNB_ERR_NULL, NNB_ERR_ALIGN or NNB_ERR_MODEL_INVALID.
 */
#define NNB_OP_BEGIN 0
#define NNB_OP_END 1
typedef void (*nnb_op_hook)(void *user, size_t op_index, const char *op_kind, int phase);
int nnb_set_op_hook(nnb_model *model, nnb_op_hook hook, void *user);

/* A sentence for `code` (any int): a static NUL-terminated string, never NULL. */
const char *nnb_error_str(int code);

#ifdef __cplusplus
}
#endif

#endif /* NNBLOB_H */
