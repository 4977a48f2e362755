//! The C API from C: `include/nnblob.h` against the Rust side, and C programs linked with the
//! static library giving the engine's bits and the documented codes.
//!
//! - The header's constants (codes, sizes, limits) equal the crate's, its functions are exactly
//!   the library's exported `nnb_*` symbols, and C's `sizeof(nnb_model)` is `NNB_MODEL_BYTES`.
//! - `examples/run_blob.c`, built with `cc -std=c99 -Wall -Wextra -Werror -pedantic` against
//!   `libnnblob_capi.a`, runs LeNet-5 converted from its committed fixture (fp16 and f32) on
//!   the fixture's inputs: its output bits equal `nnblob_firmware::Model::run` on the host.
//! - `tests/hostile.c`: every NULL, misaligned, short, corrupted, overlapping and out-of-range
//!   argument returns its code (for the blob's faults, the code of the error the Rust engine
//!   gives on the same bytes).
//!
//! The library is built by a nested `cargo build --release -p nnblob-capi` with its own target
//! directory under this crate's `CARGO_TARGET_TMPDIR` (the outer build holds the lock on the
//! main one); later runs find it up to date. Needs `cc` and `nm`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use nnblob::blob::WeightDtype;
use nnblob_capi as capi;
use nnblob_firmware::{Model, NoProfiler};
use nnblob_tests::capi::{convert, static_library, write_f32, Converted, Mode, Toolchain};
use nnblob_tests::qemu::section;

const C_FLAGS: [&str; 5] = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"];

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn header() -> String {
    std::fs::read_to_string(crate_dir().join("include/nnblob.h")).expect("nnblob.h")
}

