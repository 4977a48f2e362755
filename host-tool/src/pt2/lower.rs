//! An exported program lowered to nnblob's graph.
//!
//! In: a [`Program`] (both forms users have: as `torch.export.export` saves it — `aten.conv2d`,
//! `aten.batch_norm`, `aten.linear`, `aten.hardswish`, ... — and after `ep.run_decompositions()`,
//! core ATen — `convolution`, `_native_batch_norm_legit_no_training`, `addmm` of a permuted
//! weight, hardswish as `add`/`clamp`/`mul`/`div`, PReLU as `gt`/`where`/`mul`). Out: an unbound
//! [`Graph`] whose inputs and outputs keep the export's order and names and whose nodes own the
//! `state_dict` prefixes of their parameters (`conv1` for `conv1.weight`), so that the archive's
//! own weights or any `state_dict` of the same model bind to it strictly.
//!
//! Steps: the nodes are read into [`ANode`]s; decomposed patterns are folded back into the ops
//! they came from ([`fold_patterns`]), so the passes see the same ops whatever the form; then each
//! node becomes graph ops, its output shapes checked against the shapes torch recorded. Every node
//! that cannot be lowered is reported, all at once, with the user's source line from its
//! `stack_trace`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use super::schema::{self, Arg, InputSpec, Program};
use crate::graph::ops::{
    resolve_dim, Activation, AdaptivePool, Affine, BatchNorm, Binary, BinaryKind, Concat, Conv,
    ConvTranspose, Flatten, GroupNorm, LayerNorm, Linear, MatMul, PRelu, Padding, Permute, Pool,
    PoolKind, ResampleMode, Reshape, Slice, Softmax, Target, Upsample, ZeroPad,
};
use crate::graph::{Graph, Op, ValueId};

/// Why a program could not be lowered: every node that failed, or a whole-program problem.
#[derive(Debug, Clone, PartialEq)]
pub struct LowerError {
    pub problems: Vec<Problem>,
}

/// One node (or the program, when `node` is empty) that cannot be lowered.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// The node's name in the export (`conv2d_3`); empty for the program as a whole.
    pub node: String,
    /// Its target without `torch.ops.` (`aten.upsample_nearest2d.vec`).
    pub target: String,
    /// The user's source line: `model.py:42 'x = F.interpolate(x, scale_factor=2)'`.
    pub at: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.node.is_empty() {
            write!(f, "node '{}' ({})", self.node, self.target)?;
            if let Some(at) = &self.at {
                write!(f, " at {at}")?;
            }
            write!(f, ": ")?;
        }
        f.write_str(&self.message)
    }
}

impl fmt::Display for LowerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        if n > 1 {
            writeln!(f, "{n} nodes cannot be converted:")?;
        }
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if n > 1 {
                write!(f, "  ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LowerError {}

fn program_problem(message: impl Into<String>) -> LowerError {
    LowerError {
        problems: vec![Problem {
            node: String::new(),
            target: String::new(),
            at: None,
            message: message.into(),
        }],
    }
}

/// A node of the export, its arguments parsed.
#[derive(Clone, Debug)]
pub struct ANode {
    pub name: String,
    /// `aten.conv2d.default`, `_operator.getitem`, ...
    pub target: String,
    pub args: Vec<(String, Arg)>,
    /// The output tensors' names, in order (`None` for an output that is not a tensor).
    pub outputs: Vec<Option<String>>,
    pub at: Option<String>,
}

impl ANode {
    fn arg(&self, name: &str) -> Option<&Arg> {
        self.args.iter().find(|(n, _)| n == name).map(|(_, a)| a)
    }
    fn tensor_args(&self) -> impl Iterator<Item = &str> {
        self.args.iter().flat_map(|(_, a)| match a {
            Arg::Tensor(t) => vec![t.as_str()],
            Arg::Tensors(ts) => ts.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        })
    }
    fn out(&self) -> Option<&str> {
        self.outputs.first().and_then(|o| o.as_deref())
    }
}

/// The ops a node's target names, as `aten.NAME` without overload, for the op table and counts.
pub fn op_name(target: &str) -> &str {
    let t = target.strip_prefix("torch.ops.").unwrap_or(target);
    match t.rsplit_once('.') {
        Some((head, _)) if head.starts_with("aten.") => head,
        _ => t,
    }
}

/// The innermost frame of a node's `stack_trace` that is not inside torch itself (the user's
/// line, or torchvision's), as `file.py:LINE 'code'`.
pub fn source_line(stack_trace: &str) -> Option<String> {
    let lines: Vec<&str> = stack_trace.lines().map(str::trim).collect();
    let frames = lines.iter().enumerate().filter_map(|(i, l)| {
        let rest = l.strip_prefix("File \"")?;
        let (path, rest) = rest.split_once('"')?;
        let line = rest.trim_start_matches(", line ").split(',').next()?.trim();
        let code = lines
            .get(i + 1)
            .filter(|c| !c.starts_with("File \""))
            .copied();
        Some((path, line, code.unwrap_or("")))
    });
    let in_torch = |path: &str| {
        let p = path.replace('\\', "/");
        p.starts_with("torch/") || p.contains("-packages/torch/")
    };
    let frames: Vec<_> = frames.collect();
    let (path, line, code) = frames
        .iter()
        .rev()
        .find(|(p, _, _)| !in_torch(p))
        .or(frames.first())?;
    let file = path.rsplit(['/', '\\']).next().unwrap_or(path);
    Some(if code.is_empty() {
        format!("{file}:{line}")
    } else {
        format!("{file}:{line} '{code}'")
    })
}

/// The nodes of the program, parsed.
pub fn nodes(program: &Program) -> Vec<ANode> {
    program
        .graph_module
        .graph
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let target = n
                .target
                .strip_prefix("torch.ops.")
                .unwrap_or(&n.target)
                .to_string();
            let outputs = n
                .outputs
                .iter()
                .flat_map(|o| match Arg::from_json(o) {
                    Arg::Tensor(t) => vec![Some(t)],
                    Arg::Tensors(ts) => ts.into_iter().map(Some).collect(),
                    _ => vec![None],
                })
                .collect::<Vec<_>>();
            let name = n
                .name
                .clone()
                .or_else(|| outputs.first().cloned().flatten())
                .unwrap_or_else(|| format!("node_{i}"));
            ANode {
                name,
                target,
                args: n
                    .inputs
                    .iter()
                    .map(|a| (a.name.clone(), Arg::from_json(&a.arg)))
                    .collect(),
                outputs,
                at: n.metadata.get("stack_trace").and_then(|s| source_line(s)),
            }
        })
        .collect()
}

/// How many times each tensor is read (by nodes, or as a graph output).
fn uses(nodes: &[ANode], outputs: &[String]) -> HashMap<String, usize> {
    let mut u: HashMap<String, usize> = HashMap::new();
    for n in nodes {
        for t in n.tensor_args() {
            *u.entry(t.to_string()).or_default() += 1;
        }
    }
    for o in outputs {
        *u.entry(o.clone()).or_default() += 1;
    }
    u
}

fn scalar(a: Option<&Arg>) -> Option<f64> {
    match a? {
        Arg::Int(i) => Some(*i as f64),
        Arg::Float(f) => Some(*f),
        _ => None,
    }
}

