//! The MLPerf-Tiny catalog models (and LeNet-5) on an emulated Cortex-M, through `nnblob emit`:
//! the device's outputs are bit-identical to the engine's on the host, and the cost in
//! instructions is recorded.
//!
//! For each model, the committed `tests/fixtures/models/<name>/state_dict.pth` is converted
//! in-process (`blob::build`, fp16 and f32 weights), run by the engine on the host on the
//! fixture's first input (the reference), and emitted as a Rust module (`nnblob::emit`). The
//! example firmware (`firmware/qemu`) is built around that module and runs under
//! `qemu-system-arm -icount shift=0` on the Cortex-M4F board (mps2-an386); LeNet-5 also on the
//! Cortex-M3 board (mps2-an385, soft float) and under `qemu-system-riscv32` on RV32IMAC (virt,
//! soft float). Required: every output's bits equal the host's; one instruction count per op;
//! the firmware's count and the counting plugin's agree; the blob lies in its own `.nnblob`
//! section in the board's code memory, 16-byte aligned (without a linker rule, and with the
//! emitted `nnblob.x` appended to the board's memory layout); the stack stays within the figure
//! `nnblob footprint` reports (`nnblob::emit::ENGINE_TARGETS`). Instructions per inference and
//! per MAC (torch's count from the manifest) are printed: docs/DEVICE.md records them. Each
//! report is kept as a profile for `nnblob footprint --profile` under `target/tmp/qemu_catalog/`.
//!
//! An int8 network of awkward geometries (seeded weights) runs the same way on the Cortex-M4F,
//! whose int8 convolutions take the DSP path, the Cortex-M3 and RV32IMAC; so do two 1-d networks
//! shaped like a pitch estimator (long kernels at strides 1 to 4, `K x 1` and `1 x K`), from a
//! spec with seeded weights, fp16 and f32.
//!
//! Needs `qemu-system-arm`, `qemu-system-riscv32`, the thumb and RISC-V targets, a C compiler,
//! `nm` and `readelf`:
//! `cargo test -p nnblob-tests --test qemu_catalog -- --ignored --nocapture`.

use std::path::Path;

use nnblob::blob::{self, WeightDtype};
use nnblob::emit;
use nnblob::graph::{bind, parse_spec, StateDict, Tensor};
use nnblob_firmware::Model;
use nnblob_tests::capi::{convert, Mode};
use nnblob_tests::qemu::{
    build_plugin, host_output_bits, section, symbol, Board, DeviceRun, Embed, Firmware, CORTEX_M0,
    CORTEX_M3, CORTEX_M4F, RISCV32,
};

/// The RAM of the MPS2 boards and of `virt` (`firmware/qemu/memory/mps2.x`, `virt.x`): a model
/// fits when its arena and buffers do.
const BOARD_RAM_BYTES: usize = 4 << 20;

/// The MLPerf-Tiny models of the catalog, and LeNet-5.
const MODELS: [&str; 5] = [
    "resnet8",
    "dscnn",
    "mobilenet_v1_025",
    "fc_autoencoder",
    "lenet5",
];

/// Builds the example firmware around the emitted module in `module` and `input`, checks where
/// the blob landed, and runs it on `board` in QEMU with the counting plugin; the report is kept
/// beside the module as a profile. `sections`: a linker fragment appended to the board's memory layout.
fn run_on_device(
    board: &Board,
    module: &Path,
    input: &Path,
    sections: Option<&Path>,
    plugin: &Path,
    blob_len: usize,
) -> DeviceRun {
    let firmware = Firmware {
        board,
        embed: Embed::Module {
            module,
            linker_sections: sections,
        },
        input,
    };
    let elf = firmware.build();

    // The emitted static: in `.nnblob`, in flash, aligned, the whole blob.
    let blob_at = symbol(&elf, "::emitted::BLOB");
    let (start, size) = section(&elf, ".nnblob")
        .unwrap_or_else(|| panic!("no .nnblob section in {}", elf.display()));
    assert!(
        start <= blob_at && blob_at + blob_len as u64 <= start + size,
        "BLOB at {blob_at:#x} is not inside .nnblob {start:#x}+{size:#x}"
    );
    assert_eq!(
        blob_at % 16,
        0,
        "BLOB at {blob_at:#x} is not 16-byte aligned"
    );
    assert!(
        board.code.start <= start && start + size <= board.code.end,
        ".nnblob at {start:#x}+{size:#x} is not in code memory {:#x?}",
        board.code
    );

    let run = firmware.run(&elf, plugin);
    std::fs::write(
        module.with_extension(format!("{}.profile", board.core)),
        run.report.as_bytes(),
    )
    .expect("keep the profile");
    run
}

