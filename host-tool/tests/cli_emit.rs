//! `nnblob emit` and `nnblob footprint` through the built binary, on the LeNet-5 fixture converted
//! by `nnblob convert`: the emitted Rust module compiles (rustc, editions 2021 and 2024) and the C
//! sources compile (`cc -std=c11 -Wall -Wextra -Werror -pedantic`); programs built from them hand
//! back the blob's exact bytes at a 16-byte aligned address and sizes equal to the engine's and
//! to torch's manifest; the compile-time budget checks fail the build exactly when the arena
//! exceeds the budget; bad input gives one `nnblob:` line and leaves no file behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod cli_common;
use cli_common::{assert_fails, fixture, nnblob, s, stderr};

/// LeNet-5's fixture checkpoint converted with fp16 weights into `dir`.
fn lenet5_blob(dir: &Path) -> PathBuf {
    let blob = dir.join("lenet5.nnb");
    let ckpt = fixture("lenet5", "state_dict.pth");
    let o = nnblob(&["convert", s(&ckpt), "--arch", "lenet5", "-o", s(&blob)]);
    assert!(o.status.success(), "{}", stderr(&o));
    blob
}

/// What the sizes must be: arena from the engine, input/output lengths from torch's manifest.
struct Expected {
    blob: Vec<u8>,
    arena_len: usize,
    input_len: usize,
    output_len: usize,
}

fn expected(blob: &Path) -> Expected {
    let bytes = std::fs::read(blob).unwrap();
    let model = nnblob_firmware::Model::from_bytes(&bytes).unwrap();
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("lenet5", "manifest.json")).unwrap())
            .unwrap();
    let numel = |key: &str| -> usize {
        manifest[key][0]["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .product()
    };
    Expected {
        arena_len: model.arena_len(),
        blob: bytes,
        input_len: numel("inputs"),
        output_len: numel("outputs"),
    }
}

/// Output of a program built from emitted sources: the sizes it prints, then the blob it wrote.
fn check_program_output(run: &Output, written: &Path, want: &Expected) {
    assert!(run.status.success(), "{}", stderr(run));
    let printed = String::from_utf8_lossy(&run.stdout);
    assert_eq!(
        printed.trim(),
        format!(
            "{} {} {} {} {} 0",
            want.blob.len(),
            want.arena_len,
            want.arena_len * 4,
            want.input_len,
            want.output_len
        ),
        "blob bytes, arena len, arena bytes, input, output, address % 16"
    );
    assert!(
        std::fs::read(written).unwrap() == want.blob,
        "the program's blob differs from the file"
    );
}

fn rustc(dir: &Path, main: &str, edition: &str, out: &Path) -> Output {
    let src = dir.join(format!("main{edition}.rs"));
    std::fs::write(&src, main).unwrap();
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    Command::new(rustc)
        .args(["--edition", edition, "-D", "warnings", "-o"])
        .arg(out)
        .arg(&src)
        .output()
        .unwrap()
}

fn rust_main(module: &Path, budget: usize) -> String {
    format!(
        "#[path = {:?}]\nmod model;\n\
         const _: () = model::assert_arena_fits({budget});\n\
         fn main() {{\n\
             let address = &model::BLOB as *const _ as usize;\n\
             println!(\"{{}} {{}} {{}} {{}} {{}} {{}}\", model::BLOB_BYTES, model::ARENA_LEN, model::ARENA_BYTES, \
                      model::INPUT_LEN, model::OUTPUT_LEN, address % 16);\n\
             std::fs::write(std::env::args().nth(1).unwrap(), &model::BLOB.0).unwrap();\n\
         }}\n",
        s(&module.join("mod.rs"))
    )
}

