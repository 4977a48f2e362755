//! Stack high-water mark: the free RAM between the statics and the stack is painted with a
//! pattern before the code to measure runs; afterwards the lowest word no longer holding
//! the pattern shows how deep the stack went.
//!
//! The free RAM is the span from the start of the heap (the end of the statics: `__sheap` in
//! cortex-m-rt's `link.x`, `_sheap` in riscv-rt's) to the stack pointer at the time of
//! painting, less [`MARGIN`] bytes kept for the painting code's own frame. Both runtimes put
//! the initial stack pointer at `_stack_start`, the top of RAM.

use core::ptr::{addr_of, addr_of_mut};

const PAINT: u32 = 0x5EA7_C0DE;
/// Bytes below the stack pointer left unpainted, for `paint`'s own frame.
const MARGIN: usize = 256;

extern "C" {
    #[cfg_attr(target_arch = "riscv32", link_name = "_sheap")]
    static mut __sheap: u32;
    static _stack_start: u32;
}

// Taking a linker symbol's address reads nothing.
fn bottom() -> *mut u32 {
    addr_of_mut!(__sheap)
}

fn top() -> usize {
    addr_of!(_stack_start) as usize
}

/// Paints the free RAM below the current stack pointer.
#[inline(never)]
pub fn paint() {
    let end = crate::arch::stack_pointer().saturating_sub(MARGIN);
    let mut word = bottom();
    while (word as usize) < end {
        // SAFETY: `word` lies between the end of the statics and the stack in use, RAM that
        // nothing else refers to; it is word-aligned because `__sheap` is.
        unsafe {
            word.write_volatile(PAINT);
            word = word.add(1);
        }
    }
}

/// Deepest stack use since [`paint`], in bytes from the top of RAM.
pub fn high_water() -> usize {
    let mut word = bottom();
    // SAFETY: as in `paint`; reading stops at the first word that the stack reached, at
    // the latest at the live stack, which is below `_stack_start`.
    unsafe {
        while (word as usize) < top() && word.read_volatile() == PAINT {
            word = word.add(1);
        }
    }
    top() - word as usize
}
