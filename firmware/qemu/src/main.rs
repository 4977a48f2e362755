//! Example firmware: a workload on an emulated Cortex-M, its result as exact bit patterns
//! and its cost in instructions, over semihosting.
#![no_std]
#![no_main]

mod clock;

use core::panic::PanicInfo;
use cortex_m_rt::{entry, exception, ExceptionFrame};
use cortex_m_semihosting::{debug, hprintln};

/// Marks the instruction count for a QEMU counting plugin (`marker=` this symbol's address).
#[inline(never)]
#[no_mangle]
pub extern "C" fn nnb_mark() {
    cortex_m::asm::nop();
}

#[entry]
fn main() -> ! {
    let clock = match cortex_m::Peripherals::take() {
        Some(p) => clock::Clock::start(p.SYST),
        None => fail("core peripherals already taken"),
    };
    let a: [f32; 256] = core::array::from_fn(|i| i as f32 * 0.25);
    let b: [f32; 256] = core::array::from_fn(|i| 1.0 - i as f32 * 0.125);
    let a = core::hint::black_box(a);
    let b = core::hint::black_box(b);
    nnb_mark();
    let start = clock.insns();
    let dot = a.iter().zip(&b).fold(0.0f32, |acc, (x, y)| acc + x * y);
    let insns = clock.insns() - start;
    nnb_mark();
    hprintln!("out 0 0x{:08x}", dot.to_bits());
    hprintln!("insns {}", insns);
    exit(debug::EXIT_SUCCESS)
}

/// Reports `why` and ends the emulation with a failure status.
fn fail(why: &str) -> ! {
    hprintln!("error: {}", why);
    exit(debug::EXIT_FAILURE)
}

/// Ends the emulation with `status` (QEMU exits 0 for success, 1 otherwise).
fn exit(status: debug::ExitStatus) -> ! {
    debug::exit(status);
    // Reached only without a semihosting host.
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    hprintln!("panic: {}", info);
    exit(debug::EXIT_FAILURE)
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    hprintln!("hard fault: {:?}", frame);
    exit(debug::EXIT_FAILURE)
}
