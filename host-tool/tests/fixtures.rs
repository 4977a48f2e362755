//! Every fixture under `tests/fixtures/checkpoints/` (made by torch through `make_fixtures.py`), table
//! driven by the folder's contents: each valid file must give exactly the tensors torch gave (names,
//! order, dtype, shape, bytes), through the library and through `nnblob extract`; each hostile file must
//! be refused with the kind of error its `.expected.json` names, by the library and by the CLI (one
//! `nnblob:` line, exit 2, no output file).

use std::path::{Path, PathBuf};
use std::process::Command;

use nnblob::checkpoint::{self, Options};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/checkpoints")
}

/// `(checkpoint file, expected json)` for every `<name>.expected.json` in `dir`.
fn cases(dir: &Path) -> Vec<(PathBuf, Value)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
    paths.sort();
    for p in &paths {
        let file = p.file_name().unwrap().to_str().unwrap();
        let Some(stem) = file.strip_suffix(".expected.json") else {
            continue;
        };
        let target = paths
            .iter()
            .find(|q| {
                let n = q.file_name().unwrap().to_str().unwrap();
                n.strip_prefix(stem)
                    .is_some_and(|rest| rest.starts_with('.') && !rest.starts_with(".expected."))
            })
            .unwrap_or_else(|| panic!("no checkpoint file for {file}"))
            .clone();
        let json: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        out.push((target, json));
    }
    out
}

fn options_for(expected: &Value) -> Options {
    let key = expected["key"]
        .as_str()
        .filter(|_| expected["auto_key"] != Value::Bool(true));
    Options {
        key: key.map(str::to_owned),
    }
}

fn expected_tensors(file: &Path) -> Vec<u8> {
    let name = file.file_name().unwrap().to_str().unwrap();
    let stem = &name[..name.find('.').unwrap()];
    std::fs::read(file.with_file_name(format!("{stem}.expected.safetensors"))).unwrap()
}

