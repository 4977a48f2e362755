/*
 * run_blob: runs an nnblob blob once through the C API, on a hosted system.
 *
 *   run_blob MODEL.nnb INPUT.f32 ...          floats in, floats out (nnb_run; any model)
 *   run_blob --int8 MODEL.nnb INPUT.i8 ...    int8 in, int8 out (nnb_run_int8; int8 models)
 *
 * One raw file per input, in the model's order: little-endian floats, or int8 values in the
 * input's quantization. Prints the model's inputs and outputs on stderr (with their scale, also
 * as bits, and zero point when int8) and every output element on stdout, one per line: its bits ("0x3f800000")
 * for floats, its value ("-17") for int8. Exit code 0 on success, 1 with the engine's sentence
 * on failure, 2 on a usage or file error.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnblob.h"

/* The whole file in a malloc'd buffer (malloc aligns for any type, so for NNB_BLOB_ALIGN on
 * common hosts: the alignment only matters for speed). */
static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long n;
    if (f == NULL) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        *len = (size_t)n;
    }
    fclose(f);
    return buf;
}

static void describe(const nnb_model *m, const char *what, size_t i, int output) {
    size_t len = 0, rank, axis;
    float scale;
    int32_t zero_point;
    const char *name = output ? nnb_output_name(m, i, &len) : nnb_input_name(m, i, &len);
    rank = output ? nnb_output_rank(m, i) : nnb_input_rank(m, i);
    fprintf(stderr, "%s %u '%.*s' [", what, (unsigned)i, (int)len, name);
    for (axis = 0; axis < rank; axis++) {
        size_t d = output ? nnb_output_dim(m, i, axis) : nnb_input_dim(m, i, axis);
        fprintf(stderr, "%s%u", axis ? ", " : "", (unsigned)d);
    }
    fprintf(stderr, "] %u elements",
            (unsigned)(output ? nnb_output_len(m, i) : nnb_input_len(m, i)));
    if ((output ? nnb_output_quant(m, i, &scale, &zero_point)
                : nnb_input_quant(m, i, &scale, &zero_point)) == NNB_OK) {
        uint32_t bits;
        memcpy(&bits, &scale, sizeof bits);
        fprintf(stderr, " int8 scale %g (0x%08lx) zero point %ld", (double)scale,
                (unsigned long)bits, (long)zero_point);
    }
    fprintf(stderr, "\n");
}

static int fail(const char *what, int rc) {
    fprintf(stderr, "run_blob: %s: %s (%d)\n", what, nnb_error_str(rc), rc);
    return 1;
}

int main(int argc, char **argv) {
    static nnb_model model;
    /* malloc'd buffers: aligned for float, and for int8 trivially. */
    void *inputs[NNB_MAX_IO];
    void *outputs[NNB_MAX_IO];
    size_t blob_len = 0, i, j, n_in, n_out, elem;
    unsigned char *blob;
    void *arena;
    int rc, int8 = 0, first = 1;

    if (argc > 1 && strcmp(argv[1], "--int8") == 0) {
        int8 = 1;
        first = 2;
    }
    if (argc < first + 1) {
        fprintf(stderr, "usage: run_blob [--int8] MODEL.nnb INPUT ...\n");
        return 2;
    }
    elem = int8 ? sizeof(int8_t) : sizeof(float);
    blob = read_file(argv[first], &blob_len);
    if (blob == NULL) {
        fprintf(stderr, "run_blob: cannot read %s\n", argv[first]);
        return 2;
    }
    rc = nnb_model_init(&model, blob, blob_len);
    if (rc != NNB_OK) return fail(argv[first], rc);

    n_in = nnb_num_inputs(&model);
    n_out = nnb_num_outputs(&model);
    if ((size_t)(argc - first - 1) != n_in) {
        fprintf(stderr, "run_blob: the model has %u inputs\n", (unsigned)n_in);
        return 2;
    }
    for (i = 0; i < n_in; i++) {
        size_t len = 0;
        const char *path = argv[first + 1 + i];
        inputs[i] = read_file(path, &len);
        if (inputs[i] == NULL || len != nnb_input_len(&model, i) * elem) {
            fprintf(stderr, "run_blob: %s: not %u %s\n", path, (unsigned)nnb_input_len(&model, i),
                    int8 ? "int8 values" : "floats");
            return 2;
        }
        describe(&model, "input", i, 0);
    }
    for (i = 0; i < n_out; i++) {
        outputs[i] = malloc(nnb_output_len(&model, i) * elem + 1);
        if (outputs[i] == NULL) return 2;
        describe(&model, "output", i, 1);
    }
    arena = malloc(nnb_arena_bytes(&model) + 1);
    if (arena == NULL) return 2;
    fprintf(stderr, "arena %u bytes\n", (unsigned)nnb_arena_bytes(&model));

    if (int8) {
        const int8_t *in8[NNB_MAX_IO];
        int8_t *out8[NNB_MAX_IO];
        for (i = 0; i < n_in; i++) in8[i] = inputs[i];
        for (i = 0; i < n_out; i++) out8[i] = outputs[i];
        rc = nnb_run_int8(&model, in8, out8, arena, nnb_arena_bytes(&model));
    } else {
        const float *in[NNB_MAX_IO];
        float *out[NNB_MAX_IO];
        for (i = 0; i < n_in; i++) in[i] = inputs[i];
        for (i = 0; i < n_out; i++) out[i] = outputs[i];
        rc = nnb_run(&model, in, out, arena, nnb_arena_bytes(&model));
    }
    if (rc != NNB_OK) return fail("run", rc);
    for (i = 0; i < n_out; i++) {
        for (j = 0; j < nnb_output_len(&model, i); j++) {
            if (int8) {
                printf("%d\n", ((const int8_t *)outputs[i])[j]);
            } else {
                uint32_t bits;
                memcpy(&bits, (const float *)outputs[i] + j, sizeof bits);
                printf("0x%08lx\n", (unsigned long)bits);
            }
        }
    }
    return 0;
}