/// The blob of the `.pt2` fixture `network` (`tests/fixtures/pt2/`, structure and weights from
/// the export), the fixture's first input, and nnblob's MAC count.
fn convert_pt2(network: &str, dtype: WeightDtype) -> (Vec<u8>, Vec<f32>, u64) {
    let dir = nnblob_tests::workspace_root().join("tests/fixtures/pt2");
    let path = dir.join(format!("{network}.pt2"));
    let archive = nnblob::pt2::open(&path).expect("reads the archive");
    let graph = nnblob::pt2::lower(&archive.program, network).expect("lowers");
    let macs = nnblob::graph::summarize(&graph).total_macs;
    let bound = bind(graph, blob::tensors_to_state_dict(&archive.weights)).expect("binds");
    let sha = blob::sha256_file(&path).expect("hashes");
    let built = blob::build(bound, sha, dtype).expect("compiles");
    let inputs =
        nnblob::npy::read::<f32>(&dir.join(format!("{network}.input.npy"))).expect("input");
    let n = inputs.data.len() / inputs.shape[0];
    (built.bytes, inputs.data[..n].to_vec(), macs)
}

/// One model (its blob, input and MACs), one weight type, on the boards given: run on the host,
/// emitted, run on each board; returns nothing, asserts everything.
fn check(
    name: &str,
    (bytes, input, macs): (Vec<u8>, Vec<f32>, u64),
    label: &str,
    boards: &[&Board],
    with_fragment: bool,
    dir: &Path,
    plugin: &Path,
) {
    let model = Model::from_bytes(&bytes).expect("the engine accepts the blob");
    let sizes = emit::Sizes::of(&bytes).expect("sizes");
    assert!(
        sizes.ram_bytes() <= BOARD_RAM_BYTES,
        "{name}: {} bytes of RAM do not fit the board",
        sizes.ram_bytes()
    );
    let host_bits = host_output_bits(&model, &input);

    let module = dir.join(format!("{name}_{label}"));
    let artifacts =
        emit::rust_module(&bytes, &emit::Options::default()).expect("emits a Rust module");
    emit::write_artifacts(&module, &artifacts).expect("writes the module");
    let input_path = dir.join(format!("{name}_input.bin"));
    let input_bytes: Vec<u8> = input.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(&input_path, input_bytes).expect("write input");

    for board in boards {
        let mut fragments = vec![None];
        if with_fragment {
            fragments.push(Some(module.join(emit::LINKER_FRAGMENT_FILE)));
        }
        for fragment in &fragments {
            let run = run_on_device(
                board,
                &module,
                &input_path,
                fragment.as_deref(),
                plugin,
                bytes.len(),
            );
            let what = format!(
                "{name} {label} on {}{}",
                board.machine,
                if fragment.is_some() {
                    " (nnblob.x)"
                } else {
                    ""
                }
            );
            let p = &run.profile;
            assert_eq!(p.model, model.name(), "{what}: model name");
            assert_eq!(
                p.outputs, host_bits,
                "{what}: device output bits differ from the host's"
            );
            assert_eq!(p.ops.len(), model.op_count(), "{what}: one count per op");
            run.assert_counts_and_stack(board, &what);
            println!(
                "| {name} | {}{} | {label} | {macs} | {} ({}) | {:.2} | {} | {} | {} | {} |",
                board.machine,
                if fragment.is_some() {
                    " + nnblob.x"
                } else {
                    ""
                },
                p.inference_insns,
                run.plugin_insns,
                p.inference_insns as f64 / macs as f64,
                run.cycles_per_mac(board, macs),
                p.stack_bytes,
                bytes.len(),
                sizes.arena_bytes(),
            );
            if board.core == "cortex-m4" {
                for (i, ((kind, insns), cycles)) in p.ops.iter().zip(&run.op_cycles).enumerate() {
                    println!("  op {i} {kind}: {insns} instructions, {cycles} est. M4 cycles");
                }
            }
        }
    }
}

