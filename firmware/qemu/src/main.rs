//! Example firmware: runs the embedded blob on its embedded inputs with the nnblob engine
//! and reports, over semihosting, the outputs as exact f32 bit patterns and the cost in
//! instructions, per inference and per op. Exits with status 0 when all went well. A model may
//! have any number of inputs and outputs: the embedded input holds every input one after the
//! other, and the outputs are reported one after the other, in the model's order.
//!
//! Output, one record per line (the host-side test parses it):
//! ```text
//! model NAME dtype F16 ops N arena A input I output O inputs K outputs M
//!                            (I, O: the elements of all K inputs, all M outputs)
//! inference insns N          (a plain `run`, between the two nnb_mark calls)
//! stack bytes N              (deepest stack use of `main` up to the end of that run)
//! op 0 Conv2d insns N        (one per op, from a second, profiled run)
//! output 0 0x3f800000        (one per output element, outputs one after the other, from the
//!                             plain run)
//! done
//! ```
//! Instruction counts come from SysTick on Cortex-M and from the `minstret` CSR on RISC-V
//! (the `arch` module of each); they include the few instructions of reading the clock.
#![no_std]
#![no_main]

/// What differs between the architectures: runtime, semihosting, fault handler, clock.
#[cfg(target_arch = "arm")]
#[path = "cortex_m.rs"]
mod arch;
#[cfg(target_arch = "riscv32")]
#[path = "riscv.rs"]
mod arch;
mod stack;

use arch::semihosting::{debug, hprintln};
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};
use nnblob_firmware::{Model, OpKind, Profiler};

/// The blob and the model's sizes, from the build script.
mod sizes {
    include!(concat!(env!("OUT_DIR"), "/model.rs"));
}
use sizes::{ARENA_LEN, BLOB, INPUT_LENS, OUTPUT_LENS};

/// The elements of every input, and of every output.
const INPUT_LEN: usize = total(&INPUT_LENS);
const OUTPUT_LEN: usize = total(&OUTPUT_LENS);
/// One input and one output: the buffers are passed whole, as an application with one input
/// and one output would (and the stack is what such an application measures).
const SINGLE: bool = INPUT_LENS.len() == 1 && OUTPUT_LENS.len() == 1;

const fn total(lens: &[usize]) -> usize {
    let (mut sum, mut i) = (0, 0);
    while i < lens.len() {
        sum += lens[i];
        i += 1;
    }
    sum
}

/// `data` cut into consecutive pieces of `lens` (which sum to its length).
fn split<'a, const N: usize>(mut data: &'a [f32], lens: &[usize; N]) -> [&'a [f32]; N] {
    core::array::from_fn(|i| {
        let (piece, rest) = data.split_at(lens[i]);
        data = rest;
        piece
    })
}

/// [`split`] for writing.
fn split_mut<'a, const N: usize>(mut data: &'a mut [f32], lens: &[usize; N]) -> [&'a mut [f32]; N] {
    core::array::from_fn(|i| {
        let (piece, rest) = core::mem::take(&mut data).split_at_mut(lens[i]);
        data = rest;
        piece
    })
}

/// Bytes aligned like the blob's weights (16), so the engine reads them in place.
#[repr(C, align(16))]
struct Aligned<T: ?Sized>(T);

static INPUT: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/input.bin")));

/// Everything the engine writes, in RAM (`.bss`).
struct Buffers {
    arena: [f32; ARENA_LEN],
    input: [f32; INPUT_LEN],
    output: [f32; OUTPUT_LEN],
    profiled_output: [f32; OUTPUT_LEN],
}

static mut BUFFERS: Buffers = Buffers {
    arena: [0.0; ARENA_LEN],
    input: [0.0; INPUT_LEN],
    output: [0.0; OUTPUT_LEN],
    profiled_output: [0.0; OUTPUT_LEN],
};
static BUFFERS_TAKEN: AtomicBool = AtomicBool::new(false);

/// The buffers, the first time only.
fn take_buffers() -> Option<&'static mut Buffers> {
    // Test and set with interrupts off: ARMv6-M has no atomic swap.
    let taken = arch::without_interrupts(|| {
        let taken = BUFFERS_TAKEN.load(Ordering::Relaxed);
        BUFFERS_TAKEN.store(true, Ordering::Relaxed);
        taken
    });
    if taken {
        return None;
    }
    // SAFETY: the flag above lets this reference be created once, so it is the only one.
    Some(unsafe { &mut *core::ptr::addr_of_mut!(BUFFERS) })
}