#[test]
fn valid_fixtures_give_torchs_tensors_bit_for_bit() {
    let cases = cases(&fixtures());
    assert!(
        cases.len() >= 20,
        "expected the fixture set, found {} files",
        cases.len()
    );
    for (file, exp) in cases {
        let what = file.display().to_string();
        let ckpt =
            checkpoint::open(&file, &options_for(&exp)).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(ckpt.format.as_str(), exp["format"], "{what}: format");
        assert_eq!(
            ckpt.container.as_str(),
            exp["container"],
            "{what}: container"
        );
        assert_eq!(
            ckpt.key.as_deref(),
            exp["key"].as_str(),
            "{what}: selected key"
        );
        assert_eq!(
            if ckpt.big_endian { "big" } else { "little" },
            exp["byteorder"],
            "{what}: byte order"
        );
        let classes: Vec<&str> = exp["classes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert_eq!(ckpt.classes, classes, "{what}: classes");
        let mut globals: Vec<&str> = ckpt.globals.iter().map(|g| g.name.as_str()).collect();
        globals.sort();
        globals.dedup();
        let expected_globals: Vec<&str> = exp["globals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert_eq!(globals, expected_globals, "{what}: globals");

        let reference_bytes = expected_tensors(&file);
        let reference = safetensors::SafeTensors::deserialize(&reference_bytes).unwrap();
        let tensors = exp["tensors"].as_array().unwrap();
        assert_eq!(ckpt.tensors.len(), tensors.len(), "{what}: tensor count");
        assert_eq!(
            ckpt.tensors.len(),
            reference.len(),
            "{what}: tensor count (safetensors)"
        );
        for (t, e) in ckpt.tensors.iter().zip(tensors) {
            let at = format!("{what}: tensor {}", t.name);
            assert_eq!(t.name, e["name"], "{what}: order");
            assert_eq!(t.dtype.code(), e["dtype"], "{at}: dtype");
            let shape: Vec<usize> = e["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(t.shape, shape, "{at}: shape");
            if let Some(c) = e.get("contiguous") {
                assert_eq!(Value::Bool(t.contiguous), *c, "{at}: contiguous");
            }
            let r = reference.tensor(&t.name).unwrap();
            assert_eq!(
                t.dtype.to_safetensors(),
                r.dtype(),
                "{at}: dtype vs safetensors"
            );
            assert_eq!(t.shape, r.shape(), "{at}: shape vs safetensors");
            assert!(t.bytes() == r.data(), "{at}: bytes differ from torch's");
            assert_eq!(t.to_f32().len(), t.numel(), "{at}: to_f32 length");
        }
    }
}

#[test]
fn extract_writes_torchs_tensors_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    for (file, exp) in cases(&fixtures()) {
        let what = file.display().to_string();
        let out = dir.path().join("out.safetensors");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nnblob"));
        cmd.arg("extract").arg(&file).arg("-o").arg(&out);
        if let Some(k) = options_for(&exp).key {
            cmd.arg("--key").arg(k);
        }
        let run = cmd.output().unwrap();
        assert!(
            run.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let got_bytes = std::fs::read(&out).unwrap();
        let got = safetensors::SafeTensors::deserialize(&got_bytes).unwrap();
        let reference_bytes = expected_tensors(&file);
        let reference = safetensors::SafeTensors::deserialize(&reference_bytes).unwrap();
        let mut names: Vec<String> = got.names().into_iter().cloned().collect();
        let mut expected_names: Vec<String> = reference.names().into_iter().cloned().collect();
        names.sort();
        expected_names.sort();
        assert_eq!(names, expected_names, "{what}: names");
        for name in &names {
            let (g, r) = (got.tensor(name).unwrap(), reference.tensor(name).unwrap());
            assert_eq!(g.dtype(), r.dtype(), "{what}: {name} dtype");
            assert_eq!(g.shape(), r.shape(), "{what}: {name} shape");
            assert!(g.data() == r.data(), "{what}: {name} bytes");
        }
    }
}

#[test]
fn inspect_json_names_format_and_tensors() {
    for (file, exp) in cases(&fixtures()) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nnblob"));
        cmd.arg("inspect").arg(&file).arg("--json");
        if let Some(k) = options_for(&exp).key {
            cmd.arg("--key").arg(k);
        }
        let run = cmd.output().unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let doc: Value = serde_json::from_slice(&run.stdout).unwrap();
        assert_eq!(doc["format"], exp["format"]);
        let names: Vec<&Value> = doc["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| &t["name"])
            .collect();
        let expected: Vec<&Value> = exp["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| &t["name"])
            .collect();
        assert_eq!(names, expected, "{}", file.display());
    }
}

/// Check the details a hostile fixture's `.expected.json` gives against the error.
fn check_details(what: &str, err: &checkpoint::Error, exp: &Value) {
    use checkpoint::Error as E;
    let msg = err.to_string();
    match err {
        E::RefusedGlobal {
            global,
            offset,
            entry,
            ..
        } => {
            assert_eq!(global, exp["global"].as_str().unwrap(), "{what}: global");
            assert_eq!(*offset, exp["offset"].as_u64().unwrap(), "{what}: offset");
            if let Some(e) = exp["entry"].as_str() {
                assert_eq!(entry, e, "{what}: entry");
            }
        }
        E::BadZipEntry { problem, name, .. } => {
            assert_eq!(
                problem.to_string(),
                exp["problem"].as_str().unwrap(),
                "{what}: problem"
            );
            if let Some(n) = exp["name"].as_str() {
                assert_eq!(name, n, "{what}: name");
            }
        }
        E::UnsupportedDtype { dtype, .. } => {
            assert_eq!(dtype, exp["dtype"].as_str().unwrap(), "{what}: dtype");
        }
        E::StorageTooSmall {
            tensor,
            storage_key,
            needed_bytes,
            storage_bytes,
        } => {
            for (field, got) in [
                ("tensor", tensor.clone()),
                ("storage_key", storage_key.clone()),
            ] {
                if let Some(e) = exp[field].as_str() {
                    assert_eq!(got, e, "{what}: {field}");
                }
            }
            for (field, got) in [
                ("needed_bytes", *needed_bytes),
                ("storage_bytes", *storage_bytes),
            ] {
                if let Some(e) = exp[field].as_u64() {
                    assert_eq!(got, e, "{what}: {field}");
                }
            }
        }
        E::ZipBomb { declared_size, .. } => {
            if let Some(d) = exp["declared_size"].as_u64() {
                assert_eq!(*declared_size, d, "{what}: declared size");
            }
        }
        _ => {}
    }
    assert!(
        !msg.contains('\n'),
        "{what}: the message is one line: {msg}"
    );
}

fn hostile_cases() -> Vec<(PathBuf, Value)> {
    let cases = cases(&fixtures().join("hostile"));
    assert!(
        cases.len() >= 40,
        "expected the hostile fixture set, found {} files",
        cases.len()
    );
    cases
}

#[test]
fn hostile_fixtures_are_refused_with_the_expected_error() {
    for (file, exp) in hostile_cases() {
        let what = file.display().to_string();
        let err = match checkpoint::open(&file, &Options::default()) {
            Ok(c) => panic!(
                "{what}: accepted ({} tensors), expected {}",
                c.tensors.len(),
                exp["expect"]
            ),
            Err(e) => e,
        };
        assert_eq!(err.kind(), exp["expect"].as_str().unwrap(), "{what}: {err}");
        check_details(&what, &err, &exp);
    }
}

#[test]
fn hostile_fixtures_fail_the_cli_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    for (file, exp) in hostile_cases() {
        let what = file.display().to_string();
        let out = dir.path().join("out.safetensors");
        let run = Command::new(env!("CARGO_BIN_EXE_nnblob"))
            .arg("extract")
            .arg(&file)
            .arg("-o")
            .arg(&out)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{what}: {stderr}");
        assert!(
            stderr.starts_with("nnblob: ") && stderr.lines().count() == 1,
            "{what}: {stderr}"
        );
        assert!(!out.exists(), "{what}: an output file was written");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "{what}: a temporary file was left"
        );

        let scan = Command::new(env!("CARGO_BIN_EXE_nnblob"))
            .arg("scan")
            .arg(&file)
            .output()
            .unwrap();
        let code = scan.status.code();
        if exp["expect"] == "refused-global" {
            assert_eq!(code, Some(1), "{what}: scan exit");
            let stdout = String::from_utf8_lossy(&scan.stdout);
            for g in exp["refused_globals"].as_array().into_iter().flatten() {
                let line = format!("REFUSED  {}", g.as_str().unwrap());
                assert!(
                    stdout.contains(&line),
                    "{what}: scan does not list {line}:\n{stdout}"
                );
            }
        } else {
            assert!(matches!(code, Some(0..=2)), "{what}: scan exit {code:?}");
        }
    }
}
