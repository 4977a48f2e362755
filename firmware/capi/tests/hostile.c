/*
 * Hostile calls of the C API, for tests/c_api.rs: every NULL, misaligned, too short, corrupted,
 * overlapping or out-of-range argument, one per line as "case value" (a return code, or what a
 * size_t accessor returned). The test compares each with what the Rust side says it must be.
 *
 *   hostile MODEL.nnb INPUT.f32      (a model with one input and one output)
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnblob.h"

static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long n;
    if (f == NULL) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 16);
        if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        *len = (size_t)n;
    }
    fclose(f);
    return buf;
}

static void show(const char *name, long value) { printf("%s %ld\n", name, value); }

/* The op hook: counts its calls by phase; a begin must follow an end, in op order. */
struct hook_counts { long begins, ends, out_of_order, last; };
static void count_ops(void *user, size_t op_index, const char *op_kind, int phase) {
    struct hook_counts *c = user;
    if (phase == NNB_OP_BEGIN) {
        if ((long)op_index != c->last + 1 || c->begins != c->ends || op_kind == NULL ||
            op_kind[0] == '\0')
            c->out_of_order++;
        c->begins++;
    } else {
        if ((long)op_index != c->last + 1 || c->ends + 1 != c->begins) c->out_of_order++;
        c->ends++;
        c->last = (long)op_index;
    }
}