/// Folds the patterns `run_decompositions()` leaves back into single nodes (the same targets
/// `torch.export.export` writes), so that lowering and the passes see one op set:
/// - hardsigmoid: `div(clamp(clamp(add(x, 3), 0), None, 6), 6)` (the clamps may be one);
/// - hardswish: `div(mul(x, <that clamp>), 6)`;
/// - SiLU: `mul(x, sigmoid(x))`;
/// - PReLU: `where(gt(x, 0), x, mul(view(weight), x))`;
/// - Linear: `addmm(bias, x, permute(weight, [1, 0]))`, `mm(x, permute(weight, [1, 0]))`, and
///   the same with `t(weight)`.
///
/// A pattern folds only when its inner tensors have no other reader.
pub fn fold_patterns(
    nodes: Vec<ANode>,
    params: &HashSet<String>,
    outputs: &[String],
) -> Vec<ANode> {
    let uses = uses(&nodes, outputs);
    let by_output: HashMap<String, usize> = nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| Some((n.out()?.to_string(), i)))
        .collect();
    let sole = |t: &str| uses.get(t).copied() == Some(1);
    let producer = |t: &str| by_output.get(t).map(|&i| &nodes[i]);
    let tensor = |n: &ANode, name: &str| match n.arg(name) {
        Some(Arg::Tensor(t)) => Some(t.clone()),
        _ => None,
    };
    let mut removed: HashSet<usize> = HashSet::new();
    let mut replaced: BTreeMap<usize, ANode> = BTreeMap::new();
    // The folded node, named after its op and the node it replaces (`hardswish_div_3`).
    let synth = |from: &ANode, target: &str, args: Vec<(&str, Arg)>| ANode {
        name: format!(
            "{}_{}",
            op_name(target).trim_start_matches("aten."),
            from.name
        ),
        target: target.to_string(),
        args: args.into_iter().map(|(n, a)| (n.to_string(), a)).collect(),
        outputs: from.outputs.clone(),
        at: from.at.clone(),
    };
    // `relu6(x + 3)` as decomposed, ending at tensor `t`: x, and the nodes it spans.
    let relu6_of_plus3 = |t: &str| -> Option<(String, Vec<usize>)> {
        let mut at = *by_output.get(t)?;
        let mut span = Vec::new();
        let (mut lo, mut hi) = (None, None);
        loop {
            let n = &nodes[at];
            span.push(at);
            let bounds = match n.target.as_str() {
                "aten.clamp.default" => Some((scalar(n.arg("min")), scalar(n.arg("max")))),
                "aten.hardtanh.default" => {
                    Some((scalar(n.arg("min_val")), scalar(n.arg("max_val"))))
                }
                _ => None,
            };
            if let Some((l, h)) = bounds {
                lo = lo.or(l);
                hi = hi.or(h);
                let inner = tensor(n, "self")?;
                if !sole(&inner) {
                    return None;
                }
                at = *by_output.get(&inner)?;
                continue;
            }
            let plus3 = n.target == "aten.add.Tensor"
                && scalar(n.arg("other")) == Some(3.0)
                && n.arg("alpha").is_none();
            let clamped = span.len() > 1 && lo == Some(0.0) && hi == Some(6.0);
            return (plus3 && clamped)
                .then(|| tensor(n, "self"))
                .flatten()
                .map(|x| (x, span));
        }
    };
    for (i, n) in nodes.iter().enumerate() {
        match n.target.as_str() {
            "aten.div.Tensor" if scalar(n.arg("other")) == Some(6.0) => {
                let Some(inner) = tensor(n, "self") else {
                    continue;
                };
                if !sole(&inner) {
                    continue;
                }
                if let Some((x, span)) = relu6_of_plus3(&inner) {
                    removed.extend(span);
                    replaced.insert(
                        i,
                        synth(
                            n,
                            "aten.hardsigmoid.default",
                            vec![("self", Arg::Tensor(x))],
                        ),
                    );
                    continue;
                }
                let Some(m) = producer(&inner) else { continue };
                if m.target != "aten.mul.Tensor" {
                    continue;
                }
                let (Some(a), Some(b)) = (tensor(m, "self"), tensor(m, "other")) else {
                    continue;
                };
                for (x, h) in [(&a, &b), (&b, &a)] {
                    if !sole(h) {
                        continue;
                    }
                    if let Some((x2, span)) = relu6_of_plus3(h) {
                        if &x2 == x {
                            removed.extend(span);
                            removed.insert(by_output[&inner]);
                            replaced.insert(
                                i,
                                synth(
                                    n,
                                    "aten.hardswish.default",
                                    vec![("self", Arg::Tensor(x.clone()))],
                                ),
                            );
                            break;
                        }
                    }
                }
            }
            "aten.mul.Tensor" => {
                let (Some(a), Some(b)) = (tensor(n, "self"), tensor(n, "other")) else {
                    continue;
                };
                for (x, s) in [(&a, &b), (&b, &a)] {
                    let Some(p) = producer(s) else { continue };
                    if sole(s)
                        && p.target == "aten.sigmoid.default"
                        && tensor(p, "self").as_ref() == Some(x)
                    {
                        removed.insert(by_output[s]);
                        replaced.insert(
                            i,
                            synth(
                                n,
                                "aten.silu.default",
                                vec![("self", Arg::Tensor(x.clone()))],
                            ),
                        );
                        break;
                    }
                }
            }
            "aten.where.self" => {
                let (Some(c), Some(x), Some(m)) = (
                    tensor(n, "condition"),
                    tensor(n, "self"),
                    tensor(n, "other"),
                ) else {
                    continue;
                };
                let (Some(gt), Some(mul)) = (producer(&c), producer(&m)) else {
                    continue;
                };
                let gt_ok = gt.target == "aten.gt.Scalar"
                    && tensor(gt, "self").as_ref() == Some(&x)
                    && scalar(gt.arg("other")) == Some(0.0);
                let (Some(ma), Some(mb)) = (tensor(mul, "self"), tensor(mul, "other")) else {
                    continue;
                };
                let w = if mb == x {
                    ma
                } else if ma == x {
                    mb
                } else {
                    continue;
                };
                // The weight, directly or through a view that broadcasts it over the channels.
                let (weight, view) = if params.contains(&w) {
                    (w, None)
                } else if let Some(v) =
                    producer(&w).filter(|v| v.target == "aten.view.default" && sole(&w))
                {
                    match tensor(v, "self") {
                        Some(p) if params.contains(&p) => (p, Some(by_output[&w])),
                        _ => continue,
                    }
                } else {
                    continue;
                };
                if gt_ok && sole(&c) && sole(&m) {
                    removed.insert(by_output[&c]);
                    removed.insert(by_output[&m]);
                    removed.extend(view);
                    replaced.insert(
                        i,
                        synth(
                            n,
                            "aten.prelu.default",
                            vec![("self", Arg::Tensor(x)), ("weight", Arg::Tensor(weight))],
                        ),
                    );
                }
            }
            "aten.addmm.default" | "aten.mm.default" => {
                let (x, w) = if n.target == "aten.addmm.default" {
                    (tensor(n, "mat1"), tensor(n, "mat2"))
                } else {
                    (tensor(n, "self"), tensor(n, "mat2"))
                };
                let (Some(x), Some(w)) = (x, w) else { continue };
                let Some(p) = producer(&w) else { continue };
                let transposed = match p.target.as_str() {
                    "aten.permute.default" => p.arg("dims") == Some(&Arg::Ints(vec![1, 0])),
                    "aten.t.default" => true,
                    _ => false,
                };
                let Some(weight) = tensor(p, "self").filter(|t| params.contains(t)) else {
                    continue;
                };
                if !(transposed && sole(&w)) {
                    continue;
                }
                let mut args = vec![("input", Arg::Tensor(x)), ("weight", Arg::Tensor(weight))];
                if n.target == "aten.addmm.default" {
                    let plain = n.arg("beta").is_none_or(|b| scalar(Some(b)) == Some(1.0))
                        && n.arg("alpha").is_none_or(|a| scalar(Some(a)) == Some(1.0));
                    match tensor(n, "self") {
                        Some(b) if plain && params.contains(&b) => {
                            args.push(("bias", Arg::Tensor(b)))
                        }
                        _ => continue,
                    }
                }
                removed.insert(by_output[&w]);
                replaced.insert(i, synth(n, "aten.linear.default", args));
            }
            "aten.squeeze.dims" | "aten.squeeze.dim" => {
                // Core ATen's 1-d pool: `unsqueeze(x, -2)`, the 2-d pool of height 1 (or, for
                // an output of size 1, a mean over the last two axes), `squeeze(-2)`.
                let axis_2 = |a: Option<&Arg>| {
                    matches!(a, Some(Arg::Int(-2 | 2)))
                        || matches!(a, Some(Arg::Ints(d)) if d[..] == [-2] || d[..] == [2])
                };
                let Some(inner) = tensor(n, "self").filter(|t| sole(t)) else {
                    continue;
                };
                let Some(pool) = producer(&inner).filter(|p| p.out() == Some(inner.as_str()))
                else {
                    continue;
                };
                let Some(lifted) = tensor(pool, "self").filter(|t| sole(t)) else {
                    continue;
                };
                let Some(unsqueeze) = producer(&lifted).filter(|u| {
                    u.target == "aten.unsqueeze.default"
                        && axis_2(u.arg("dim"))
                        && axis_2(n.arg("dim"))
                }) else {
                    continue;
                };
                let Some(x) = tensor(unsqueeze, "self") else {
                    continue;
                };
                // The pool's other outputs (indices) must be unread.
                let others_unread = pool
                    .outputs
                    .iter()
                    .skip(1)
                    .flatten()
                    .all(|o| !uses.contains_key(o));
                let Some((target, args)) = one_d_pool(pool, x).filter(|_| others_unread) else {
                    continue;
                };
                removed.insert(by_output[&inner]);
                removed.insert(by_output[&lifted]);
                replaced.insert(i, synth(n, target, args));
            }
            _ => {}
        }
    }
    let mut folded = Vec::with_capacity(nodes.len());
    for (i, n) in nodes.into_iter().enumerate() {
        match replaced.remove(&i) {
            Some(r) => folded.push(r),
            None if removed.contains(&i) => {}
            None => folded.push(n),
        }
    }
    folded
}

