//! The Cortex-M side of the firmware: cortex-m-rt's runtime, semihosting, the fault handler,
//! and instruction counting with SysTick.
//!
//! SysTick runs from the core clock ([`CORE_HZ`]: 25 MHz on the MPS2 boards, 16 MHz on the
//! micro:bit). Under QEMU with `-icount shift=0` every guest instruction advances virtual time
//! by exactly 1 ns, so one tick is 10^9 / [`CORE_HZ`] instructions (40 on MPS2, 62.5 on the
//! micro:bit) and counts are deterministic from run to run. The 24-bit counter wraps every
//! 2^24 ticks (671 M instructions on MPS2); the SysTick exception counts the wraps.

use core::sync::atomic::{AtomicU32, Ordering};
use cortex_m::peripheral::{syst::SystClkSource, SCB, SYST};
pub use cortex_m_rt::entry;
use cortex_m_rt::{exception, ExceptionFrame};
pub use cortex_m_semihosting as semihosting;
use semihosting::{debug, hprintln};

/// The board's core clock in Hz, from the build script.
mod board {
    include!(concat!(env!("OUT_DIR"), "/board.rs"));
}
use board::CORE_HZ;
/// Instructions per second of virtual time at `-icount shift=0` (1 ns per instruction).
const INSNS_PER_SECOND: u64 = 1_000_000_000;
/// Largest 24-bit reload value: the counter goes RELOAD..=0, a period of RELOAD + 1 ticks.
const RELOAD: u32 = 0x00FF_FFFF;

static WRAPS: AtomicU32 = AtomicU32::new(0);

/// A free-running 64-bit tick counter made of SysTick and its wrap count.
pub struct Clock {
    _syst: SYST,
}

impl Clock {
    /// The clock, started; `None` if the core peripherals were taken before.
    pub fn take() -> Option<Clock> {
        cortex_m::Peripherals::take().map(|p| Clock::start(p.SYST))
    }

    /// Starts SysTick from the core clock with the largest reload and its exception on.
    fn start(mut syst: SYST) -> Clock {
        syst.disable_counter();
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(RELOAD);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
        Clock { _syst: syst }
    }

    /// Ticks since [`Clock::start`].
    pub fn ticks(&self) -> u64 {
        cortex_m::interrupt::free(|_| {
            let mut wraps = WRAPS.load(Ordering::Relaxed);
            let mut current = SYST::get_current();
            // A wrap seen pending happened before this check, so a value read now is
            // after it: count the wrap the exception has not counted yet.
            if SCB::is_pendst_pending() {
                wraps += 1;
                current = SYST::get_current();
            }
            u64::from(wraps) * (u64::from(RELOAD) + 1) + u64::from(RELOAD - current)
        })
    }
}

/// Instructions in `ticks`, to the tick (exact where a tick is a whole number of instructions,
/// else rounded down). Callers convert after reading the clock, so that the arithmetic (64-bit
/// division is a library call on ARMv6-M) stays out of the span measured.
pub fn insns(ticks: u64) -> u64 {
    // No overflow: 2^64 / 10^9 ticks are centuries of virtual time.
    ticks * INSNS_PER_SECOND / CORE_HZ
}

// A load and a store, not `fetch_add`, which ARMv6-M lacks: this handler is the only writer
// and does not preempt itself.
#[exception]
fn SysTick() {
    WRAPS.store(WRAPS.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// Runs `f` with interrupts off.
pub fn without_interrupts<R>(f: impl FnOnce() -> R) -> R {
    cortex_m::interrupt::free(|_| f())
}

/// One instruction that does nothing.
pub fn nop() {
    cortex_m::asm::nop();
}

/// Sleeps until an interrupt.
pub fn wait() {
    cortex_m::asm::wfi();
}

/// The stack pointer.
pub fn stack_pointer() -> usize {
    cortex_m::register::msp::read() as usize
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    hprintln!("hard fault: {:?}", frame);
    crate::exit(debug::EXIT_FAILURE)
}
