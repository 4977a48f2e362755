//! A graph written back as spec text: the readable, editable form of an import.
//!
//! In: an unbound or bound [`Graph`] as a source gives it (before the passes). Out: spec text
//! that [`super::parse_spec`] reads back to the same network — module declarations named by
//! their `state_dict` prefixes (in the order `forward` first calls them), then a `forward:` that
//! calls them and the functions in graph order, one line per node, with the graph's value names
//! (made into identifiers). Binding the same state_dict to both gives the same outputs.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use crate::graph::ops::{Activation, Conv, Padding, PoolKind, ResampleMode, Target};
use crate::graph::{Graph, Node, Op};

/// The spec text of `graph`; `header` lines go first, as comments.
pub fn to_spec(graph: &Graph, header: &[String]) -> Result<String, String> {
    let mut names = Names::default();
    let mut out = String::new();
    for line in header {
        let _ = writeln!(out, "# {line}");
    }
    for &v in &graph.inputs {
        let dims: Vec<String> = graph.values[v].shape[1..]
            .iter()
            .map(|d| d.to_string())
            .collect();
        let _ = writeln!(
            out,
            "input {}: [{}]",
            names.get(v, &graph.values[v].name),
            dims.join(", ")
        );
    }
    out.push('\n');
    let mut declared = HashSet::new();
    for n in &graph.nodes {
        if let Some(module) = owner(n) {
            if declared.insert(module.to_string()) {
                let _ = writeln!(out, "{module} = {}", constructor(n)?);
            }
        }
    }
    out.push_str("\nforward:\n");
    for n in &graph.nodes {
        let args: Vec<String> = n
            .inputs
            .iter()
            .map(|&v| names.get(v, &graph.values[v].name))
            .collect();
        let call = match owner(n) {
            // A recurrent module returns `(output, h_n)`; the graph holds the output.
            Some(module) if matches!(n.op, Op::Recurrent(_)) => format!("{module}({})[0]", args[0]),
            Some(module) => format!("{module}({})", args[0]),
            None => function(n, &args, graph)?,
        };
        let y = names.get(n.output, &graph.values[n.output].name);
        let _ = writeln!(out, "    {y} = {call}");
    }
    let outputs: Vec<String> = graph
        .outputs
        .iter()
        .map(|&v| names.get(v, &graph.values[v].name))
        .collect();
    let _ = writeln!(out, "    return {}", outputs.join(", "));
    Ok(out)
}

/// The module of a node that owns parameters; parameter-free modules are written as functions.
fn owner(n: &Node) -> Option<&str> {
    n.module.as_deref().filter(|_| !n.op.params().is_empty())
}

/// Spec identifiers for values: the graph's name with other characters as `_`, made unique.
#[derive(Default)]
struct Names {
    by_value: HashMap<usize, String>,
    taken: HashSet<String>,
}

impl Names {
    fn get(&mut self, v: usize, name: &str) -> String {
        if let Some(n) = self.by_value.get(&v) {
            return n.clone();
        }
        let mut base: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if !base.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            base.insert_str(0, "v_");
        }
        if matches!(
            base.as_str(),
            "input" | "forward" | "return" | "True" | "False" | "None"
        ) {
            base.push_str("_v");
        }
        let mut unique = base.clone();
        let mut k = 2;
        while !self.taken.insert(unique.clone()) {
            unique = format!("{base}_{k}");
            k += 1;
        }
        self.by_value.insert(v, unique.clone());
        unique
    }
}

fn pair(v: [usize; 2]) -> String {
    if v[0] == v[1] {
        v[0].to_string()
    } else {
        format!("({}, {})", v[0], v[1])
    }
}

fn conv_padding(c: &Conv) -> Result<String, String> {
    let p = &c.padding;
    let Padding {
        top,
        bottom,
        left,
        right,
    } = *p;
    Ok(if c.rank == 1 {
        if left != right {
            return Err(format!(
                "a Conv1d padded {left} left and {right} right has no spec form yet"
            ));
        }
        left.to_string()
    } else if top == bottom && left == right {
        pair([top, left])
    } else {
        format!("({left}, {right}, {top}, {bottom})")
    })
}