/// The 1-d pool (target and arguments, reading `x`) that a 2-d `pool` of height 1 computes on
/// `unsqueeze(x, -2)`: its window arguments `[1, v]` (padding `[0, v]`) become `[v]`, a
/// `mean.dim` over the last two axes keeping them is `adaptive_avg_pool1d(x, [1])`. `None` when
/// `pool` is none of these.
fn one_d_pool(pool: &ANode, x: String) -> Option<(&'static str, Vec<(&'static str, Arg)>)> {
    let target = match pool.target.as_str() {
        "aten.max_pool2d_with_indices.default" => "aten.max_pool1d.default",
        "aten.avg_pool2d.default" => "aten.avg_pool1d.default",
        "aten._adaptive_avg_pool2d.default" => "aten.adaptive_avg_pool1d.default",
        "aten.adaptive_max_pool2d.default" => "aten.adaptive_max_pool1d.default",
        "aten.mean.dim" => {
            let last_two = matches!(pool.arg("dim"), Some(Arg::Ints(d))
                if matches!(d[..], [-1, -2] | [-2, -1] | [2, 3] | [3, 2]));
            let keep = pool.arg("keepdim") == Some(&Arg::Bool(true));
            let plain = pool.arg("dtype").is_none_or(|d| d == &Arg::None);
            return (last_two && keep && plain).then(|| {
                let args = vec![
                    ("self", Arg::Tensor(x)),
                    ("output_size", Arg::Ints(vec![1])),
                ];
                ("aten.adaptive_avg_pool1d.default", args)
            });
        }
        _ => return None,
    };
    let mut args = vec![("self", Arg::Tensor(x))];
    for (name, arg) in &pool.args {
        let name: &'static str = match name.as_str() {
            "self" => continue,
            "kernel_size" => "kernel_size",
            "stride" => "stride",
            "padding" => "padding",
            "dilation" => "dilation",
            "output_size" => "output_size",
            "ceil_mode" => "ceil_mode",
            "count_include_pad" => "count_include_pad",
            "divisor_override" => "divisor_override",
            _ => return None,
        };
        let height = if name == "padding" { 0 } else { 1 };
        let arg = match arg {
            Arg::Ints(v) if v.len() == 2 && v[0] == height => Arg::Ints(vec![v[1]]),
            Arg::Ints(v) if !v.is_empty() => return None,
            other => other.clone(),
        };
        args.push((name, arg));
    }
    Some((target, args))
}

/// What a node whose op nnblob does not convert is told.
const NOT_SUPPORTED: &str = "not supported yet (docs/IMPORT.md lists the ops nnblob converts)";

/// torch's export schema code of float32.
const FLOAT32: i64 = 7;

/// What a tensor name of the export stands for while lowering.
#[derive(Clone, Debug)]
enum Slot {
    /// A value of the graph.
    Value(ValueId),
    /// A parameter or buffer: its `state_dict` key and shape.
    Param(String, Vec<usize>),
    /// A tensor nnblob does not compute (a batch norm's saved statistics, pooling indices), or
    /// one whose producer failed (its readers are not reported again).
    Missing,
}

struct Lowering<'p> {
    program: &'p Program,
    graph: Graph,
    slots: HashMap<String, Slot>,
    layer_names: HashSet<String>,
}

/// An argument error while lowering one node.
type NodeResult<T> = Result<T, String>;

impl Lowering<'_> {
    fn recorded_shape(&self, name: &str) -> Option<Vec<usize>> {
        let meta = self.program.graph_module.graph.tensor_values.get(name)?;
        meta.sizes
            .iter()
            .map(|s| s.as_u64().and_then(|v| usize::try_from(v).ok()))
            .collect()
    }

    fn slot(&self, name: &str) -> NodeResult<Slot> {
        self.slots
            .get(name)
            .cloned()
            .ok_or_else(|| format!("reads '{name}', which no earlier node computes"))
    }

    /// A unique layer name: the module for module ops, `name#2` on a module's second call.
    fn layer_name(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut k = 2;
        while !self.layer_names.insert(name.clone()) {
            name = format!("{base}#{k}");
            k += 1;
        }
        name
    }

    /// Appends `op` on `inputs`; its output is named `out` (the export's tensor) and has the
    /// shape inferred, which must equal the one torch recorded.
    fn push(
        &mut self,
        layer: &str,
        module: Option<String>,
        op: Op,
        inputs: Vec<ValueId>,
        out: &str,
        check_recorded: bool,
    ) -> NodeResult<ValueId> {
        let shapes: Vec<&[usize]> = inputs.iter().map(|&v| self.graph.shape(v)).collect();
        let shape = op.infer(&shapes)?;
        if check_recorded {
            if let Some(rec) = self.recorded_shape(out) {
                if rec != shape {
                    return Err(format!(
                        "nnblob computes shape {} where torch recorded {}",
                        crate::graph::fmt_shape(&shape),
                        crate::graph::fmt_shape(&rec)
                    ));
                }
            }
        }
        let name = self.layer_name(layer);
        let output = self.graph.push_node(name, module, op, inputs, out, shape);
        Ok(output)
    }
}

/// Reads a node's arguments by their schema names, with the schema's defaults.
struct Args<'n> {
    node: &'n ANode,
}

impl Args<'_> {
    fn get(&self, name: &str) -> Option<&Arg> {
        self.node.arg(name).filter(|a| **a != Arg::None)
    }
    fn int(&self, name: &str, default: i64) -> NodeResult<i64> {
        match self.get(name) {
            None => Ok(default),
            Some(Arg::Int(i)) => Ok(*i),
            Some(a) => Err(format!("argument '{name}' is {a:?}, expected an integer")),
        }
    }
    fn opt_int(&self, name: &str) -> NodeResult<Option<i64>> {
        self.get(name).map(|_| self.int(name, 0)).transpose()
    }
    fn ints(&self, name: &str, default: &[i64]) -> NodeResult<Vec<i64>> {
        match self.get(name) {
            None => Ok(default.to_vec()),
            Some(Arg::Ints(v)) => Ok(v.clone()),
            Some(Arg::Int(i)) => Ok(vec![*i]),
            Some(a) => Err(format!("argument '{name}' is {a:?}, expected integers")),
        }
    }
    fn float(&self, name: &str, default: f64) -> NodeResult<f64> {
        match self.get(name) {
            None => Ok(default),
            Some(a) => scalar(Some(a))
                .ok_or_else(|| format!("argument '{name}' is {a:?}, expected a number")),
        }
    }
    fn flag(&self, name: &str, default: bool) -> NodeResult<bool> {
        match self.get(name) {
            None => Ok(default),
            Some(Arg::Bool(b)) => Ok(*b),
            Some(a) => Err(format!("argument '{name}' is {a:?}, expected a bool")),
        }
    }
    fn tensor(&self, name: &str) -> NodeResult<&str> {
        match self.node.arg(name) {
            Some(Arg::Tensor(t)) => Ok(t),
            Some(a) => Err(format!("argument '{name}' is {a:?}, expected a tensor")),
            None => Err(format!("argument '{name}' is missing")),
        }
    }
    fn opt_tensor(&self, name: &str) -> NodeResult<Option<&str>> {
        match self.get(name) {
            None => Ok(None),
            Some(_) => self.tensor(name).map(Some),
        }
    }
}