/// Every `#define NAME VALUE` of the header whose value is an integer, `(-n)` included.
fn defines(h: &str) -> BTreeMap<String, i64> {
    h.lines()
        .filter_map(|l| {
            let mut w = l.strip_prefix("#define ")?.split_whitespace();
            let name = w.next()?;
            let value = w.next()?.trim_start_matches('(').trim_end_matches(')');
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// The functions the header declares: `nnb_name(` at the start of a declaration.
fn declared_functions(h: &str) -> BTreeSet<String> {
    h.lines()
        .filter(|l| !l.starts_with([' ', '#', '/']) && !l.starts_with("typedef"))
        .filter_map(|l| {
            let start = l.find("nnb_")?;
            let end = start + l[start..].find('(')?;
            Some(l[start..end].to_string())
        })
        .collect()
}

#[test]
fn header_constants_are_the_crates() {
    let d = defines(&header());
    let mut codes = BTreeMap::new();
    for &(name, value, msg) in capi::CODES {
        assert_eq!(d.get(name), Some(&i64::from(value)), "{name} in nnblob.h");
        assert!(!msg.to_bytes().is_empty(), "{name} has a sentence");
        assert!(
            codes.insert(value, name).is_none(),
            "{name}: value used twice"
        );
    }
    for name in d
        .keys()
        .filter(|n| *n == "NNB_OK" || n.starts_with("NNB_ERR_"))
    {
        assert!(
            capi::CODES.iter().any(|c| c.0 == name),
            "{name} is in nnblob.h but not in the crate's CODES"
        );
    }
    let expect = [
        ("NNB_MODEL_BYTES_32", capi::MODEL_BYTES_32),
        ("NNB_MODEL_BYTES_64", capi::MODEL_BYTES_64),
        ("NNB_MAX_IO", capi::MAX_IO),
        ("NNB_MAX_RANK", capi::MAX_RANK),
        ("NNB_ARENA_ALIGN", capi::ARENA_ALIGN),
        ("NNB_BLOB_ALIGN", nnblob_format::layout::WEIGHT_ALIGN),
        ("NNB_TYPE_F32", capi::NNB_TYPE_F32 as usize),
        ("NNB_TYPE_INT8", capi::NNB_TYPE_INT8 as usize),
        ("NNB_OP_BEGIN", capi::NNB_OP_BEGIN as usize),
        ("NNB_OP_END", capi::NNB_OP_END as usize),
    ];
    for (name, value) in expect {
        assert_eq!(d.get(name), Some(&(value as i64)), "{name} in nnblob.h");
    }
    assert_eq!(
        capi::MAX_RANK,
        nnblob_firmware::TensorDesc {
            rank: 0,
            elem: nnblob_firmware::ElemType::F32,
            dims: [1; 4],
            offset: 0,
            quant: nnblob_firmware::Quant::NONE,
        }
        .dims
        .len()
    );
}

#[test]
fn every_code_has_its_sentence() {
    for &(name, value, msg) in capi::CODES {
        let s = unsafe { std::ffi::CStr::from_ptr(capi::nnb_error_str(value)) };
        assert_eq!(s, msg, "{name}");
    }
    let s = unsafe { std::ffi::CStr::from_ptr(capi::nnb_error_str(12345)) };
    assert_eq!(s.to_str(), Ok("unknown error code"));
}

/// The static library for `tc`'s target, built once per test run and target.
fn library(tc: &Toolchain) -> PathBuf {
    static LIBS: Mutex<BTreeMap<&'static str, PathBuf>> = Mutex::new(BTreeMap::new());
    let mut libs = LIBS.lock().expect("not poisoned");
    libs.entry(tc.name())
        .or_insert_with(|| {
            static_library(Path::new(env!("CARGO_TARGET_TMPDIR")), tc.target, "release")
        })
        .clone()
}

/// `source` compiled with the strict C flags against the header and the static library.
fn compile(tc: &Toolchain, source: &str, out: &Path) {
    let o = Command::new(&tc.cc)
        .args(C_FLAGS)
        .arg("-I")
        .arg(crate_dir().join("include"))
        .arg(crate_dir().join(source))
        .arg(library(tc))
        // What std needs on a Linux target (`--print native-static-libs`).
        .args(["-lpthread", "-ldl", "-lm"])
        .arg("-o")
        .arg(out)
        .output()
        .expect("runs the C compiler");
    assert!(
        o.status.success(),
        "{} {source}:\n{}",
        tc.cc,
        String::from_utf8_lossy(&o.stderr)
    );
}

fn tmp(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c_api");
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

#[test]
fn header_functions_are_the_librarys_symbols() {
    let o = Command::new("nm")
        .args(["-g", "--defined-only"])
        .arg(library(&Toolchain::host()))
        .output()
        .expect("runs nm");
    assert!(o.status.success());
    let exported: BTreeSet<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (kind, name) = (w.nth(1)?, w.next()?);
            (kind == "T" && name.starts_with("nnb_")).then(|| name.to_string())
        })
        .collect();
    assert_eq!(declared_functions(&header()), exported);
}

/// Runs `examples/run_blob.c`, built by `tc`, on LeNet-5 (fp16, f32 and int8 weights, every
/// fixture input) and ResNet-8 (fp16 and int8, two inputs): the output bits equal the engine's
/// on this host, through `nnb_run`, and for int8 also through `nnb_run_int8` on the quantized
/// inputs (equal to `Model::run_quantized`).
fn run_blob_gives_the_engines_bits(tc: &Toolchain) {
    let exe = tmp(&format!("run_blob-{}", tc.name()));
    compile(tc, "examples/run_blob.c", &exe);
    let run = |args: &[&Path]| -> (Vec<String>, String) {
        let o = tc.command(&exe).args(args).output().expect("runs run_blob");
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "run_blob on {}: {stderr}", tc.name());
        let lines = String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        (lines, stderr)
    };
    let cases = [
        ("lenet5", Mode::Weights(WeightDtype::F16), usize::MAX),
        ("lenet5", Mode::Weights(WeightDtype::F32), usize::MAX),
        ("lenet5", Mode::Int8, usize::MAX),
        ("resnet8", Mode::Weights(WeightDtype::F16), 2),
        ("resnet8", Mode::Int8, 2),
        // Int8 at both edges (LeNet-5 and ResNet-8 end in f32: their softmax), so that
        // nnb_run_int8 runs.
        ("fc_autoencoder", Mode::Int8, 2),
    ];
    let mut raw_runs = 0;
    for (name, mode, count) in cases {
        let label = mode.label();
        let c = convert(name, mode);
        let what = format!("{name} {label} on {}", tc.name());
        let blob_path = tmp(&format!("{name}-{label}.nnb"));
        std::fs::write(&blob_path, &c.bytes).expect("writes");
        let model = Model::from_bytes(&c.bytes).expect("valid blob");
        let mut arena = vec![0.0f32; model.arena_len()];
        let info = model.input(0).expect("an input");
        for (k, input) in c.inputs.iter().enumerate().take(count) {
            let mut expected = vec![0.0f32; model.output_len(0)];
            model.run(input, &mut expected, &mut arena).expect("runs");
            let input_path = tmp(&format!("{name}-{label}-{k}.f32"));
            write_f32(&input_path, input);
            let (got, stderr) = run(&[&blob_path, &input_path]);
            let want: Vec<String> = expected
                .iter()
                .map(|v| format!("0x{:08x}", v.to_bits()))
                .collect();
            assert_eq!(got, want, "{what}, input {k}");
            let dims: Vec<String> = info.shape().iter().map(u32::to_string).collect();
            assert!(
                stderr.contains(&format!("input 0 '{}' [{}]", info.name, dims.join(", "))),
                "{stderr}"
            );
            let int8 = |io: Option<nnblob_firmware::IoInfo<'_>>| {
                io.is_some_and(|io| io.tensor.elem == nnblob_firmware::ElemType::I8)
            };
            if !(int8(model.input(0)) && int8(model.output(0))) {
                continue;
            }
            raw_runs += 1;
            // The raw int8 path: the input quantized as the engine quantizes it.
            let quant = info.tensor.quant;
            let q: Vec<i8> = input
                .iter()
                .map(|&x| nnblob::quant::params::quantize_value(x, quant))
                .collect();
            let mut expected = vec![0i8; model.output_len(0)];
            model
                .run_quantized(&[&q], &mut [&mut expected], &mut arena, &mut NoProfiler)
                .expect("runs int8");
            let q_path = tmp(&format!("{name}-{label}-{k}.i8"));
            std::fs::write(&q_path, q.iter().map(|&v| v as u8).collect::<Vec<u8>>())
                .expect("writes");
            let (got, stderr) = run(&[Path::new("--int8"), &blob_path, &q_path]);
            let want: Vec<String> = expected.iter().map(i8::to_string).collect();
            assert_eq!(got, want, "{what}, int8 input {k}");

            assert!(
                stderr.contains(&format!(
                    " (0x{:08x}) zero point {}",
                    quant.scale.to_bits(),
                    quant.zero_point
                )),
                "{what}: {stderr}"
            );
        }
    }
    assert!(raw_runs > 0, "no int8-at-both-edges case ran nnb_run_int8");
}

