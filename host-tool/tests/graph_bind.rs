//! Strict binding, like `load_state_dict(strict=True)`: every missing key (with the closest key the
//! checkpoint has; one line for keys missing under a prefix the checkpoint spells otherwise), every
//! unexpected key and every shape mismatch reported at once; wrapper
//! prefixes stripped; `num_batches_tracked` ignored; a module called twice shares its weights.

use nnblob::graph::bind::expected_keys;
use nnblob::graph::{bind, catalog, parse_spec, StateDict, Tensor};

fn resnet8_state_dict() -> StateDict {
    let g = catalog::graph("resnet8").unwrap();
    let mut sd: StateDict = expected_keys(&g)
        .into_iter()
        .map(|(k, s)| (k, Tensor::zeros(s)))
        .collect();
    sd.insert("bn1.num_batches_tracked".into(), Tensor::zeros(vec![]));
    sd
}

#[test]
fn exact_keys_bind_and_num_batches_tracked_is_ignored() {
    let g = bind(catalog::graph("resnet8").unwrap(), resnet8_state_dict()).unwrap();
    assert!(g.is_bound());
    g.check().unwrap();
}

#[test]
fn all_findings_are_reported_at_once_pytorch_style() {
    let mut sd = resnet8_state_dict();
    let w = sd.remove("fc.weight").unwrap();
    sd.insert("fc.weights".into(), w);
    sd.remove("s2_bn1.running_var");
    sd.insert("conv1.weight".into(), Tensor::zeros(vec![16, 3, 5, 5]));
    sd.insert("head.bias".into(), Tensor::zeros(vec![10]));
    let err = bind(catalog::graph("resnet8").unwrap(), sd).unwrap_err();
    assert_eq!(
        err.missing,
        [
            // Of the keys one component away, the nearest component (bn2 for bn1).
            (
                "s2_bn1.running_var".to_string(),
                Some("s2_bn2.running_var".to_string())
            ),
            ("fc.weight".to_string(), Some("fc.weights".to_string())),
        ]
    );
    assert_eq!(err.unexpected, ["fc.weights", "head.bias"]);
    assert_eq!(
        err.mismatched,
        [(
            "conv1.weight".to_string(),
            vec![16, 3, 5, 5],
            vec![16, 3, 3, 3]
        )]
    );
    let text = err.to_string();
    for line in [
        "Error(s) in loading state_dict for resnet8:",
        "Missing key(s) in state_dict:",
        "\"fc.weight\" (closest in the checkpoint: \"fc.weights\")",
        "Unexpected key(s) in state_dict:",
        "size mismatch for conv1.weight: copying a param with shape [16, 3, 5, 5] from checkpoint, the shape in current model is [16, 3, 3, 3].",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
}

#[test]
fn wrapper_prefixes_are_stripped_when_that_makes_keys_match() {
    for prefix in ["module.", "_orig_mod.", "model.", "module._orig_mod."] {
        let sd: StateDict = resnet8_state_dict()
            .into_iter()
            .map(|(k, t)| (format!("{prefix}{k}"), t))
            .collect();
        bind(catalog::graph("resnet8").unwrap(), sd).unwrap_or_else(|e| panic!("{prefix}: {e}"));
    }
    // A spec whose own module is called `model`: its keys already match and are left alone.
    let g = parse_spec(
        "input x: [4]\nmodel.fc = Linear(4, 2)\nforward:\n    return model.fc(x)\n",
        "s",
        "s",
    )
    .unwrap();
    let sd: StateDict = [("model.fc.weight", vec![2, 4]), ("model.fc.bias", vec![2])]
        .into_iter()
        .map(|(k, s)| (k.to_string(), Tensor::zeros(s)))
        .collect();
    bind(g, sd).unwrap();
}

#[test]
fn a_module_called_twice_binds_once_and_shares_its_weights() {
    let g = parse_spec(
        "input x: [4]\nfc = Linear(4, 4)\nforward:\n    return fc(relu(fc(x)))\n",
        "s",
        "s",
    )
    .unwrap();
    assert_eq!(expected_keys(&g).len(), 2);
    let sd: StateDict = [("fc.weight", vec![4, 4]), ("fc.bias", vec![4])]
        .into_iter()
        .map(|(k, s)| (k.to_string(), Tensor::zeros(s)))
        .collect();
    let g = bind(g, sd).unwrap();
    assert_eq!(g.nodes[0].params, g.nodes[2].params);
    assert_eq!(g.nodes[2].name, "fc#2");
    let s = nnblob::graph::summarize(&g);
    assert_eq!(s.total_params, 20);
}

#[test]
fn keys_missing_under_one_prefix_spelled_otherwise_are_said_once() {
    // The spec says `s1_conv1`; the checkpoint, written by a model with `self.stack1 = Block()`,
    // says `stack1.conv1`.
    let sd: StateDict = resnet8_state_dict()
        .into_iter()
        .map(|(k, t)| {
            let k = ["s1_", "s2_", "s3_"]
                .iter()
                .find_map(|p| {
                    k.strip_prefix(p)
                        .map(|rest| format!("stack{}.{rest}", &p[1..2]))
                })
                .unwrap_or(k);
            (k, t)
        })
        .collect();
    let err = bind(catalog::graph("resnet8").unwrap(), sd).unwrap_err();
    let closest = |key: &str| {
        err.missing
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, c)| c.clone())
    };
    assert_eq!(
        closest("s1_conv1.weight").as_deref(),
        Some("stack1.conv1.weight")
    );
    assert_eq!(
        closest("s2_shortcut.bias").as_deref(),
        Some("stack2.shortcut.bias")
    );
    let renamed: Vec<(&str, &str, bool)> = err
        .renamed
        .iter()
        .map(|r| (r.expected.as_str(), r.found.as_str(), r.all))
        .collect();
    assert_eq!(
        renamed,
        [
            ("s1_", "stack1.", true),
            ("s2_", "stack2.", true),
            ("s3_", "stack3.", true)
        ]
    );
    let text = err.to_string();
    assert!(
        text.contains("\n    every key under 's1_' is missing; the checkpoint has them under 'stack1.' (\"stack1.conv1.weight\" for \"s1_conv1.weight\"): rename the modules in the spec, or the keys"),
        "{text}"
    );
    // The keys a prefix line explains carry no hint of their own.
    assert!(text.contains("\n        \"s1_conv1.weight\"\n"), "{text}");
    assert_eq!(text.matches("every key under").count(), 3, "{text}");
}
