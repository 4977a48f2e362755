/*
 * A C firmware running an nnblob model on a Cortex-M4F or M3, the way a C project would (docs/C.md):
 * the blob is the array `nnblob emit --c DIR --name model` writes (model.h, model.c), the engine
 * is libnnblob_capi.a, and nothing else is linked: no C library, no allocator.
 *
 * Build it with the Makefile beside it. It runs the model once on the input of input.h, timed with SysTick and with its stack
 * measured, then once more with an op hook that times every op, and reports on the
 * semihosting console in the example Rust firmware's format (firmware/qemu; read by
 * `nnblob footprint --profile`):
 *
 *   model NAME ops N arena BYTES
 *   op I KIND insns N                one per op (the second run)
 *   inference insns N                the first run
 *   stack bytes N                    deepest stack of the first run, from the top of RAM
 *   output I 0xBITS                  every output element's f32 bits
 *   done
 *
 * Instruction counts hold under QEMU with `-icount shift=0`, where each instruction takes 1 ns
 * of virtual time, so one tick of the 25 MHz core clock is 40 instructions. On a real board the
 * same code counts cycles (of CORE_HZ).
 */
#include <stddef.h>
#include <stdint.h>

#include "firmware.h"
#include "model.h"
#include "nnblob.h"

#ifdef HAVE_INPUT_H
#include "input.h" /* FIRMWARE_MODEL_NAME and input_values[] */
#else
#define FIRMWARE_MODEL_NAME "model"
static const float input_values[MODEL_INPUT_LEN]; /* zeros */
#endif

_Static_assert(MODEL_INPUT_COUNT == 1u && MODEL_OUTPUT_COUNT == 1u, "one input, one output");
_Static_assert(sizeof input_values / sizeof input_values[0] == MODEL_INPUT_LEN, "input length");

/* The MPS2 boards' core clock (AN385 and AN386 alike), and instructions per tick under
 * -icount shift=0. */
#define CORE_HZ 25000000u
#define INSNS_PER_TICK (1000000000u / CORE_HZ)

/* SysTick and the interrupt control register (Armv7-M System Control Space). */
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define ICSR (*(volatile uint32_t *)0xE000ED04u)
#define ICSR_PENDSTSET (1u << 26)
#define RELOAD 0x00FFFFFFu /* the largest 24-bit reload: a period of 2^24 ticks */

static volatile uint32_t wraps;

void systick_handler(void);
void systick_handler(void) { wraps++; }

static void clock_start(void) {
    SYST_CSR = 0;
    SYST_RVR = RELOAD;
    SYST_CVR = 0;
    SYST_CSR = 7; /* core clock, exception on wrap, enabled */
}

/* Ticks since clock_start: the counter counts down; each wrap adds 2^24. */
static uint64_t ticks(void) {
    uint32_t w, current;
    __asm__ volatile("cpsid i" ::: "memory");
    w = wraps;
    current = SYST_CVR;
    /* A wrap seen pending happened before this check, so a value read now is after it. */
    if (ICSR & ICSR_PENDSTSET) {
        w++;
        current = SYST_CVR;
    }
    __asm__ volatile("cpsie i" ::: "memory");
    return (uint64_t)w * (RELOAD + 1u) + (RELOAD - current);
}

/* The counting plugin (firmware/qemu/plugin) logs the instructions between two calls. */
void nnb_mark(void) __attribute__((noinline));
void nnb_mark(void) { __asm__ volatile("nop"); }

/* Stack high-water mark: the free RAM between the statics and the stack is painted before the
 * run; afterwards the lowest word no longer painted shows how deep the stack went. */
#define PAINT 0x5EA7C0DEu
#define PAINT_MARGIN 256u /* bytes below the stack pointer left for paint()'s own frame */
extern uint32_t __bss_end[];
extern uint32_t __stack_top[];

static uintptr_t stack_pointer(void) {
    uintptr_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    return sp;
}

static void __attribute__((noinline)) paint(void) {
    volatile uint32_t *word = __bss_end;
    uintptr_t end = stack_pointer() - PAINT_MARGIN;
    while ((uintptr_t)word < end) *word++ = PAINT;
}

