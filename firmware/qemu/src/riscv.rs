//! The RISC-V side of the firmware: riscv-rt's runtime, semihosting, the exception handler,
//! and instruction counting with the `minstret` CSR.
//!
//! `minstret` counts retired instructions, 64 bits wide (read as `minstreth:minstret` on
//! RV32), so a tick is one instruction and no wrap needs handling. QEMU derives it from its
//! instruction counter when run with `-icount`, which the runner always passes (without it
//! the CSR reads host time).

pub use riscv_rt::entry;
pub use riscv_semihosting as semihosting;
use semihosting::{debug, hprintln};

/// The retired-instruction counter, which counts from reset.
pub struct Clock;

impl Clock {
    /// The clock; always there (the counter needs no setup).
    pub fn take() -> Option<Clock> {
        Some(Clock)
    }

    /// Instructions retired since reset.
    pub fn ticks(&self) -> u64 {
        riscv::register::minstret::read64()
    }
}

/// Instructions in `ticks`: `minstret` counts instructions.
pub fn insns(ticks: u64) -> u64 {
    ticks
}

/// Runs `f` with machine-mode interrupts off.
pub fn without_interrupts<R>(f: impl FnOnce() -> R) -> R {
    riscv::interrupt::free(f)
}

/// One instruction that does nothing.
pub fn nop() {
    riscv::asm::nop();
}

/// Sleeps until an interrupt.
pub fn wait() {
    riscv::asm::wfi();
}

/// The stack pointer.
pub fn stack_pointer() -> usize {
    let sp: usize;
    // SAFETY: copies a register; no memory is touched.
    unsafe { core::arch::asm!("mv {}, sp", out(reg) sp, options(nomem, nostack)) };
    sp
}

/// Every exception (an illegal instruction, a misaligned or faulting access) ends the run,
/// as a hard fault does on Cortex-M.
#[export_name = "ExceptionHandler"]
fn exception_handler(frame: &riscv_rt::TrapFrame) -> ! {
    hprintln!(
        "exception: mcause {:#x} mepc {:#x} mtval {:#x} {:?}",
        riscv::register::mcause::read().bits(),
        riscv::register::mepc::read(),
        riscv::register::mtval::read(),
        frame
    );
    crate::exit(debug::EXIT_FAILURE)
}