/// Marks the instruction count for a QEMU counting plugin (`marker=` this symbol's address).
#[inline(never)]
#[no_mangle]
pub extern "C" fn nnb_mark() {
    arch::nop();
}

/// Prints each op's instruction count as it finishes.
struct OpCounter<'c> {
    clock: &'c arch::Clock,
    start: u64,
}

// Each op between two marks as well, for the counting plugin's cycle estimate per op: marks
// 2 + 2k and 3 + 2k enclose op k of the profiled run (outside the SysTick span measured).
impl Profiler for OpCounter<'_> {
    fn begin(&mut self, _: u32, _: OpKind) {
        nnb_mark();
        self.start = self.clock.ticks();
    }
    fn end(&mut self, index: u32, kind: OpKind) {
        let ticks = self.clock.ticks();
        nnb_mark();
        let insns = arch::insns(ticks - self.start);
        hprintln!("op {} {} insns {}", index, kind.name(), insns);
    }
}

#[arch::entry]
fn main() -> ! {
    let Some(clock) = arch::Clock::take() else {
        fail("core peripherals already taken")
    };
    let Some(buffers) = take_buffers() else {
        fail("buffers already taken")
    };
    let model = match Model::from_bytes(BLOB) {
        Ok(model) => model,
        Err(e) => fail_with("blob refused", e),
    };
    for (value, bytes) in buffers.input.iter_mut().zip(INPUT.0.chunks_exact(4)) {
        *value = f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    }
    hprintln!(
        "model {} dtype {:?} ops {} arena {} input {} output {} inputs {} outputs {}",
        model.name(),
        model.dtype(),
        model.op_count(),
        model.arena_len(),
        INPUT_LEN,
        OUTPUT_LEN,
        INPUT_LENS.len(),
        OUTPUT_LENS.len()
    );

    stack::paint();
    nnb_mark();
    let start = clock.ticks();
    let result = if SINGLE {
        model.run(&buffers.input, &mut buffers.output, &mut buffers.arena)
    } else {
        model.run_multi(
            &split(&buffers.input, &INPUT_LENS),
            &mut split_mut(&mut buffers.output, &OUTPUT_LENS),
            &mut buffers.arena,
        )
    };
    let ticks = clock.ticks() - start;
    nnb_mark();
    // Converted after the mark: `black_box` keeps the compiler from moving the conversion
    // (a 64-bit division) into the span the counting plugin measures.
    let insns = arch::insns(core::hint::black_box(ticks));
    if let Err(e) = result {
        fail_with("run failed", e);
    }
    hprintln!("inference insns {}", insns);
    hprintln!("stack bytes {}", stack::high_water());

    let mut counter = OpCounter {
        clock: &clock,
        start: 0,
    };
    let profiled = if SINGLE {
        model.run_profiled(
            &[&buffers.input],
            &mut [&mut buffers.profiled_output],
            &mut buffers.arena,
            &mut counter,
        )
    } else {
        model.run_profiled(
            &split(&buffers.input, &INPUT_LENS),
            &mut split_mut(&mut buffers.profiled_output, &OUTPUT_LENS),
            &mut buffers.arena,
            &mut counter,
        )
    };
    if let Err(e) = profiled {
        fail_with("profiled run failed", e);
    }
    let same = buffers
        .output
        .iter()
        .zip(&buffers.profiled_output)
        .all(|(a, b)| a.to_bits() == b.to_bits());
    if !same {
        fail("the profiled run gave other outputs than the plain run");
    }

    for (i, value) in buffers.output.iter().enumerate() {
        hprintln!("output {} 0x{:08x}", i, value.to_bits());
    }
    hprintln!("done");
    exit(debug::EXIT_SUCCESS)
}

/// Reports `why` and ends the emulation with a failure status.
fn fail(why: &str) -> ! {
    hprintln!("error: {}", why);
    exit(debug::EXIT_FAILURE)
}

/// Reports `why` and the engine's error, and ends the emulation with a failure status.
fn fail_with(why: &str, e: nnblob_firmware::Error) -> ! {
    hprintln!("error: {}: {}", why, e);
    exit(debug::EXIT_FAILURE)
}

/// Ends the emulation with `status` (QEMU exits 0 for success, 1 otherwise).
fn exit(status: debug::ExitStatus) -> ! {
    debug::exit(status);
    // Reached only without a semihosting host.
    loop {
        arch::wait();
    }
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    hprintln!("panic: {}", info);
    exit(debug::EXIT_FAILURE)
}
