//! Eval-mode diagnostics through the built binary: a BatchNorm never run in train mode is one
//! warning line from `inspect` and `convert` (an error with `--deny-warnings`), a trained one is
//! silent; training-only state saved next to the weights is named once as ignored; values a
//! pickle builds by calling classes (Lightning's `hyper_parameters`) are left unbuilt with a note
//! when the state_dict does not reach them, and refuse the file when it does.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::builders::{self, Pickle};
use serde_json::Value;

fn nnblob(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nnblob"))
        .args(args)
        .output()
        .unwrap()
}

fn checkpoint(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/checkpoints")
        .join(name)
        .display()
        .to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn warnings(o: &Output) -> Vec<String> {
    stderr(o)
        .lines()
        .filter(|l| l.starts_with("nnblob: warning: "))
        .map(str::to_string)
        .collect()
}

/// The BatchNorms of a fixture, by torch's state_dict keys (`<module>.running_mean`).
fn batchnorms(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(checkpoint(&format!("{name}.expected.json"))).unwrap();
    let expected: Value = serde_json::from_str(&text).unwrap();
    expected["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str()?.strip_suffix(".running_mean"))
        .map(str::to_string)
        .collect()
}

/// The fixtures' SmallCNN (tests/fixtures/make_fixtures.py) as a spec.
const SMALL_CNN: &str = "input x: [3, 6, 6]
conv1 = Conv2d(3, 4, 3, padding=1)
bn1 = BatchNorm2d(4)
conv2 = Conv2d(4, 8, 3, bias=False)
bn2 = BatchNorm2d(8)
pool = AdaptiveAvgPool2d(1)
fc = Linear(8, 5)
forward:
    x = torch.relu(self.bn1(self.conv1(x)))
    x = torch.relu(self.bn2(self.conv2(x)))
    return self.fc(self.pool(x).flatten(1))
";

#[test]
fn inspect_warns_once_per_untrained_batchnorm_and_not_for_trained_ones() {
    let fresh = checkpoint("cnn_bn_fresh.pth");
    let o = nnblob(&["inspect", &fresh]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got = warnings(&o);
    let modules = batchnorms("cnn_bn_fresh");
    assert_eq!(got.len(), modules.len(), "{got:?}");
    for (line, module) in got.iter().zip(&modules) {
        assert!(
            line.starts_with(&format!("nnblob: warning: {fresh}: BatchNorm '{module}': running statistics at their initial values (num_batches_tracked is 0)")),
            "{line}"
        );
    }
    let o = nnblob(&["inspect", &fresh, "--json"]);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["warnings"].as_array().unwrap().len(), modules.len());

    let o = nnblob(&["inspect", &fresh, "--deny-warnings"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    let last = stderr(&o).lines().last().unwrap_or_default().to_string();
    assert_eq!(
        last,
        format!(
            "nnblob: {fresh}: {} warning(s) above, refused by --deny-warnings",
            modules.len()
        )
    );

    // Trained: the same network after three batches in train mode, and a catalog checkpoint.
    let resnet8 = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/models/resnet8/state_dict.pth")
        .display()
        .to_string();
    assert_eq!(batchnorms("cnn_bn"), modules);
    for trained in [checkpoint("cnn_bn.pth"), resnet8] {
        let o = nnblob(&["inspect", &trained, "--deny-warnings"]);
        assert!(o.status.success(), "{trained}: {}", stderr(&o));
        assert!(warnings(&o).is_empty(), "{trained}: {}", stderr(&o));
    }
}

#[test]
fn convert_warns_on_an_untrained_checkpoint_and_refuses_it_with_deny_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("small_cnn.nnspec");
    std::fs::write(&spec, SMALL_CNN).unwrap();
    let out: PathBuf = dir.path().join("fresh.nnb");
    let convert = |weights: &str, extra: &[&str]| {
        let mut args = vec![
            "convert",
            weights,
            "--arch",
            spec.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        nnblob(&args)
    };
    let fresh = checkpoint("cnn_bn_fresh.pth");
    let count = batchnorms("cnn_bn_fresh").len();
    let o = convert(&fresh, &["--deny-warnings"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(warnings(&o).len(), count, "{}", stderr(&o));
    assert!(!out.exists(), "no blob after a refusal");
    let o = convert(&fresh, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(warnings(&o).len(), count, "{}", stderr(&o));
    assert!(out.is_file());
    let o = convert(&checkpoint("cnn_bn.pth"), &["--deny-warnings"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(warnings(&o).is_empty(), "{}", stderr(&o));
}

#[test]
fn training_state_next_to_the_weights_is_named_as_ignored() {
    let file = checkpoint("dict_training_state.pth");
    let o = nnblob(&["inspect", &file]);
    assert!(o.status.success(), "{}", stderr(&o));
    let notes: Vec<String> = stderr(&o)
        .lines()
        .filter(|l| l.starts_with("nnblob: note: "))
        .map(str::to_string)
        .collect();
    assert_eq!(
        notes,
        [format!(
            "nnblob: note: {file}: the weights are under 'model'; ignored the training-only state next to them: 'optimizer' (optimizer state), 'scaler' (gradient scaler), 'scheduler' (learning-rate scheduler)"
        )]
    );
    assert!(warnings(&o).is_empty(), "trained weights: {}", stderr(&o));
    let o = nnblob(&["inspect", &file, "--json"]);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let ignored: Vec<&str> = report["ignored"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert_eq!(ignored, ["optimizer", "scaler", "scheduler"]);
    // A plain state_dict has nothing to ignore.
    let o = nnblob(&["inspect", &checkpoint("cnn_bn.pth")]);
    assert!(!stderr(&o).contains("note:"), "{}", stderr(&o));
}

#[test]
fn hyper_parameters_calling_classes_are_skipped_with_a_note_but_refused_in_the_state_dict() {
    let file = checkpoint("lightning_hparams.ckpt");
    let o = nnblob(&["inspect", &file, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let notes: Vec<&str> = std::str::from_utf8(&o.stderr)
        .unwrap()
        .lines()
        .filter(|l| l.contains("skipped the values"))
        .collect();
    assert_eq!(notes.len(), 1, "{}", stderr(&o));
    assert!(
        notes[0].starts_with(&format!(
            "nnblob: note: {file}: skipped the values in 'hyper_parameters' (outside the state_dict) that call "
        )),
        "{}",
        notes[0]
    );
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut called: Vec<&str> = report["skipped"]["globals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    called.sort();
    assert_eq!(
        called,
        [
            "__main__.Mode",
            "collections.defaultdict",
            "pathlib.PurePosixPath"
        ]
    );
    assert_eq!(
        report["skipped"]["keys"],
        serde_json::json!(["hyper_parameters"])
    );
    // The audit still lists the calls as refused: torch.load(weights_only=True) refuses them too.
    let o = nnblob(&["scan", &file]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));

    // A state_dict that is itself such a value (a defaultdict of tensors) is refused, naming it.
    let dir = tempfile::tempdir().unwrap();
    let mut p = Pickle::default();
    p.op(b"}").mark().str("state_dict");
    p.global("collections", "defaultdict")
        .global("builtins", "list")
        .op(b"\x85R");
    p.mark()
        .str("w")
        .tensor("FloatStorage", "0", 1, 0, &[1], &[1])
        .op(b"u");
    p.op(b"u");
    let bytes = builders::torch_zip("archive", &p.stop(), &[("0".into(), vec![0; 4])], false);
    let path = dir.path().join("defaultdict_state_dict.pth");
    std::fs::write(&path, bytes).unwrap();
    let o = nnblob(&["inspect", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("refusing global collections.defaultdict at byte")
            && err.contains("never be called"),
        "{err}"
    );
}
