/* A QEMU TCG plugin that counts executed guest instructions exactly, and estimates the cycles
 * a Cortex-M4 would take for them.
 *
 * Arguments: marker=ADDR (the even address of the firmware's nnb_mark function); costs=1 to
 * log each translated instruction with its cost (`icount cost ADDR CYCLES DISASSEMBLY`).
 * Output (QEMU's log, enabled with `-d plugin`): one line per execution of the marker,
 *   icount mark N total T since_previous D cycles C since_previous_cycles E
 * and `icount total T cycles C` at exit. The count between two marks is the instructions the
 * firmware executed between its two nnb_mark() calls (the calls included), and E the cycles
 * estimated for them.
 *
 * The cycle estimate (docs/DEVICE.md, "Cycles"): each instruction costs what the Cortex-M4
 * Technical Reference Manual's instruction timing tables (processor: section 3.3; FPU: section
 * 7.2) give it, read from its mnemonic (cost_of below), and a transfer of control (the next
 * block does not start where the previous one ended: a taken branch, a call, a return, an
 * exception) adds the pipeline refill P, taken as BRANCH_REFILL. It ignores what a real part
 * adds: flash wait states and caches, bus contention, register-dependency stalls, the IT and
 * condition-failed cases, and exception entry beyond the refill. Instruction counts are exact;
 * cycles are an estimate, a lower bound on most parts.
 *
 * Written against the plugin API version 1 (QEMU 7.2). The few declarations it needs
 * are repeated here, so that building it needs only a C compiler, not QEMU's headers:
 *   cc -shared -fPIC -O2 -o libicount.so icount.c
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;

enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS = 0 };
typedef void (*qemu_plugin_vcpu_tb_exec_cb_t)(unsigned int vcpu_index, void *userdata);
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 = 0 };

typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t, struct qemu_plugin_tb *);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t, qemu_plugin_vcpu_tb_trans_cb_t);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *, enum qemu_plugin_op,
                                              void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *,
                                            qemu_plugin_vcpu_udata_cb_t,
                                            enum qemu_plugin_cb_flags, void *userdata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t, qemu_plugin_udata_cb_t, void *userdata);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *, qemu_plugin_vcpu_tb_exec_cb_t,
                                          enum qemu_plugin_cb_flags, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *);
char *qemu_plugin_insn_disas(const struct qemu_plugin_insn *);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *, size_t);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *);
void qemu_plugin_outs(const char *);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

/* The MPS2 boards have one vCPU, so plain counters are enough. */
static uint64_t executed;
static uint64_t cycles;
static uint64_t at_previous_mark;
static uint64_t cycles_at_previous_mark;
static int log_costs;

/* The pipeline refill of a taken branch, P in the TRM's "1 + P" (1 to 3 cycles by the
 * target's alignment and width and whether its address is computed): the middle value. */
#define BRANCH_REFILL 2

/* Registers in a list operand "{r4, r5, lr}" or "{s16-s31}" (1 if there is no list). */
static unsigned list_len(const char *d)
{
    const char *open = strchr(d, '{'), *close = open ? strchr(open, '}') : NULL;
    unsigned n = 0;
    if (open == NULL || close == NULL) return 1;
    for (const char *p = open + 1; p < close;) {
        while (p < close && (*p == ' ' || *p == ',')) p++;
        if (p >= close) break;
        const char *start = p;
        while (p < close && *p != ',') p++;
        /* "s16-s31": the count of the range */
        const char *dash = memchr(start, '-', (size_t)(p - start));
        if (dash != NULL) {
            long a = strtol(start + 1, NULL, 10), b = strtol(dash + 2, NULL, 10);
            n += b >= a ? (unsigned)(b - a + 1) : 1;
        } else {
            n++;
        }
    }
    return n ? n : 1;
}

static int starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The cycles of one instruction from its disassembly ("vmla.f32 s16, s0, s8"), without the
 * refill of a taken branch (added at run time). `after_memory`: the previous instruction of
 * the block was a single load or store, with which this one's address phase pipelines. */
