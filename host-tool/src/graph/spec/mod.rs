//! The spec language: a network described the way a PyTorch module reads.
//!
//! In: spec text (see `docs/SPEC.md`). Out: an unbound [`Graph`] with every shape inferred, or one
//! [`SpecError`] saying `file:line:column` and what was expected there. Modules are declared like
//! `__init__` (`conv1 = Conv2d(3, 16, 3, padding=1)`), with torch.nn's argument names and
//! defaults; the `forward:` section applies them and the functional ops to values.

mod ast;
mod lexer;
mod print;
mod signatures;

use std::collections::{BTreeMap, HashMap};

use super::{checked_numel, fmt_shape, Graph, Node, Op, Value, ValueId};
pub use print::to_spec;

use ast::{Expr, ExprKind, Stmt};
use signatures::{build, function_signature, module_signature, tensor_params, Args, Lit};

/// A spec that cannot be read: where and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{col}: {message}")]
pub struct SpecError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// Prefixes a spec may write before a module constructor (`nn.Conv2d`).
const MODULE_PREFIXES: &[&str] = &["torch.nn.", "nn."];
/// Prefixes a spec may write before a function (`F.relu`, `torch.flatten`).
const FUNCTION_PREFIXES: &[&str] = &["torch.nn.functional.", "nn.functional.", "F.", "torch."];

fn strip_any<'s>(s: &'s str, prefixes: &[&str]) -> &'s str {
    prefixes.iter().find_map(|p| s.strip_prefix(p)).unwrap_or(s)
}

/// Parses a spec into a graph named `name`. `file` is used in error messages only.
pub fn parse_spec(text: &str, file: &str, name: &str) -> Result<Graph, SpecError> {
    let toks = lexer::tokenize(text, file)?;
    let stmts = ast::Parser::new(toks, file).statements()?;
    let mut b = Builder {
        file,
        graph: Graph {
            name: name.to_string(),
            values: Vec::new(),
            nodes: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
        },
        modules: BTreeMap::new(),
        used: HashMap::new(),
        vars: HashMap::new(),
        counters: HashMap::new(),
    };
    let mut in_forward = false;
    let mut returned = false;
    for s in stmts {
        let err = |message: String| SpecError {
            file: file.to_string(),
            line: s.line,
            col: s.col,
            message,
        };
        if returned {
            return Err(err("nothing may follow the return statement".into()));
        }
        match s.stmt {
            Stmt::Input { name, dims } => {
                if in_forward {
                    return Err(err("inputs are declared before 'forward:'".into()));
                }
                if dims.iter().any(|&d| d <= 0) {
                    return Err(err(format!(
                        "input '{name}': dimensions must be positive, got {dims:?}"
                    )));
                }
                if b.vars.contains_key(&name) {
                    return Err(err(format!("input '{name}' is declared twice")));
                }
                let mut shape = vec![1];
                shape.extend(dims.iter().map(|&d| d as usize));
                checked_numel(&shape).map_err(|m| err(format!("input '{name}': {m}")))?;
                let v = b.new_value(&name, shape);
                b.graph.inputs.push(v);
                b.vars.insert(name, v);
            }
            Stmt::Forward => {
                if in_forward {
                    return Err(err("'forward:' appears twice".into()));
                }
                in_forward = true;
            }
            Stmt::Assign { name, value } if !in_forward => {
                b.declare(name, &value, s.line, s.col)?
            }
            Stmt::Assign { name, value } => {
                let v = b.value(&value)?;
                b.vars.insert(name, v);
            }
            Stmt::Return(exprs) => {
                if !in_forward {
                    return Err(err("'return' belongs in the forward section".into()));
                }
                for e in &exprs {
                    let v = b.value(e)?;
                    b.graph.outputs.push(v);
                }
                returned = true;
            }
        }
    }
    let end = |message: String| SpecError {
        file: file.to_string(),
        line: 1,
        col: 1,
        message,
    };
    if b.graph.inputs.is_empty() {
        return Err(end(
            "the spec declares no input (e.g. `input x: [3, 32, 32]`)".into(),
        ));
    }
    if !returned {
        return Err(end(
            "the spec has no `forward:` section ending in `return ...`".into(),
        ));
    }
    if let Some((unused, (_, line, col))) = b.modules.iter().find(|(m, _)| !b.used.contains_key(*m))
    {
        return Err(SpecError {
            file: file.to_string(),
            line: *line,
            col: *col,
            message: format!("module '{unused}' is declared but never called in forward"),
        });
    }
    Ok(b.graph)
}

