/*
 * Start-up code of the C firmware on a Cortex-M4F or M3 (the example of docs/C.md): the vector
 * table, the reset handler that sets up C's memory and the FPU before main, and semihosting
 * output and exit (what QEMU's `-semihosting` and a debugger give). Vendor SDKs (STM32Cube,
 * nRF Connect, Zephyr) bring their own start-up code; this one is what a bare project needs.
 */
#include <stddef.h>
#include <stdint.h>

#include "firmware.h"

/* From the linker script (mps2.ld). */
extern uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[];
/* The initial stack pointer, declared as a handler so that it fits the table's type: the
 * table's first word is this address. */
extern void __stack_top(void);

int main(void);
void reset_handler(void);
void systick_handler(void);
void fault_handler(void);

/* The Cortex-M vector table: initial stack pointer, then the handlers of exceptions 1 to 15. */
typedef void (*handler)(void);
__attribute__((section(".vectors"), used)) static const handler vectors[16] = {
    __stack_top,
    reset_handler,
    fault_handler, /* NMI */
    fault_handler, /* HardFault */
    fault_handler, /* MemManage */
    fault_handler, /* BusFault */
    fault_handler, /* UsageFault */
    0, 0, 0, 0,
    fault_handler, /* SVCall */
    fault_handler, /* DebugMon */
    0,
    fault_handler, /* PendSV */
    systick_handler,
};

/* Coprocessor Access Control Register: CP10 and CP11 are the FPU. */
#define CPACR (*(volatile uint32_t *)0xE000ED88u)

void reset_handler(void) {
    uint32_t *src = __data_load, *dst;
    for (dst = __data_start; dst < __data_end; dst++) *dst = *src++;
    for (dst = __bss_start; dst < __bss_end; dst++) *dst = 0;
#ifdef __ARM_FP
    /* Full access to the FPU before any float instruction runs (the engine's kernels use it;
     * its reset settings — no flush-to-zero, no default NaN — are what the engine assumes). */
    CPACR |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    semihost_exit(main() == 0);
}

void fault_handler(void) {
    semihost_write("fault\n");
    semihost_exit(0);
}

/* Semihosting: `bkpt 0xAB` with the operation in r0 and its argument in r1. */
static uintptr_t semihost(uintptr_t op, const void *arg) {
    register uintptr_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

/* The console's standard output: SYS_OPEN of ":tt" for writing (mode 4, "w"), opened once.
 * (SYS_WRITE0 would write to QEMU's semihosting console, which is its standard error.) */
static uintptr_t console(void) {
    static uintptr_t handle;
    static int opened;
    if (!opened) {
        const uintptr_t args[3] = {(uintptr_t)":tt", 4, 3};
        handle = semihost(0x01, args);
        opened = 1;
    }
    return handle;
}

void semihost_write(const char *s) {
    uintptr_t args[3];
    size_t len = 0;
    while (s[len] != '\0') len++;
    args[0] = console();
    args[1] = (uintptr_t)s;
    args[2] = len;
    semihost(0x05, args); /* SYS_WRITE: handle, buffer, length */
}

void semihost_exit(int success) {
    /* SYS_EXIT with ADP_Stopped_ApplicationExit (QEMU exits 0) or RunTimeErrorUnknown (1). */
    semihost(0x18, (const void *)(uintptr_t)(success ? 0x20026u : 0x20023u));
    for (;;) {
    }
}
