//! The example firmware (`firmware/qemu`) on emulated boards, for the device tests.
//!
//! In: a board, a blob (a file, or a module written by `nnblob emit --rust`) and an input file.
//! Out: the built ELF and the firmware's report ([`Profile`]: output bits, instructions per
//! inference and per op, deepest stack), plus the counting plugin's instruction count between the
//! two `nnb_mark` calls around the inference, and the checks every run must pass. Needs
//! `qemu-system-arm` and `qemu-system-riscv32`, the thumb and RISC-V targets, a C compiler and
//! binutils (`nm`, `readelf`); `tests/run.sh` installs what is missing.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nnblob::emit::{Profile, ENGINE_TARGETS};

use crate::workspace_root;

/// An emulated board, the target its firmware is built for, and its name in
/// `nnblob::emit::ENGINE_TARGETS`. The runner in `firmware/qemu/.cargo/config.toml` maps each
/// target to its board; the firmware's build script knows its memory and clock.
pub struct Board {
    pub machine: &'static str,
    pub target: &'static str,
    pub core: &'static str,
    /// The core clock SysTick counts, in Hz (as in `firmware/qemu/build.rs`); `None` where the
    /// firmware counts instructions themselves (RISC-V's `minstret`).
    pub core_hz: Option<u64>,
    /// The addresses of its code memory (`firmware/qemu/memory/`), where the blob must lie.
    pub code: Range<u64>,
}

/// MPS2 AN386: Cortex-M4F, single-precision FPU.
pub const CORTEX_M4F: Board = Board {
    machine: "mps2-an386",
    target: "thumbv7em-none-eabihf",
    core: "cortex-m4",
    core_hz: Some(25_000_000),
    code: 0..4 << 20,
};

/// MPS2 AN385: Cortex-M3, no FPU (the soft-float path).
pub const CORTEX_M3: Board = Board {
    machine: "mps2-an385",
    target: "thumbv7m-none-eabi",
    core: "cortex-m3",
    core_hz: Some(25_000_000),
    code: 0..4 << 20,
};

/// BBC micro:bit (nRF51): Cortex-M0, ARMv6-M, no FPU; 256 KiB of flash, 16 KiB of RAM. It
/// stands for `cortex-m0plus` in `ENGINE_TARGETS`: the M0+ runs the same ARMv6-M code.
pub const CORTEX_M0: Board = Board {
    machine: "microbit",
    target: "thumbv6m-none-eabi",
    core: "cortex-m0plus",
    core_hz: Some(16_000_000),
    code: 0..256 << 10,
};

/// QEMU's `virt` machine with an RV32IMAC core (no F or D: the soft-float path); 4 MiB for code
/// and 4 MiB for data of its RAM (`firmware/qemu/memory/virt.x`). The firmware counts with the
/// `minstret` CSR.
pub const RISCV32: Board = Board {
    machine: "virt",
    target: "riscv32imac-unknown-none-elf",
    core: "riscv32",
    core_hz: None,
    code: 0x8000_0000..0x8040_0000,
};

impl Board {
    /// Instructions per tick of the firmware's clock at `-icount shift=0` (1 ns each), rounded
    /// up: SysTick's ticks are core clock cycles, `minstret`'s instructions.
    pub fn insns_per_tick(&self) -> u64 {
        self.core_hz.map_or(1, |hz| 1_000_000_000u64.div_ceil(hz))
    }

    /// The deepest stack `nnblob footprint` reports for this board's core.
    pub fn stack_figure(&self) -> usize {
        ENGINE_TARGETS
            .iter()
            .find(|t| t.name == self.core)
            .and_then(|t| t.stack_bytes)
            .unwrap_or_else(|| panic!("no stack figure for {} in ENGINE_TARGETS", self.core))
    }
}

/// How the blob reaches the firmware build (`firmware/qemu/build.rs`).
pub enum Embed<'a> {
    /// A blob file, embedded with `include_bytes!`.
    Blob(&'a Path),
    /// A module written by `nnblob emit --rust`, with an optional linker fragment appended to
    /// the board's memory layout (`firmware/qemu/memory/`).
    Module {
        module: &'a Path,
        linker_sections: Option<&'a Path>,
    },
}

/// What one run on the device gave.
pub struct DeviceRun {
    /// The firmware's report.
    pub profile: Profile,
    /// The report as printed (a profile for `nnblob footprint --profile`).
    pub report: String,
    /// The plugin's count between the two `nnb_mark` calls around the inference.
    pub plugin_insns: u64,
    /// The plugin's Cortex-M4 cycle estimate for the same span (docs/DEVICE.md, "Cycles").
    pub plugin_cycles: u64,
    /// The estimate for each op of the profiled run, between the marks around it.
    pub op_cycles: Vec<u64>,
}