/// A value while evaluating `forward`: a tensor, a constant, or a list of either.
enum Val {
    Tensor(ValueId),
    Lit(Lit),
    List(Vec<Val>),
}

struct Builder<'f> {
    file: &'f str,
    graph: Graph,
    /// Declared modules: name → (op, line, column).
    modules: BTreeMap<String, (Op, usize, usize)>,
    /// How many times each module has been called.
    used: HashMap<String, usize>,
    vars: HashMap<String, ValueId>,
    counters: HashMap<String, usize>,
}

impl Builder<'_> {
    fn err(&self, e: &Expr, message: String) -> SpecError {
        SpecError {
            file: self.file.to_string(),
            line: e.line,
            col: e.col,
            message,
        }
    }

    fn new_value(&mut self, name: &str, shape: Vec<usize>) -> ValueId {
        self.graph.values.push(Value {
            name: name.to_string(),
            shape,
        });
        self.graph.values.len() - 1
    }

    /// `name = Module(args)` before `forward:`.
    fn declare(
        &mut self,
        name: String,
        e: &Expr,
        line: usize,
        col: usize,
    ) -> Result<(), SpecError> {
        let ExprKind::Call {
            callee,
            args,
            kwargs,
        } = &e.kind
        else {
            return Err(self.err(
                e,
                format!(
                    "expected a module constructor for '{name}', e.g. `{name} = Conv2d(3, 16, 3)`"
                ),
            ));
        };
        let ctor = strip_any(callee, MODULE_PREFIXES);
        let Some(sig) = module_signature(ctor) else {
            return Err(self.err(
                e,
                format!(
                    "unknown module '{callee}' (supported: {})",
                    SUPPORTED_MODULES
                ),
            ));
        };
        let positional = args
            .iter()
            .map(|a| self.literal(a))
            .collect::<Result<Vec<_>, _>>()?;
        let keywords = kwargs
            .iter()
            .map(|(k, v)| Ok((k.clone(), self.literal(v)?)))
            .collect::<Result<Vec<_>, SpecError>>()?;
        let op = Args::bind(ctor, &sig, positional, keywords)
            .and_then(|a| build(ctor, &a))
            .map_err(|m| self.err(e, format!("module '{name}': {m}")))?;
        for (param, shape) in op.params() {
            checked_numel(&shape)
                .map_err(|m| self.err(e, format!("module '{name}': parameter '{param}': {m}")))?;
        }
        if self.modules.insert(name.clone(), (op, line, col)).is_some() {
            return Err(self.err(e, format!("module '{name}' is declared twice")));
        }
        Ok(())
    }

    /// A constant argument (numbers, strings, True/False/None, tuples and lists of them).
    fn literal(&self, e: &Expr) -> Result<Lit, SpecError> {
        Ok(match &e.kind {
            ExprKind::Int(i) => Lit::Int(*i),
            ExprKind::Float(f) => Lit::Float(*f),
            ExprKind::Str(s) => Lit::Str(s.clone()),
            ExprKind::Name(n) if n == "True" => Lit::Bool(true),
            ExprKind::Name(n) if n == "False" => Lit::Bool(false),
            ExprKind::Name(n) if n == "None" => Lit::None,
            ExprKind::Neg(inner) => match self.literal(inner)? {
                Lit::Int(i) => Lit::Int(-i),
                Lit::Float(f) => Lit::Float(-f),
                _ => return Err(self.err(e, "only numbers can be negated".into())),
            },
            ExprKind::Tuple(items) | ExprKind::List(items) => Lit::Tuple(
                items
                    .iter()
                    .map(|i| self.literal(i))
                    .collect::<Result<_, _>>()?,
            ),
            ExprKind::Binary(op, lhs, rhs) => match (self.literal(lhs)?, self.literal(rhs)?) {
                (Lit::Int(a), Lit::Int(b)) => {
                    let r = if *op == '+' {
                        a.checked_add(b)
                    } else {
                        a.checked_mul(b)
                    };
                    Lit::Int(r.ok_or_else(|| self.err(e, "integer overflow".into()))?)
                }
                _ => return Err(self.err(e, "constant arithmetic is on integers only".into())),
            },
            _ => {
                return Err(self.err(
                    e,
                    "expected a constant (a number, a string, True/False/None or a tuple)".into(),
                ))
            }
        })
    }

    /// Evaluates an expression of the forward section to a tensor.
    fn value(&mut self, e: &Expr) -> Result<ValueId, SpecError> {
        match self.eval(e)? {
            Val::Tensor(v) => Ok(v),
            _ => Err(self.err(e, "expected a tensor".into())),
        }
    }

    fn eval(&mut self, e: &Expr) -> Result<Val, SpecError> {
        match &e.kind {
            ExprKind::Name(n) if !matches!(n.as_str(), "True" | "False" | "None") => {
                match self.vars.get(n.strip_prefix("self.").unwrap_or(n)) {
                    Some(&v) => Ok(Val::Tensor(v)),
                    None => {
                        let known: Vec<&str> = self.vars.keys().map(String::as_str).collect();
                        Err(self.err(e, format!("unknown value '{n}'{}", closest_hint(n, &known))))
                    }
                }
            }
            ExprKind::List(items) | ExprKind::Tuple(items) => {
                let vals = items
                    .iter()
                    .map(|i| self.eval(i))
                    .collect::<Result<Vec<_>, _>>()?;
                if vals.iter().all(|v| matches!(v, Val::Lit(_))) {
                    let lits = vals.into_iter().filter_map(|v| match v {
                        Val::Lit(l) => Some(l),
                        _ => None,
                    });
                    Ok(Val::Lit(Lit::Tuple(lits.collect())))
                } else {
                    Ok(Val::List(vals))
                }
            }
            ExprKind::Binary(op, lhs, rhs) => {
                let (a, b) = (self.value(lhs)?, self.value(rhs)?);
                let function = if *op == '+' { "add" } else { "mul" };
                let args = Args::bind(function, &[], vec![], vec![]).map_err(|m| self.err(e, m))?;
                let op = build(function, &args).map_err(|m| self.err(e, m))?;
                let name = self.fresh_name(function);
                self.add_node(e, name, None, op, vec![a, b])
                    .map(Val::Tensor)
            }
            ExprKind::Call {
                callee,
                args,
                kwargs,
            } => self.call(e, callee, args, kwargs),
            _ => self.literal(e).map(Val::Lit),
        }
    }

    fn call(
        &mut self,
        e: &Expr,
        callee: &str,
        args: &[Expr],
        kwargs: &[(String, Expr)],
    ) -> Result<Val, SpecError> {
        let module = callee.strip_prefix("self.").unwrap_or(callee);
        if let Some((op, _, _)) = self.modules.get(module) {
            let op = op.clone();
            if !kwargs.is_empty() || args.len() != 1 {
                return Err(self.err(
                    e,
                    format!("module '{module}' is called with one tensor, e.g. `{module}(x)`"),
                ));
            }
            let input = self.value(&args[0])?;
            let calls = self.used.entry(module.to_string()).or_insert(0);
            *calls += 1;
            let name = if *calls == 1 {
                module.to_string()
            } else {
                format!("{module}#{calls}")
            };
            let has_params = !op.params().is_empty();
            let module_name = has_params.then(|| module.to_string());
            return self
                .add_node(e, name, module_name, op, vec![input])
                .map(Val::Tensor);
        }
        // `x.flatten(1)`: a method call on a value is the function with the value first.
        let mut args: Vec<&Expr> = args.iter().collect();
        let receiver;
        let mut function = strip_any(callee, FUNCTION_PREFIXES);
        if let Some((var, method)) = callee.rsplit_once('.') {
            if self.vars.contains_key(var) {
                receiver = Expr {
                    kind: ExprKind::Name(var.to_string()),
                    line: e.line,
                    col: e.col,
                };
                args.insert(0, &receiver);
                function = method;
            }
        }
        let Some((kind, sig)) = function_signature(function) else {
            let mut known: Vec<&str> = self.modules.keys().map(String::as_str).collect();
            known.extend(SUPPORTED_FUNCTIONS.split(", "));
            return Err(self.err(
                e,
                format!(
                    "unknown module or function '{callee}'{}",
                    closest_hint(callee, &known)
                ),
            ));
        };
        // Tensor arguments first (positional or by keyword), then the constant ones.
        let tensor_names = tensor_params(function);
        let mut inputs = Vec::new();
        let mut rest = Vec::new();
        let mut keywords = Vec::new();
        for (i, a) in args.iter().enumerate() {
            if i < tensor_names.len() {
                inputs.push(self.tensors(a)?);
            } else {
                rest.push(self.literal(a)?);
            }
        }
        for (k, v) in kwargs {
            if tensor_names.contains(&k.as_str()) {
                inputs.push(self.tensors(v)?);
            } else {
                keywords.push((k.clone(), self.literal(v)?));
            }
        }
        if inputs.len() != tensor_names.len() {
            return Err(self.err(
                e,
                format!(
                    "{function}() takes tensor argument(s) {}",
                    tensor_names.join(", ")
                ),
            ));
        }
        let op_args = Args::bind(function, &sig, rest, keywords).map_err(|m| self.err(e, m))?;
        let op = build(kind, &op_args).map_err(|m| self.err(e, m))?;
        let inputs: Vec<ValueId> = inputs.into_iter().flatten().collect();
        let base = match function {
            "concat" => "cat",
            "dropout1d" | "dropout2d" => "dropout",
            f => f,
        };
        let name = self.fresh_name(base);
        self.add_node(e, name, None, op, inputs).map(Val::Tensor)
    }

    /// A tensor argument, or a list of tensors (for `cat`).
    fn tensors(&mut self, e: &Expr) -> Result<Vec<ValueId>, SpecError> {
        match self.eval(e)? {
            Val::Tensor(v) => Ok(vec![v]),
            Val::List(items) => items
                .into_iter()
                .map(|v| match v {
                    Val::Tensor(v) => Ok(v),
                    _ => Err(self.err(e, "expected a list of tensors".into())),
                })
                .collect(),
            Val::Lit(_) => Err(self.err(e, "expected a tensor".into())),
        }
    }

    /// A fresh name `base_N` for a functional node, distinct from every module name.
    fn fresh_name(&mut self, base: &str) -> String {
        loop {
            let n = self.counters.entry(base.to_string()).or_insert(0);
            *n += 1;
            let name = format!("{base}_{n}");
            if !self.modules.contains_key(&name) {
                return name;
            }
        }
    }

    /// Adds a node named `name` and checks its shapes.
    fn add_node(
        &mut self,
        e: &Expr,
        name: String,
        module: Option<String>,
        op: Op,
        inputs: Vec<ValueId>,
    ) -> Result<ValueId, SpecError> {
        let shapes: Vec<&[usize]> = inputs.iter().map(|&v| self.graph.shape(v)).collect();
        let shape = op.infer(&shapes).map_err(|m| {
            let got: Vec<String> = shapes.iter().map(|s| fmt_shape(s)).collect();
            self.err(
                e,
                format!(
                    "layer '{name}' ({}): {m} [input shapes: {}]",
                    op.kind(),
                    got.join(", ")
                ),
            )
        })?;
        let output = self.new_value(&name, shape);
        self.graph.nodes.push(Node {
            name,
            module,
            op,
            inputs,
            output,
            fused: None,
            params: Vec::new(),
        });
        Ok(output)
    }
}

const SUPPORTED_MODULES: &str = "Conv1d, Conv2d, Linear, BatchNorm1d, BatchNorm2d, ReLU, ReLU6, LeakyReLU, PReLU, Sigmoid, Tanh, SiLU, Hardswish, Hardsigmoid, GELU, Softmax, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, ZeroPad2d, Flatten, Dropout";
const SUPPORTED_FUNCTIONS: &str = "relu, relu6, leaky_relu, sigmoid, tanh, silu, hardswish, hardsigmoid, gelu, softmax, flatten, reshape, permute, add, mul, cat, max_pool2d, avg_pool2d, adaptive_avg_pool2d, pad, dropout";

/// ` (did you mean 'x'?)` when some candidate is close to `name`.
pub(crate) fn closest_hint(name: &str, candidates: &[&str]) -> String {
    match crate::graph::bind::closest(name, candidates.iter().copied()) {
        Some(c) if crate::graph::bind::edit_distance(name, c) <= name.len().max(3) / 2 => {
            format!(" (did you mean '{c}'?)")
        }
        _ => String::new(),
    }
}
