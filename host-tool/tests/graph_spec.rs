//! The spec language: what parses into which ops, and the precise error for each kind of mistake
//! (file:line:column and what was expected).

use nnblob::graph::ops::{Conv, Padding};
use nnblob::graph::{parse_spec, Op};

fn err(spec: &str) -> String {
    parse_spec(spec, "net.nnspec", "net")
        .expect_err("the spec should be refused")
        .to_string()
}

fn conv_of(spec: &str) -> Conv {
    let g = parse_spec(spec, "net.nnspec", "net").unwrap_or_else(|e| panic!("{e}"));
    match &g.nodes[0].op {
        Op::Conv(c) => c.clone(),
        op => panic!("expected a convolution, got {op:?}"),
    }
}

#[test]
fn torch_style_prefixes_and_defaults() {
    let g = parse_spec(
        "input x: [3, 8, 8]\nself.conv = nn.Conv2d(3, 4, kernel_size=3)\nforward:\n    y = F.relu(self.conv(x))\n    return torch.flatten(y, 1)\n",
        "net.nnspec",
        "net",
    )
    .unwrap();
    let kinds: Vec<String> = g.nodes.iter().map(|n| n.op.kind()).collect();
    assert_eq!(kinds, ["Conv2d", "ReLU", "Flatten"]);
    assert_eq!(g.shape(g.outputs[0]), [1, 4 * 6 * 6]);
    assert_eq!(g.nodes[0].module.as_deref(), Some("conv"));
    assert_eq!(g.nodes[1].name, "relu_1");
}

#[test]
fn padding_forms() {
    let c = conv_of("input x: [2, 9, 9]\nc = Conv2d(2, 2, (4, 3), padding='same', dilation=(1, 2))\nforward:\n    return c(x)\n");
    // PyTorch's 'same': total d*(k-1), the smaller half first.
    assert_eq!(
        c.padding,
        Padding {
            top: 1,
            bottom: 2,
            left: 2,
            right: 2
        }
    );
    let c = conv_of("input x: [2, 9, 9]\nc = Conv2d(2, 2, 3, padding=(0, 1, 2, 3))\nforward:\n    return c(x)\n");
    assert_eq!(
        c.padding,
        Padding {
            left: 0,
            right: 1,
            top: 2,
            bottom: 3
        }
    );
    let c = conv_of("input x: [2, 9, 9]\nc = Conv2d(2, 2, 3, padding='valid', groups=2, bias=False)\nforward:\n    return c(x)\n");
    assert_eq!(
        (c.padding, c.groups, c.bias),
        (Padding::default(), 2, false)
    );
    assert!(err("input x: [2, 9, 9]\nc = Conv2d(2, 2, 3, stride=2, padding='same')\nforward:\n    return c(x)\n")
        .contains("not supported for strided convolutions"));
}

#[test]
fn several_inputs_and_outputs_and_method_calls() {
    let g = parse_spec(
        "input a: [4, 5, 5]\ninput b: [2, 5, 5]\nforward:\n    x = cat([a, b], dim=1)\n    return x.flatten(1), a * b[0:0] if False else a\n",
        "net.nnspec",
        "net",
    );
    // Python's conditional expressions are not part of the language.
    assert!(g.is_err());
    let g = parse_spec(
        "input a: [4, 5, 5]\ninput b: [1, 5, 5]\nforward:\n    x = cat([a, b], dim=1)\n    return x.flatten(1), a * b\n",
        "net.nnspec",
        "net",
    )
    .unwrap();
    assert_eq!(g.inputs.len(), 2);
    assert_eq!(g.shape(g.outputs[0]), [1, 125]);
    assert_eq!(g.shape(g.outputs[1]), [1, 4, 5, 5]);
}

