/* A QEMU TCG plugin that counts executed guest instructions exactly.
 *
 * Arguments: marker=ADDR (the even address of the firmware's nnb_mark function).
 * Output (QEMU's log, enabled with `-d plugin`): one line per execution of the marker,
 *   icount mark N total T since_previous D
 * and `icount total T` at exit. The count between two marks is the instructions the
 * firmware executed between its two nnb_mark() calls (the calls included).
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
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *, size_t);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *);
void qemu_plugin_outs(const char *);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

/* The MPS2 boards have one vCPU, so plain counters are enough. */
static uint64_t executed;
static uint64_t at_previous_mark;
static uint64_t marks;
static uint64_t marker_addr;
static int have_marker;

static void on_marker(unsigned int vcpu_index, void *userdata)
{
    char line[160];
    (void)vcpu_index;
    (void)userdata;
    snprintf(line, sizeof line, "icount mark %" PRIu64 " total %" PRIu64 " since_previous %" PRIu64 "\n",
             marks, executed, executed - at_previous_mark);
    qemu_plugin_outs(line);
    marks++;
    at_previous_mark = executed;
}

/* Each translated block adds its length to the counter when it runs (inline, no call);
   the marker instruction also gets a callback. A block's count is added before its
   instructions run, so a mark sees the instructions of its own block up to its end
   counted; both marks see the same offset, so differences are exact. */
static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    (void)id;
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &executed, n);
    for (size_t i = 0; have_marker && i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        if (qemu_plugin_insn_vaddr(insn) == marker_addr) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_marker, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
    }
}

static void on_qemu_exit(qemu_plugin_id_t id, void *userdata)
{
    char line[64];
    (void)id;
    (void)userdata;
    snprintf(line, sizeof line, "icount total %" PRIu64 "\n", executed);
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
        } else {
            fprintf(stderr, "icount: unknown argument %s (expected marker=ADDR)\n", argv[i]);
            return -1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_qemu_exit, NULL);
    return 0;
}