#[test]
#[ignore = "needs QEMU and the bare-metal targets; tests/run.sh runs it"]
fn catalog_models_on_the_device_are_bit_identical_to_the_host() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("qemu_catalog");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let plugin = build_plugin(&dir);
    println!("| model | board | weights | MACs | instructions (plugin) | per MAC | est. M4 cycles per MAC | stack bytes | blob bytes | arena bytes |");
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for name in MODELS {
        for (mode, label) in [
            (Mode::Weights(WeightDtype::F16), "F16"),
            (Mode::Weights(WeightDtype::F32), "F32"),
            (Mode::Int8, "int8"),
        ] {
            let lenet = name == "lenet5";
            // int8 is integer arithmetic only, so it runs on every core: LeNet-5 on all four
            // (its int8 arena fits the micro:bit's 16 KiB), ResNet-8 on those with the RAM.
            let boards: &[&Board] = match mode {
                Mode::Int8 if lenet => &[&CORTEX_M4F, &CORTEX_M3, &CORTEX_M0, &RISCV32],
                Mode::Int8 if name == "resnet8" => &[&CORTEX_M4F, &CORTEX_M3, &RISCV32],
                _ if lenet => &[&CORTEX_M4F, &CORTEX_M3, &RISCV32],
                _ => &[&CORTEX_M4F],
            };
            let c = convert(name, mode);
            check(
                name,
                (c.bytes, c.inputs[0].clone(), c.macs),
                label,
                boards,
                lenet && mode == Mode::Weights(WeightDtype::F16),
                &dir,
                &plugin,
            );
        }
    }
}

/// A network of int8 layers in the geometries the catalog lacks, with seeded weights: odd
/// channel counts, odd pixel counts (the last pair of output pixels of the Cortex-M4F's patch
/// loop has one pixel), window sums of 90, 63 and 18 taps (groups of four taps and a tail of 2,
/// 3 and 2), padding, strides of 2, dilation 2, groups of three input channels, 3x3 depthwise
/// convolutions at stride 2 (two outputs per channel, asymmetric padding, an odd number of
/// output rows) and at stride 1, a 1x1 convolution, one with more taps (585) than the
/// Cortex-M4F's patch holds (which runs the portable loop there), and a Linear layer of 25
/// inputs (three groups of 8 for the Cortex-M4F's SMLAD loop and one more) to 41 outputs.
/// Calibrated on seeded inputs. Its blob, its first input and its MACs.
fn awkward_int8() -> (Vec<u8>, Vec<f32>, u64) {
    let spec = "\
input x: [5, 13, 11]
g = Conv2d(5, 10, 3, stride=2, padding=(1, 2), groups=5)
a = Conv2d(10, 7, 3, stride=2, padding=1)
b = Conv2d(7, 9, 3, padding=2, dilation=2)
c = Conv2d(9, 6, (2, 3), stride=(1, 2), padding=(1, 0), groups=3)
d = Conv2d(6, 6, 3, padding=1, groups=6)
e = Conv2d(6, 65, 1)
f = Conv2d(65, 5, 3, padding=1)
h = Linear(25, 41)
forward:
    t = relu(g(x))
    y = relu(a(t))
    z = relu6(b(y))
    u = relu(c(z))
    v = d(u)
    w = relu(e(v))
    return h(flatten(f(w), 0))
";
    let graph = parse_spec(spec, "awkward.nnspec", "awkward").expect("parses");
    let shape = graph.shape(graph.inputs[0]).to_vec();
    let macs = nnblob::graph::summarize(&graph).total_macs;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    };
    let mut sd = StateDict::new();
    for n in &graph.nodes {
        for (suffix, pshape) in n.op.params() {
            let len = pshape.iter().product();
            let data = (0..len).map(|_| next() * 0.5).collect();
            let key = format!("{}.{suffix}", n.module.clone().expect("a module"));
            sd.insert(key, Tensor::new(pshape, data));
        }
    }
    let bound = bind(graph, sd).expect("binds");
    let len: usize = shape.iter().product();
    let samples: Vec<Vec<Tensor>> = (0..6)
        .map(|_| {
            vec![Tensor::new(
                shape.clone(),
                (0..len).map(|_| next() * 1.7).collect(),
            )]
        })
        .collect();
    let calibration = blob::Calibration {
        samples: &samples,
        method: nnblob::quant::RangeMethod::MinMax,
    };
    let (built, report, _) =
        blob::build_int8(bound, [0; 32], WeightDtype::F16, &calibration, |_, _| {})
            .expect("compiles to int8");
    assert!(
        report.float.is_empty(),
        "ops left in f32: {:?}",
        report.float
    );
    let input = (0..len).map(|_| next() * 1.7).collect();
    (built.bytes, input, macs)
}