impl DeviceRun {
    /// Estimated Cortex-M4 cycles per MAC of the inference, on the Cortex-M4F board only (the
    /// plugin's cost table is the Cortex-M4's); "-" on the others.
    pub fn cycles_per_mac(&self, board: &Board, macs: u64) -> String {
        if board.core == "cortex-m4" && macs > 0 {
            format!("{:.2}", self.plugin_cycles as f64 / macs as f64)
        } else {
            "-".into()
        }
    }

    /// Checks what every run must show, whatever the model: the firmware's count (SysTick or
    /// `minstret`) and the counting plugin's agree, and the deepest stack was measured and is within the figure
    /// `nnblob footprint` reports for the board (`ENGINE_TARGETS`). `what` names the run.
    pub fn assert_counts_and_stack(&self, board: &Board, what: &str) {
        let (firmware, plugin) = (self.profile.inference_insns, self.plugin_insns);
        // The firmware counts in whole ticks and its window sits inside the plugin's (the clock
        // reads and the marker calls are outside it): a wrong clock rate or a mishandled wrap
        // shows as a difference far beyond this.
        let tick = board.insns_per_tick();
        assert!(
            firmware <= plugin + tick && plugin <= firmware + 160 + tick,
            "{what}: the firmware counts {firmware} instructions, the plugin {plugin}"
        );
        let stack = self.profile.stack_bytes as usize;
        assert!(stack > 0, "{what}: no stack use measured");
        let figure = board.stack_figure();
        assert!(
            stack <= figure,
            "{what}: stack {stack} bytes, more than the {figure} that `nnblob footprint` reports for {}; update ENGINE_TARGETS",
            board.core
        );
    }
}

/// The example firmware for one board, blob and input.
pub struct Firmware<'a> {
    pub board: &'a Board,
    pub embed: Embed<'a>,
    /// The input, little-endian f32.
    pub input: &'a Path,
}

impl Firmware<'_> {
    fn cargo(&self, command: &str, extra: &[String]) -> Output {
        let mut c = Command::new(env!("CARGO"));
        c.current_dir(workspace_root().join("firmware/qemu"))
            .args([command, "--quiet", "--release", "--locked"])
            .args(["--target", self.board.target])
            .args(extra)
            .env("NNBLOB_QEMU_INPUT", self.input)
            // The firmware has its own target directory; the test's is locked while it runs.
            .env_remove("CARGO_TARGET_DIR");
        match &self.embed {
            Embed::Blob(blob) => c
                .env("NNBLOB_QEMU_BLOB", blob)
                .env_remove("NNBLOB_QEMU_MODULE")
                .env_remove("NNBLOB_QEMU_LINKER_SECTIONS"),
            Embed::Module {
                module,
                linker_sections,
            } => {
                c.env("NNBLOB_QEMU_MODULE", module)
                    .env_remove("NNBLOB_QEMU_BLOB");
                match linker_sections {
                    Some(s) => c.env("NNBLOB_QEMU_LINKER_SECTIONS", s),
                    None => c.env_remove("NNBLOB_QEMU_LINKER_SECTIONS"),
                }
            }
        };
        c.output().expect("cargo runs")
    }

    /// Builds the firmware; the path of its ELF.
    pub fn build(&self) -> PathBuf {
        let built = self.cargo("build", &[]);
        assert!(
            built.status.success(),
            "building the firmware for {} failed:\n{}",
            self.board.target,
            String::from_utf8_lossy(&built.stderr)
        );
        workspace_root().join(format!(
            "firmware/qemu/target/{}/release/nnblob-qemu",
            self.board.target
        ))
    }

    /// Builds and runs the firmware in QEMU (the cargo runner, which has a timeout) with the
    /// counting plugin `plugin` loaded, marking `nnb_mark` in `elf`.
    pub fn run(&self, elf: &Path, plugin: &Path) -> DeviceRun {
        // Arguments after the ELF go to QEMU (the runner ends with `-kernel`).
        let mut args = vec!["--".to_string()];
        args.extend(plugin_args(elf, plugin));
        let out = self.cargo("run", &args);
        device_run(&out, self.board)
    }
}

/// The QEMU command line that runs an ELF on `board`, up to its final `-kernel`: the cargo
/// runner of the board's target in `firmware/qemu/.cargo/config.toml`, which has a timeout.
pub fn board_command(board: &Board) -> Vec<String> {
    crate::capi::cargo_config_strings(
        &workspace_root().join("firmware/qemu/.cargo/config.toml"),
        board.target,
        "runner",
    )
}

/// QEMU's arguments loading the counting plugin `plugin`, marking `nnb_mark` in `elf`.
pub fn plugin_args(elf: &Path, plugin: &Path) -> Vec<String> {
    // The plugin sees instruction addresses: a Thumb symbol's has its low bit set; RISC-V
    // instructions are at even addresses already.
    let marker = symbol(elf, " T nnb_mark") & !1;
    vec![
        "-plugin".to_string(),
        format!("{},marker={marker:#x}", plugin.display()),
        "-d".to_string(),
        "plugin".to_string(),
    ]
}