#[test]
fn errors_say_where_and_what() {
    let cases: &[(&str, &str)] = &[
        ("input x: [3, 8, 8]\nc = Conv2d(3, 4, 3\nforward:\n    return c(x)\n", "net.nnspec:3:1: expected ',' or ')' in the argument list, found name 'forward'"),
        ("input x: [3, 8, 8]\nc = Conv2d(3, 4, 3, strid=2)\nforward:\n    return c(x)\n", "net.nnspec:2:5: module 'c': Conv2d() got an unexpected keyword argument 'strid'"),
        ("input x: [3, 8, 8]\nc = Conv2d(3, 4)\nforward:\n    return c(x)\n", "net.nnspec:2:5: module 'c': Conv2d() is missing the required argument 'kernel_size'"),
        ("input x: [3, 8, 8]\nc = Conv2D(3, 4, 3)\nforward:\n    return c(x)\n", "net.nnspec:2:5: unknown module 'Conv2D'"),
        ("input x: [3, 8, 8]\nc = Conv2d(4, 4, 3)\nforward:\n    return c(x)\n", "net.nnspec:4:12: layer 'c' (Conv2d): expects 4 input channels, got 3"),
        ("input x: [3, 8, 8]\nconv1 = Conv2d(3, 4, 3)\nforward:\n    return conv2(x)\n", "net.nnspec:4:12: unknown module or function 'conv2' (did you mean 'conv1'?)"),
        ("input x: [3, 8, 8]\nforward:\n    return relu(y)\n", "net.nnspec:3:17: unknown value 'y'"),
        ("input x: [3, 8, 8]\nc = Conv2d(3, 4, 3)\nd = Conv2d(4, 4, 3)\nforward:\n    return c(x)\n", "net.nnspec:3:1: module 'd' is declared but never called in forward"),
        ("input x: [3, 8, 8]\nforward:\n    y = relu(x)\n", "net.nnspec:1:1: the spec has no `forward:` section ending in `return ...`"),
        ("c = Linear(3, 4)\nforward:\n    return c(x)\n", "net.nnspec:3:14: unknown value 'x'"),
        ("input x: [3, 8, 8]\nforward:\n    return x + flatten(x, 1)\n", "layer 'add_1' (add): cannot broadcast [1, 3, 8, 8] with [1, 192]"),
        ("input x: [3, 8, 8]\nforward:\n    return x $ x\n", "net.nnspec:3:14: unexpected character '$'"),
        ("input x: [3, 8, 8]\nb = BatchNorm2d(3, eps=0)\nforward:\n    return b(x)\n", "argument 'eps' must be a positive number, got 0"),
        ("input x: [3, -8, 8]\nforward:\n    return x\n", "net.nnspec:1:14: expected a dimension (a positive integer), found '-'"),
        ("input x: [3, 8, 8]\nl = Linear(3, 4)\nforward:\n    return l(x)\n", "layer 'l' (Linear): expects 3 input features in the last axis, got input shape [1, 3, 8, 8] (flatten first?)"),
        ("input x: [3, 8, 8]\np = MaxPool2d(2, return_indices=True)\nforward:\n    return p(x)\n", "return_indices=True is not supported"),
        ("input x: [3, 8, 8]\nforward:\n    return softmax(x)\n", "argument 'dim' must be an integer"),
        ("input x: [3, 8, 8]\nforward:\n    a, b = x.size(0), x\n    c, d = x.shape\n    return a\n", "net.nnspec:4:12: too many values to unpack (expected 2, got 4)"),
        ("input x: [3, 8, 8]\nforward:\n    a, b, c = x.shape[2:]\n    return x\n", "net.nnspec:3:15: not enough values to unpack (expected 3, got 2)"),
        ("input x: [3, 8, 8]\nforward:\n    return x[:, 0, 0, 0, 0]\n", "net.nnspec:3:12: too many indices for a tensor of dimension 4 (shape [1, 3, 8, 8])"),
        ("input x: [3, 8, 8]\nforward:\n    return x[1]\n", "net.nnspec:3:12: index 1 is out of bounds for dimension 0 with size 1"),
        ("input x: [3, 8, 8]\nforward:\n    return x[..., ...]\n", "an index can only have a single ellipsis ('...')"),
        ("input x: [3, 8, 8]\nforward:\n    return x[:, ::0]\n", "slice step cannot be zero"),
        ("input x: [3, 8, 8]\nforward:\n    return x[:, 5:]\n", "the slice 3:3:1 of dimension 1 (size 3) is empty"),
        ("input x: [3, 8, 8]\nforward:\n    return x.permute(0, 2, 1)\n", "layer 'permute_1' (Permute): 3 dims given for a 4-d input"),
        ("input x: [3, 8, 8]\nforward:\n    return x.view(x.size(0), 7, -1)\n", "shape [1, 7, -1] is invalid for an input of 192 elements"),
        ("input x: [3, 8, 8]\nforward:\n    return x.size(0)\n", "net.nnspec:3:12: expected a tensor"),
        ("input x: [3, 8, 8]\nforward:\n    return x.premute(0, 2, 3, 1)\n", "net.nnspec:3:12: unknown method 'x.premute' (did you mean 'permute'?)"),
        ("input x: [3, 8, 8]\nforward:\n    return x.shape.relu()\n", "'relu' is called on a tensor here"),
        ("input x: [3, 8, 8]\nforward:\n    return x.stride\n", "a tensor's attribute 'stride' is not supported"),
        ("input x: [3, 8, 8]\nforward:\n    return x / x\n", "'/' is supported between two integers ('/' as '//')"),
        ("input x: [3, 8, 8]\nforward:\n    return 2 / x\n", "'/' is supported between two integers"),
        ("input x: [3, 8, 8]\nforward:\n    return x / 0\n", "division by zero"),
        ("input x: [3, 8, 8]\nforward:\n    return x - x\n", "'-' is supported between two integers ('/' as '//'), between two tensors for '+', '*' and '@'"),
        ("input x: [3, 8, 8]\nforward:\n    return x.view(x.size(1) // 0, -1)\n", "integer division by zero"),
        ("input x: [3, 8, 8]\nforward:\n    return x.mean()\n", "mean(): give the axes (dim=...)"),
        ("input x: [3, 8, 8]\nforward:\n    return x.split([1, 1], dim=1)[0]\n", "split(): the sizes [1, 1] must be positive and sum exactly to 3"),
        ("input x: [100000000]\nforward:\n    return x.chunk(100000000, dim=1)[0]\n", "net.nnspec:3:12: 100000000 pieces; at most 4096 (each is a layer)"),
        ("input x: [100000000]\nforward:\n    return x.split(1, dim=-1)[0]\n", "100000000 pieces; at most 4096"),
        ("input x: [3, 8, 8]\nlayers.0 = Conv2d(3, 3, 1)\nforward:\n    return self.layers[1](x)\n", "net.nnspec:4:12: unknown module 'layers.1' (did you mean 'layers.0'?)"),
    ];
    for (spec, want) in cases {
        let got = err(spec);
        assert!(
            got.contains(want),
            "for spec:\n{spec}\nwanted: {want}\n   got: {got}"
        );
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    // Each would recurse once per level in the parser, the evaluator and the tree's drop.
    let n = 100_000;
    let cases = [
        format!("{}x{}", "(".repeat(n), ")".repeat(n)),
        format!("{}x", "-".repeat(n)),
        format!("x{}", " + x".repeat(n)),
        format!("x{}", " * x".repeat(n)),
        format!("{}x{}", "relu(".repeat(n), ")".repeat(n)),
        format!("x{}", ".relu()".repeat(n)),
        format!("x{}", "[0]".repeat(n)),
    ];
    for body in cases {
        let e = err(&format!("input x: [4]\nforward:\n    return {body}\n"));
        assert!(e.starts_with("net.nnspec:3:"), "{e}");
        assert!(e.contains("nested more than 100 deep"), "{e}");
    }
    // A deep but reasonable expression still parses: 30 nested calls and a 30-term sum.
    let calls = format!("{}x{}", "relu(".repeat(30), ")".repeat(30));
    let g = parse_spec(
        &format!("input x: [4]\nforward:\n    return {calls}\n"),
        "net.nnspec",
        "net",
    )
    .unwrap();
    assert_eq!(g.nodes.len(), 30);
    let sum = format!("x{}", " + x".repeat(29));
    let g = parse_spec(
        &format!("input x: [4]\nforward:\n    return {sum}\n"),
        "net.nnspec",
        "net",
    )
    .unwrap();
    assert_eq!(g.nodes.len(), 29);
}

#[test]
fn sizes_past_the_format_are_errors_not_overflows() {
    let big = i64::MAX;
    let cases = [
        // (spec, line, what the message says)
        (format!("input x: [{big}, {big}]\nforward:\n    return x\n"), 1, "more than 4294967295 elements"),
        (
            format!("input x: [4]\nfc = Linear(4, {big})\nforward:\n    return fc(x)\n"),
            2,
            "parameter 'weight'",
        ),
        (
            format!("input x: [4]\nforward:\n    return reshape(x, [{big}, {big}, 4])\n"),
            3,
            "is invalid for an input of 4 elements",
        ),
        (
            format!("input x: [1, 4, 4]\nforward:\n    return max_pool2d(x, 3, dilation={big})\n"),
            3,
            "does not fit the input",
        ),
        (
            format!("input x: [1, 4, 4]\nforward:\n    return pad(x, ({big}, {big}, 0, 0))\n"),
            3,
            "too large",
        ),
        (
            format!("input x: [1, 4, 4]\nc = Conv2d(1, 1, 3, padding=({big}, {big}, 1, 1))\nforward:\n    return c(x)\n"),
            4,
            "",
        ),
        (
            "input x: [65536, 32768]\nforward:\n    return cat([x, x], dim=1)\n".to_string(),
            3,
            "more than 4294967295 elements",
        ),
    ];
    for (spec, line, says) in cases {
        let e = err(&spec);
        assert!(e.starts_with(&format!("net.nnspec:{line}:")), "{e}\n{spec}");
        assert!(e.contains(says), "{e}\n{spec}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
}

#[test]
fn pasted_forward_forms_become_these_ops() {
    let g = parse_spec(
        "input x: [4, 6, 1]\nforward:\n    b, c, h, w = x.size()\n    y = x.permute(0, 3, 2, 1).contiguous().reshape(-1, c)\n    z = x[:, None].squeeze(1).transpose(-1, -2).flatten(1).unsqueeze(-1)\n    return y, z, x[0, ..., -1], x.mean(dim=(-1, -2), keepdim=True)\n",
        "net.nnspec",
        "net",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let kinds: Vec<String> = g.nodes.iter().map(|n| n.op.kind()).collect();
    assert_eq!(
        kinds,
        [
            // y: permute, (contiguous: nothing), reshape
            "Permute",
            "Reshape",
            // z: x[:, None], squeeze(1), transpose, flatten, unsqueeze
            "Reshape",
            "Reshape",
            "Permute",
            "Flatten",
            "Reshape",
            // x[0, ..., -1]: both axes have one element, so no slice, one reshape
            "Reshape",
            // mean over the two spatial axes of a 4-d tensor, kept: one global pool
            "AdaptiveAvgPool2d",
        ]
    );
    let shapes: Vec<&[usize]> = g.outputs.iter().map(|&v| g.shape(v)).collect();
    assert_eq!(shapes, [&[6, 4][..], &[1, 24, 1], &[4, 6], &[1, 4, 1, 1]]);
    let names: Vec<&str> = g
        .outputs
        .iter()
        .map(|&v| g.values[v].name.as_str())
        .collect();
    assert_eq!(names, ["y", "z", "getitem_2", "mean_1"]);
}

#[test]
fn return_names_never_take_an_input_name_or_another_value_name() {
    // `x` is the input's name and `fc` the name of the linear layer's value: those outputs keep
    // their layers' names; `y` is free, and the linear layer's value takes it.
    let g = parse_spec(
        "input x: [4]\nfc = Linear(4, 4)\nforward:\n    y = fc(x)\n    x = relu(y)\n    fc = relu(x)\n    return x, fc, y\n",
        "net.nnspec",
        "net",
    )
    .unwrap();
    let names: Vec<&str> = g
        .outputs
        .iter()
        .map(|&v| g.values[v].name.as_str())
        .collect();
    assert_eq!(names, ["relu_1", "relu_2", "y"]);
}

#[test]
fn taking_part_of_an_axis_is_a_slice_per_axis_then_a_reshape() {
    use nnblob::graph::ops::Slice;
    let slices = |body: &str| {
        let g = parse_spec(
            &format!("input x: [3, 8, 8]\nforward:\n    return {body}\n"),
            "net.nnspec",
            "net",
        )
        .unwrap_or_else(|e| panic!("{body}: {e}"));
        let kinds: Vec<String> = g.nodes.iter().map(|n| n.op.kind()).collect();
        let found: Vec<Slice> = g
            .nodes
            .iter()
            .filter_map(|n| match &n.op {
                Op::Slice(s) => Some(s.clone()),
                _ => None,
            })
            .collect();
        (found, kinds, g.shape(g.outputs[0]).to_vec())
    };
    let s = |dim, start, end, step| Slice {
        dim,
        start,
        end,
        step,
    };
    // Bounds resolved as Python does: negative from the end, clipped to the axis.
    let (found, kinds, shape) = slices("x[:, :2, -3:, 1:100:3]");
    assert_eq!(found, [s(1, 0, 2, 1), s(2, 5, 8, 1), s(3, 1, 8, 3)]);
    assert_eq!((kinds.len(), shape), (3, vec![1, 2, 3, 3]));
    // An integer index is a slice of one element, then a reshape that drops the axis.
    let (found, kinds, shape) = slices("x[:, -1]");
    assert_eq!(found, [s(1, 2, 3, 1)]);
    assert_eq!(
        (kinds, shape),
        (vec!["slice".into(), "Reshape".into()], vec![1, 8, 8])
    );
    // chunk: pieces of ceil(8 / 3) = 3, the last one smaller; split by sizes.
    assert_eq!(slices("x.chunk(3, dim=2)[2]").0, [s(2, 6, 8, 1)]);
    assert_eq!(
        slices("torch.split(x, [1, 2], dim=1)[1]").0,
        [s(1, 1, 3, 1)]
    );
    assert_eq!(slices("x.split(2, dim=-1)[3]").0, [s(3, 6, 8, 1)]);
    // The whole axis is no slice at all.
    let g = parse_spec(
        "input x: [3, 8, 8]\nforward:\n    a = x.chunk(1, dim=1)[0]\n    return x[:, :3], a, x[:, -5:]\n",
        "net.nnspec",
        "net",
    )
    .unwrap();
    assert!(g.nodes.is_empty(), "{g}");
}

/// A '-' joins a dotted name only between two digits (torchvision RegNet's `block1-0`), so
/// `x.ndim-1` stays an integer subtraction.
#[test]
fn a_dash_joins_a_name_only_between_digits() {
    let spec = "input x: [4, 6]\ntrunk.block1-0 = Linear(6, 3)\nforward:\n    y = x.permute(0, x.ndim-1, 1)\n    return trunk.block1-0(y.reshape(1, 4, 6))\n";
    let g = nnblob::graph::parse_spec(spec, "net.nnspec", "net").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        g.nodes.last().unwrap().module.as_deref(),
        Some("trunk.block1-0")
    );
    assert_eq!(g.values[g.outputs[0]].shape, [1, 4, 3]);
}