/// [`awkward_int8`] on the Cortex-M4F (the DSP kernels), the Cortex-M3 and RV32IMAC (the
/// portable ones): every output bit equals the host's.
#[test]
#[ignore = "needs QEMU and the bare-metal targets; tests/run.sh runs it"]
fn awkward_int8_geometries_on_the_device_are_bit_identical_to_the_host() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("qemu_catalog_awkward");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let plugin = build_plugin(&dir);
    let (bytes, input, macs) = awkward_int8();
    // A comparison of a few repeated values would be weak.
    let model = Model::from_bytes(&bytes).expect("the engine accepts the blob");
    let bits = host_output_bits(&model, &input);
    let distinct = bits.iter().collect::<std::collections::BTreeSet<_>>().len();
    assert!(distinct >= 20, "only {distinct} distinct outputs");
    check(
        "awkward",
        (bytes, input, macs),
        "int8",
        &[&CORTEX_M4F, &CORTEX_M3, &RISCV32],
        false,
        &dir,
        &plugin,
    );
}

/// A pitch-estimation network's shape, its layers 1-d convolutions written as Conv2d with
/// `K x 1` kernels down a map one pixel wide (`column`), or as `1 x K` along a map one row
/// high: a 256-tap first convolution at stride 4 on one input channel (its padded row wider
/// than the convolution's band buffer), then 32 taps at stride 2 (the column form) or 1 (the
/// row form), 8 taps at stride 3 to 10 channels (a partial block of output channels), each
/// with BatchNorm and ReLU, max pools of 2, and a Linear layer. Seeded random weights and
/// input (`graph::random`). Its blob, input and MACs.
fn pitch_1d(column: bool, dtype: WeightDtype) -> (Vec<u8>, Vec<f32>, u64) {
    // `(a, b)` down the column, `(b, a)` along the row.
    let k = |a: u32, b: u32| match column {
        true => format!("({a}, {b})"),
        false => format!("({b}, {a})"),
    };
    let (stride2, pad2) = match column {
        true => (2, 15),
        false => (1, 16),
    };
    let input = match column {
        true => "[1, 512, 1]",
        false => "[1, 1, 512]",
    };
    let fc_in = if column { 60 } else { 110 };
    let spec = format!(
        "\
input x: {input}
c1 = Conv2d(1, 8, {}, stride={}, padding={})
b1 = BatchNorm2d(8)
p1 = MaxPool2d({})
c2 = Conv2d(8, 8, {}, stride={}, padding={})
b2 = BatchNorm2d(8)
p2 = MaxPool2d({})
c3 = Conv2d(8, 10, {}, stride={}, padding={})
b3 = BatchNorm2d(10)
fc = Linear({fc_in}, 10)
forward:
    y = p1(relu(b1(c1(x))))
    y = p2(relu(b2(c2(y))))
    y = relu(b3(c3(y)))
    return fc(flatten(y, 1))
",
        k(256, 1),
        k(4, 1),
        k(126, 0),
        k(2, 1),
        k(32, 1),
        k(stride2, 1),
        k(pad2, 0),
        k(2, 1),
        k(8, 1),
        k(3, 1),
        k(4, 0),
    );
    let name = if column { "pitch_column" } else { "pitch_row" };
    let graph = parse_spec(&spec, &format!("{name}.nnspec"), name).expect("parses");
    let macs = nnblob::graph::summarize(&graph).total_macs;
    let sd = nnblob::graph::random::random_state_dict(&graph, 0x7069_7463_6831);
    let input = nnblob::graph::random::random_inputs(&graph, 0x7069_7463_6832);
    let bound = bind(graph, sd).expect("binds");
    let built = blob::build(bound, [0; 32], dtype).expect("compiles");
    (built.bytes, input[0].data.clone(), macs)
}