#[test]
fn rust_module_compiles_holds_the_blob_and_checks_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let blob = lenet5_blob(dir.path());
    let want = expected(&blob);
    let module = dir.path().join("model");
    let o = nnblob(&["emit", s(&blob), "--rust", s(&module)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut files: Vec<String> = std::fs::read_dir(&module)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["mod.rs", "model.nnb", "nnblob.x"]);
    let source = std::fs::read_to_string(module.join("mod.rs")).unwrap();
    assert!(source.contains("#[unsafe(link_section = \".nnblob\")]"));

    for edition in ["2021", "2024"] {
        let exe = dir.path().join(format!("prog{edition}"));
        let built = rustc(
            dir.path(),
            &rust_main(&module, want.arena_len * 4),
            edition,
            &exe,
        );
        assert!(built.status.success(), "{}", stderr(&built));
        let written = dir.path().join(format!("written{edition}.nnb"));
        check_program_output(
            &Command::new(&exe).arg(&written).output().unwrap(),
            &written,
            &want,
        );
    }

    // One byte under the arena: the firmware's build fails, naming the model and its need.
    let exe = dir.path().join("too_small");
    let built = rustc(
        dir.path(),
        &rust_main(&module, want.arena_len * 4 - 1),
        "2021",
        &exe,
    );
    assert!(!built.status.success(), "a budget under the arena compiled");
    let err = stderr(&built);
    assert!(
        err.contains(&format!(
            "the arena of model 'lenet5' needs {} bytes, more than the RAM budget",
            want.arena_len * 4
        )),
        "{err}"
    );
}