/// The module constructor of a node that owns parameters.
fn constructor(n: &Node) -> Result<String, String> {
    Ok(match &n.op {
        Op::Conv(c) => {
            let k = |v: [usize; 2]| {
                if c.rank == 1 {
                    v[1].to_string()
                } else {
                    pair(v)
                }
            };
            let mut s = format!(
                "Conv{}d({}, {}, {}",
                c.rank,
                c.in_channels,
                c.out_channels,
                k(c.kernel)
            );
            if c.stride != [1, 1] {
                let _ = write!(s, ", stride={}", k(c.stride));
            }
            let padding = conv_padding(c)?;
            if padding != "0" {
                let _ = write!(s, ", padding={padding}");
            }
            if c.dilation != [1, 1] {
                let _ = write!(s, ", dilation={}", k(c.dilation));
            }
            if c.groups != 1 {
                let _ = write!(s, ", groups={}", c.groups);
            }
            if !c.bias {
                s.push_str(", bias=False");
            }
            s + ")"
        }
        Op::ConvTranspose(c) => {
            let k = |v: [usize; 2]| {
                if c.rank == 1 {
                    v[1].to_string()
                } else {
                    pair(v)
                }
            };
            let mut s = format!(
                "ConvTranspose{}d({}, {}, {}",
                c.rank,
                c.in_channels,
                c.out_channels,
                k(c.kernel)
            );
            for (name, v, default) in [
                ("stride", c.stride, 1),
                ("padding", c.padding, 0),
                ("output_padding", c.output_padding, 0),
                ("dilation", c.dilation, 1),
            ] {
                if v != [default; 2] && !(c.rank == 1 && v[1] == default) {
                    let _ = write!(s, ", {name}={}", k(v));
                }
            }
            if c.groups != 1 {
                let _ = write!(s, ", groups={}", c.groups);
            }
            if !c.bias {
                s.push_str(", bias=False");
            }
            s + ")"
        }
        Op::Linear(l) => format!(
            "Linear({}, {}{})",
            l.in_features,
            l.out_features,
            if l.bias { "" } else { ", bias=False" }
        ),
        Op::BatchNorm(b) => format!("BatchNorm{}d({}, eps={:?})", b.rank, b.num_features, b.eps),
        Op::LayerNorm(l) => format!(
            "LayerNorm({}, eps={:?}{})",
            normalized_shape(&l.shape),
            l.eps,
            if l.bias { "" } else { ", bias=False" }
        ),
        Op::GroupNorm(g) => format!(
            "GroupNorm({}, {}, eps={:?})",
            g.groups,
            g.channels.unwrap_or(0),
            g.eps
        ),
        Op::PRelu(p) => format!("PReLU({})", p.num_parameters),
        Op::Recurrent(r) => {
            if r.num_layers > 1 || r.bidirectional {
                return Err(format!(
                    "a {} of several layers or both directions has no spec form yet (its layers \
                     are separate nodes of one module): write its declaration by hand",
                    r.name()
                ));
            }
            format!(
                "{}({}, {}{}{})",
                r.name(),
                r.input_size,
                r.hidden_size,
                if r.bias { "" } else { ", bias=False" },
                if r.batch_first {
                    ", batch_first=True"
                } else {
                    ""
                }
            )
        }
        Op::ScaleShift(_) => return Err(
            "a folded BatchNorm (ScaleShift) has no spec form: print the graph before the passes"
                .into(),
        ),
        other => return Err(format!("{} does not own parameters", other.kind())),
    })
}

/// A LayerNorm's `normalized_shape`: one size as an integer, more as a list.
fn normalized_shape(shape: &[usize]) -> String {
    match shape {
        [d] => d.to_string(),
        _ => list(shape),
    }
}

fn list(v: &[impl ToString]) -> String {
    let items: Vec<String> = v.iter().map(ToString::to_string).collect();
    format!("[{}]", items.join(", "))
}

