//! The spec language: a network described the way a PyTorch module reads.
//!
//! In: spec text (see `docs/SPEC.md`). Out: an unbound [`Graph`] with every shape inferred, or one
//! [`SpecError`] saying `file:line:column` and what was expected there. Modules are declared like
//! `__init__` (`conv1 = Conv2d(3, 16, 3, padding=1)`), with torch.nn's argument names and
//! defaults; the `forward:` section applies them and the functional ops to values.

mod ast;
pub(crate) mod forms;
mod lexer;
mod print;
mod signatures;

use std::collections::{BTreeMap, HashMap};

use super::ops::{resolve_dim, Affine, Concat, Recurrent, Reshape, Slice};
use super::{checked_numel, fmt_shape, Graph, Op, ValueId};
use nnblob_format::meta::Cell;
pub use print::to_spec;

use ast::{Expr, ExprKind, Stmt, Subscript, Target};
use forms::{Form, IndexItem};
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
        graph: Graph::empty(name),
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
                b.vars.insert(name, Val::Tensor(v));
            }
            Stmt::Forward => {
                if in_forward {
                    return Err(err("'forward:' appears twice".into()));
                }
                in_forward = true;
            }
            Stmt::Assign { targets, value } if !in_forward => match &targets[..] {
                [Target::Name(name)] => b.declare(name.clone(), &value, s.line, s.col)?,
                _ => {
                    return Err(err(
                        "a module declaration names one module: `name = Module(...)`".into(),
                    ))
                }
            },
            Stmt::Assign { targets, value } => {
                let v = b.eval(&value)?;
                b.assign(&value, targets, v)?;
            }
            Stmt::Return(exprs) => {
                if !in_forward {
                    return Err(err("'return' belongs in the forward section".into()));
                }
                // `return (a, b)` is `return a, b`.
                let exprs = match &exprs[..] {
                    [Expr {
                        kind: ExprKind::Tuple(items),
                        ..
                    }] => items.clone(),
                    _ => exprs,
                };
                for e in &exprs {
                    let v = b.value(e)?;
                    if let ExprKind::Name(n) = &e.kind {
                        b.name_output(v, n);
                    }
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
    // Functional nodes nothing reads (the pieces of `x.chunk(4)[0]` not taken) compute nothing
    // of the outputs; a module's node stays, so that its keys are still expected.
    let g = &mut b.graph;
    while let Some(i) = (0..g.nodes.len()).rev().find(|&i| {
        let n = &g.nodes[i];
        n.module.is_none() && !g.outputs.contains(&n.output) && g.consumers(n.output).is_empty()
    }) {
        g.nodes.remove(i);
    }
    g.compact();
    Ok(b.graph)
}

/// A value while evaluating `forward`: a tensor, a constant, or a tuple of values (a list of
/// tensors for `cat`, the pieces of `chunk`).
#[derive(Clone, Debug)]
enum Val {
    Tensor(ValueId),
    Lit(Lit),
    List(Vec<Val>),
    /// A result nnblob cannot compute (an LSTM's `c_n`): an error where it is used.
    Unsupported(String),
}

/// What a call calls.
enum Callee {
    Module(String),
    /// A method of a value: `x.permute`, `x.view(...).size`.
    Method(Val, String),
    Function(String),
}

/// Methods whose arguments may be given one by one (`x.permute(0, 2, 1)`) or as one tuple
/// (`x.permute((0, 2, 1))`), and the parameter that collects them.
fn varargs_param(method: &str) -> Option<&'static str> {
    match method {
        "permute" => Some("dims"),
        "view" | "reshape" => Some("shape"),
        _ => None,
    }
}

/// A number constant as f64.
fn number(l: &Lit) -> Option<f64> {
    match l {
        Lit::Int(i) => Some(*i as f64),
        Lit::Float(f) => Some(*f),
        _ => None,
    }
}