#[test]
fn ram_budget_is_checked_when_emitting_and_by_the_compiler() {
    let dir = tempfile::tempdir().unwrap();
    let blob = lenet5_blob(dir.path());
    let want = expected(&blob);
    let arena = (want.arena_len * 4).to_string();
    let under = (want.arena_len * 4 - 1).to_string();

    // Over budget: refused, nothing written, for every output kind.
    for (flag, out) in [("--rust", "r"), ("--c", "c"), ("--bin", "b.bin")] {
        let path = dir.path().join(out);
        let err = assert_fails(&nnblob(&[
            "emit",
            s(&blob),
            flag,
            s(&path),
            "--ram-budget",
            &under,
        ]));
        assert!(
            err.contains(&format!(
                "the arena needs {arena} bytes, more than the RAM budget of {under} bytes"
            )),
            "{err}"
        );
        assert!(!path.exists(), "{flag}: output written despite the error");
    }

    // Exactly the arena: the module asserts it and compiles.
    let module = dir.path().join("fits");
    let o = nnblob(&[
        "emit",
        s(&blob),
        "--rust",
        s(&module),
        "--ram-budget",
        &arena,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let source = std::fs::read_to_string(module.join("mod.rs")).unwrap();
    assert!(source.contains(&format!("pub const RAM_BUDGET_BYTES: usize = {arena};")));
    assert!(source.contains("const _: () = assert_arena_fits(RAM_BUDGET_BYTES);"));
    let exe = dir.path().join("fits_prog");
    let built = rustc(dir.path(), &rust_main(&module, 1 << 30), "2021", &exe);
    assert!(built.status.success(), "{}", stderr(&built));

    // The emitted assertion has teeth: the same module with a smaller budget written in fails.
    std::fs::write(
        module.join("mod.rs"),
        source.replace(
            &format!("RAM_BUDGET_BYTES: usize = {arena};"),
            &format!("RAM_BUDGET_BYTES: usize = {under};"),
        ),
    )
    .unwrap();
    let built = rustc(dir.path(), &rust_main(&module, 1 << 30), "2021", &exe);
    assert!(
        !built.status.success(),
        "an edited budget under the arena compiled"
    );
}

fn cc(args: &[&str], dir: &Path) -> Output {
    let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    Command::new(cc)
        .current_dir(dir)
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic"])
        .args(args)
        .output()
        .unwrap()
}

fn c_main(budget: &str) -> String {
    format!(
        "#include <stdint.h>\n#include <stdio.h>\n#include \"lenet5.h\"\n\
         LENET5_ASSERT_ARENA_FITS({budget});\n\
         int main(int argc, char **argv) {{\n\
           FILE *f;\n\
           if (argc < 2) return 2;\n\
           printf(\"%u %u %u %u %u %u\\n\", LENET5_BLOB_BYTES, LENET5_ARENA_LEN, LENET5_ARENA_BYTES,\n\
                  LENET5_INPUT_LEN, LENET5_OUTPUT_LEN, (unsigned)((uintptr_t)lenet5_blob % LENET5_BLOB_ALIGN));\n\
           f = fopen(argv[1], \"wb\");\n\
           if (!f || fwrite(lenet5_blob, 1, LENET5_BLOB_BYTES, f) != LENET5_BLOB_BYTES) return 1;\n\
           return fclose(f) != 0;\n\
         }}\n"
    )
}

#[test]
fn c_sources_compile_strictly_hold_the_blob_and_check_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let blob = lenet5_blob(dir.path());
    let want = expected(&blob);
    let out = dir.path().join("c");
    let o = nnblob(&["emit", s(&blob), "--c", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    for file in ["lenet5.h", "lenet5.c", "nnblob.x"] {
        assert!(out.join(file).is_file(), "no {file}");
    }
    // The source alone, as the task asks: `cc -std=c11 -Wall -Werror -c`.
    let o = cc(&["-c", "lenet5.c", "-o", "lenet5.o"], &out);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = Command::new("nm")
        .arg(out.join("lenet5.o"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(" R lenet5_blob"),
        "lenet5_blob is not a read-only global"
    );
    let o = Command::new("readelf")
        .args(["-S", "-W"])
        .arg(out.join("lenet5.o"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(" .nnblob "),
        "no .nnblob section in the object"
    );

    let arena = (want.arena_len * 4).to_string();
    std::fs::write(out.join("main.c"), c_main(&arena)).unwrap();
    let o = cc(&["main.c", "lenet5.c", "-o", "prog"], &out);
    assert!(o.status.success(), "{}", stderr(&o));
    let written = out.join("written.nnb");
    check_program_output(
        &Command::new(out.join("prog"))
            .arg(&written)
            .output()
            .unwrap(),
        &written,
        &want,
    );

    std::fs::write(
        out.join("main.c"),
        c_main(&(want.arena_len * 4 - 1).to_string()),
    )
    .unwrap();
    let o = cc(&["-c", "main.c", "-o", "main.o"], &out);
    assert!(!o.status.success(), "a budget under the arena compiled");
    assert!(
        stderr(&o).contains(&format!(
            "the arena of model 'lenet5' needs {arena} bytes, more than the RAM budget"
        )),
        "{}",
        stderr(&o)
    );

    // --name and --section reach the file names, the symbols and the linker fragment.
    let named = dir.path().join("named");
    let o = nnblob(&[
        "emit",
        s(&blob),
        "--c",
        s(&named),
        "--name",
        "kws_v2",
        "--section",
        ".rodata.nnblob",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = cc(&["-c", "kws_v2.c", "-o", "kws_v2.o"], &named);
    assert!(o.status.success(), "{}", stderr(&o));
    let header = std::fs::read_to_string(named.join("kws_v2.h")).unwrap();
    assert!(header.contains("#define KWS_V2_ARENA_LEN"));
    assert!(header.contains("extern const uint8_t kws_v2_blob[KWS_V2_BLOB_BYTES];"));
    let fragment = std::fs::read_to_string(named.join("nnblob.x")).unwrap();
    assert!(fragment.contains("KEEP(*(.rodata.nnblob .rodata.nnblob.*))"));
}

#[test]
fn bin_is_the_blob_and_bad_input_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let blob = lenet5_blob(dir.path());
    let bin = dir.path().join("lenet5.bin");
    let o = nnblob(&["emit", s(&blob), "--bin", s(&bin)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("multiple of 16"), "{}", stderr(&o));
    assert!(std::fs::read(&bin).unwrap() == std::fs::read(&blob).unwrap());

    // A file that is not a blob: refused by the engine's check, by name.
    let not_blob = fixture("lenet5", "manifest.json");
    let out = dir.path().join("r");
    let err = assert_fails(&nnblob(&["emit", s(&not_blob), "--rust", s(&out)]));
    assert!(err.contains("manifest.json"), "{err}");
    assert!(!out.exists());

    // A corrupted blob (one flipped byte): refused, an existing output left untouched.
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let broken = dir.path().join("broken.nnb");
    std::fs::write(&broken, &bytes).unwrap();
    let err = assert_fails(&nnblob(&["emit", s(&broken), "--bin", s(&bin)]));
    assert!(err.contains("broken.nnb"), "{err}");
    assert!(std::fs::read(&bin).unwrap() == std::fs::read(&blob).unwrap());

    for (args, needle) in [
        (
            vec!["--c", "x", "--name", "9lives"],
            "'9lives' is not a usable name",
        ),
        (
            vec!["--c", "x", "--name", "a-b"],
            "'a-b' is not a usable name",
        ),
        (
            vec!["--rust", "x", "--section", ".a b"],
            "'.a b' is not a usable linker section name",
        ),
    ] {
        let mut all = vec!["emit", s(&blob)];
        all.extend(&args);
        let err = assert_fails(&nnblob(&all));
        assert!(err.contains(needle), "{err}");
    }
    assert!(!Path::new("x").exists());
    // No temporary files left in the output folder.
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn footprint_counts_flash_ram_and_torch_macs_and_reads_a_profile() {
    let dir = tempfile::tempdir().unwrap();
    let blob = lenet5_blob(dir.path());
    let want = expected(&blob);
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("lenet5", "manifest.json")).unwrap())
            .unwrap();

    for target in nnblob::emit::ENGINE_TARGETS {
        let o = nnblob(&["footprint", s(&blob), "--target", target.name, "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let r: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(r["flash_bytes"]["blob"], want.blob.len());
        assert_eq!(
            r["flash_bytes"]["total"],
            want.blob.len() + target.text_bytes + target.rodata_bytes
        );
        assert_eq!(r["ram_bytes"]["arena"], want.arena_len * 4);
        assert_eq!(
            r["ram_bytes"]["io_buffers"],
            4 * (want.input_len + want.output_len)
        );
        assert_eq!(
            r["ram_bytes"]["total"],
            4 * (want.arena_len + want.input_len + want.output_len)
                + target.stack_bytes.unwrap_or(0)
        );
        // MACs: torch's count, from the fixture script's forward hooks.
        assert_eq!(r["macs"], manifest["macs"]);
        let torch_layers: Vec<u64> = manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["macs"].as_u64().unwrap())
            .filter(|&m| m > 0)
            .collect();
        let ours: Vec<u64> = r["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["macs"].as_u64().unwrap())
            .filter(|&m| m > 0)
            .collect();
        assert_eq!(ours, torch_layers, "MACs per layer");
    }

    // A profile in the firmware's report format for this blob: instructions per op and per MAC.
    let o = nnblob(&["footprint", s(&blob), "--json"]);
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    let layers = r["layers"].as_array().unwrap();
    let mut report = format!(
        "model lenet5 dtype F16 ops {} arena {} input {} output {}\ninference insns 4000000\nstack bytes 3000\n",
        layers.len(),
        want.arena_len,
        want.input_len,
        want.output_len
    );
    for (i, l) in layers.iter().enumerate() {
        report += &format!(
            "op {i} {} insns {}\n",
            l["kind"].as_str().unwrap(),
            1000 * (i + 1)
        );
    }
    report += "output 0 0x3f800000\ndone\n";
    let profile = dir.path().join("lenet5.profile");
    std::fs::write(&profile, &report).unwrap();
    let o = nnblob(&["footprint", s(&blob), "--profile", s(&profile), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["inference_insns"], 4_000_000);
    assert_eq!(r["ram_bytes"]["stack"], 3000);
    assert_eq!(r["ram_bytes"]["stack_source"], "profile");
    assert_eq!(r["layers"][0]["insns"], 1000);
    let per_mac = r["insns_per_mac"].as_f64().unwrap();
    assert!((per_mac - 4e6 / manifest["macs"].as_f64().unwrap()).abs() < 1e-12);
    let o = nnblob(&["footprint", s(&blob), "--profile", s(&profile)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("4000000 instructions per inference"),
        "{text}"
    );

    // A profile of another model, with ops missing, or with a wrong kind: refused, saying why.
    for (edit, needle) in [
        (
            report.replace("model lenet5", "model resnet8"),
            "profiles model 'resnet8'",
        ),
        (
            report.replace("op 6 Linear insns 7000\n", ""),
            "it has 6 ops, the blob 7",
        ),
        (
            report.replace("op 1 MaxPool2d", "op 1 AvgPool2d"),
            "op 1 is AvgPool2d there, MaxPool2d in the blob",
        ),
        (report.replace("done\n", ""), "no 'done' record"),
        (report.replace("op 2 ", "op 3 "), "line 6: op out of order"),
    ] {
        std::fs::write(&profile, edit).unwrap();
        let err = assert_fails(&nnblob(&["footprint", s(&blob), "--profile", s(&profile)]));
        assert!(err.contains(needle), "{err}");
    }
    // An unknown target is an argument error (clap's message, exit code 2) listing the known ones.
    let o = nnblob(&["footprint", s(&blob), "--target", "avr"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cortex-m0plus"), "{}", stderr(&o));
}
