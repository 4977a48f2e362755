/*
 * run_blob: runs an nnblob blob once through the C API, on a hosted system.
 *
 *   run_blob MODEL.nnb INPUT.f32 ...
 *
 * One raw file of little-endian floats per input, in the model's order. Prints the model's
 * inputs and outputs on stderr and every output element's bits on stdout, one per line
 * ("0x3f800000"). Exit code 0 on success, 1 with the engine's sentence on failure.
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
    const char *name = output ? nnb_output_name(m, i, &len) : nnb_input_name(m, i, &len);
    rank = output ? nnb_output_rank(m, i) : nnb_input_rank(m, i);
    fprintf(stderr, "%s %u '%.*s' [", what, (unsigned)i, (int)len, name);
    for (axis = 0; axis < rank; axis++) {
        size_t d = output ? nnb_output_dim(m, i, axis) : nnb_input_dim(m, i, axis);
        fprintf(stderr, "%s%u", axis ? ", " : "", (unsigned)d);
    }
    fprintf(stderr, "] %u floats\n",
            (unsigned)(output ? nnb_output_len(m, i) : nnb_input_len(m, i)));
}

static int fail(const char *what, int rc) {
    fprintf(stderr, "run_blob: %s: %s (%d)\n", what, nnb_error_str(rc), rc);
    return 1;
}

int main(int argc, char **argv) {
    static nnb_model model;
    const float *inputs[NNB_MAX_IO];
    float *outputs[NNB_MAX_IO];
    size_t blob_len = 0, i, j, n_in, n_out;
    unsigned char *blob;
    void *arena;
    int rc;

    if (argc < 2) {
        fprintf(stderr, "usage: run_blob MODEL.nnb INPUT.f32 ...\n");
        return 2;
    }
    blob = read_file(argv[1], &blob_len);
    if (blob == NULL) {
        fprintf(stderr, "run_blob: cannot read %s\n", argv[1]);
        return 2;
    }
    rc = nnb_model_init(&model, blob, blob_len);
    if (rc != NNB_OK) return fail(argv[1], rc);

    n_in = nnb_num_inputs(&model);
    n_out = nnb_num_outputs(&model);
    if ((size_t)argc - 2 != n_in) {
        fprintf(stderr, "run_blob: the model has %u inputs\n", (unsigned)n_in);
        return 2;
    }
    for (i = 0; i < n_in; i++) {
        size_t len = 0;
        unsigned char *bytes = read_file(argv[2 + i], &len);
        if (bytes == NULL || len != nnb_input_len(&model, i) * sizeof(float)) {
            fprintf(stderr, "run_blob: %s: not %u floats\n", argv[2 + i],
                    (unsigned)nnb_input_len(&model, i));
            return 2;
        }
        inputs[i] = (const float *)(void *)bytes; /* malloc'd: aligned for float */
        describe(&model, "input", i, 0);
    }
    for (i = 0; i < n_out; i++) {
        outputs[i] = malloc(nnb_output_len(&model, i) * sizeof(float) + 1);
        if (outputs[i] == NULL) return 2;
        describe(&model, "output", i, 1);
    }
    arena = malloc(nnb_arena_bytes(&model) + 1);
    if (arena == NULL) return 2;
    fprintf(stderr, "arena %u bytes\n", (unsigned)nnb_arena_bytes(&model));

    rc = nnb_run(&model, inputs, outputs, arena, nnb_arena_bytes(&model));
    if (rc != NNB_OK) return fail("run", rc);
    for (i = 0; i < n_out; i++) {
        for (j = 0; j < nnb_output_len(&model, i); j++) {
            uint32_t bits;
            memcpy(&bits, &outputs[i][j], sizeof bits);
            printf("0x%08lx\n", (unsigned long)bits);
        }
    }
    return 0;
}