#[test]
fn c_program_gives_the_engines_bits() {
    run_blob_gives_the_engines_bits(&Toolchain::host());
}

/// The same program and library cross-built for a 64-bit Arm Linux SBC, run under qemu-aarch64.
#[test]
#[ignore = "needs the aarch64 Linux target, its GCC and qemu-user; tests/run.sh runs it"]
fn c_program_on_aarch64_linux_gives_the_hosts_bits() {
    run_blob_gives_the_engines_bits(&Toolchain::linux("aarch64-unknown-linux-gnu"));
}

/// The same for a 32-bit Arm Linux SBC (armv7, hard float), under qemu-arm.
#[test]
#[ignore = "needs the armv7 Linux target, its GCC and qemu-user; tests/run.sh runs it"]
fn c_program_on_armv7_linux_gives_the_hosts_bits() {
    run_blob_gives_the_engines_bits(&Toolchain::linux("armv7-unknown-linux-gnueabihf"));
}

#[test]
fn hostile_calls_return_their_codes() {
    let exe = tmp("hostile");
    compile(&Toolchain::host(), "tests/hostile.c", &exe);
    let Converted { bytes, inputs, .. } = convert("lenet5", Mode::Weights(WeightDtype::F16));
    let blob_path = tmp("hostile.nnb");
    let input_path = tmp("hostile.f32");
    std::fs::write(&blob_path, &bytes).expect("writes");
    write_f32(&input_path, &inputs[0]);
    let o = Command::new(&exe)
        .arg(&blob_path)
        .arg(&input_path)
        .output()
        .expect("runs hostile");
    assert!(
        o.status.success(),
        "hostile: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let got: BTreeMap<&str, &str> = stdout.lines().filter_map(|l| l.split_once(' ')).collect();

    // The blob's faults: the code of the Rust engine's error on the same bytes.
    let engine = |b: &[u8]| capi::code(Model::from_bytes(b).expect_err("refused"));
    let mut corrupt = bytes.clone();
    *corrupt.last_mut().expect("bytes") ^= 1;
    let model = Model::from_bytes(&bytes).expect("valid");
    let rank = model.input(0).expect("input").shape().len();
    let (short, empty, one_short, crc) = (
        engine(&bytes[..10]),
        engine(&[]),
        engine(&bytes[..bytes.len() - 1]),
        engine(&corrupt),
    );
    assert_eq!(crc, capi::NNB_ERR_CRC_MISMATCH);
    let expected: Vec<(&str, String)> = vec![
        ("init_null_model", capi::NNB_ERR_NULL.to_string()),
        ("init_null_blob", capi::NNB_ERR_NULL.to_string()),
        ("init_misaligned_model", capi::NNB_ERR_ALIGN.to_string()),
        ("init_range", capi::NNB_ERR_RANGE.to_string()),
        ("init_empty", empty.to_string()),
        ("init_short", short.to_string()),
        ("init_one_byte_short", one_short.to_string()),
        ("init_corrupt", crc.to_string()),
        ("init_ok", capi::NNB_OK.to_string()),
        ("failed_num_inputs", "0".into()),
        ("failed_arena_bytes", "0".into()),
        ("zeroed_num_outputs", "0".into()),
        ("null_num_inputs", "0".into()),
        ("null_input_len", "0".into()),
        ("null_name", "1".into()),
        ("num_inputs", model.input_count().to_string()),
        ("num_outputs", model.output_count().to_string()),
        ("input_len_1", "0".into()),
        ("output_len_1", "0".into()),
        ("input_rank_1", "0".into()),
        ("output_rank_1", "0".into()),
        ("input_dim_past_rank", "0".into()),
        ("output_dim_1", "0".into()),
        ("input_name_1", "1".into()),
        ("output_name_1", "1".into()),
        ("name_len_untouched", "12345".into()),
        ("name_null_len", "1".into()),
        ("name_misaligned_len", "1".into()),
        ("run_null_model", capi::NNB_ERR_NULL.to_string()),
        ("run_failed_model", capi::NNB_ERR_MODEL_INVALID.to_string()),
        ("run_zeroed_model", capi::NNB_ERR_MODEL_INVALID.to_string()),
        ("run_null_inputs", capi::NNB_ERR_NULL.to_string()),
        ("run_null_outputs", capi::NNB_ERR_NULL.to_string()),
        ("run_null_arena", capi::NNB_ERR_NULL.to_string()),
        ("run_null_input_0", capi::NNB_ERR_NULL.to_string()),
        ("run_null_output_0", capi::NNB_ERR_NULL.to_string()),
        (
            "run_arena_one_byte_short",
            capi::NNB_ERR_ARENA_TOO_SMALL.to_string(),
        ),
        ("run_arena_empty", capi::NNB_ERR_ARENA_TOO_SMALL.to_string()),
        ("run_misaligned_arena", capi::NNB_ERR_ALIGN.to_string()),
        ("run_misaligned_input", capi::NNB_ERR_ALIGN.to_string()),
        ("run_misaligned_output", capi::NNB_ERR_ALIGN.to_string()),
        ("run_output_is_input", capi::NNB_ERR_OVERLAP.to_string()),
        ("run_output_in_arena", capi::NNB_ERR_OVERLAP.to_string()),
        ("run_input_in_arena", capi::NNB_ERR_OVERLAP.to_string()),
        ("run_arena_over_blob", capi::NNB_ERR_OVERLAP.to_string()),
        ("run_arena_range", capi::NNB_ERR_RANGE.to_string()),
        ("run_ok", capi::NNB_OK.to_string()),
        ("run_ok_larger_arena", capi::NNB_OK.to_string()),
        ("hook_null_model", capi::NNB_ERR_NULL.to_string()),
        ("hook_failed_model", capi::NNB_ERR_MODEL_INVALID.to_string()),
        ("hook_set", capi::NNB_OK.to_string()),
        ("hook_run_ok", capi::NNB_OK.to_string()),
        ("hook_begins", model.op_count().to_string()),
        ("hook_ends", model.op_count().to_string()),
        ("hook_out_of_order", "0".into()),
        ("hook_cleared", capi::NNB_OK.to_string()),
        ("hook_cleared_run_ok", capi::NNB_OK.to_string()),
        ("hook_cleared_begins", model.op_count().to_string()),
        ("input_type", capi::NNB_TYPE_F32.to_string()),
        ("output_type", capi::NNB_TYPE_F32.to_string()),
        ("input_type_1", capi::NNB_ERR_NO_SUCH_IO.to_string()),
        ("output_type_null_model", capi::NNB_ERR_NULL.to_string()),
        (
            "input_type_failed_model",
            capi::NNB_ERR_MODEL_INVALID.to_string(),
        ),
        ("input_quant_f32", capi::NNB_ERR_IO_TYPE.to_string()),
        ("quant_untouched", "1".into()),
        ("output_quant_1", capi::NNB_ERR_NO_SUCH_IO.to_string()),
        ("input_quant_null_scale", capi::NNB_ERR_NULL.to_string()),
        (
            "output_quant_null_zero_point",
            capi::NNB_ERR_NULL.to_string(),
        ),
        ("input_quant_misaligned", capi::NNB_ERR_ALIGN.to_string()),
        ("run_int8_f32_model", capi::NNB_ERR_IO_TYPE.to_string()),
        ("run_int8_null_model", capi::NNB_ERR_NULL.to_string()),
        ("run_int8_null_inputs", capi::NNB_ERR_NULL.to_string()),
        ("sizeof_model", capi::MODEL_BYTES.to_string()),
        ("error_str_unknown_not_null", "1".into()),
        ("error_str_crc_not_null", "1".into()),
        (
            "error_str_crc_text",
            "CRC-32 mismatch (blob corrupted)".into(),
        ),
    ];
    for (case, want) in &expected {
        assert_eq!(got.get(case), Some(&want.as_str()), "{case}\n{stdout}");
    }
    let align: usize = got["alignof_model"].parse().expect("a number");
    assert!(
        align >= std::mem::align_of::<capi::NnbModel>(),
        "C aligns nnb_model to {align}"
    );
    assert_eq!(
        got.len(),
        expected.len() + 1,
        "every case is checked\n{stdout}"
    );
    assert!(rank > 0);
}

/// `rust-lld` of the Rust toolchain running the tests.
fn rust_lld() -> PathBuf {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = |args: &[&str]| {
        let o = Command::new(&rustc)
            .args(args)
            .output()
            .expect("runs rustc");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let host = out(&["-vV"])
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .expect("rustc -vV names the host");
    PathBuf::from(out(&["--print", "sysroot"])).join(format!("lib/rustlib/{host}/bin/rust-lld"))
}

/// The C API's code size on every bare-metal target of `nnblob footprint` (`ENGINE_TARGETS`):
/// the library built with `release-size`, linked by `rust-lld --gc-sections` with every
/// function of `nnblob.h` kept and nothing else; `.text` and `.rodata` must be the table's.
#[test]
#[ignore = "builds the library for the four bare-metal targets; tests/run.sh runs it"]
fn c_api_sizes_are_the_footprint_figures() {
    let keep: Vec<String> = declared_functions(&header())
        .into_iter()
        .flat_map(|f| ["-u".to_string(), f])
        .collect();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let mut stale = Vec::new();
    for t in nnblob::emit::ENGINE_TARGETS {
        let lib = static_library(dir, Some(t.rust_target), "release-size");
        let elf = tmp(&format!("capi-probe-{}.elf", t.rust_target));
        let o = Command::new(rust_lld())
            .args(["-flavor", "gnu", "--gc-sections", "--entry", "nnb_run"])
            .args(&keep)
            .arg(&lib)
            .arg("-o")
            .arg(&elf)
            .output()
            .expect("runs rust-lld");
        assert!(
            o.status.success(),
            "rust-lld for {}: {}",
            t.rust_target,
            String::from_utf8_lossy(&o.stderr)
        );
        let size = |name| section(&elf, name).map_or(0, |(_, bytes)| bytes as usize);
        let (text, rodata) = (size(".text"), size(".rodata"));
        println!(
            "{} ({}): C API .text {text} .rodata {rodata}",
            t.name, t.rust_target
        );
        if (text, rodata) != (t.capi_text_bytes, t.capi_rodata_bytes) {
            stale.push(format!(
                "{}: table .text {} .rodata {}, measured .text {text} .rodata {rodata}",
                t.name, t.capi_text_bytes, t.capi_rodata_bytes
            ));
        }
    }
    assert!(
        stale.is_empty(),
        "update ENGINE_TARGETS in host-tool/src/emit.rs and docs/C.md:\n{}",
        stale.join("\n")
    );
}
