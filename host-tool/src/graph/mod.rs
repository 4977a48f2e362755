//! The graph: the network as PyTorch ops, in fp32, batch 1.
//!
//! In: a spec (text, see `docs/SPEC.md`) or a catalog name; then a state_dict (name → f32 tensor)
//! bound to it strictly. Out: a [`Graph`] whose nodes are plain op structs (`ops/`, one file per op
//! family) in topological order, every value's shape inferred, and — once bound — every parameter
//! present with the shape its module declares. The passes (`crate::passes`) rewrite this graph, the
//! reference evaluator (`crate::eval`) runs it and the planner (`crate::plan`) lays out its values.
//!
//! Shapes always carry the batch dimension (batch 1): a spec's `input x: [3, 32, 32]` is the value
//! `[1, 3, 32, 32]`, so `flatten(x, 1)` and `softmax(x, dim=1)` mean what they mean in PyTorch.

pub mod bind;
pub mod catalog;
pub mod ops;
pub mod random;
pub mod spec;
pub mod summary;

use std::collections::BTreeMap;
use std::fmt;

pub use bind::{bind, BindError};
pub use ops::{Activation, Op};
pub use spec::{parse_spec, to_spec, SpecError};
pub use summary::{summarize, LayerRow, Summary};

/// A dense row-major f32 tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor {
    /// A tensor of the given shape; `data.len()` must equal the product of `shape`.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Tensor {
        debug_assert_eq!(
            numel(&shape),
            data.len(),
            "tensor data does not match its shape"
        );
        Tensor { shape, data }
    }

    pub fn zeros(shape: Vec<usize>) -> Tensor {
        let n = numel(&shape);
        Tensor {
            shape,
            data: vec![0.0; n],
        }
    }
}

/// A state_dict converted to f32: key → tensor, as `model.state_dict()` would give it.
pub type StateDict = BTreeMap<String, Tensor>;

/// Number of elements of a shape.
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// The most elements a value or a parameter may have (the format addresses tensors with 32-bit
/// offsets). Shapes within it keep every count and every product of two counts inside `u64`.
pub const MAX_ELEMENTS: usize = u32::MAX as usize;

/// The number of elements of `shape`, or why it is too large (more than [`MAX_ELEMENTS`]).
pub fn checked_numel(shape: &[usize]) -> Result<usize, String> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| {
            format!(
                "shape {} has more than {MAX_ELEMENTS} elements",
                fmt_shape(shape)
            )
        })
}

/// Writes a shape the way PyTorch prints sizes: `[1, 16, 32, 32]`.
pub fn fmt_shape(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", dims.join(", "))
}

/// Index of a value in [`Graph::values`].
pub type ValueId = usize;

/// A tensor flowing between nodes: a graph input or the output of exactly one node.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    pub name: String,
    pub shape: Vec<usize>,
    /// The value's int8 quantization, set by the quantization pass (`crate::quant`); `None`:
    /// f32.
    pub quant: Option<nnblob_format::meta::Quant>,
}

/// One op applied to values.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Unique layer name: the module name for module calls (`layer1.0.conv1`), the op and a counter
    /// for functional calls (`add_2`); a module called twice gets `name#2` on its second call.
    pub name: String,
    /// The state_dict key prefix of this node's parameters (the module name), if it has any.
    pub module: Option<String>,
    pub op: Op,
    pub inputs: Vec<ValueId>,
    pub output: ValueId,
    /// An element-wise activation applied to the op's result (set by the fusion pass).
    pub fused: Option<Activation>,
    /// Parameters in the order of [`Op::params`]; empty until the graph is bound.
    pub params: Vec<Tensor>,
    /// The int8 form of the op (quantized weights, rescalings), set by the quantization pass.
    pub quant: Option<crate::quant::QuantOp>,
}

/// A network: values, nodes in topological order, inputs and outputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Graph {
    pub name: String,
    pub values: Vec<Value>,
    pub nodes: Vec<Node>,
    pub inputs: Vec<ValueId>,
    pub outputs: Vec<ValueId>,
}

/// A graph that is not well formed: which layer, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("layer '{layer}': {message}")]
pub struct GraphError {
    pub layer: String,
    pub message: String,
}

impl Graph {
    /// A graph named `name` with nothing in it yet (what a source fills).
    pub fn empty(name: &str) -> Graph {
        Graph {
            name: name.to_string(),
            values: Vec::new(),
            nodes: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
        }
    }

    pub fn shape(&self, v: ValueId) -> &[usize] {
        &self.values[v].shape
    }

    /// Appends a value; returns its id.
    pub fn push_value(&mut self, name: &str, shape: Vec<usize>) -> ValueId {
        self.values.push(Value {
            name: name.to_string(),
            shape,
            quant: None,
        });
        self.values.len() - 1
    }

    /// Appends the node `name` (unfused, unbound) computing a new value `value` of `shape` from
    /// `inputs`; returns the value.
    pub fn push_node(
        &mut self,
        name: String,
        module: Option<String>,
        op: Op,
        inputs: Vec<ValueId>,
        value: &str,
        shape: Vec<usize>,
    ) -> ValueId {
        let output = self.push_value(value, shape);
        self.nodes.push(Node {
            name,
            module,
            op,
            inputs,
            output,
            fused: None,
            params: Vec::new(),
            quant: None,
        });
        output
    }

    /// Whether every node carries all of its parameters.
    pub fn is_bound(&self) -> bool {
        self.nodes
            .iter()
            .all(|n| n.params.len() == n.op.params().len())
    }