/// The function call of a node without parameters.
fn function(n: &Node, args: &[String], graph: &Graph) -> Result<String, String> {
    let x = &args[0];
    Ok(match &n.op {
        Op::Activation(a) => match a {
            Activation::Relu => format!("relu({x})"),
            Activation::Relu6 => format!("relu6({x})"),
            Activation::Silu => format!("silu({x})"),
            Activation::Hardswish => format!("hardswish({x})"),
            Activation::Hardsigmoid => format!("hardsigmoid({x})"),
            Activation::Sigmoid => format!("sigmoid({x})"),
            Activation::Tanh => format!("tanh({x})"),
            Activation::Gelu { tanh: false } => format!("gelu({x})"),
            Activation::Gelu { tanh: true } => format!("gelu({x}, approximate='tanh')"),
            Activation::LeakyRelu { negative_slope } => {
                format!("leaky_relu({x}, negative_slope={negative_slope:?})")
            }
        },
        Op::Softmax(s) => format!("softmax({x}, dim={})", s.dim),
        Op::Pool(p) => {
            let name = format!("{}_pool{}d", p.kind.name().to_lowercase(), p.rank);
            // A 1-d pool's one axis is the second of each pair.
            let axes = |v: [usize; 2]| {
                if p.rank == 1 {
                    v[1].to_string()
                } else {
                    pair(v)
                }
            };
            let mut s = format!("{name}({x}, {}, stride={}", axes(p.kernel), axes(p.stride));
            if p.padding != [0, 0] {
                let _ = write!(s, ", padding={}", axes(p.padding));
            }
            if p.dilation != [1, 1] {
                let _ = write!(s, ", dilation={}", axes(p.dilation));
            }
            if p.ceil_mode {
                s.push_str(", ceil_mode=True");
            }
            if p.kind == PoolKind::Avg && !p.count_include_pad {
                s.push_str(", count_include_pad=False");
            }
            s + ")"
        }
        Op::AdaptivePool(a) => {
            let name = format!("adaptive_{}_pool{}d", a.kind.name().to_lowercase(), a.rank);
            let size = |s: Option<usize>| s.map_or("None".into(), |v| v.to_string());
            if a.rank == 1 {
                format!("{name}({x}, {})", size(a.output[1]))
            } else {
                format!(
                    "{name}({x}, ({}, {}))",
                    size(a.output[0]),
                    size(a.output[1])
                )
            }
        }
        Op::LayerNorm(l) => format!(
            "layer_norm({x}, {}, eps={:?})",
            normalized_shape(&l.shape),
            l.eps
        ),
        Op::GroupNorm(g) => format!("group_norm({x}, {}, eps={:?})", g.groups, g.eps),
        Op::Upsample(u) => {
            let tuple = |v: Vec<String>| match v.len() {
                1 => v[0].clone(),
                _ => format!("({})", v.join(", ")),
            };
            let target = match &u.target {
                Target::Size(v) => {
                    format!("size={}", tuple(v.iter().map(usize::to_string).collect()))
                }
                Target::ScaleFactor(f) => format!(
                    "scale_factor={}",
                    tuple(f.iter().map(|v| format!("{v:?}")).collect())
                ),
            };
            let mut s = format!("interpolate({x}, {target}, mode='{}'", u.mode.name());
            if u.mode != ResampleMode::Nearest {
                let align = if u.align_corners { "True" } else { "False" };
                let _ = write!(s, ", align_corners={align}");
            }
            if u.recompute_scale_factor {
                s.push_str(", recompute_scale_factor=True");
            }
            s + ")"
        }
        Op::ZeroPad(z) => {
            let p = &z.padding;
            format!("pad({x}, {})", list(&[p.left, p.right, p.top, p.bottom]))
        }
        Op::Flatten(f) => format!("flatten({x}, {}, {})", f.start_dim, f.end_dim),
        Op::Reshape(r) => format!("reshape({x}, {})", list(&r.shape)),
        Op::Permute(p) => format!("permute({x}, {})", list(&p.dims)),
        Op::Concat(c) => format!("cat([{}], dim={})", args.join(", "), c.dim),
        Op::Slice(s) => {
            let rank = graph.shape(n.inputs[0]).len();
            let dim = crate::graph::ops::resolve_dim(s.dim, rank)?;
            let end = if s.end == i64::MAX {
                String::new()
            } else {
                s.end.to_string()
            };
            let step = if s.step == 1 {
                String::new()
            } else {
                format!(":{}", s.step)
            };
            let mut index = vec![":".to_string(); dim];
            index.push(format!("{}:{end}{step}", s.start));
            format!("{x}[{}]", index.join(", "))
        }
        Op::MatMul(_) => format!("{x} @ {}", args[1]),
        Op::Affine(f) => match (f.scale, f.shift) {
            (s, 0.0) => format!("{x} * {s:?}"),
            (1.0, t) => format!("{x} + {t:?}"),
            (-1.0, t) => format!("{t:?} - {x}"),
            (s, t) => format!("{x} * {s:?} + {t:?}"),
        },
        Op::Binary(b) => match b.kind {
            crate::graph::ops::BinaryKind::Add => format!("{x} + {}", args[1]),
            crate::graph::ops::BinaryKind::Mul => format!("{x} * {}", args[1]),
        },
        Op::Dropout => format!("dropout({x})"),
        other => return Err(format!("{} has no spec form", other.kind())),
    })
}