static uint32_t high_water(void) {
    volatile uint32_t *word = __bss_end;
    while ((uintptr_t)word < (uintptr_t)__stack_top && *word == PAINT) word++;
    return (uint32_t)((uintptr_t)__stack_top - (uintptr_t)word);
}

/* Output, without a C library. */
static char *put_str(char *at, const char *s) {
    while (*s) *at++ = *s++;
    return at;
}

static char *put_u64(char *at, uint64_t v) {
    char digits[20];
    int n = 0;
    do {
        digits[n++] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v != 0);
    while (n > 0) *at++ = digits[--n];
    return at;
}

static char *put_hex32(char *at, uint32_t v) {
    int shift;
    at = put_str(at, "0x");
    for (shift = 28; shift >= 0; shift -= 4) *at++ = "0123456789abcdef"[(v >> shift) & 0xFu];
    return at;
}

static void line(char *start, char *end) {
    *end++ = '\n';
    *end = '\0';
    semihost_write(start);
}

/* The op hook of the second run: instructions of every op. */
struct op_clock {
    uint64_t start;
};

/* Each op between two marks as well, for the counting plugin's cycle estimate per op: marks
 * 2 + 2k and 3 + 2k enclose op k of this run (outside the SysTick span measured). */
static void time_op(void *user, size_t op_index, const char *op_kind, int phase) {
    struct op_clock *clock = user;
    uint64_t now;
    if (phase == NNB_OP_BEGIN) {
        nnb_mark();
        clock->start = ticks();
    } else {
        now = ticks();
        nnb_mark();
        char buf[96], *at = buf;
        at = put_str(at, "op ");
        at = put_u64(at, op_index);
        at = put_str(at, " ");
        at = put_str(at, op_kind);
        at = put_str(at, " insns ");
        at = put_u64(at, (now - clock->start) * INSNS_PER_TICK);
        line(buf, at);
    }
}

static int fail(const char *what, int rc) {
    char buf[160], *at = buf;
    at = put_str(at, what);
    at = put_str(at, ": ");
    at = put_str(at, nnb_error_str(rc));
    line(buf, at);
    return 1;
}

static nnb_model model;
static float arena[MODEL_ARENA_LEN];
static float output[MODEL_OUTPUT_LEN];
static float profiled_output[MODEL_OUTPUT_LEN];

int main(void) {
    const float *inputs[1] = {input_values};
    float *outputs[1] = {output};
    struct op_clock op_clock = {0};
    char buf[128], *at;
    uint64_t start, elapsed;
    size_t i;
    int rc;

    clock_start();
    rc = nnb_model_init(&model, model_blob, MODEL_BLOB_BYTES);
    if (rc != NNB_OK) return fail("nnb_model_init", rc);
    at = put_str(buf, "model ");
    at = put_str(at, FIRMWARE_MODEL_NAME);
    at = put_str(at, " arena ");
    at = put_u64(at, nnb_arena_bytes(&model));
    line(buf, at);

    paint();
    nnb_mark();
    start = ticks();
    rc = nnb_run(&model, inputs, outputs, arena, sizeof arena);
    elapsed = ticks() - start;
    nnb_mark();
    if (rc != NNB_OK) return fail("nnb_run", rc);
    {
        uint32_t stack = high_water();

        outputs[0] = profiled_output;
        rc = nnb_set_op_hook(&model, time_op, &op_clock);
        if (rc == NNB_OK) rc = nnb_run(&model, inputs, outputs, arena, sizeof arena);
        if (rc != NNB_OK) return fail("profiled nnb_run", rc);

        at = put_str(buf, "inference insns ");
        at = put_u64(at, elapsed * INSNS_PER_TICK);
        line(buf, at);
        at = put_str(buf, "stack bytes ");
        at = put_u64(at, stack);
        line(buf, at);
    }
    for (i = 0; i < MODEL_OUTPUT_LEN; i++) {
        union {
            float f;
            uint32_t bits;
        } v, p;
        v.f = output[i];
        p.f = profiled_output[i];
        if (v.bits != p.bits) {
            semihost_write("the profiled run gave other bits\n");
            return 1;
        }
        at = put_str(buf, "output ");
        at = put_u64(at, i);
        at = put_str(at, " ");
        at = put_hex32(at, v.bits);
        line(buf, at);
    }
    semihost_write("done\n");
    return 0;
}