    /// Indices of the nodes reading value `v`, in order.
    pub fn consumers(&self, v: ValueId) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].inputs.contains(&v))
            .collect()
    }

    /// Whether `v` is read by exactly one node, once, and is not a graph output: the condition
    /// for rewriting its producer together with that consumer.
    pub fn has_sole_consumer(&self, v: ValueId, node: usize) -> bool {
        let uses: usize = self
            .nodes
            .iter()
            .map(|n| n.inputs.iter().filter(|&&i| i == v).count())
            .sum();
        uses == 1 && self.nodes[node].inputs.contains(&v) && !self.outputs.contains(&v)
    }

    /// Index of the node producing `v`, or `None` for a graph input.
    pub fn producer(&self, v: ValueId) -> Option<usize> {
        self.nodes.iter().position(|n| n.output == v)
    }

    /// Removes node `i`, which must compute an identity of its first input: every reader of its
    /// output (graph outputs included) reads that input instead. A graph output keeps its name:
    /// the input takes it, unless the input is itself a graph input or output.
    pub fn bypass_node(&mut self, i: usize) {
        let node = self.nodes.remove(i);
        let (from, to) = (node.output, node.inputs[0]);
        if self.outputs.contains(&from) && !self.inputs.contains(&to) && !self.outputs.contains(&to)
        {
            self.values[to].name = self.values[from].name.clone();
        }
        for n in &mut self.nodes {
            for input in &mut n.inputs {
                if *input == from {
                    *input = to;
                }
            }
        }
        for output in &mut self.outputs {
            if *output == from {
                *output = to;
            }
        }
    }

    /// Drops values no node or graph input/output refers to, renumbering the rest in order.
    pub fn compact(&mut self) {
        let mut used = vec![false; self.values.len()];
        for &v in self.inputs.iter().chain(&self.outputs) {
            used[v] = true;
        }
        for n in &self.nodes {
            used[n.output] = true;
            for &v in &n.inputs {
                used[v] = true;
            }
        }
        let mut new_id = vec![usize::MAX; self.values.len()];
        let mut values = Vec::new();
        for (v, value) in self.values.drain(..).enumerate() {
            if used[v] {
                new_id[v] = values.len();
                values.push(value);
            }
        }
        self.values = values;
        let remap = |v: &mut ValueId| *v = new_id[*v];
        self.inputs.iter_mut().for_each(remap);
        self.outputs.iter_mut().for_each(remap);
        for n in &mut self.nodes {
            remap(&mut n.output);
            n.inputs.iter_mut().for_each(remap);
        }
    }

    /// Re-infers every shape and checks structure: nodes in topological order, each value produced
    /// once, shapes as recorded, parameters (when present) of the declared shapes.
    pub fn check(&self) -> Result<(), GraphError> {
        let mut defined = vec![false; self.values.len()];
        for &v in &self.inputs {
            defined[v] = true;
        }
        for n in &self.nodes {
            let err = |message: String| GraphError {
                layer: n.name.clone(),
                message,
            };
            for &v in &n.inputs {
                if !defined[v] {
                    return Err(err(format!(
                        "reads '{}' before it is computed",
                        self.values[v].name
                    )));
                }
            }
            if defined[n.output] {
                return Err(err(format!(
                    "'{}' is computed twice",
                    self.values[n.output].name
                )));
            }
            defined[n.output] = true;
            let shapes: Vec<&[usize]> = n.inputs.iter().map(|&v| self.shape(v)).collect();
            let out = n.op.infer(&shapes).map_err(err)?;
            if out != self.values[n.output].shape {
                return Err(err(format!(
                    "output shape {} differs from the recorded {}",
                    fmt_shape(&out),
                    fmt_shape(&self.values[n.output].shape)
                )));
            }
            if !n.params.is_empty() {
                let declared = n.op.params();
                if declared.len() != n.params.len() {
                    return Err(err(format!(
                        "has {} parameters, the op declares {}",
                        n.params.len(),
                        declared.len()
                    )));
                }
                for ((pname, shape), t) in declared.iter().zip(&n.params) {
                    if *shape != t.shape || numel(shape) != t.data.len() {
                        return Err(err(format!(
                            "parameter '{pname}' has shape {}, expected {}",
                            fmt_shape(&t.shape),
                            fmt_shape(shape)
                        )));
                    }
                }
            }
        }
        for &v in &self.outputs {
            if !defined[v] {
                return Err(GraphError {
                    layer: self.values[v].name.clone(),
                    message: "graph output is never computed".into(),
                });
            }
        }
        Ok(())
    }
}

impl fmt::Display for Graph {
    /// A readable listing: one line per node, `name = op(inputs) -> shape`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "graph {}", self.name)?;
        for &v in &self.inputs {
            writeln!(
                f,
                "  input {}: {}",
                self.values[v].name,
                fmt_shape(self.shape(v))
            )?;
        }
        for n in &self.nodes {
            let inputs: Vec<&str> = n
                .inputs
                .iter()
                .map(|&v| self.values[v].name.as_str())
                .collect();
            let fused = n
                .fused
                .map(|a| format!(" + {}", a.name()))
                .unwrap_or_default();
            writeln!(
                f,
                "  {} = {}{}({}) -> {}",
                self.values[n.output].name,
                n.op.kind(),
                fused,
                inputs.join(", "),
                fmt_shape(self.shape(n.output))
            )?;
        }
        let outputs: Vec<&str> = self
            .outputs
            .iter()
            .map(|&v| self.values[v].name.as_str())
            .collect();
        writeln!(f, "  return {}", outputs.join(", "))
    }
}
