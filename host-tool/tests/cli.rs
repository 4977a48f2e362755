//! The command line's contract: help that teaches, exit codes, one-line errors, no partial outputs.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::builders::{self, Pickle};

fn nnblob(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nnblob"))
        .args(args)
        .output()
        .unwrap()
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/checkpoints")
        .join(name)
        .display()
        .to_string()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p: PathBuf = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.display().to_string()
}

/// A torch zip whose pickle calls `posix.system` and `builtins.eval` before its (empty) state_dict.
fn malicious(dir: &Path) -> String {
    let mut p = Pickle::default();
    p.global("posix", "system").str("echo pwned").op(b"\x85R0");
    p.global("builtins", "eval").str("1").op(b"\x85R0");
    p.op(b"}");
    let bytes = builders::torch_zip("archive", &p.stop(), &[], false);
    write(dir, "evil.pth", &bytes)
}

#[test]
fn help_documents_exit_codes_and_examples() {
    let out = nnblob(&["--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for needle in [
        "inspect",
        "extract",
        "scan",
        "Exit codes",
        "0  success",
        "1  scan",
        "2  error",
    ] {
        assert!(text.contains(needle), "--help lacks {needle:?}:\n{text}");
    }
    for sub in ["inspect", "extract", "scan"] {
        let out = nnblob(&[sub, "--help"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Examples:"),
            "{sub} --help has no examples:\n{text}"
        );
    }
}

#[test]
fn scan_lists_every_refused_global_and_exits_by_the_worst_file() {
    let dir = tempfile::tempdir().unwrap();
    let evil = malicious(dir.path());
    let out = nnblob(&["scan", &evil]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("REFUSED  posix.system (archive/data.pkl byte 2)"),
        "{text}"
    );
    assert!(
        text.contains("REFUSED  builtins.eval"),
        "scan stopped at the first finding:\n{text}"
    );

    let clean = fixture("zip_default.pth");
    assert_eq!(nnblob(&["scan", &clean]).status.code(), Some(0));
    let full = nnblob(&["scan", &fixture("full_model.pt")]);
    assert_eq!(
        full.status.code(),
        Some(0),
        "inert classes are info, not findings"
    );
    assert!(String::from_utf8_lossy(&full.stdout).contains("info     __main__.FullNet"));

    let junk = write(dir.path(), "junk.bin", b"not a checkpoint at all");
    let out = nnblob(&["scan", &clean, &evil, &junk]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "unreadable is the worst verdict"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("UNREADABLE"));
}

#[test]
fn scan_json_gives_the_same_verdicts_as_one_document() {
    let dir = tempfile::tempdir().unwrap();
    let evil = malicious(dir.path());
    let clean = fixture("zip_default.pth");
    let junk = write(dir.path(), "junk.bin", b"not a checkpoint at all");
    let out = nnblob(&[
        "scan",
        &clean,
        &evil,
        &junk,
        &fixture("full_model.pt"),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["exit_code"], 2);
    let files = report["files"].as_array().unwrap();
    let status: Vec<&str> = files
        .iter()
        .map(|f| f["status"].as_str().unwrap())
        .collect();
    assert_eq!(status, ["clean", "refused", "unreadable", "clean"]);
    assert_eq!(files[1]["file"], evil.as_str());
    let refused: Vec<(&str, u64)> = files[1]["globals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["verdict"] == "refused")
        .map(|g| (g["name"].as_str().unwrap(), g["offset"].as_u64().unwrap()))
        .collect();
    assert_eq!(refused[0], ("posix.system", 2));
    assert_eq!(refused[1].0, "builtins.eval");
    assert!(files[2]["error"].is_string());
    assert!(files[3]["globals"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["name"] == "__main__.FullNet" && g["verdict"] == "info"));
}

#[test]
fn refused_files_give_one_line_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let evil = malicious(dir.path());
    let out_path = dir.path().join("out.safetensors");
    let out = nnblob(&["extract", &evil, "-o", out_path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr.trim_end(),
        format!(
            "nnblob: {evil}: refusing global posix.system at byte 2 of archive/data.pkl: not a tensor or \
             container type (its module can run code or reach the system)"
        )
    );
    assert!(!out_path.exists());
}

#[test]
fn extract_into_a_missing_directory_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("no/such/dir/out.safetensors");
    let out = nnblob(&[
        "extract",
        &fixture("zip_default.pth"),
        "-o",
        target.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("nnblob: writing ") && stderr.lines().count() == 1,
        "{stderr}"
    );
}

/// Runs `nnblob ARGS` with a pseudo-terminal as stdin, stdout and stderr, through util-linux's
/// `script`; the transcript of the terminal, or `None` where there is no `script`.
fn nnblob_on_a_terminal(args: &[&str]) -> Option<String> {
    let quote = |a: &str| format!("'{}'", a.replace('\'', r"'\''"));
    let command = std::iter::once(env!("CARGO_BIN_EXE_nnblob"))
        .chain(args.iter().copied())
        .map(quote)
        .collect::<Vec<_>>()
        .join(" ");
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    assert!(out.status.success(), "{out:?}");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn extract_and_convert_show_their_steps_on_a_terminal_only() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.safetensors");
    let args = [
        "extract",
        &fixture("zip_default.pth"),
        "-o",
        out.to_str().unwrap(),
    ];
    let piped = nnblob(&args);
    assert!(piped.status.success());
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(
        stderr.starts_with("wrote ") && stderr.lines().count() == 1,
        "{stderr}"
    );

    let Some(transcript) = nnblob_on_a_terminal(&args) else {
        eprintln!("no `script` command: the terminal half of this test is skipped");
        return;
    };
    assert!(transcript.contains("reading "), "{transcript}");
    assert!(transcript.contains("writing "), "{transcript}");
    let weights = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/models/lenet5/state_dict.pth")
        .display()
        .to_string();
    let blob = dir.path().join("l5.nnb");
    let args = [
        "convert",
        &weights,
        "--arch",
        "lenet5",
        "-o",
        blob.to_str().unwrap(),
    ];
    let transcript = nnblob_on_a_terminal(&args).unwrap();
    for step in ["reading ", "hashing ", "compiling 'lenet5'", "writing "] {
        assert!(transcript.contains(step), "no {step:?} in {transcript}");
    }
}

#[test]
fn unknown_key_names_the_keys_there_are() {
    let out = nnblob(&[
        "inspect",
        &fixture("dict_model_key.pth"),
        "--key",
        "weights",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("has no key \"weights\"") && stderr.contains("model"),
        "{stderr}"
    );
}

#[test]
fn inspect_shows_format_totals_and_classes() {
    let out = nnblob(&["inspect", &fixture("full_model.pt")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for needle in [
        "format:    torch-zip",
        "total:",
        "classes:   __main__.Block",
        "security:  full-model pickle",
    ] {
        assert!(text.contains(needle), "inspect lacks {needle:?}:\n{text}");
    }
}

/// `nnblob inspect … | head`: a reader that stops reading ends the command quietly (status 0, no
/// panic message), as other command-line tools end; the read end is closed before the command
/// writes its first line.
#[test]
fn a_closed_stdout_ends_quietly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nnblob"))
        .args(["inspect", &fixture("full_model.pt")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