int main(int argc, char **argv) {
    static nnb_model model, failed, zeroed;
    static union { nnb_model m; unsigned char bytes[sizeof(nnb_model) + 16]; } spare;
    size_t blob_len = 0, input_len = 0, arena_bytes, out_len, name_len = 12345;
    unsigned char *blob, *corrupt, *input_bytes, *arena_bytes_buf;
    float *input, *output, *arena;
    const float *inputs[1];
    float *outputs[1];
    const char *s;

    if (argc != 3) return 2;
    blob = read_file(argv[1], &blob_len);
    input_bytes = read_file(argv[2], &input_len);
    if (blob == NULL || input_bytes == NULL) return 2;
    input = (float *)(void *)input_bytes;

    /* nnb_model_init */
    show("init_null_model", nnb_model_init(NULL, blob, blob_len));
    show("init_null_blob", nnb_model_init(&failed, NULL, blob_len));
    show("init_misaligned_model",
         nnb_model_init((nnb_model *)(void *)(spare.bytes + 1), blob, blob_len));
    show("init_range", nnb_model_init(&failed, blob, SIZE_MAX));
    show("init_empty", nnb_model_init(&failed, blob, 0));
    show("init_short", nnb_model_init(&failed, blob, 10));
    show("init_one_byte_short", nnb_model_init(&failed, blob, blob_len - 1));
    corrupt = malloc(blob_len);
    if (corrupt == NULL) return 2;
    memcpy(corrupt, blob, blob_len);
    corrupt[blob_len - 1] ^= 0x01;
    show("init_corrupt", nnb_model_init(&failed, corrupt, blob_len));
    show("init_ok", nnb_model_init(&model, blob, blob_len));

    /* A model whose init failed, or that was never initialized (zero-filled). */
    show("failed_num_inputs", (long)nnb_num_inputs(&failed));
    show("failed_arena_bytes", (long)nnb_arena_bytes(&failed));
    show("zeroed_num_outputs", (long)nnb_num_outputs(&zeroed));
    show("null_num_inputs", (long)nnb_num_inputs(NULL));
    show("null_input_len", (long)nnb_input_len(NULL, 0));
    show("null_name", nnb_input_name(NULL, 0, &name_len) == NULL);

    /* Accessors out of range. */
    show("num_inputs", (long)nnb_num_inputs(&model));
    show("num_outputs", (long)nnb_num_outputs(&model));
    show("input_len_1", (long)nnb_input_len(&model, 1));
    show("output_len_1", (long)nnb_output_len(&model, 1));
    show("input_rank_1", (long)nnb_input_rank(&model, 1));
    show("output_rank_1", (long)nnb_output_rank(&model, 1));
    show("input_dim_past_rank", (long)nnb_input_dim(&model, 0, nnb_input_rank(&model, 0)));
    show("output_dim_1", (long)nnb_output_dim(&model, 1, 0));
    show("input_name_1", nnb_input_name(&model, 1, &name_len) == NULL);
    show("output_name_1", nnb_output_name(&model, 1, &name_len) == NULL);
    show("name_len_untouched", (long)name_len);
    show("name_null_len", nnb_input_name(&model, 0, NULL) != NULL);
    show("name_misaligned_len",
         nnb_input_name(&model, 0, (size_t *)(void *)(spare.bytes + 1)) == NULL);

    /* nnb_run */
    arena_bytes = nnb_arena_bytes(&model);
    out_len = nnb_output_len(&model, 0);
    arena_bytes_buf = malloc(arena_bytes + 16);
    output = malloc(out_len * sizeof(float));
    if (arena_bytes_buf == NULL || output == NULL) return 2;
    arena = (float *)(void *)arena_bytes_buf;
    if (input_len != nnb_input_len(&model, 0) * sizeof(float)) return 2;
    inputs[0] = input;
    outputs[0] = output;
    show("run_null_model", nnb_run(NULL, inputs, outputs, arena, arena_bytes));
    show("run_failed_model", nnb_run(&failed, inputs, outputs, arena, arena_bytes));
    show("run_zeroed_model", nnb_run(&zeroed, inputs, outputs, arena, arena_bytes));
    show("run_null_inputs", nnb_run(&model, NULL, outputs, arena, arena_bytes));
    show("run_null_outputs", nnb_run(&model, inputs, NULL, arena, arena_bytes));
    show("run_null_arena", nnb_run(&model, inputs, outputs, NULL, arena_bytes));
    inputs[0] = NULL;
    show("run_null_input_0", nnb_run(&model, inputs, outputs, arena, arena_bytes));
    inputs[0] = input;
    outputs[0] = NULL;
    show("run_null_output_0", nnb_run(&model, inputs, outputs, arena, arena_bytes));
    outputs[0] = output;
    show("run_arena_one_byte_short", nnb_run(&model, inputs, outputs, arena, arena_bytes - 1));
    show("run_arena_empty", nnb_run(&model, inputs, outputs, arena, 0));
    show("run_misaligned_arena",
         nnb_run(&model, inputs, outputs, arena_bytes_buf + 1, arena_bytes));
    inputs[0] = (const float *)(void *)(input_bytes + 2);
    show("run_misaligned_input", nnb_run(&model, inputs, outputs, arena, arena_bytes));
    inputs[0] = input;
    outputs[0] = (float *)(void *)((unsigned char *)output + 1);
    show("run_misaligned_output", nnb_run(&model, inputs, outputs, arena, arena_bytes));
    outputs[0] = input;
    show("run_output_is_input", nnb_run(&model, inputs, outputs, arena, arena_bytes));
    outputs[0] = arena + 1;
    show("run_output_in_arena", nnb_run(&model, inputs, outputs, arena, arena_bytes));
    outputs[0] = output;
    inputs[0] = arena;
    show("run_input_in_arena", nnb_run(&model, inputs, outputs, arena, arena_bytes));
    inputs[0] = input;
    show("run_arena_over_blob", nnb_run(&model, inputs, outputs, blob, arena_bytes));
    show("run_arena_range", nnb_run(&model, inputs, outputs, arena, SIZE_MAX));
    show("run_ok", nnb_run(&model, inputs, outputs, arena, arena_bytes));
    show("run_ok_larger_arena", nnb_run(&model, inputs, outputs, arena, arena_bytes + 16));

    /* nnb_set_op_hook: one begin and one end per op, in order; gone once cleared. */
    {
        struct hook_counts counts = {0, 0, 0, -1};
        show("hook_null_model", nnb_set_op_hook(NULL, count_ops, &counts));
        show("hook_failed_model", nnb_set_op_hook(&failed, count_ops, &counts));
        show("hook_set", nnb_set_op_hook(&model, count_ops, &counts));
        show("hook_run_ok", nnb_run(&model, inputs, outputs, arena, arena_bytes));
        show("hook_begins", counts.begins);
        show("hook_ends", counts.ends);
        show("hook_out_of_order", counts.out_of_order);
        show("hook_cleared", nnb_set_op_hook(&model, NULL, NULL));
        show("hook_cleared_run_ok", nnb_run(&model, inputs, outputs, arena, arena_bytes));
        show("hook_cleared_begins", counts.begins);
    }

    /* Types and quantization of an f32 model's inputs and outputs; int8 runs refused. */
    {
        float scale = 12345.0f;
        int32_t zero_point = 12345;
        const int8_t *in8[1] = {(const int8_t *)input_bytes};
        int8_t *out8[1] = {(int8_t *)output};
        show("input_type", nnb_input_type(&model, 0));
        show("output_type", nnb_output_type(&model, 0));
        show("input_type_1", nnb_input_type(&model, 1));
        show("output_type_null_model", nnb_output_type(NULL, 0));
        show("input_type_failed_model", nnb_input_type(&failed, 0));
        show("input_quant_f32", nnb_input_quant(&model, 0, &scale, &zero_point));
        show("quant_untouched", scale == 12345.0f && zero_point == 12345);
        show("output_quant_1", nnb_output_quant(&model, 1, &scale, &zero_point));
        show("input_quant_null_scale", nnb_input_quant(&model, 0, NULL, &zero_point));
        show("output_quant_null_zero_point", nnb_output_quant(&model, 0, &scale, NULL));
        show("input_quant_misaligned",
             nnb_input_quant(&model, 0, &scale, (int32_t *)(void *)((unsigned char *)&zero_point + 1)));
        show("run_int8_f32_model", nnb_run_int8(&model, in8, out8, arena, arena_bytes));
        show("run_int8_null_model", nnb_run_int8(NULL, in8, out8, arena, arena_bytes));
        show("run_int8_null_inputs", nnb_run_int8(&model, NULL, out8, arena, arena_bytes));
    }

    /* The struct as C lays it out. */
    {
        struct probe { char c; nnb_model m; };
        show("sizeof_model", (long)sizeof(nnb_model));
        show("alignof_model", (long)offsetof(struct probe, m));
    }

    /* nnb_error_str */
    s = nnb_error_str(12345);
    show("error_str_unknown_not_null", s != NULL && strlen(s) > 0);
    s = nnb_error_str(NNB_ERR_CRC_MISMATCH);
    show("error_str_crc_not_null", s != NULL && strlen(s) > 0);
    printf("error_str_crc_text %s\n", s);
    return 0;
}