static unsigned cost_of(const char *d, int after_memory, int *is_memory)
{
    *is_memory = 0;
    /* FPU (TRM section 7.2) */
    if (starts(d, "vmla") || starts(d, "vmls") || starts(d, "vnmla") || starts(d, "vnmls") ||
        starts(d, "vfma") || starts(d, "vfms") || starts(d, "vfnma") || starts(d, "vfnms"))
        return 3;
    if (starts(d, "vdiv") || starts(d, "vsqrt")) return 14;
    if (starts(d, "vldm") || starts(d, "vstm") || starts(d, "vpush") || starts(d, "vpop"))
        return 1 + list_len(d);
    if (starts(d, "vldr") || starts(d, "vstr")) {
        *is_memory = 1;
        return after_memory ? 1 : 2;
    }
    if (d[0] == 'v') return 1; /* vadd, vsub, vmul, vmov, vcvt, vcmp, vabs, vneg, vmrs ... */
    /* processor (TRM section 3.3) */
    if (starts(d, "push") || starts(d, "pop") || starts(d, "ldm") || starts(d, "stm"))
        return 1 + list_len(d);
    if (starts(d, "ldrd") || starts(d, "strd")) return 3;
    if (starts(d, "ldr") || starts(d, "str")) {
        *is_memory = 1;
        return after_memory ? 1 : 2;
    }
    if (starts(d, "sdiv") || starts(d, "udiv")) return 12; /* 2 to 12, by the operands */
    if (starts(d, "mla") || starts(d, "mls")) return 2;
    return 1; /* moves, ALU, shifts, MUL, 64-bit multiplies, DSP (SMLAD, SXTB16), branches */
}

/* What a translated block costs and where it ends, for the refill check at run time. */
struct block {
    uint64_t start, fallthrough;
};
static const struct block *previous_block;

static void on_block(unsigned int vcpu_index, void *userdata)
{
    const struct block *b = userdata;
    (void)vcpu_index;
    if (previous_block != NULL && previous_block->fallthrough != b->start) cycles += BRANCH_REFILL;
    previous_block = b;
}
static uint64_t marks;
static uint64_t marker_addr;
static int have_marker;

static void on_marker(unsigned int vcpu_index, void *userdata)
{
    char line[160];
    (void)vcpu_index;
    (void)userdata;
    snprintf(line, sizeof line,
             "icount mark %" PRIu64 " total %" PRIu64 " since_previous %" PRIu64 " cycles %" PRIu64
             " since_previous_cycles %" PRIu64 "\n",
             marks, executed, executed - at_previous_mark, cycles, cycles - cycles_at_previous_mark);
    qemu_plugin_outs(line);
    marks++;
    at_previous_mark = executed;
    cycles_at_previous_mark = cycles;
}

/* Each translated block adds its length to the counter when it runs (inline, no call);
   the marker instruction also gets a callback. A block's count is added before its
   instructions run, so a mark sees the instructions of its own block up to its end
   counted; both marks see the same offset, so differences are exact. */
static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    uint64_t cost = 0;
    int after_memory = 0;
    struct block *b = malloc(sizeof *b);
    (void)id;
    if (b == NULL) abort();
    b->start = qemu_plugin_tb_vaddr(tb);
    b->fallthrough = b->start;
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        char *d = qemu_plugin_insn_disas(insn);
        int is_memory;
        unsigned c = cost_of(d ? d : "", after_memory, &is_memory);
        after_memory = is_memory;
        cost += c;
        b->fallthrough = qemu_plugin_insn_vaddr(insn) + qemu_plugin_insn_size(insn);
        if (log_costs) {
            char line[200];
            snprintf(line, sizeof line, "icount cost %#" PRIx64 " %u %s\n",
                     qemu_plugin_insn_vaddr(insn), c, d ? d : "?");
            qemu_plugin_outs(line);
        }
        free(d);
        if (have_marker && qemu_plugin_insn_vaddr(insn) == marker_addr) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_marker, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
    }
    /* Counted when the block starts, as the instructions are: a mark sees its own block's
     * cost in full, and both marks of a span the same way, so differences hold. A block is
     * translated once and may run many times; its record lives as long as QEMU. */
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &executed, n);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &cycles, cost);
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_block, QEMU_PLUGIN_CB_NO_REGS, b);
}

static void on_qemu_exit(qemu_plugin_id_t id, void *userdata)
{
    char line[96];
    (void)id;
    (void)userdata;
    snprintf(line, sizeof line, "icount total %" PRIu64 " cycles %" PRIu64 "\n", executed, cycles);
    qemu_plugin_outs(line);
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id,
                                                               const qemu_info_t *info,
                                                               int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "marker=", 7) == 0) {
            char *end;
            marker_addr = strtoull(argv[i] + 7, &end, 0);
            if (*end != '\0' || end == argv[i] + 7) {
                fprintf(stderr, "icount: marker=%s is not a number\n", argv[i] + 7);
                return -1;
            }
            have_marker = 1;
        } else if (strcmp(argv[i], "costs=1") == 0) {
            log_costs = 1;
        } else {
            fprintf(stderr, "icount: unknown argument %s (expected marker=ADDR, costs=1)\n", argv[i]);
            return -1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_qemu_exit, NULL);
    return 0;
}