/// `[a]` → `[a, a]`, `[a, b]` → `[a, b]`: a 2-d pooling or convolution argument.
fn pair(v: &[i64], what: &str) -> NodeResult<[usize; 2]> {
    let u = |x: i64| usize::try_from(x).map_err(|_| format!("{what} {v:?} is negative"));
    match v {
        [a] => Ok([u(*a)?, u(*a)?]),
        [a, b] => Ok([u(*a)?, u(*b)?]),
        _ => Err(format!("{what} {v:?} is not one or two integers")),
    }
}

/// Splits `key` (`layer1.0.conv1.weight`) into its module (`layer1.0.conv1`) when it ends in
/// `.suffix`.
fn module_of(key: &str, suffix: &str) -> Option<String> {
    key.strip_suffix(suffix)?
        .strip_suffix('.')
        .map(str::to_string)
}

/// Lowers `program` to an unbound graph named `name`.
pub fn lower(program: &Program, name: &str) -> Result<Graph, LowerError> {
    let g = &program.graph_module.graph;
    // A symbolic size: named after the user input that has one if any, else the first tensor.
    let symbolic = |name: &String| {
        let meta = g.tensor_values.get(name)?;
        let sym = meta.sizes.iter().find(|s| s.as_int.is_none())?;
        let expr = sym
            .as_expr
            .as_ref()
            .and_then(|e| e.get("expr_str"))
            .and_then(|e| e.as_str());
        // `Symbol('s77', positive=True, integer=True)` is the symbol s77.
        let expr = expr.unwrap_or("?");
        let symbol = expr
            .strip_prefix("Symbol('")
            .and_then(|r| r.split('\'').next())
            .unwrap_or(expr);
        Some((name.clone(), symbol.to_string()))
    };
    let dynamic = program
        .graph_module
        .signature
        .input_specs
        .iter()
        .filter_map(|s| match InputSpec::from_json(s) {
            Some(InputSpec::User { arg }) => symbolic(&arg),
            _ => None,
        })
        .next()
        .or_else(|| g.tensor_values.keys().find_map(symbolic));
    if let Some((tensor, symbol)) = dynamic {
        return Err(program_problem(format!(
            "the program was exported with dynamic shapes ('{tensor}' has the symbolic size \
             {symbol}); nnblob compiles for one input shape: export with static shapes, \
             torch.export.export(model.eval(), (x,)) without dynamic_shapes"
        )));
    }
    let parsed = nodes(program);
    if parsed.iter().any(is_training) {
        return Err(program_problem(training_mode()));
    }
    let mut lw = Lowering {
        program,
        graph: Graph::empty(name),
        slots: HashMap::new(),
        layer_names: HashSet::new(),
    };
    let mut problems = Vec::new();
    let mut params = HashSet::new();
    for spec in &program.graph_module.signature.input_specs {
        match InputSpec::from_json(spec) {
            Some(InputSpec::Parameter { arg, key }) | Some(InputSpec::Buffer { arg, key }) => {
                let shape = lw.recorded_shape(&arg).unwrap_or_default();
                params.insert(arg.clone());
                lw.slots.insert(arg, Slot::Param(key, shape));
            }
            Some(InputSpec::User { arg }) => match lw.recorded_shape(&arg) {
                _ if g
                    .tensor_values
                    .get(&arg)
                    .is_some_and(|m| m.dtype != FLOAT32) =>
                {
                    lw.slots.insert(arg.clone(), Slot::Missing);
                    let code = g.tensor_values[&arg].dtype;
                    let dtype =
                        schema::dtype(code).map_or(format!("code {code}"), |d| d.to_string());
                    problems.push(Problem {
                        node: String::new(),
                        target: String::new(),
                        at: None,
                        message: format!(
                            "input '{arg}' is {dtype}: nnblob runs float32 inputs (export with a \
                             float32 example input)"
                        ),
                    })
                }
                Some(shape) if shape.first() == Some(&1) => {
                    let v = lw.graph.push_value(&arg, shape);
                    lw.graph.inputs.push(v);
                    lw.slots.insert(arg, Slot::Value(v));
                }
                Some(shape) => {
                    lw.slots.insert(arg.clone(), Slot::Missing);
                    problems.push(Problem {
                        node: String::new(),
                        target: String::new(),
                        at: None,
                        message: format!(
                        "input '{arg}' has shape {}: nnblob runs batch 1, export with an example \
                         input of batch 1",
                        crate::graph::fmt_shape(&shape)
                    ),
                    })
                }
                None => {
                    return Err(program_problem(format!(
                        "input '{arg}' has no recorded shape"
                    )))
                }
            },
            Some(InputSpec::Other { arg, kind }) => {
                lw.slots.insert(arg.clone(), Slot::Missing);
                problems.push(Problem {
                    node: String::new(),
                    target: String::new(),
                    at: None,
                    message: format!(
                        "input '{arg}' is a {kind}, which nnblob does not read yet (only \
                         parameters, buffers and tensor inputs)"
                    ),
                })
            }
            None => {
                return Err(program_problem(
                    "an input spec of the graph signature cannot be read",
                ))
            }
        }
    }
    let mut outputs = Vec::new();
    for spec in &program.graph_module.signature.output_specs {
        match schema::user_output(spec) {
            Some(Ok(t)) => outputs.push(t),
            // Buffer updates (a BatchNorm in training mode) and the like: not outputs of the model.
            Some(Err(_)) => {}
            None => {
                return Err(program_problem(
                    "an output spec of the graph signature cannot be read",
                ))
            }
        }
    }
    if outputs.is_empty() && !g.outputs.is_empty() {
        return Err(program_problem("the program has no tensor output"));
    }
    let nodes = fold_patterns(parsed, &params, &outputs);
    // Nodes reading what a failed node did not compute are not reported again, unless their op
    // is unsupported in itself: every unsupported op is named at once, each target once.
    let mut unsupported: BTreeMap<String, usize> = BTreeMap::new();
    for n in &nodes {
        let inputs_missing = n
            .tensor_args()
            .any(|t| matches!(lw.slots.get(t), Some(Slot::Missing)));
        let Err(message) = lower_node(&mut lw, n) else {
            continue;
        };
        for o in n.outputs.iter().flatten() {
            lw.slots.insert(o.clone(), Slot::Missing);
        }
        let is_unsupported = message == NOT_SUPPORTED;
        if is_unsupported {
            let seen = unsupported.entry(n.target.clone()).or_insert(0);
            *seen += 1;
            if *seen > 1 {
                continue;
            }
        } else if inputs_missing {
            continue;
        }
        problems.push(Problem {
            node: n.name.clone(),
            target: n.target.clone(),
            at: n.at.clone(),
            message,
        });
    }
    for p in &mut problems {
        if let Some(&count) = unsupported.get(&p.target).filter(|&&c| c > 1) {
            p.message = p.message.replacen(
                "not supported yet",
                &format!("not supported yet ({count} such nodes)"),
                1,
            );
        }
    }
    if problems.is_empty() {
        for o in &outputs {
            match lw.slots.get(o) {
                Some(Slot::Value(v)) => lw.graph.outputs.push(*v),
                _ => problems.push(Problem {
                    node: String::new(),
                    target: String::new(),
                    at: None,
                    message: format!(
                        "output '{o}' is not a computed tensor (a parameter returned as it is?)"
                    ),
                }),
            }
        }
    }
    if !problems.is_empty() {
        return Err(LowerError { problems });
    }
    let mut graph = lw.graph;
    // Outputs keep the export's names: a value read through identities may carry another name.
    for (&v, o) in graph.outputs.clone().iter().zip(&outputs) {
        if graph.inputs.contains(&v) {
            continue;
        }
        graph.values[v].name = o.clone();
    }
    graph.check().map_err(|e| program_problem(e.to_string()))?;
    Ok(graph)
}

