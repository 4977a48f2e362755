//! `nnblob` itself on Linux SBCs: the CLI cross-built for aarch64 (Raspberry Pi 3/4/5, Jetson,
//! most boards) and armv7 (32-bit Raspberry Pi OS, BeagleBone, i.MX6), run under QEMU's
//! user-mode emulators, converts the committed fixtures to the same blob bytes and runs them to
//! the same output bits as the x86-64 host.
//!
//! For each target: `cargo build -p nnblob --target T` (a nested build with its own target
//! directory under this crate's `CARGO_TARGET_TMPDIR`: the outer build holds the lock on the
//! main one; later runs find it up to date), then, under the target's cargo runner
//! (`.cargo/config.toml`), `nnblob convert` of LeNet-5 (fp16, and int8 calibrated on the
//! fixture's inputs) and of ResNet-8 (fp16), whose bytes must equal the host's in-process
//! conversion, and `nnblob run` of each blob on the fixture's inputs, whose output bits must
//! equal the engine's on the host.
//!
//! Needs the Linux targets, their cross GCC and C libraries, and qemu-user (tests/run.sh
//! installs them): `cargo test -p nnblob-tests --test sbc_cli -- --ignored --nocapture`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use nnblob::blob::WeightDtype;
use nnblob_firmware::Model;
use nnblob_tests::capi::{convert, Mode, Toolchain};
use nnblob_tests::qemu::host_output_bits;
use nnblob_tests::{models_dir, workspace_root};

/// The `nnblob` executable for `target`.
fn cross_build(target: &str) -> PathBuf {
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sbc-cli");
    let started = Instant::now();
    let status = Command::new(env!("CARGO"))
        .args([
            "build", "--quiet", "--locked", "-p", "nnblob", "--bin", "nnblob",
        ])
        .args(["--target", target])
        .current_dir(workspace_root())
        .env("CARGO_TARGET_DIR", &target_dir)
        .status()
        .expect("runs cargo");
    assert!(status.success(), "cargo build -p nnblob --target {target}");
    println!("{target}: nnblob built in {:.0?}", started.elapsed());
    target_dir.join(target).join("debug/nnblob")
}

fn nnblob_on(tc: &Toolchain, exe: &Path, args: &[&str]) {
    let o = tc.command(exe).args(args).output().expect("runs nnblob");
    assert!(
        o.status.success(),
        "nnblob {} on {}: {}",
        args.join(" "),
        tc.name(),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn the_cli_gives_the_hosts_bytes_and_bits(target: &'static str) {
    let tc = Toolchain::linux(target);
    let exe = cross_build(target);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sbc-cli-{target}"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = |p: &Path| p.to_str().expect("a UTF-8 path").to_string();
    let cases: [(&str, Mode, &[&str]); 3] = [
        ("lenet5", Mode::Weights(WeightDtype::F16), &[]),
        ("lenet5", Mode::Int8, &["--dtype", "int8", "--calibrate"]),
        ("resnet8", Mode::Weights(WeightDtype::F16), &[]),
    ];
    for (name, mode, options) in cases {
        let label = mode.label();
        let what = format!("{name} {label} on {target}");
        let fixture = models_dir().join(name);
        let inputs = path(&fixture.join("inputs.npy"));
        let blob = dir.join(format!("{name}-{label}.nnb"));
        let mut args = vec![
            "convert".to_string(),
            path(&fixture.join("state_dict.pth")),
            "--arch".into(),
            name.into(),
        ];
        args.extend(options.iter().map(|s| s.to_string()));
        if mode == Mode::Int8 {
            args.push(inputs.clone());
        }
        args.extend(["-o".to_string(), path(&blob)]);
        let started = Instant::now();
        nnblob_on(
            &tc,
            &exe,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let host = convert(name, mode);
        let device = std::fs::read(&blob).expect("the device's blob");
        assert!(
            device == host.bytes,
            "{what}: the blob differs from the host's"
        );

        let out = dir.join(format!("{name}-{label}-out.npy"));
        nnblob_on(
            &tc,
            &exe,
            &["run", &path(&blob), "--input", &inputs, "-o", &path(&out)],
        );
        let got = nnblob::npy::read::<f32>(&out).expect("the device's outputs");
        let model = Model::from_bytes(&host.bytes).expect("valid blob");
        let want: Vec<u32> = host
            .inputs
            .iter()
            .flat_map(|x| host_output_bits(&model, x))
            .collect();
        let got: Vec<u32> = got.data.iter().map(|v| v.to_bits()).collect();
        assert_eq!(got, want, "{what}: output bits differ from the host's");
        println!(
            "{what}: blob of {} bytes and {} outputs identical ({:.1?} for convert and run)",
            device.len(),
            got.len(),
            started.elapsed()
        );
    }
}

#[test]
#[ignore = "needs the aarch64 Linux target, its GCC and qemu-user; tests/run.sh runs it"]
fn nnblob_on_aarch64_linux_gives_the_hosts_bytes_and_bits() {
    the_cli_gives_the_hosts_bytes_and_bits("aarch64-unknown-linux-gnu");
}

#[test]
#[ignore = "needs the armv7 Linux target, its GCC and qemu-user; tests/run.sh runs it"]
fn nnblob_on_armv7_linux_gives_the_hosts_bytes_and_bits() {
    the_cli_gives_the_hosts_bytes_and_bits("armv7-unknown-linux-gnueabihf");
}