/// `a op b` on integer constants (`//` floors, as in Python).
fn arith(op: char, a: &Lit, b: &Lit) -> Result<Lit, String> {
    let (Lit::Int(a), Lit::Int(b)) = (a, b) else {
        return Err("constant arithmetic is on integers only".into());
    };
    if op == '÷' {
        return if *b == 0 {
            Err("division by zero".into())
        } else {
            Ok(Lit::Float(*a as f64 / *b as f64))
        };
    }
    let r = match op {
        '+' => a.checked_add(*b),
        '-' => a.checked_sub(*b),
        '*' => a.checked_mul(*b),
        _ if *b == 0 => return Err("integer division by zero".into()),
        _ => a.checked_div(*b).map(|q| {
            if a % b != 0 && ((*a < 0) != (*b < 0)) {
                q - 1
            } else {
                q
            }
        }),
    };
    r.map(Lit::Int).ok_or_else(|| "integer overflow".into())
}

fn negate(l: Lit) -> Result<Lit, String> {
    match l {
        Lit::Int(i) => i
            .checked_neg()
            .map(Lit::Int)
            .ok_or_else(|| "integer overflow".into()),
        Lit::Float(f) => Ok(Lit::Float(-f)),
        _ => Err("only numbers can be negated".into()),
    }
}

/// `items[i]` or `items[a:b:c]` with Python's rules (negative indices count from the end).
fn index_sequence<T: Clone>(items: &[T], sub: &IndexItem) -> Result<Result<T, Vec<T>>, String> {
    let n = items.len();
    match *sub {
        IndexItem::At(i) => {
            let j = if i < 0 { i + n as i64 } else { i };
            if (0..n as i64).contains(&j) {
                Ok(Ok(items[j as usize].clone()))
            } else {
                Err(format!("index {i} is out of range for a tuple of {n}"))
            }
        }
        IndexItem::Range(start, stop, step) => {
            let (start, end, step) = forms::resolve_slice(n, start, stop, step)?;
            Ok(Err(items[start..end]
                .iter()
                .step_by(step)
                .cloned()
                .collect()))
        }
        _ => Err("a tuple is indexed by an integer or a slice".into()),
    }
}