fn value(lw: &Lowering<'_>, name: &str) -> NodeResult<ValueId> {
    match lw.slot(name)? {
        Slot::Value(v) => Ok(v),
        Slot::Param(key, _) => Err(format!(
            "uses the parameter '{key}' as data; nnblob takes parameters only as the weights of \
             the layers that own them"
        )),
        Slot::Missing => Err(format!("reads '{name}', which nnblob does not compute")),
    }
}

fn param(lw: &Lowering<'_>, name: &str) -> NodeResult<(String, Vec<usize>)> {
    match lw.slot(name)? {
        Slot::Param(key, shape) => Ok((key, shape)),
        _ => Err(format!("'{name}' is not a parameter: nnblob needs this layer's weights as parameters of the model")),
    }
}

/// The module owning a layer's parameters: `weight` must be `<module>.weight` and every other
/// named parameter `<module>.<suffix>`.
fn owning_module(lw: &Lowering<'_>, params: &[(&str, Option<&str>)]) -> NodeResult<String> {
    let mut module: Option<String> = None;
    for (suffix, tensor) in params {
        let Some(tensor) = tensor else { continue };
        let (key, _) = param(lw, tensor)?;
        let m = module_of(&key, suffix).ok_or_else(|| {
            format!("its {suffix} is the state_dict entry '{key}', which is not named '<module>.{suffix}'")
        })?;
        match &module {
            Some(prev) if *prev != m => {
                return Err(format!(
                    "its parameters belong to two modules ('{prev}' and '{m}'); nnblob needs one module per layer"
                ))
            }
            _ => module = Some(m),
        }
    }
    module.ok_or_else(|| "has no parameters".to_string())
}

