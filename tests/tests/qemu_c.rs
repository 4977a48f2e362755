//! The C firmware (`firmware/capi/examples/cortex-m/`) on the emulated Cortex-M4F: a C program
//! built with the GNU Arm toolchain, linking only `libnnblob_capi.a` (no C library), runs a blob
//! that `nnblob emit --c` wrote, and its outputs are bit-identical to the engine's on the host.
//!
//! For each case, a catalog model's committed fixture is converted in-process (fp16 and f32
//! weights, int8), emitted as C (`nnblob::emit::c_sources`) with the fixture's first input as a
//! C array, built by the example's Makefile (`arm-none-eabi-gcc -std=c11 -Wall -Wextra -Werror
//! -pedantic` for the Cortex-M4F, its own start-up code and linker script), and run under `qemu-system-arm
//! -machine mps2-an386 -icount shift=0` with the counting plugin. Required: every output's bits
//! equal the host's (`nnb_run` on the device, `Model::run` here); one instruction count per op
//! from the op hook (`nnb_set_op_hook`), and the profiled run's bits equal the first run's; the
//! firmware's SysTick count and the plugin's agree; the stack stays within the figure `nnblob
//! footprint` reports for the Cortex-M4 plus the C program's own frames. Instructions per MAC,
//! stack and flash are printed: docs/C.md records them.
//!
//! Needs `qemu-system-arm`, `arm-none-eabi-gcc` (Debian: gcc-arm-none-eabi), `make`, the
//! thumbv7em-none-eabihf target, a C compiler and binutils for the plugin:
//! `cargo test -p nnblob-tests --test qemu_c -- --ignored --nocapture`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use nnblob::blob::WeightDtype;
use nnblob::emit;
use nnblob_firmware::Model;
use nnblob_tests::capi::{convert, static_library, Mode};
use nnblob_tests::qemu::{
    board_command, build_plugin, device_run, host_output_bits, plugin_args, section, Board,
    CORTEX_M3, CORTEX_M4F,
};
use nnblob_tests::workspace_root;

/// What the C API and the C program add to the engine's deepest stack: `nnb_run`'s pointer
/// arrays, slices and overlap table for up to `NNB_MAX_IO` buffers, and `main`'s frame
/// (measured on LeNet-5 fp16 on the Cortex-M4F: 944 bytes over the Rust firmware's 9,608).
const C_FRAMES_BYTES: usize = 1024;

fn example_dir() -> PathBuf {
    workspace_root().join("firmware/capi/examples/cortex-m")
}

/// `input.h`: the model's name and its input as a C array. Rust prints each float's shortest
/// representation that reads back to the same value, so the C compiler's correctly rounded
/// parse gives the same bits.
fn input_header(name: &str, input: &[f32]) -> String {
    let mut h = format!(
        "/* Written by tests/tests/qemu_c.rs. */\n#define FIRMWARE_MODEL_NAME \"{name}\"\n\
         static const float input_values[{}] = {{\n",
        input.len()
    );
    for chunk in input.chunks(8) {
        h.push_str("   ");
        for v in chunk {
            assert!(v.is_finite());
            write!(h, " {v:e}f,").expect("writes to a string");
        }
        h.push('\n');
    }
    h.push_str("};\n");
    h
}