struct Builder<'f> {
    file: &'f str,
    graph: Graph,
    /// Declared modules: name → (op, line, column).
    modules: BTreeMap<String, (Op, usize, usize)>,
    /// How many times each module has been called.
    used: HashMap<String, usize>,
    vars: HashMap<String, Val>,
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
        self.graph.push_value(name, shape)
    }

    /// Names output `v` after the name `return` gives it, unless that name is taken (by an
    /// input, an earlier output or another value) or `v` is an input or an earlier output.
    fn name_output(&mut self, v: ValueId, name: &str) {
        let g = &self.graph;
        let free = !name.contains('.')
            && !g.inputs.contains(&v)
            && !g.outputs.contains(&v)
            && !g.values.iter().any(|value| value.name == name);
        if free {
            self.graph.values[v].name = name.to_string();
        }
    }

    /// `a = value` or `a, b = value` in forward.
    fn assign(&mut self, e: &Expr, targets: Vec<Target>, v: Val) -> Result<(), SpecError> {
        let targets = match <[Target; 1]>::try_from(targets) {
            Ok([Target::Name(name)]) => {
                self.vars.insert(name, v);
                return Ok(());
            }
            Ok([Target::Tuple(items)]) => items,
            Err(targets) => targets,
        };
        let items = match v {
            Val::List(items) => items,
            Val::Lit(Lit::Tuple(items)) => items.into_iter().map(Val::Lit).collect(),
            _ => {
                return Err(self.err(
                    e,
                    format!("cannot unpack one value into {} names", targets.len()),
                ))
            }
        };
        if items.len() != targets.len() {
            let (expected, got) = (targets.len(), items.len());
            let what = if got > expected {
                "too many"
            } else {
                "not enough"
            };
            return Err(self.err(
                e,
                format!("{what} values to unpack (expected {expected}, got {got})"),
            ));
        }
        for (target, item) in targets.into_iter().zip(items) {
            self.assign(e, vec![target], item)?;
        }
        Ok(())
    }

    /// `name = Module(args)` before `forward:`.
    fn declare(
        &mut self,
        name: String,
        e: &Expr,
        line: usize,
        col: usize,
    ) -> Result<(), SpecError> {
        let ExprKind::Call { func, args, kwargs } = &e.kind else {
            return Err(self.err(
                e,
                format!(
                    "expected a module constructor for '{name}', e.g. `{name} = Conv2d(3, 16, 3)`"
                ),
            ));
        };
        let ExprKind::Name(callee) = &func.kind else {
            return Err(self.err(e, format!("expected a module constructor for '{name}'")));
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

    /// A constant argument of a module declaration (numbers, strings, True/False/None, tuples
    /// and lists of them, integer arithmetic).
    fn literal(&self, e: &Expr) -> Result<Lit, SpecError> {
        Ok(match &e.kind {
            ExprKind::Int(i) => Lit::Int(*i),
            ExprKind::Float(f) => Lit::Float(*f),
            ExprKind::Str(s) => Lit::Str(s.clone()),
            ExprKind::Name(n) if n == "True" => Lit::Bool(true),
            ExprKind::Name(n) if n == "False" => Lit::Bool(false),
            ExprKind::Name(n) if n == "None" => Lit::None,
            ExprKind::Neg(inner) => negate(self.literal(inner)?).map_err(|m| self.err(e, m))?,
            ExprKind::Tuple(items) | ExprKind::List(items) => Lit::Tuple(
                items
                    .iter()
                    .map(|i| self.literal(i))
                    .collect::<Result<_, _>>()?,
            ),
            ExprKind::Binary(op, lhs, rhs) => {
                arith(*op, &self.literal(lhs)?, &self.literal(rhs)?).map_err(|m| self.err(e, m))?
            }
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
            Val::Unsupported(why) => Err(self.err(e, why)),
            _ => Err(self.err(e, "expected a tensor".into())),
        }
    }

    fn eval(&mut self, e: &Expr) -> Result<Val, SpecError> {
        match &e.kind {
            ExprKind::Name(n) if !matches!(n.as_str(), "True" | "False" | "None") => {
                match self.path_value(e, n)? {
                    Some(v) => Ok(v),
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
            ExprKind::Neg(inner) => match self.eval(inner)? {
                Val::Lit(l) => negate(l).map(Val::Lit).map_err(|m| self.err(e, m)),
                _ => Err(self.err(e, "only numbers can be negated".into())),
            },
            ExprKind::Binary(op, lhs, rhs) => {
                let (a, b) = (self.eval(lhs)?, self.eval(rhs)?);
                match (a, b) {
                    (Val::Lit(a), Val::Lit(b)) => {
                        arith(*op, &a, &b).map(Val::Lit).map_err(|m| self.err(e, m))
                    }
                    (Val::Tensor(a), Val::Tensor(b)) if matches!(op, '+' | '*' | '@') => {
                        let function = match op {
                            '+' => "add",
                            '*' => "mul",
                            _ => "matmul",
                        };
                        let args = Args::bind(function, &[], vec![], vec![])
                            .map_err(|m| self.err(e, m))?;
                        let op = build(function, &args).map_err(|m| self.err(e, m))?;
                        let name = self.fresh_name(function);
                        self.add_node(e, name, None, op, vec![a, b])
                            .map(Val::Tensor)
                    }
                    (Val::Tensor(x), Val::Lit(c)) if matches!(op, '+' | '-' | '*' | '÷') => {
                        self.constant_arith(e, *op, x, &c, true)
                    }
                    (Val::Lit(c), Val::Tensor(x)) if matches!(op, '+' | '-' | '*') => {
                        self.constant_arith(e, *op, x, &c, false)
                    }
                    _ => {
                        let op = match op {
                            '/' => "//".to_string(),
                            '÷' => "/".to_string(),
                            _ => op.to_string(),
                        };
                        Err(self.err(
                            e,
                            format!(
                                "'{op}' is supported between two integers ('/' as '//'), between \
                                 two tensors for '+', '*' and '@', and between a tensor and a \
                                 number for '+', '-', '*' and '/'"
                            ),
                        ))
                    }
                }
            }
            ExprKind::Call { func, args, kwargs } => self.call(e, func, args, kwargs),
            ExprKind::Attr(value, name) => {
                let v = self.eval(value)?;
                self.attribute(e, v, name)
            }
            ExprKind::Index(value, subs) => {
                let v = self.eval(value)?;
                let items = subs
                    .iter()
                    .map(|s| self.index_item(s))
                    .collect::<Result<Vec<_>, _>>()?;
                self.index(e, v, &items)
            }
            _ => self.literal(e).map(Val::Lit),
        }
    }

    /// A dotted name as a value: a variable (`x`, `self.x`), or a variable's attribute
    /// (`x.shape`). `None` when no prefix of it is a variable.
    fn path_value(&mut self, e: &Expr, path: &str) -> Result<Option<Val>, SpecError> {
        let path = path.strip_prefix("self.").unwrap_or(path);
        if let Some(v) = self.vars.get(path) {
            if let Val::Unsupported(why) = v {
                return Err(self.err(e, why.clone()));
            }
            return Ok(Some(v.clone()));
        }
        let Some((prefix, attr)) = path.rsplit_once('.') else {
            return Ok(None);
        };
        match self.path_value(e, prefix)? {
            Some(v) => self.attribute(e, v, attr).map(Some),
            None => Ok(None),
        }
    }

    /// `value.name` for a value (not a method call): a tensor's `shape` and `ndim`.
    fn attribute(&mut self, e: &Expr, v: Val, name: &str) -> Result<Val, SpecError> {
        let Val::Tensor(t) = v else {
            return Err(self.err(
                e,
                format!("only tensors have attributes here, not '{name}'"),
            ));
        };
        let shape = self.graph.shape(t);
        match name {
            "shape" => Ok(Val::Lit(Lit::Tuple(
                shape.iter().map(|&d| Lit::Int(d as i64)).collect(),
            ))),
            "ndim" => Ok(Val::Lit(Lit::Int(shape.len() as i64))),
            _ => Err(self.err(
                e,
                format!("a tensor's attribute '{name}' is not supported (shape, ndim are; methods are called: x.{name}(...))"),
            )),
        }
    }

    /// One entry of an index, its numbers evaluated.
    fn index_item(&mut self, s: &Subscript) -> Result<IndexItem, SpecError> {
        let int = |b: &mut Self, e: &Option<Expr>| -> Result<Option<i64>, SpecError> {
            let Some(e) = e else { return Ok(None) };
            match b.eval(e)? {
                Val::Lit(Lit::Int(i)) => Ok(Some(i)),
                Val::Lit(Lit::None) => Ok(None),
                _ => Err(b.err(e, "a slice bound is an integer or None".into())),
            }
        };
        Ok(match s {
            Subscript::Ellipsis => IndexItem::Ellipsis,
            Subscript::Slice(start, stop, step) => {
                IndexItem::Range(int(self, start)?, int(self, stop)?, int(self, step)?)
            }
            Subscript::Item(e) => match self.eval(e)? {
                Val::Lit(Lit::Int(i)) => IndexItem::At(i),
                Val::Lit(Lit::None) => IndexItem::NewAxis,
                _ => {
                    return Err(self.err(
                        e,
                        "an index is an integer, None, a slice (a:b:c) or '...'".into(),
                    ))
                }
            },
        })
    }

    /// `value[items]`: an element or a slice of a tuple, or a tensor indexed.
    fn index(&mut self, e: &Expr, v: Val, items: &[IndexItem]) -> Result<Val, SpecError> {
        let one = |b: &Self| match items {
            [item] => Ok(item),
            _ => Err(b.err(e, "a tuple takes one index".into())),
        };
        match v {
            Val::Tensor(t) => {
                let x = self.graph.shape(t).to_vec();
                let form = forms::index(&x, items).map_err(|m| self.err(e, m))?;
                self.apply(e, "getitem", form, vec![t])
            }
            Val::Lit(Lit::Tuple(lits)) => match index_sequence(&lits, one(self)?) {
                Ok(Ok(l)) => Ok(Val::Lit(l)),
                Ok(Err(ls)) => Ok(Val::Lit(Lit::Tuple(ls))),
                Err(m) => Err(self.err(e, m)),
            },
            Val::List(vals) => match index_sequence(&vals, one(self)?) {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(vs)) => Ok(Val::List(vs)),
                Err(m) => Err(self.err(e, m)),
            },
            Val::Lit(_) => Err(self.err(e, "a constant cannot be indexed".into())),
            Val::Unsupported(why) => Err(self.err(e, why)),
        }
    }

    /// The module name a callee spells, if it is one: `conv1`, `self.layer1.0.conv1`,
    /// `self.layers[0]`, `self.blocks[1].conv`.
    fn module_path(func: &Expr) -> Option<String> {
        match &func.kind {
            ExprKind::Name(n) => Some(n.strip_prefix("self.").unwrap_or(n).to_string()),
            ExprKind::Attr(v, name) => Some(format!("{}.{name}", Self::module_path(v)?)),
            ExprKind::Index(v, subs) => match &subs[..] {
                [Subscript::Item(Expr {
                    kind: ExprKind::Int(i),
                    ..
                })] if *i >= 0 => Some(format!("{}.{i}", Self::module_path(v)?)),
                _ => None,
            },
            _ => None,
        }
    }

    /// What `func` names: a declared module, a method of a value, or a function.
    fn callee(&mut self, e: &Expr, func: &Expr) -> Result<Callee, SpecError> {
        if let Some(path) = Self::module_path(func) {
            if self.modules.contains_key(&path) {
                return Ok(Callee::Module(path));
            }
            // `self.layers[1](x)`, `self.blocks[0].conv(x)`: a module list entry, or nothing.
            let root = path.split('.').next().unwrap_or_default();
            if !matches!(func.kind, ExprKind::Name(_)) && !self.vars.contains_key(root) {
                let known: Vec<&str> = self.modules.keys().map(String::as_str).collect();
                return Err(self.err(
                    e,
                    format!("unknown module '{path}'{}", closest_hint(&path, &known)),
                ));
            }
        }
        match &func.kind {
            ExprKind::Name(n) => {
                if let Some((prefix, method)) = n.rsplit_once('.') {
                    if let Some(receiver) = self.path_value(e, prefix)? {
                        return Ok(Callee::Method(receiver, method.to_string()));
                    }
                }
                Ok(Callee::Function(n.clone()))
            }
            ExprKind::Attr(value, method) => {
                let receiver = self.eval(value)?;
                Ok(Callee::Method(receiver, method.clone()))
            }
            _ => Err(self.err(
                e,
                "only modules, functions and methods can be called".into(),
            )),
        }
    }

    fn call(
        &mut self,
        e: &Expr,
        func: &Expr,
        args: &[Expr],
        kwargs: &[(String, Expr)],
    ) -> Result<Val, SpecError> {
        let callee = self.callee(e, func)?;
        if let Callee::Module(module) = callee {
            let op = self.modules[&module].0.clone();
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
            if let Op::Recurrent(r) = op {
                return self.recurrent(e, &name, &module, r, input);
            }
            let has_params = !op.params().is_empty();
            let module_name = has_params.then(|| module.to_string());
            return self
                .add_node(e, name, module_name, op, vec![input])
                .map(Val::Tensor);
        }
        let function = match &callee {
            Callee::Function(f) => strip_any(f, FUNCTION_PREFIXES).to_string(),
            Callee::Method(_, m) => m.clone(),
            Callee::Module(_) => unreachable!("returned above"),
        };
        let tensor_method = matches!(&callee, Callee::Method(Val::Tensor(_), _));
        let known = function_signature(&function).is_some()
            || (tensor_method && TENSOR_METHODS.contains(&function.as_str()));
        if !known {
            let name = match &func.kind {
                ExprKind::Name(n) => n.clone(),
                _ => function.clone(),
            };
            let mut known: Vec<&str> = self.modules.keys().map(String::as_str).collect();
            known.extend(SUPPORTED_FUNCTIONS.split(", "));
            let what = if matches!(callee, Callee::Method(..)) {
                "method"
            } else {
                "module or function"
            };
            return Err(self.err(
                e,
                format!("unknown {what} '{name}'{}", closest_hint(&name, &known)),
            ));
        }
        let mut positional = args
            .iter()
            .map(|a| self.eval(a))
            .collect::<Result<Vec<_>, _>>()?;
        let mut keywords = kwargs
            .iter()
            .map(|(k, v)| Ok((k.clone(), self.eval(v)?)))
            .collect::<Result<Vec<_>, SpecError>>()?;
        let Callee::Method(receiver, _) = callee else {
            return self.function(e, &function, &function, positional, keywords);
        };
        let Val::Tensor(t) = receiver else {
            return Err(self.err(e, format!("'{function}' is called on a tensor here")));
        };
        let no_arguments = |b: &Self, positional: &[Val]| {
            if positional.is_empty() {
                Ok(())
            } else {
                Err(b.err(e, format!("{function}() takes no positional argument")))
            }
        };
        let shape = self.graph.shape(t).to_vec();
        match function.as_str() {
            "contiguous" => {
                no_arguments(self, &positional)?;
                return Ok(Val::Tensor(t));
            }
            "dim" => {
                no_arguments(self, &positional)?;
                return Ok(Val::Lit(Lit::Int(shape.len() as i64)));
            }
            "size" => {
                let dim = match (&positional[..], &keywords[..]) {
                    ([], []) => None,
                    ([d], []) => Some(d.clone()),
                    ([], [(k, d)]) if k == "dim" => Some(d.clone()),
                    _ => return Err(self.err(e, "size() takes one argument, dim".into())),
                };
                return match dim {
                    None | Some(Val::Lit(Lit::None)) => self.attribute(e, Val::Tensor(t), "shape"),
                    Some(Val::Lit(Lit::Int(d))) => {
                        let d = resolve_dim(d, shape.len()).map_err(|m| self.err(e, m))?;
                        Ok(Val::Lit(Lit::Int(shape[d] as i64)))
                    }
                    Some(_) => Err(self.err(e, "size(): dim must be an integer".into())),
                };
            }
            _ => {}
        }
        // `x.permute(0, 2, 1)`: the arguments one by one are the tuple.
        if let Some(param) = varargs_param(&function) {
            let packed = match &positional[..] {
                [Val::Lit(Lit::Tuple(_))] | [] => None,
                items => Some(
                    items
                        .iter()
                        .map(|v| match v {
                            Val::Lit(l @ Lit::Int(_)) => Ok(l.clone()),
                            _ => {
                                Err(self.err(e, format!("{function}(): '{param}' takes integers")))
                            }
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                ),
            };
            if let Some(items) = packed {
                positional = vec![Val::Lit(Lit::Tuple(items))];
            }
        }
        if function == "split" {
            for (k, _) in &mut keywords {
                if k == "split_size" {
                    *k = "split_size_or_sections".into();
                }
            }
        }
        positional.insert(0, Val::Tensor(t));
        let kind = if function == "view" {
            "reshape"
        } else {
            &function
        };
        self.function(e, kind, &function, positional, keywords)
    }

    /// A call of `function` (a name of [`function_signature`]) on evaluated arguments; the node
    /// is named after `base`.
    fn function(
        &mut self,
        e: &Expr,
        function: &str,
        base: &str,
        positional: Vec<Val>,
        keywords: Vec<(String, Val)>,
    ) -> Result<Val, SpecError> {
        let Some((kind, sig)) = function_signature(function) else {
            return Err(self.err(e, format!("unknown function '{function}'")));
        };
        // Tensor arguments first (positional or by keyword), then the constant ones.
        let tensor_names = tensor_params(function);
        let mut inputs = Vec::new();
        let mut rest = Vec::new();
        let mut constants = Vec::new();
        let constant = |b: &Self, v: Val| match v {
            Val::Lit(l) => Ok(l),
            _ => Err(b.err(
                e,
                "expected a constant (a number, a string, True/False/None or a tuple)".into(),
            )),
        };
        for (i, v) in positional.into_iter().enumerate() {
            if i < tensor_names.len() {
                inputs.push(self.tensors(e, v)?);
            } else {
                rest.push(constant(self, v)?);
            }
        }
        for (k, v) in keywords {
            if tensor_names.contains(&k.as_str()) {
                inputs.push(self.tensors(e, v)?);
            } else {
                constants.push((k, constant(self, v)?));
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
        let op_args = Args::bind(base, &sig, rest, constants).map_err(|m| self.err(e, m))?;
        let inputs: Vec<ValueId> = inputs.into_iter().flatten().collect();
        let shapes: Vec<&[usize]> = inputs.iter().map(|&v| self.graph.shape(v)).collect();
        let form = forms::lower(kind, &op_args, &shapes).map_err(|m| self.err(e, m))?;
        let base = match base {
            "concat" => "cat",
            "dropout1d" | "dropout2d" => "dropout",
            f => f,
        };
        self.apply(e, base, form, inputs)
    }

    /// Adds the nodes of `form` on `inputs`: one node is named `base_N`; in a chain, the nodes
    /// before the last are `base_N/0`, `base_N/1`, ...; the pieces of a split are `base_N[0]`, ...
    fn apply(
        &mut self,
        e: &Expr,
        base: &str,
        form: Form,
        inputs: Vec<ValueId>,
    ) -> Result<Val, SpecError> {
        match form {
            Form::Identity => Ok(Val::Tensor(inputs[0])),
            Form::Chain(ops) => {
                let name = self.fresh_name(base);
                self.chain(e, &name, ops, inputs).map(Val::Tensor)
            }
            Form::Pieces(pieces) => {
                let name = self.fresh_name(base);
                let mut out = Vec::new();
                for (i, ops) in pieces.into_iter().enumerate() {
                    let piece = self.chain(e, &format!("{name}[{i}]"), ops, vec![inputs[0]])?;
                    out.push(Val::Tensor(piece));
                }
                Ok(Val::List(out))
            }
        }
    }

    /// `ops` applied one after the other, the last node named `name`; no ops is the input.
    fn chain(
        &mut self,
        e: &Expr,
        name: &str,
        ops: Vec<Op>,
        mut inputs: Vec<ValueId>,
    ) -> Result<ValueId, SpecError> {
        let last = ops.len().saturating_sub(1);
        for (i, op) in ops.into_iter().enumerate() {
            let node = if i == last {
                name.to_string()
            } else {
                format!("{name}/{i}")
            };
            inputs = vec![self.add_node(e, node, None, op, inputs)?];
        }
        Ok(inputs[0])
    }

    /// A tensor argument, or a list of tensors (for `cat`).
    fn tensors(&self, e: &Expr, v: Val) -> Result<Vec<ValueId>, SpecError> {
        match v {
            Val::Tensor(v) => Ok(vec![v]),
            Val::List(items) => items
                .into_iter()
                .map(|v| match v {
                    Val::Tensor(v) => Ok(v),
                    Val::Unsupported(why) => Err(self.err(e, why)),
                    _ => Err(self.err(e, "expected a list of tensors".into())),
                })
                .collect(),
            Val::Lit(_) => Err(self.err(e, "expected a tensor".into())),
            Val::Unsupported(why) => Err(self.err(e, why)),
        }
    }

    /// A call of a GRU / LSTM module: a node per layer and direction (named `name` for a
    /// single one, else `name.l0`, `name.l0_reverse`, ...), the two directions of a layer
    /// concatenated on the features, and PyTorch's result `(output, h_n)` — `(output, (h_n,
    /// c_n))` for an LSTM, whose `c_n` is refused where it is used. `h_n` is each node's last
    /// step (its first frame for a reverse direction), stacked as `[layers * directions,
    /// batch, hidden]`.
    fn recurrent(
        &mut self,
        e: &Expr,
        name: &str,
        module: &str,
        first: Recurrent,
        input: ValueId,
    ) -> Result<Val, SpecError> {
        let directions = if first.bidirectional { 2 } else { 1 };
        let single = first.num_layers == 1 && directions == 1;
        let mut x = input;
        let mut last_steps = Vec::new();
        for layer in 0..first.num_layers {
            let mut halves = Vec::new();
            for reverse in [false, true].into_iter().take(directions) {
                let op = Recurrent {
                    layer,
                    reverse,
                    input_size: if layer == 0 {
                        first.input_size
                    } else {
                        first.hidden_size * directions
                    },
                    ..first.clone()
                };
                let node = match (single, reverse) {
                    (true, _) => name.to_string(),
                    (false, false) => format!("{name}.l{layer}"),
                    (false, true) => format!("{name}.l{layer}_reverse"),
                };
                let y = self.add_node(
                    e,
                    node.clone(),
                    Some(module.into()),
                    Op::Recurrent(op),
                    vec![x],
                )?;
                let (time, steps) = if first.batch_first {
                    (1, self.graph.shape(y)[1])
                } else {
                    (0, self.graph.shape(y)[0])
                };
                let at = if reverse { 0 } else { steps as i64 - 1 };
                let step = Op::Slice(Slice {
                    dim: time,
                    start: at,
                    end: at + 1,
                    step: 1,
                });
                let hidden = [1, -1, first.hidden_size as i64];
                let ops = vec![
                    step,
                    Op::Reshape(Reshape {
                        shape: hidden.to_vec(),
                    }),
                ];
                last_steps.push(self.chain(e, &format!("{node}.h_n"), ops, vec![y])?);
                halves.push(y);
            }
            x = match halves[..] {
                [y] => y,
                _ => self.add_node(
                    e,
                    format!("{name}.l{layer}.cat"),
                    None,
                    Op::Concat(Concat { dim: 2 }),
                    halves,
                )?,
            };
        }
        let h_n = match last_steps[..] {
            [h] => h,
            _ => self.add_node(
                e,
                format!("{name}.h_n"),
                None,
                Op::Concat(Concat { dim: 0 }),
                last_steps,
            )?,
        };
        let state = match first.cell {
            Cell::Gru => Val::Tensor(h_n),
            Cell::Lstm => Val::List(vec![
                Val::Tensor(h_n),
                Val::Unsupported(format!(
                    "'{module}' returns c_n, the LSTM's final cell state, which nnblob does not \
                     compute yet: use the output or h_n"
                )),
            ]),
        };
        Ok(Val::List(vec![Val::Tensor(x), state]))
    }

    /// A fresh name `base_N` for a functional node, distinct from every module name.
    /// `x op c` (`tensor_first`) or `c op x` with a number `c`: an [`Affine`] node.
    fn constant_arith(
        &mut self,
        e: &Expr,
        op: char,
        x: ValueId,
        c: &Lit,
        tensor_first: bool,
    ) -> Result<Val, SpecError> {
        let c = number(c)
            .ok_or_else(|| self.err(e, format!("a tensor meets {}, not a number", c.describe())))?;
        let (scale, shift, base) = match (op, tensor_first) {
            ('+', _) => (1.0, c, "add"),
            ('-', true) => (1.0, -c, "sub"),
            ('-', false) => (-1.0, c, "sub"),
            ('*', _) => (c, 0.0, "mul"),
            _ if c != 0.0 => (1.0 / c, 0.0, "div"),
            _ => return Err(self.err(e, "division by zero".into())),
        };
        let name = self.fresh_name(base);
        let op = Op::Affine(Affine { scale, shift });
        self.add_node(e, name, None, op, vec![x]).map(Val::Tensor)
    }

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
        let value = name.clone();
        Ok(self
            .graph
            .push_node(name, module, op, inputs, &value, shape))
    }
}

const SUPPORTED_MODULES: &str = "Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d, Linear, GRU, LSTM, BatchNorm1d, BatchNorm2d, ReLU, ReLU6, LeakyReLU, PReLU, Sigmoid, Tanh, SiLU, Hardswish, Hardsigmoid, GELU, Softmax, MaxPool1d, MaxPool2d, AvgPool1d, AvgPool2d, AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool1d, AdaptiveMaxPool2d, ZeroPad2d, Flatten, Dropout";
const SUPPORTED_FUNCTIONS: &str = "relu, relu6, leaky_relu, sigmoid, tanh, silu, hardswish, hardsigmoid, gelu, softmax, flatten, reshape, permute, transpose, unsqueeze, squeeze, mean, chunk, split, add, mul, cat, max_pool1d, max_pool2d, avg_pool1d, avg_pool2d, adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_max_pool1d, adaptive_max_pool2d, pad, dropout";
/// Methods of a tensor beyond the functions (`x.relu()` is `relu(x)`).
const TENSOR_METHODS: &[&str] = &["contiguous", "size", "dim", "view"];

/// ` (did you mean 'x'?)` when some candidate is close to `name`.
pub(crate) fn closest_hint(name: &str, candidates: &[&str]) -> String {
    match crate::graph::bind::closest(name, candidates.iter().copied()) {
        Some(c) if crate::graph::bind::edit_distance(name, c) <= name.len().max(3) / 2 => {
            format!(" (did you mean '{c}'?)")
        }
        _ => String::new(),
    }
}