/// Lowers one node: records its outputs' slots, or says why it cannot be lowered.
fn lower_node(lw: &mut Lowering<'_>, n: &ANode) -> NodeResult<()> {
    let a = Args { node: n };
    let out = n.out().unwrap_or(&n.name).to_string();
    let t = n.target.as_str();
    let identity = |lw: &mut Lowering<'_>, input: &str| -> NodeResult<()> {
        let s = lw.slot(input)?;
        lw.slots.insert(out.clone(), s);
        Ok(())
    };
    let simple = |lw: &mut Lowering<'_>, op: Op| -> NodeResult<()> {
        let x = value(lw, a.tensor("self").or_else(|_| a.tensor("input"))?)?;
        let v = lw.push(&n.name, None, op, vec![x], &out, true)?;
        lw.slots.insert(out.clone(), Slot::Value(v));
        Ok(())
    };
    let act = |lw: &mut Lowering<'_>, act: Activation| simple(lw, Op::Activation(act));
    let base = t.rsplit_once('.').map_or(t, |(b, _)| b);
    match base {
        "aten.conv1d"
        | "aten.conv2d"
        | "aten.convolution"
        | "aten.conv_transpose1d"
        | "aten.conv_transpose2d" => {
            let transposed =
                base.starts_with("aten.conv_transpose") || a.flag("transposed", false)?;
            let (x, w, b) = (
                a.tensor("input")?,
                a.tensor("weight")?,
                a.opt_tensor("bias")?,
            );
            let module = owning_module(lw, &[("weight", Some(w)), ("bias", b)])?;
            let (_, ws) = param(lw, w)?;
            let x = value(lw, x)?;
            let rank = ws
                .len()
                .checked_sub(2)
                .filter(|r| (1..=2).contains(r))
                .ok_or_else(|| {
                    format!(
                        "weight of shape {} is not a 1-d or 2-d convolution's",
                        crate::graph::fmt_shape(&ws)
                    )
                })?;
            let groups = usize::try_from(a.int("groups", 1)?).map_err(|_| "groups is negative")?;
            let lift = |v: [usize; 2], one: usize| if rank == 1 { [one, v[1]] } else { v };
            let per_axis = |name: &str, default: i64| -> NodeResult<[usize; 2]> {
                let v = a.ints(name, &[default])?;
                let p = pair(&v, name)?;
                Ok(if rank == 1 { [p[0], p[0]] } else { p })
            };
            let stride = lift(per_axis("stride", 1)?, 1);
            let dilation = lift(per_axis("dilation", 1)?, 1);
            let kernel = if rank == 1 {
                [1, ws[2]]
            } else {
                [ws[2], ws[3]]
            };
            crate::graph::ops::check_window(kernel, stride, dilation)?;
            let padding = match a.get("padding") {
                Some(Arg::Str(mode)) if mode == "valid" => Padding::default(),
                Some(Arg::Str(mode)) if mode == "same" => {
                    let total = |k: usize, d: usize| {
                        d.checked_mul(k - 1)
                            .ok_or_else(|| format!("dilation {dilation:?} is too large"))
                    };
                    let (th, tw) = (
                        total(kernel[0], dilation[0])?,
                        total(kernel[1], dilation[1])?,
                    );
                    Padding {
                        top: th / 2,
                        bottom: th - th / 2,
                        left: tw / 2,
                        right: tw - tw / 2,
                    }
                }
                Some(Arg::Str(mode)) => return Err(format!("padding '{mode}' is not supported")),
                _ => {
                    let p = per_axis("padding", 0)?;
                    let [ph, pw] = if rank == 1 { [0, p[1]] } else { p };
                    Padding {
                        top: ph,
                        bottom: ph,
                        left: pw,
                        right: pw,
                    }
                }
            };
            let output_padding = a.ints("output_padding", &[0])?;
            if !transposed && output_padding.iter().any(|&p| p != 0) {
                return Err("output_padding is not supported".into());
            }
            let op = if transposed {
                let output_padding = lift(per_axis("output_padding", 0)?, 0);
                Op::ConvTranspose(ConvTranspose {
                    rank,
                    in_channels: ws[0],
                    out_channels: ws[1] * groups,
                    kernel,
                    stride,
                    dilation,
                    padding: [padding.top, padding.left],
                    output_padding,
                    groups,
                    bias: b.is_some(),
                })
            } else {
                Op::Conv(Conv {
                    rank,
                    in_channels: ws[1] * groups,
                    out_channels: ws[0],
                    kernel,
                    stride,
                    dilation,
                    padding,
                    groups,
                    bias: b.is_some(),
                })
            };
            let v = lw.push(&module, Some(module.clone()), op, vec![x], &out, true)?;
            lw.slots.insert(out, Slot::Value(v));
        }
        "aten.linear" => {
            let (x, w, b) = (
                a.tensor("input")?,
                a.tensor("weight")?,
                a.opt_tensor("bias")?,
            );
            let module = owning_module(lw, &[("weight", Some(w)), ("bias", b)])?;
            let (_, ws) = param(lw, w)?;
            if ws.len() != 2 {
                return Err("the weight is not a matrix".into());
            }
            let x = value(lw, x)?;
            let op = Op::Linear(Linear {
                in_features: ws[1],
                out_features: ws[0],
                bias: b.is_some(),
            });
            let v = lw.push(&module, Some(module.clone()), op, vec![x], &out, true)?;
            lw.slots.insert(out, Slot::Value(v));
        }
        "aten.batch_norm" | "aten._native_batch_norm_legit_no_training" => {
            let x = a.tensor("input")?;
            let (w, b) = (a.opt_tensor("weight")?, a.opt_tensor("bias")?);
            let (m, var) = (a.opt_tensor("running_mean")?, a.opt_tensor("running_var")?);
            if w.is_none() || b.is_none() || m.is_none() || var.is_none() {
                return Err("BatchNorm without affine parameters or running statistics is not supported (affine=True and track_running_stats=True are)".into());
            }
            let module = owning_module(
                lw,
                &[
                    ("weight", w),
                    ("bias", b),
                    ("running_mean", m),
                    ("running_var", var),
                ],
            )?;
            let x = value(lw, x)?;
            let xs = lw.graph.shape(x).to_vec();
            let rank = if xs.len() == 4 { 2 } else { 1 };
            let c = *xs.get(1).ok_or("the input has no channel axis")?;
            let op = Op::BatchNorm(BatchNorm {
                rank,
                num_features: c,
                eps: a.float("eps", 1e-5)?,
            });
            let v = lw.push(&module, Some(module.clone()), op, vec![x], &out, true)?;
            lw.slots.insert(out, Slot::Value(v));
            // Saved mean and inverse std of the decomposed form: not computed in eval mode.
            for o in n.outputs.iter().skip(1).flatten() {
                lw.slots.insert(o.clone(), Slot::Missing);
            }
        }
        "aten.layer_norm"
        | "aten.native_layer_norm"
        | "aten.group_norm"
        | "aten.native_group_norm" => {
            let x = value(lw, a.tensor("input")?)?;
            let (w, b) = (a.opt_tensor("weight")?, a.opt_tensor("bias")?);
            let eps = a.float("eps", 1e-5)?;
            let op = if base.ends_with("layer_norm") {
                let shape = a.ints("normalized_shape", &[])?;
                if shape.iter().any(|&d| d < 1) {
                    return Err(format!("normalized_shape {shape:?} is not a shape"));
                }
                if w.is_none() && b.is_some() {
                    return Err("a LayerNorm bias without a weight is not supported".into());
                }
                Op::LayerNorm(LayerNorm {
                    shape: shape.into_iter().map(|d| d as usize).collect(),
                    eps,
                    affine: w.is_some(),
                    bias: b.is_some(),
                })
            } else {
                // The export form names the groups `num_groups`, the core form `group`.
                let groups = a.int("num_groups", a.int("group", 0)?)?;
                if w.is_some() != b.is_some() || groups < 1 {
                    return Err(
                        "GroupNorm needs a group count and both or neither of weight and bias"
                            .into(),
                    );
                }
                let c = lw.graph.shape(x).get(1).copied();
                Op::GroupNorm(GroupNorm {
                    groups: groups as usize,
                    channels: c.filter(|_| w.is_some()),
                    eps,
                    affine: w.is_some(),
                })
            };
            let module = match w {
                Some(_) => Some(owning_module(lw, &[("weight", w), ("bias", b)])?),
                None => None,
            };
            let name = module.clone().unwrap_or_else(|| n.name.clone());
            let v = lw.push(&name, module, op, vec![x], &out, true)?;
            lw.slots.insert(out, Slot::Value(v));
            // The decomposed forms' saved mean and inverse std: not computed.
            for o in n.outputs.iter().skip(1).flatten() {
                lw.slots.insert(o.clone(), Slot::Missing);
            }
        }
        "aten.relu" | "aten.relu_" => act(lw, Activation::Relu)?,
        "aten.relu6" | "aten.relu6_" => act(lw, Activation::Relu6)?,
        "aten.hardtanh" | "aten.hardtanh_" | "aten.clamp" | "aten.clamp_" => {
            let (lo, hi) = if base.starts_with("aten.hardtanh") {
                (
                    Some(a.float("min_val", -1.0)?),
                    Some(a.float("max_val", 1.0)?),
                )
            } else {
                (
                    a.get("min").map(|_| a.float("min", 0.0)).transpose()?,
                    a.get("max").map(|_| a.float("max", 0.0)).transpose()?,
                )
            };
            match (lo, hi) {
                (Some(l), Some(h)) if l == 0.0 && h == 6.0 => act(lw, Activation::Relu6)?,
                (Some(0.0), None) => act(lw, Activation::Relu)?,
                _ => {
                    return Err(format!(
                        "clamping to [{}, {}] is not supported yet (ReLU and ReLU6 are)",
                        fmt_bound(lo),
                        fmt_bound(hi)
                    ))
                }
            }
        }
        "aten.silu" | "aten.silu_" => act(lw, Activation::Silu)?,
        "aten.hardswish" | "aten.hardswish_" => act(lw, Activation::Hardswish)?,
        "aten.hardsigmoid" | "aten.hardsigmoid_" => act(lw, Activation::Hardsigmoid)?,
        "aten.sigmoid" | "aten.sigmoid_" => act(lw, Activation::Sigmoid)?,
        "aten.tanh" | "aten.tanh_" => act(lw, Activation::Tanh)?,
        "aten.gelu" | "aten.gelu_" => {
            let tanh = match a.get("approximate") {
                None => false,
                Some(Arg::Str(s)) if s == "none" => false,
                Some(Arg::Str(s)) if s == "tanh" => true,
                Some(other) => return Err(format!("approximate={other:?} is not supported")),
            };
            act(lw, Activation::Gelu { tanh })?
        }
        "aten.leaky_relu" | "aten.leaky_relu_" => {
            let negative_slope = a.float("negative_slope", 0.01)? as f32;
            act(lw, Activation::LeakyRelu { negative_slope })?
        }
        "aten.prelu" | "aten._prelu_kernel" => {
            let (x, w) = (a.tensor("self")?, a.tensor("weight")?);
            let module = owning_module(lw, &[("weight", Some(w))])?;
            let (_, ws) = param(lw, w)?;
            let x = value(lw, x)?;
            let op = Op::PRelu(PRelu {
                num_parameters: ws.iter().product(),
            });
            let v = lw.push(&module, Some(module.clone()), op, vec![x], &out, true)?;
            lw.slots.insert(out, Slot::Value(v));
        }
        "aten.softmax" | "aten._softmax" => simple(
            lw,
            Op::Softmax(Softmax {
                dim: a.int("dim", -1)?,
            }),
        )?,
        "aten.max_pool1d"
        | "aten.max_pool2d"
        | "aten.max_pool2d_with_indices"
        | "aten.avg_pool1d"
        | "aten.avg_pool2d" => {
            let rank = if base.ends_with("1d") { 1 } else { 2 };
            let max = base.starts_with("aten.max");
            // A 1-d argument is the second axis of the height-1 pool.
            let axes = |name: &str, default: &[i64]| -> NodeResult<Option<[usize; 2]>> {
                let v = a.ints(name, default)?;
                match (rank, v.len()) {
                    (_, 0) => Ok(None),
                    (1, 1) => Ok(Some([1, pair(&v, name)?[1]])),
                    (1, _) => Err(format!("{name} {v:?} is not one integer")),
                    _ => pair(&v, name).map(Some),
                }
            };
            let kernel = axes("kernel_size", &[])?.ok_or("kernel_size is missing")?;
            let stride = axes("stride", &[])?.unwrap_or(kernel);
            let padding = axes("padding", &[0])?.unwrap_or([0, 0]);
            // A 1-d pool has no vertical padding.
            let padding = if rank == 1 { [0, padding[1]] } else { padding };
            let dilation = if max {
                axes("dilation", &[1])?.unwrap_or([1, 1])
            } else {
                [1, 1]
            };
            if !max && a.get("divisor_override").is_some() {
                return Err("divisor_override is not supported".into());
            }
            let op = Op::Pool(Pool {
                kind: if max { PoolKind::Max } else { PoolKind::Avg },
                rank,
                kernel,
                stride,
                padding,
                dilation,
                ceil_mode: a.flag("ceil_mode", false)?,
                count_include_pad: !max && a.flag("count_include_pad", true)?,
            });
            simple(lw, op)?;
            for o in n.outputs.iter().skip(1).flatten() {
                lw.slots.insert(o.clone(), Slot::Missing);
            }
        }
        "aten.adaptive_avg_pool1d"
        | "aten.adaptive_avg_pool2d"
        | "aten._adaptive_avg_pool2d"
        | "aten.adaptive_max_pool1d"
        | "aten.adaptive_max_pool2d" => {
            let rank = if base.ends_with("1d") { 1 } else { 2 };
            let size = a.ints("output_size", &[])?;
            let [h, w] = match rank {
                1 if size.len() == 1 => [1, pair(&size, "output_size")?[1]],
                1 => return Err(format!("output_size {size:?} is not one integer")),
                _ => pair(&size, "output_size")?,
            };
            let max = base.contains("max");
            let op = Op::AdaptivePool(AdaptivePool {
                kind: if max { PoolKind::Max } else { PoolKind::Avg },
                rank,
                output: [Some(h), Some(w)],
            });
            simple(lw, op)?;
            // The max pools' second output, the indices, is not computed.
            for o in n.outputs.iter().skip(1).flatten() {
                lw.slots.insert(o.clone(), Slot::Missing);
            }
        }
        "aten.upsample_nearest1d"
        | "aten.upsample_nearest2d"
        | "aten.upsample_linear1d"
        | "aten.upsample_bilinear2d" => {
            let mode = match base {
                "aten.upsample_linear1d" => ResampleMode::Linear,
                "aten.upsample_bilinear2d" => ResampleMode::Bilinear,
                _ => ResampleMode::Nearest,
            };
            let align_corners = mode != ResampleMode::Nearest && a.flag("align_corners", false)?;
            // `.vec` takes PyTorch's factors as `scale_factors` (or an `output_size`); the
            // default overload an `output_size` and the factors one per axis.
            let factors: Vec<f64> = match a.get("scale_factors") {
                Some(Arg::Floats(f)) => f.clone(),
                Some(other) => return Err(format!("scale_factors is {other:?}, expected numbers")),
                None => {
                    let keys: &[&str] = if base.ends_with("2d") {
                        &["scales_h", "scales_w"]
                    } else {
                        &["scales"]
                    };
                    let given: Vec<f64> = keys
                        .iter()
                        .filter(|k| a.get(k).is_some())
                        .map(|k| a.float(k, 0.0))
                        .collect::<NodeResult<_>>()?;
                    if !given.is_empty() && given.len() != keys.len() {
                        return Err("a scale factor for one axis only is not supported".into());
                    }
                    given
                }
            };
            let size = a.ints("output_size", &[])?;
            let target = match (factors.is_empty(), size.is_empty()) {
                (false, _) => Target::ScaleFactor(factors),
                (true, false) if size.iter().all(|&d| d > 0) => {
                    Target::Size(size.into_iter().map(|d| d as usize).collect())
                }
                _ => return Err(format!("output_size {size:?} and no scale factors")),
            };
            let op = Op::Upsample(Upsample {
                mode,
                target,
                align_corners,
                recompute_scale_factor: false,
            });
            simple(lw, op)?;
        }
        "aten.mean" => {
            let mut v = value(lw, a.tensor("self")?)?;
            let xs = lw.graph.shape(v).to_vec();
            let mut dims: Vec<usize> = a
                .ints("dim", &[])?
                .iter()
                .map(|&d| resolve_dim(d, xs.len()))
                .collect::<Result<_, _>>()?;
            dims.sort_unstable();
            dims.dedup();
            if dims.is_empty() {
                return Err("a mean over every axis is not supported yet".into());
            }
            let ops = crate::graph::spec::forms::mean_ops(&xs, &dims, a.flag("keepdim", false)?);
            let last = ops.len() - 1;
            for (i, op) in ops.into_iter().enumerate() {
                let (name, to) = if i == last {
                    (n.name.clone(), out.clone())
                } else {
                    (format!("{}.{i}", n.name), format!("{out}.{i}"))
                };
                v = lw.push(&name, None, op, vec![v], &to, i == last)?;
            }
            lw.slots.insert(out, Slot::Value(v));
        }
        "aten.add" | "aten.add_" | "aten.mul" | "aten.mul_" | "aten.sub" | "aten.div" => {
            let x = value(lw, a.tensor("self")?)?;
            let alpha = a.float("alpha", 1.0)?;
            let op = match (base, a.get("other")) {
                ("aten.add" | "aten.add_" | "aten.mul" | "aten.mul_", Some(Arg::Tensor(t))) => {
                    if alpha != 1.0 {
                        return Err("add with alpha other than 1 is not supported".into());
                    }
                    let kind = if base.starts_with("aten.add") {
                        BinaryKind::Add
                    } else {
                        BinaryKind::Mul
                    };
                    let y = value(lw, t)?;
                    let v = lw.push(
                        &n.name,
                        None,
                        Op::Binary(Binary { kind }),
                        vec![x, y],
                        &out,
                        true,
                    )?;
                    lw.slots.insert(out, Slot::Value(v));
                    return Ok(());
                }
                (_, Some(Arg::Tensor(_))) => {
                    return Err(format!(
                        "{} of two tensors is not supported yet",
                        op_name(t)
                    ))
                }
                (_, Some(c)) => {
                    let c = scalar(Some(c))
                        .ok_or_else(|| format!("argument 'other' is {c:?}, expected a number"))?;
                    // `x + alpha * c`, `x - alpha * c`, `x * c`, `x / c`.
                    match base {
                        "aten.add" | "aten.add_" => Affine {
                            scale: 1.0,
                            shift: alpha * c,
                        },
                        "aten.sub" => Affine {
                            scale: 1.0,
                            shift: -alpha * c,
                        },
                        "aten.div" if c != 0.0 && a.get("rounding_mode").is_none() => Affine {
                            scale: 1.0 / c,
                            shift: 0.0,
                        },
                        "aten.div" => {
                            return Err("division by zero, or with a rounding mode".into())
                        }
                        _ => Affine {
                            scale: c,
                            shift: 0.0,
                        },
                    }
                }
                (_, None) => return Err("argument 'other' is missing".into()),
            };
            simple(lw, Op::Affine(op))?;
        }
        "aten.matmul" | "aten.bmm" => {
            let (x, y) = (
                value(lw, a.tensor("self")?)?,
                value(
                    lw,
                    a.tensor(if base == "aten.bmm" { "mat2" } else { "other" })?,
                )?,
            );
            let v = lw.push(&n.name, None, Op::MatMul(MatMul), vec![x, y], &out, true)?;
            lw.slots.insert(out, Slot::Value(v));
        }
        "aten.expand" => {
            // Only to the shape the tensor has (Core ATen's matmul writes one before each `bmm`).
            let input = a.tensor("self")?;
            let x = value(lw, input)?;
            let shape = lw.graph.shape(x).to_vec();
            let want = a.ints("size", &[])?;
            let same = want.len() == shape.len()
                && want
                    .iter()
                    .zip(&shape)
                    .all(|(&w, &d)| w == -1 || w == d as i64);
            if !same {
                return Err(format!("expand of {shape:?} to {want:?} (a broadcast that copies data) is not supported yet"));
            }
            identity(lw, input)?;
        }
        "aten.cat" | "aten.concat" => {
            let Some(Arg::Tensors(ts)) = a.get("tensors") else {
                return Err("argument 'tensors' is not a list of tensors".into());
            };
            let xs = ts
                .iter()
                .map(|t| value(lw, t))
                .collect::<NodeResult<Vec<_>>>()?;
            let v = lw.push(
                &n.name,
                None,
                Op::Concat(Concat {
                    dim: a.int("dim", 0)?,
                }),
                xs,
                &out,
                true,
            )?;
            lw.slots.insert(out, Slot::Value(v));
        }
        "aten.chunk" | "aten.split" | "aten.split_with_sizes" | "aten.tensor_split" => {
            if base == "aten.tensor_split" {
                return Err("tensor_split is not supported yet (chunk and split are)".into());
            }
            let x = value(lw, a.tensor("self")?)?;
            let xs = lw.graph.shape(x).to_vec();
            let dim = a.int("dim", 0)?;
            let axis = resolve_dim(dim, xs.len())?;
            let len = xs[axis];
            let sizes: Vec<usize> = match base {
                "aten.chunk" => {
                    let chunks = usize::try_from(a.int("chunks", 1)?)
                        .ok()
                        .filter(|&c| c > 0)
                        .ok_or("chunks must be positive")?;
                    let each = len.div_ceil(chunks).max(1);
                    (0..len).step_by(each).map(|s| each.min(len - s)).collect()
                }
                "aten.split" => match a.get("split_size") {
                    Some(Arg::Int(each)) => {
                        let each = usize::try_from(*each)
                            .ok()
                            .filter(|&e| e > 0)
                            .ok_or("split_size must be positive")?;
                        (0..len).step_by(each).map(|s| each.min(len - s)).collect()
                    }
                    _ => a
                        .ints("split_size", &[])?
                        .iter()
                        .map(|&s| s as usize)
                        .collect(),
                },
                _ => a
                    .ints("split_sizes", &[])?
                    .iter()
                    .map(|&s| s as usize)
                    .collect(),
            };
            if sizes.iter().sum::<usize>() != len || sizes.len() < n.outputs.len() {
                return Err(format!(
                    "parts {sizes:?} do not split the {len} entries of dim {dim}"
                ));
            }
            let mut start = 0;
            for (k, (o, size)) in n.outputs.iter().zip(&sizes).enumerate() {
                let slice = Slice {
                    dim,
                    start: start as i64,
                    end: (start + size) as i64,
                    step: 1,
                };
                start += size;
                let Some(o) = o else { continue };
                let v = lw.push(
                    &format!("{}.{k}", n.name),
                    None,
                    Op::Slice(slice),
                    vec![x],
                    o,
                    true,
                )?;
                lw.slots.insert(o.clone(), Slot::Value(v));
            }
        }
        "aten.slice" => {
            let slice = Slice {
                dim: a.int("dim", 0)?,
                start: a.opt_int("start")?.unwrap_or(0),
                end: a.opt_int("end")?.unwrap_or(i64::MAX),
                step: a.int("step", 1)?,
            };
            let x = value(lw, a.tensor("self")?)?;
            let xs = lw.graph.shape(x).to_vec();
            let (axis, start, len) = slice.resolve(&xs)?;
            if start == 0 && len == xs[axis] {
                identity(lw, a.tensor("self")?)?;
            } else {
                let v = lw.push(&n.name, None, Op::Slice(slice), vec![x], &out, true)?;
                lw.slots.insert(out, Slot::Value(v));
            }
        }
        "aten.select" => {
            let x = value(lw, a.tensor("self")?)?;
            let xs = lw.graph.shape(x).to_vec();
            let dim = a.int("dim", 0)?;
            let axis = resolve_dim(dim, xs.len())?;
            let index = a.int("index", 0)?;
            let index = if index < 0 {
                index + xs[axis] as i64
            } else {
                index
            };
            let slice = Slice {
                dim,
                start: index,
                end: index + 1,
                step: 1,
            };
            let picked = format!("{out}.picked");
            let v = lw.push(&n.name, None, Op::Slice(slice), vec![x], &picked, false)?;
            let mut shape: Vec<i64> = xs.iter().map(|&d| d as i64).collect();
            shape.remove(axis);
            let v = lw.push(
                &format!("{}.squeeze", n.name),
                None,
                Op::Reshape(Reshape { shape }),
                vec![v],
                &out,
                true,
            )?;
            lw.slots.insert(out, Slot::Value(v));
        }
        "aten.view" | "aten.reshape" | "aten._unsafe_view" | "aten.unsqueeze" | "aten.squeeze"
        | "aten.flatten" => {
            let input = a.tensor("self")?;
            let x = value(lw, input)?;
            let op = if base == "aten.flatten" {
                Op::Flatten(Flatten {
                    start_dim: a.int("start_dim", 0)?,
                    end_dim: a.int("end_dim", -1)?,
                })
            } else {
                let shape = lw
                    .recorded_shape(&out)
                    .ok_or("the output's shape is symbolic")?;
                Op::Reshape(Reshape {
                    shape: shape.iter().map(|&d| d as i64).collect(),
                })
            };
            let v = lw.push(&n.name, None, op, vec![x], &out, true)?;
            lw.slots.insert(out, Slot::Value(v));
        }
        "aten.permute" | "aten.transpose" | "aten.t" | "aten.numpy_T" => {
            let x = value(lw, a.tensor("self")?)?;
            let rank = lw.graph.shape(x).len();
            let mut dims: Vec<usize> = (0..rank).collect();
            match base {
                "aten.permute" => {
                    dims = a
                        .ints("dims", &[])?
                        .iter()
                        .map(|&d| resolve_dim(d, rank))
                        .collect::<Result<_, _>>()?;
                }
                "aten.transpose" => {
                    let d0 = resolve_dim(a.int("dim0", 0)?, rank)?;
                    let d1 = resolve_dim(a.int("dim1", 1)?, rank)?;
                    dims.swap(d0, d1);
                }
                _ => dims.reverse(),
            }
            let v = lw.push(
                &n.name,
                None,
                Op::Permute(Permute { dims }),
                vec![x],
                &out,
                true,
            )?;
            lw.slots.insert(out, Slot::Value(v));
        }
        "aten.pad" | "aten.constant_pad_nd" => {
            if let Some(Arg::Str(mode)) = a.get("mode") {
                if mode != "constant" {
                    return Err(format!(
                        "padding mode '{mode}' is not supported yet (constant zeros is)"
                    ));
                }
            }
            if a.float("value", 0.0)? != 0.0 {
                return Err("padding with a value other than 0 is not supported".into());
            }
            let p = a.ints("pad", &[])?;
            let u = |v: i64| {
                usize::try_from(v)
                    .map_err(|_| format!("negative padding {p:?} (cropping) is not supported"))
            };
            let padding = match p.as_slice() {
                [l, r] => Padding {
                    left: u(*l)?,
                    right: u(*r)?,
                    top: 0,
                    bottom: 0,
                },
                [l, r, t, b] => Padding {
                    left: u(*l)?,
                    right: u(*r)?,
                    top: u(*t)?,
                    bottom: u(*b)?,
                },
                _ => return Err(format!("padding {p:?} is not 2 or 4 entries")),
            };
            simple(lw, Op::ZeroPad(ZeroPad { padding }))?
        }
        "aten.dropout"
        | "aten.dropout_"
        | "aten.feature_dropout"
        | "aten.alpha_dropout"
        | "aten.native_dropout" => {
            identity(lw, a.tensor("input").or_else(|_| a.tensor("self"))?)?;
            for o in n.outputs.iter().skip(1).flatten() {
                lw.slots.insert(o.clone(), Slot::Missing);
            }
        }
        "aten.contiguous"
        | "aten.clone"
        | "aten.alias"
        | "aten.detach"
        | "aten.detach_"
        | "aten.lift_fresh_copy" => identity(lw, a.tensor("self")?)?,
        "_operator.getitem" | "operator.getitem" => {
            return Err(
                "a tuple item read outside the op that made it; re-export with torch 2.5 or later"
                    .into(),
            );
        }
        _ => return Err(NOT_SUPPORTED.into()),
    }
    Ok(())
}

