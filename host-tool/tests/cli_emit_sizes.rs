//! The engine code sizes `nnblob footprint` reports (`nnblob::emit::ENGINE_TARGETS`) are the size
//! probe's: for every target, `firmware/size-probe` is built (profile `release-size`, every op
//! linked) and `size -A` must give the table's `.text` and `.rodata`. A kernel change that moves
//! the code size fails here with the new figures to write into the table.
//!
//! Needs the bare-metal targets and binutils' `size`; `tests/run.sh` installs the targets and
//! runs it: `cargo test -p nnblob --test cli_emit_sizes -- --ignored`.

use std::path::Path;
use std::process::Command;

/// `(.text, .rodata)` of the ELF, from `size -A`.
fn sections(elf: &Path) -> (usize, usize) {
    let out = Command::new("size")
        .arg("-A")
        .arg(elf)
        .output()
        .expect("size runs");
    assert!(out.status.success(), "size -A {}", elf.display());
    let text = String::from_utf8_lossy(&out.stdout);
    let get = |name: &str| {
        text.lines()
            .find_map(|l| {
                let mut w = l.split_whitespace();
                (w.next() == Some(name)).then(|| w.next()?.parse().ok())?
            })
            .unwrap_or(0)
    };
    (get(".text"), get(".rodata"))
}

#[test]
#[ignore = "builds the size probe for four bare-metal targets; tests/run.sh runs it"]
fn engine_code_sizes_are_the_size_probes() {
    let probe = Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware/size-probe");
    let mut stale = Vec::new();
    for t in nnblob::emit::ENGINE_TARGETS {
        let built = Command::new(env!("CARGO"))
            .current_dir(&probe)
            .args(["build", "--quiet", "--locked", "--profile", "release-size"])
            .args(["--target", t.rust_target])
            .env("RUSTFLAGS", "-C link-arg=--entry=nnblob_probe")
            .env_remove("CARGO_TARGET_DIR")
            .output()
            .expect("cargo runs");
        assert!(
            built.status.success(),
            "building the size probe for {}:\n{}",
            t.rust_target,
            String::from_utf8_lossy(&built.stderr)
        );
        let elf = probe.join(format!(
            "target/{}/release-size/nnblob-size-probe",
            t.rust_target
        ));
        let (text, rodata) = sections(&elf);
        println!(
            "{} ({}): .text {text} .rodata {rodata}",
            t.name, t.rust_target
        );
        if (text, rodata) != (t.text_bytes, t.rodata_bytes) {
            stale.push(format!(
                "{}: table .text {} .rodata {}, measured .text {text} .rodata {rodata}",
                t.name, t.text_bytes, t.rodata_bytes
            ));
        }
    }
    assert!(
        stale.is_empty(),
        "update ENGINE_TARGETS in host-tool/src/emit.rs and docs/EMIT.md:\n{}",
        stale.join("\n")
    );
}
