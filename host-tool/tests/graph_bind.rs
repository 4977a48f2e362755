//! Strict binding, like `load_state_dict(strict=True)`: every missing key (with the closest key the
//! checkpoint has), every unexpected key and every shape mismatch reported at once; wrapper
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
            (
                "s2_bn1.running_var".to_string(),
                Some("s1_bn1.running_var".to_string())
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