fn fmt_bound(b: Option<f64>) -> String {
    b.map_or("None".into(), |v| v.to_string())
}

/// Whether a node only exists in a program exported in training mode.
fn is_training(n: &ANode) -> bool {
    let base = n
        .target
        .rsplit_once('.')
        .map_or(n.target.as_str(), |(b, _)| b);
    match base {
        "aten._native_batch_norm_legit"
        | "aten._native_batch_norm_legit_functional"
        | "aten.native_batch_norm" => true,
        "aten.batch_norm" => n.arg("training") == Some(&Arg::Bool(true)),
        "aten.dropout"
        | "aten.dropout_"
        | "aten.feature_dropout"
        | "aten.alpha_dropout"
        | "aten.native_dropout" => n.arg("train") == Some(&Arg::Bool(true)),
        _ => false,
    }
}

fn training_mode() -> String {
    "the model was exported in training mode (BatchNorm updating its statistics, Dropout active): \
     call model.eval() before torch.export.export"
        .into()
}

#[cfg(test)]
mod tests {
    use super::source_line;

    /// The innermost frame outside torch: torchvision's line, not the top-level forward.
    #[test]
    fn the_source_line_is_the_innermost_outside_torch() {
        let trace = "File \"/home/u/net.py\", line 8, in forward\n    x = self.body(x)\n  \
            File \"/venv/lib/python3.11/site-packages/torch/nn/modules/container.py\", line 259, in forward\n    input = module(input)\n  \
            File \"/venv/lib/python3.11/site-packages/torchvision/models/convnext.py\", line 34, in forward\n    x = F.layer_norm(x, s)\n  \
            File \"/venv/lib/python3.11/site-packages/torch/nn/functional.py\", line 2900, in layer_norm\n    return torch.layer_norm(x)";
        assert_eq!(
            source_line(trace).unwrap(),
            "convnext.py:34 'x = F.layer_norm(x, s)'"
        );
        let only_torch = "File \"torch/nn/modules/conv.py\", line 5, in forward\n    return f(x)";
        assert_eq!(source_line(only_torch).unwrap(), "conv.py:5 'return f(x)'");
    }
}