/// What a run on `board` printed: the firmware's report (its stdout) and the plugin's count
/// (its stderr). Fails when the run did.
pub fn device_run(out: &Output, board: &Board) -> DeviceRun {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let machine = board.machine;
    assert!(
        out.status.success(),
        "firmware on {machine} ({}) failed with {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        board.target,
        out.status
    );
    let profile =
        Profile::parse(&stdout).unwrap_or_else(|e| panic!("{machine}: {e}\nstdout:\n{stdout}"));
    // The plugin logs `icount mark N total T since_previous D cycles C since_previous_cycles E`
    // at each mark: 0 and 1 around the inference, then 2 + 2k and 3 + 2k around op k of the
    // profiled run.
    let marks: Vec<(u64, u64)> = stderr
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.strip_prefix("icount mark ")?.split_whitespace().collect();
            let n = |i: usize| w.get(i).and_then(|v| v.parse::<u64>().ok());
            Some((n(0)?, n(4)?, n(8)?))
        })
        .enumerate()
        .map(|(i, (mark, insns, cycles))| {
            assert_eq!(mark, i as u64, "{machine}: plugin marks out of order");
            (insns, cycles)
        })
        .collect();
    let &(plugin_insns, plugin_cycles) = marks
        .get(1)
        .unwrap_or_else(|| panic!("{machine}: no plugin count in:\n{stderr}"));
    let op_cycles: Vec<u64> = marks.iter().skip(3).step_by(2).map(|m| m.1).collect();
    // Every instruction costs at least a cycle, and none of the engine's more than the divide's.
    assert!(
        plugin_insns <= plugin_cycles && plugin_cycles <= 14 * plugin_insns,
        "{machine}: {plugin_cycles} cycles estimated for {plugin_insns} instructions"
    );
    assert_eq!(
        op_cycles.len(),
        profile.ops.len(),
        "{machine}: a pair of marks around each op"
    );
    DeviceRun {
        profile,
        report: stdout,
        plugin_insns,
        plugin_cycles,
        op_cycles,
    }
}

/// The engine's outputs on the host for `input` (every model input one after the other, as the
/// firmware embeds them), as f32 bits, every output one after the other: the reference the
/// device must equal.
pub fn host_output_bits(model: &nnblob_firmware::Model<'_>, input: &[f32]) -> Vec<u32> {
    let mut rest = input;
    let inputs: Vec<&[f32]> = (0..model.input_count())
        .map(|i| {
            let (piece, tail) = rest.split_at(model.input_len(i));
            rest = tail;
            piece
        })
        .collect();
    assert!(
        rest.is_empty(),
        "the input is longer than the model's inputs"
    );
    let mut outputs: Vec<Vec<f32>> = (0..model.output_count())
        .map(|i| vec![0.0f32; model.output_len(i)])
        .collect();
    let mut arena = vec![0.0f32; model.arena_len()];
    let mut views: Vec<&mut [f32]> = outputs.iter_mut().map(Vec::as_mut_slice).collect();
    model
        .run_multi(&inputs, &mut views, &mut arena)
        .expect("runs on the host");
    outputs.iter().flatten().map(|x| x.to_bits()).collect()
}

/// Builds the counting plugin (`firmware/qemu/plugin/icount.c`) into `dir` with the C compiler.
pub fn build_plugin(dir: &Path) -> PathBuf {
    let library = dir.join("libicount.so");
    let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    let status = Command::new(cc)
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&library)
        .arg(workspace_root().join("firmware/qemu/plugin/icount.c"))
        .status()
        .expect("the C compiler runs");
    assert!(status.success(), "building the counting plugin failed");
    library
}

/// `nm -C` of `elf`: the address of the symbol whose line ends with `suffix`.
pub fn symbol(elf: &Path, suffix: &str) -> u64 {
    let out = Command::new("nm")
        .arg("-C")
        .arg(elf)
        .output()
        .expect("nm runs");
    let symbols = String::from_utf8_lossy(&out.stdout);
    let address = symbols
        .lines()
        .find(|l| l.ends_with(suffix))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {suffix} in {}", elf.display()));
    u64::from_str_radix(address, 16).expect("nm prints hex")
}

/// `(address, size)` of output section `name` in `elf` (`readelf -S -W`).
pub fn section(elf: &Path, name: &str) -> Option<(u64, u64)> {
    let out = Command::new("readelf")
        .args(["-S", "-W"])
        .arg(elf)
        .output()
        .expect("readelf runs");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().find_map(|l| {
        let rest = l.split_once(']')?.1;
        let w: Vec<&str> = rest.split_whitespace().collect();
        (w.first() == Some(&name)).then(|| {
            let hex = |s: &str| u64::from_str_radix(s, 16).ok();
            Some((hex(w.get(2)?)?, hex(w.get(4)?)?))
        })?
    })
}