/// Builds the C firmware for `board`, `blob` and `input` in `dir`; the path of its ELF.
fn build(
    board: &Board,
    dir: &Path,
    name: &str,
    blob: &[u8],
    input: &[f32],
    library: &Path,
) -> PathBuf {
    let generated = dir.join("gen");
    std::fs::create_dir_all(&generated).expect("temp dir");
    let options = emit::Options {
        name: Some("model".into()),
        ..emit::Options::default()
    };
    for a in emit::c_sources(blob, &options).expect("emits C") {
        std::fs::write(generated.join(&a.file_name), &a.bytes).expect("writes");
    }
    std::fs::write(generated.join("input.h"), input_header(name, input)).expect("writes");
    let elf = dir.join("firmware.elf");
    let arg = |name: &str, path: &Path| format!("{name}={}", path.display());
    let o = Command::new("make")
        .arg("-C")
        .arg(example_dir())
        .arg(format!("BOARD={}", board.machine))
        .arg(arg("NNBLOB", &workspace_root()))
        .arg(arg("MODEL", &generated))
        .arg(arg("INPUT", &generated))
        .arg(arg("LIB", library))
        .arg(arg("OUT", &elf))
        .output()
        .expect("runs make");
    assert!(
        o.status.success(),
        "make for {name}:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    elf
}

#[test]
#[ignore = "needs QEMU, arm-none-eabi-gcc and the thumb targets; tests/run.sh runs it"]
fn c_firmware_on_the_cortex_m4f_and_m3_gives_the_hosts_bits() {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join("qemu_c");
    std::fs::create_dir_all(&tmp).expect("temp dir");
    let plugin = build_plugin(&tmp);
    let f16 = Mode::Weights(WeightDtype::F16);
    let m4f: &[(&str, Mode)] = &[
        ("lenet5", f16),
        ("lenet5", Mode::Weights(WeightDtype::F32)),
        ("lenet5", Mode::Int8),
        ("resnet8", f16),
        ("resnet8", Mode::Int8),
    ];
    // The Cortex-M3 runs floats in software: LeNet-5 in fp16, and int8 networks.
    let m3: &[(&str, Mode)] = &[
        ("lenet5", f16),
        ("lenet5", Mode::Int8),
        ("resnet8", Mode::Int8),
    ];
    println!("| model | board | weights | MACs | instructions (plugin) | per MAC | est. M4 cycles per MAC | stack bytes | flash bytes (blob) | RAM bytes (arena) |");
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (board, cases) in [(&CORTEX_M4F, m4f), (&CORTEX_M3, m3)] {
        let library = static_library(
            Path::new(env!("CARGO_TARGET_TMPDIR")),
            Some(board.target),
            "release-speed",
        );
        for &(name, mode) in cases {
            run_case(board, name, mode, &library, &tmp, &plugin);
        }
    }
}

/// One model on one board: built, run, checked, and its row printed.
fn run_case(board: &Board, name: &str, mode: Mode, library: &Path, tmp: &Path, plugin: &Path) {
    let label = mode.label();
    let what = format!("{name} {label} on {}", board.machine);
    let c = convert(name, mode);
    let input = &c.inputs[0];
    let dir = tmp.join(format!("{name}-{label}-{}", board.machine));
    let elf = build(board, &dir, name, &c.bytes, input, library);

    // The blob is in flash, 16-byte aligned, as the emitted C places it.
    let (addr, size) = section(&elf, ".text").expect("a .text section");
    assert!(board.code.contains(&addr) && board.code.contains(&(addr + size - 1)));

    let mut qemu = board_command(board);
    let program = qemu.remove(0);
    let out = Command::new(program)
        .args(qemu)
        .arg(&elf)
        .args(plugin_args(&elf, plugin))
        .output()
        .expect("runs QEMU");
    let run = device_run(&out, board);
    let p = &run.profile;

    let model = Model::from_bytes(&c.bytes).expect("valid blob");
    assert_eq!(p.model, name, "{what}");
    assert_eq!(
        p.outputs,
        host_output_bits(&model, input),
        "{what}: the device's output bits differ from the host's"
    );
    assert_eq!(p.ops.len(), model.op_count(), "{what}: one count per op");
    let tick = board.insns_per_tick();
    assert!(
        p.inference_insns <= run.plugin_insns + tick
            && run.plugin_insns <= p.inference_insns + 160 + tick,
        "{what}: the firmware counts {} instructions, the plugin {}",
        p.inference_insns,
        run.plugin_insns
    );
    let stack = p.stack_bytes as usize;
    let figure = board.stack_figure() + C_FRAMES_BYTES;
    assert!(
        stack > 0 && stack <= figure,
        "{what}: stack {stack} bytes, the engine's figure plus the C frames is {figure}"
    );
    let ram = section(&elf, ".bss").map_or(0, |(_, size)| size);
    println!(
        "| {name} | {} | {label} | {} | {} ({}) | {:.2} | {} | {stack} | {size} ({}) | {ram} ({}) |",
        board.machine,
        c.macs,
        p.inference_insns,
        run.plugin_insns,
        p.inference_insns as f64 / c.macs as f64,
        run.cycles_per_mac(board, c.macs),
        c.bytes.len(),
        model.arena_len() * 4,
    );
}
