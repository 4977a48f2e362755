//! Instruction counting with SysTick.
//!
//! SysTick runs from the core clock (25 MHz on the MPS2 boards). Under QEMU with
//! `-icount shift=0` every guest instruction advances virtual time by exactly 1 ns, so one
//! tick is [`INSNS_PER_TICK`] = 40 instructions: counts are exact multiples of 40 and
//! deterministic from run to run. The 24-bit counter wraps every 2^24 ticks
//! (671 M instructions); the SysTick exception counts the wraps.

use core::sync::atomic::{AtomicU32, Ordering};
use cortex_m::peripheral::{syst::SystClkSource, SCB, SYST};
use cortex_m_rt::exception;

/// Core clock of the MPS2 FPGA images, in Hz.
const CORE_HZ: u64 = 25_000_000;
/// Instructions per SysTick tick at `-icount shift=0` (1 ns per instruction).
pub const INSNS_PER_TICK: u64 = 1_000_000_000 / CORE_HZ;
/// Largest 24-bit reload value: the counter goes RELOAD..=0, a period of RELOAD + 1 ticks.
const RELOAD: u32 = 0x00FF_FFFF;

static WRAPS: AtomicU32 = AtomicU32::new(0);

/// A free-running 64-bit tick counter made of SysTick and its wrap count.
pub struct Clock {
    _syst: SYST,
}

impl Clock {
    /// Starts SysTick from the core clock with the largest reload and its exception on.
    pub fn start(mut syst: SYST) -> Clock {
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

    /// Instructions since [`Clock::start`] (a multiple of [`INSNS_PER_TICK`]).
    pub fn insns(&self) -> u64 {
        self.ticks() * INSNS_PER_TICK
    }
}

#[exception]
fn SysTick() {
    WRAPS.fetch_add(1, Ordering::Relaxed);
}