/// [`pitch_1d`] in both orientations, fp16 and f32 weights, on the Cortex-M4F (the assembly
/// paths for long rows at strides 1 to 4), the Cortex-M3 and RV32IMAC: every output bit
/// equals the host's.
#[test]
#[ignore = "needs QEMU and the bare-metal targets; tests/run.sh runs it"]
fn pitch_1d_on_the_device_is_bit_identical_to_the_host() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("qemu_catalog_pitch");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let plugin = build_plugin(&dir);
    println!("| model | board | weights | MACs | instructions (plugin) | per MAC | est. M4 cycles per MAC | stack bytes | blob bytes | arena bytes |");
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for column in [true, false] {
        let name = if column { "pitch_column" } else { "pitch_row" };
        for (dtype, label) in [(WeightDtype::F16, "F16"), (WeightDtype::F32, "F32")] {
            let (bytes, input, macs) = pitch_1d(column, dtype);
            let model = Model::from_bytes(&bytes).expect("the engine accepts the blob");
            let bits = host_output_bits(&model, &input);
            let distinct = bits.iter().collect::<std::collections::BTreeSet<_>>().len();
            assert_eq!(
                distinct,
                bits.len(),
                "{name}: the outputs should all differ"
            );
            let boards: &[&Board] = &[&CORTEX_M4F, &CORTEX_M3, &RISCV32];
            check(
                name,
                (bytes, input, macs),
                label,
                boards,
                false,
                &dir,
                &plugin,
            );
        }
    }
}

/// Networks imported from `torch.export` archives (the Slice of `chunk`, ShuffleNet's channel
/// shuffle as a permute brought to 4-d, PReLU, Hardswish) on the Cortex-M4F, and a 1-d sensor CNN
/// on every board and two convolutional autoencoders (transposed convolutions) on the boards with
/// 4 MiB of RAM: the same bits as the host's.
#[test]
#[ignore = "needs QEMU and the bare-metal targets; tests/run.sh runs it"]
fn imported_networks_on_the_device_are_bit_identical_to_the_host() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("qemu_catalog_pt2");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let plugin = build_plugin(&dir);
    println!("| model | board | weights | MACs | instructions (plugin) | per MAC | est. M4 cycles per MAC | stack bytes | blob bytes | arena bytes |");
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for network in ["own_cnn", "tv_shufflenet_v2"] {
        let dtype = WeightDtype::F16;
        check(
            network,
            convert_pt2(network, dtype),
            "F16",
            &[&CORTEX_M4F],
            false,
            &dir,
            &plugin,
        );
    }
    // A 1-d sensor CNN (Conv1d, MaxPool1d, AdaptiveAvgPool1d) and a transformer encoder block
    // (LayerNorm, matmul, softmax) on every board (they fit the micro:bit's 16 KiB); the convolutional autoencoders (ConvTranspose2d, ConvTranspose1d), the
    // U-Net (bilinear and nearest upsampling, skip concatenations) and the GroupNorm / LayerNorm
    // CNN on the boards with 4 MiB.
    let every: &[&Board] = &[&CORTEX_M4F, &CORTEX_M3, &CORTEX_M0, &RISCV32];
    let big_ram: &[&Board] = &[&CORTEX_M4F, &CORTEX_M3, &RISCV32];
    for (network, boards) in [
        ("sensor_cnn_1d", every),
        ("tiny_transformer", every),
        ("conv_autoencoder", big_ram),
        ("conv_autoencoder_1d", big_ram),
        ("unet_tiny", big_ram),
        ("norm_cnn", big_ram),
    ] {
        for (dtype, label) in [(WeightDtype::F16, "F16"), (WeightDtype::F32, "F32")] {
            let model = convert_pt2(network, dtype);
            check(network, model, label, boards, false, &dir, &plugin);
        }
    }
}
