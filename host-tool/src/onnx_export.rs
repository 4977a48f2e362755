//! The ONNX export: a bound graph in, an fp32 ONNX model (opset 17) out — the reference for
//! users who have no ONNX export of their own.
//!
//! In: a bound [`Graph`] as the spec describes it (before the passes: BatchNorm, Dropout and
//! activations are separate nodes). Out: a [`pb::ModelProto`] (tract-onnx's protobuf types) or
//! its encoded bytes, every op mapped one to one onto the ONNX op PyTorch's exporter uses, weights
//! as float32 initializers named like the state_dict keys, every shape static (batch 1).
//!
//! Mapping (PyTorch → ONNX opset 17):
//! - Conv1d/Conv2d → `Conv` (pads `[begin..., end...]`); ConvTranspose1d/2d → `ConvTranspose`
//!   (`pads`, `output_padding`, `group`, `dilations`); Linear → `Gemm` (`transB=1`) on a 2-d
//!   input, `MatMul` by the transposed weight then `Add` otherwise;
//! - BatchNorm1d/2d → `BatchNormalization` (running statistics, `epsilon`); an unfoldable
//!   BatchNorm the passes turned into `ScaleShift` → `Mul` + `Add` by `[C, 1, ...]` constants;
//! - ReLU, Sigmoid, Tanh, LeakyReLU, HardSwish, PReLU → their ONNX op; ReLU6 → `Clip(0, 6)`;
//!   Hardsigmoid → `HardSigmoid(alpha=1/6, beta=1/2)`; SiLU → `x * Sigmoid(x)`; GELU (no ONNX op
//!   before opset 20) → its formula with `Erf`, or with `Tanh` for the tanh approximation;
//! - MaxPool1d/2d, AvgPool1d/2d → `MaxPool`/`AveragePool` (`ceil_mode`, `count_include_pad`);
//!   AdaptiveAvgPool1d/2d → `GlobalAveragePool` for an output of size 1, otherwise one `MatMul`
//!   per pooled axis by constant window-averaging matrices (ONNX has no adaptive pooling;
//!   PyTorch's exporter refuses uneven windows); AdaptiveMaxPool1d/2d → `GlobalMaxPool`, or per
//!   pooled axis one `Slice` + `ReduceMax` per bin and a `Concat`;
//! - ZeroPad2d → `Pad`; flatten and reshape → `Reshape` to the static output shape; permute →
//!   `Transpose`; cat → `Concat`; add/mul → `Add`/`Mul` (same broadcasting); Softmax → `Softmax`;
//!   Dropout (eval mode) → `Identity`;
//! - one layer and direction of GRU / LSTM → `GRU` (`linear_before_reset=1`) / `LSTM` with the
//!   gate blocks in ONNX's order, then `Squeeze` of the directions axis (and `Transpose`s for
//!   batch-first layers); a reverse direction runs forward between two time reversals
//!   (`Slice` of step -1).
//!
//! A node carrying a fused activation (only after the passes) gets that activation as a
//! following node, so a compiled graph exports too.

use std::collections::HashSet;

use prost::Message;
use tract_onnx::pb;
use tract_onnx::pb::tensor_proto::DataType;

use crate::graph::ops::{Activation, BinaryKind, Op, PoolKind, Recurrent, ResampleMode, Target};
use crate::graph::{Graph, GraphError, Node, Tensor};
use nnblob_format::meta::Cell;

/// The ONNX operator set the export targets (the one `torch.onnx.export` defaults to).
pub const OPSET: i64 = 17;
/// The IR version that goes with [`OPSET`].
pub const IR_VERSION: i64 = 8;

/// Why a graph could not be exported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// The graph is not well formed.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// A layer has no parameters: bind a state_dict first.
    #[error("layer '{0}' has no parameters: bind a state_dict first")]
    Unbound(String),
}

/// The encoded ONNX model of `graph` (protobuf bytes, what `onnx.save` writes).
pub fn to_bytes(graph: &Graph) -> Result<Vec<u8>, ExportError> {
    Ok(to_model(graph)?.encode_to_vec())
}

/// The ONNX model of `graph`.
pub fn to_model(graph: &Graph) -> Result<pb::ModelProto, ExportError> {
    graph.check()?;
    let mut b = Builder::new(graph);
    for node in &graph.nodes {
        if node.params.len() != node.op.params().len() {
            return Err(ExportError::Unbound(node.name.clone()));
        }
        b.node(node)?;
    }
    let value_info = |v: usize| tensor_info(&b.value_names[v], graph.shape(v));
    let graph_proto = pb::GraphProto {
        name: graph.name.clone(),
        input: graph.inputs.iter().map(|&v| value_info(v)).collect(),
        output: graph.outputs.iter().map(|&v| value_info(v)).collect(),
        node: b.nodes,
        initializer: b.initializers,
        ..Default::default()
    };
    Ok(pb::ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "nnblob".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(graph_proto),
        ..Default::default()
    })
}

/// Accumulates nodes and initializers, and hands out unique tensor names.
struct Builder<'g> {
    graph: &'g Graph,
    /// The ONNX name of each graph value.
    value_names: Vec<String>,
    used: HashSet<String>,
    nodes: Vec<pb::NodeProto>,
    initializers: Vec<pb::TensorProto>,
}

impl<'g> Builder<'g> {
    fn new(graph: &'g Graph) -> Self {
        let mut used = HashSet::new();
        let value_names = graph
            .values
            .iter()
            .map(|v| unique(&mut used, &v.name))
            .collect();
        Builder {
            graph,
            value_names,
            used,
            nodes: Vec::new(),
            initializers: Vec::new(),
        }
    }

    /// A fresh tensor name derived from `base`.
    fn fresh(&mut self, base: &str) -> String {
        unique(&mut self.used, base)
    }

    fn push(&mut self, op_type: &str, name: &str, inputs: &[&str], output: &str, attrs: Vec<Attr>) {
        self.nodes.push(pb::NodeProto {
            op_type: op_type.into(),
            name: name.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            attribute: attrs.into_iter().map(Attr::into_proto).collect(),
            ..Default::default()
        });
    }

    /// A float32 initializer named `name` (made unique) with `shape` and `data`.
    fn float_const(&mut self, name: &str, shape: &[usize], data: &[f32]) -> String {
        let name = self.fresh(name);
        self.initializers.push(pb::TensorProto {
            name: name.clone(),
            dims: shape.iter().map(|&d| d as i64).collect(),
            data_type: DataType::Float as i32,
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name
    }

    /// An int64 initializer (shapes, pads) named `name` (made unique).
    fn int_const(&mut self, name: &str, data: &[i64]) -> String {
        let name = self.fresh(name);
        self.initializers.push(pb::TensorProto {
            name: name.clone(),
            dims: vec![data.len() as i64],
            data_type: DataType::Int64 as i32,
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name
    }

    /// The initializer of parameter `index` of `node`, named like its state_dict key.
    fn param(&mut self, node: &Node, index: usize) -> String {
        let suffix = node.op.params()[index].0;
        let prefix = node.module.as_deref().unwrap_or(&node.name);
        let t = &node.params[index];
        self.float_const(&format!("{prefix}.{suffix}"), &t.shape, &t.data)
    }

    /// A parameter reshaped to `[C, 1, ...]` so it broadcasts over the channel axis of a
    /// `rank`-d input.
    fn channel_param(&mut self, node: &Node, index: usize, rank: usize) -> String {
        let t: &Tensor = &node.params[index];
        let mut shape = vec![t.data.len()];
        shape.resize(rank.saturating_sub(1).max(1), 1);
        let suffix = node.op.params()[index].0;
        let prefix = node.module.as_deref().unwrap_or(&node.name);
        self.float_const(&format!("{prefix}.{suffix}"), &shape, &t.data)
    }

    /// `x * scale + shift` with parameters 0 and 1 of `node` per channel of a `rank`-d `x`.
    fn channel_affine(&mut self, node: &Node, name: &str, x: &str, output: &str, rank: usize) {
        let scale = self.channel_param(node, 0, rank);
        let shift = self.channel_param(node, 1, rank);
        let scaled = self.fresh(&format!("{name}.scaled"));
        self.push("Mul", &scaled, &[x, &scale], &scaled, vec![]);
        self.push("Add", name, &[&scaled, &shift], output, vec![]);
    }

    /// A GRU / LSTM layer: ONNX's `GRU` (`linear_before_reset=1`, PyTorch's form) or `LSTM`,
    /// forward, on the time-major layout (time reversed around it for a reverse direction); its gate blocks reordered from PyTorch's
    /// (`r z n`, `i f g o`) to ONNX's (`z r h`, `i o f c`); the directions axis of `Y`
    /// squeezed; transposes around it when the layer is batch-first.
    fn recurrent(&mut self, node: &Node, r: &Recurrent, x: &str, output: &str) {
        let name = node.name.as_str();
        let (h, i) = (r.hidden_size, r.input_size);
        let order: &[usize] = match r.cell {
            Cell::Gru => &[1, 0, 2],
            Cell::Lstm => &[0, 3, 1, 2],
        };
        let rows = order.len() * h;
        // PyTorch's gate blocks (`h` rows each) in ONNX's order.
        let reorder = |data: &[f32], cols: usize| -> Vec<f32> {
            order
                .iter()
                .flat_map(|&k| &data[k * h * cols..(k + 1) * h * cols])
                .copied()
                .collect()
        };
        let p = &node.params;
        let w = self.float_const(&format!("{name}.W"), &[1, rows, i], &reorder(&p[0].data, i));
        let rr = self.float_const(&format!("{name}.R"), &[1, rows, h], &reorder(&p[1].data, h));
        let bias: Vec<f32> = match (p.get(2), p.get(3)) {
            (Some(bi), Some(bh)) => [reorder(&bi.data, 1), reorder(&bh.data, 1)].concat(),
            _ => vec![0.0; 2 * rows],
        };
        let b = self.float_const(&format!("{name}.B"), &[1, 2 * rows], &bias);
        let seq = if r.batch_first {
            let t = self.fresh(&format!("{name}.time_major"));
            self.push(
                "Transpose",
                &t,
                &[x],
                &t,
                vec![Attr::ints("perm", &[1, 0, 2])],
            );
            t
        } else {
            x.to_string()
        };
        // The reverse direction as the forward one on the sequence reversed in time, then its
        // output reversed back: what `direction=reverse` means, which tract does not read.
        let seq = if r.reverse {
            let reversed = self.fresh(&format!("{name}.x_reversed"));
            self.reverse_time(name, &seq, &reversed);
            reversed
        } else {
            seq
        };
        let y = self.fresh(&format!("{name}.Y"));
        let mut attrs = vec![Attr::int("hidden_size", h as i64)];
        let op = match r.cell {
            Cell::Gru => {
                attrs.push(Attr::int("linear_before_reset", 1));
                "GRU"
            }
            Cell::Lstm => "LSTM",
        };
        self.push(op, name, &[&seq, &w, &rr, &b], &y, attrs);
        let axes = self.int_const(&format!("{name}.directions"), &[1]);
        // Y squeezed, reversed back in time, made batch-first: the last step writes `output`.
        let last = match (r.reverse, r.batch_first) {
            (false, false) => 0,
            (true, false) => 1,
            (_, true) => 2,
        };
        let name_of = |b: &mut Self, step: usize, what: &str| match step == last {
            true => output.to_string(),
            false => b.fresh(&format!("{name}.{what}")),
        };
        let squeezed = name_of(self, 0, "Y_squeezed");
        let squeeze = self.fresh(&format!("{name}.squeeze"));
        self.push("Squeeze", &squeeze, &[&y, &axes], &squeezed, vec![]);
        let mut y = squeezed;
        if r.reverse {
            let reversed = name_of(self, 1, "Y_reversed");
            self.reverse_time(name, &y, &reversed);
            y = reversed;
        }
        if r.batch_first {
            let perm = vec![Attr::ints("perm", &[1, 0, 2])];
            let transpose = self.fresh(&format!("{name}.batch_first"));
            self.push("Transpose", &transpose, &[&y], output, perm);
        }
    }

    /// `out = x[::-1]` on axis 0 (time, in the time-major layout): a `Slice` of step -1.
    fn reverse_time(&mut self, name: &str, x: &str, out: &str) {
        let starts = self.int_const(&format!("{name}.rev_starts"), &[-1]);
        let ends = self.int_const(&format!("{name}.rev_ends"), &[i64::MIN]);
        let axes = self.int_const(&format!("{name}.rev_axes"), &[0]);
        let steps = self.int_const(&format!("{name}.rev_steps"), &[-1]);
        let node = self.fresh(&format!("{name}.reverse"));
        self.push(
            "Slice",
            &node,
            &[x, &starts, &ends, &axes, &steps],
            out,
            vec![],
        );
    }

    /// Emits the ONNX nodes of one graph node.
    fn node(&mut self, node: &Node) -> Result<(), ExportError> {
        let graph = self.graph;
        let x = self.value_names[node.inputs[0]].clone();
        let final_output = self.value_names[node.output].clone();
        // With a fused activation the op writes an intermediate and the activation the output.
        let output = match node.fused {
            Some(_) => self.fresh(&format!("{}.pre_activation", node.name)),
            None => final_output.clone(),
        };
        let in_shape = graph.shape(node.inputs[0]);
        let out_shape = graph.shape(node.output);
        let name = node.name.as_str();
        match &node.op {
            Op::Conv(c) => {
                let w = self.param(node, 0);
                let mut inputs = vec![x.as_str(), w.as_str()];
                let bias = c.bias.then(|| self.param(node, 1));
                if let Some(bias) = &bias {
                    inputs.push(bias);
                }
                let p = &c.padding;
                let (kernel, stride, dilation, pads) = if c.rank == 2 {
                    (
                        c.kernel.to_vec(),
                        c.stride.to_vec(),
                        c.dilation.to_vec(),
                        vec![p.top, p.left, p.bottom, p.right],
                    )
                } else {
                    (
                        vec![c.kernel[1]],
                        vec![c.stride[1]],
                        vec![c.dilation[1]],
                        vec![p.left, p.right],
                    )
                };
                let attrs = vec![
                    Attr::ints("kernel_shape", &kernel),
                    Attr::ints("strides", &stride),
                    Attr::ints("dilations", &dilation),
                    Attr::ints("pads", &pads),
                    Attr::int("group", c.groups as i64),
                ];
                self.push("Conv", name, &inputs, &output, attrs);
            }
            Op::ConvTranspose(c) => {
                let w = self.param(node, 0);
                let mut inputs = vec![x.as_str(), w.as_str()];
                let bias = c.bias.then(|| self.param(node, 1));
                if let Some(bias) = &bias {
                    inputs.push(bias);
                }
                // A 1-d one's axis is the second of each pair.
                let axes = |v: [usize; 2]| v[2 - c.rank..].to_vec();
                let pad = axes(c.padding);
                let attrs = vec![
                    Attr::ints("kernel_shape", &axes(c.kernel)),
                    Attr::ints("strides", &axes(c.stride)),
                    Attr::ints("dilations", &axes(c.dilation)),
                    Attr::ints("pads", &[pad.as_slice(), pad.as_slice()].concat()),
                    Attr::ints("output_padding", &axes(c.output_padding)),
                    Attr::int("group", c.groups as i64),
                ];
                self.push("ConvTranspose", name, &inputs, &output, attrs);
            }
            Op::Linear(l) => {
                let bias = l.bias.then(|| self.param(node, 1));
                if in_shape.len() == 2 {
                    let w = self.param(node, 0);
                    let mut inputs = vec![x.as_str(), w.as_str()];
                    if let Some(bias) = &bias {
                        inputs.push(bias);
                    }
                    self.push("Gemm", name, &inputs, &output, vec![Attr::int("transB", 1)]);
                } else {
                    let w = &node.params[0].data;
                    let (o, i) = (l.out_features, l.in_features);
                    let transposed: Vec<f32> = (0..i * o).map(|k| w[(k % o) * i + k / o]).collect();
                    let prefix = node.module.as_deref().unwrap_or(name);
                    let wt = self.float_const(&format!("{prefix}.weight_t"), &[i, o], &transposed);
                    match &bias {
                        Some(bias) => {
                            let product = self.fresh(&format!("{name}.matmul"));
                            self.push("MatMul", &product, &[&x, &wt], &product, vec![]);
                            self.push("Add", name, &[&product, bias], &output, vec![]);
                        }
                        None => self.push("MatMul", name, &[&x, &wt], &output, vec![]),
                    }
                }
            }
            Op::BatchNorm(bn) => {
                let [scale, shift, mean, var] = [0, 1, 2, 3].map(|i| self.param(node, i));
                self.push(
                    "BatchNormalization",
                    name,
                    &[&x, &scale, &shift, &mean, &var],
                    &output,
                    vec![Attr::float("epsilon", bn.eps as f32)],
                );
            }
            Op::ScaleShift(_) => self.channel_affine(node, name, &x, &output, in_shape.len()),
            Op::Recurrent(r) => self.recurrent(node, r, &x, &output),
            Op::MatMul(_) => {
                let b = self.value_names[node.inputs[1]].clone();
                self.push("MatMul", name, &[&x, &b], &output, vec![]);
            }
            Op::Affine(f) => {
                let scale = self.float_const(&format!("{name}.scale"), &[], &[f.scale as f32]);
                let shift = self.float_const(&format!("{name}.shift"), &[], &[f.shift as f32]);
                let scaled = self.fresh(&format!("{name}.scaled"));
                self.push("Mul", &scaled, &[&x, &scale], &scaled, vec![]);
                self.push("Add", name, &[&scaled, &shift], &output, vec![]);
            }
            Op::LayerNorm(l) => {
                // LayerNormalization needs a scale: ones when the module has none.
                let n: usize = l.shape.iter().product();
                let scale = match node.params.first() {
                    Some(_) => self.param(node, 0),
                    None => self.float_const(&format!("{name}.ones"), &l.shape, &vec![1.0; n]),
                };
                let mut inputs = vec![x.clone(), scale];
                if node.params.len() > 1 {
                    inputs.push(self.param(node, 1));
                }
                let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
                let attrs = vec![
                    Attr::int("axis", -(l.shape.len() as i64)),
                    Attr::float("epsilon", l.eps as f32),
                ];
                self.push("LayerNormalization", name, &inputs, &output, attrs);
            }
            Op::GroupNorm(g) => {
                // InstanceNormalization of the [1, groups, rest] view, then the per-channel
                // affine (GroupNormalization needs opset 18).
                let groups = g.groups;
                let view = self.int_const(&format!("{name}.groups"), &[1, groups as i64, -1]);
                let grouped = self.fresh(&format!("{name}.grouped"));
                self.push("Reshape", &grouped, &[&x, &view], &grouped, vec![]);
                let ones = self.float_const(&format!("{name}.ones"), &[groups], &vec![1.0; groups]);
                let zeros =
                    self.float_const(&format!("{name}.zeros"), &[groups], &vec![0.0; groups]);
                let normed = self.fresh(&format!("{name}.normed"));
                let eps = vec![Attr::float("epsilon", g.eps as f32)];
                self.push(
                    "InstanceNormalization",
                    &normed,
                    &[&grouped, &ones, &zeros],
                    &normed,
                    eps,
                );
                let back: Vec<i64> = in_shape.iter().map(|&d| d as i64).collect();
                let back = self.int_const(&format!("{name}.shape"), &back);
                if node.params.is_empty() {
                    self.push("Reshape", name, &[&normed, &back], &output, vec![]);
                } else {
                    let shaped = self.fresh(&format!("{name}.shaped"));
                    self.push("Reshape", &shaped, &[&normed, &back], &shaped, vec![]);
                    self.channel_affine(node, name, &shaped, &output, in_shape.len());
                }
            }
            Op::Activation(a) => self.activation(name, *a, &x, &output),
            Op::PRelu(_) => {
                let slope = if node.params[0].data.len() == 1 {
                    self.param(node, 0)
                } else {
                    self.channel_param(node, 0, in_shape.len())
                };
                self.push("PRelu", name, &[&x, &slope], &output, vec![]);
            }
            Op::Softmax(s) => {
                self.push(
                    "Softmax",
                    name,
                    &[&x],
                    &output,
                    vec![Attr::int("axis", s.dim)],
                );
            }
            Op::Pool(p) => {
                // A 1-d pool's one axis is the second of each pair.
                let axes = |v: [usize; 2]| v[2 - p.rank..].to_vec();
                let pad = axes(p.padding);
                let mut attrs = vec![
                    Attr::ints("kernel_shape", &axes(p.kernel)),
                    Attr::ints("strides", &axes(p.stride)),
                    Attr::ints("pads", &[pad.as_slice(), pad.as_slice()].concat()),
                    Attr::int("ceil_mode", p.ceil_mode as i64),
                ];
                let op_type = match p.kind {
                    PoolKind::Max => {
                        attrs.push(Attr::ints("dilations", &axes(p.dilation)));
                        "MaxPool"
                    }
                    PoolKind::Avg => {
                        attrs.push(Attr::int("count_include_pad", p.count_include_pad as i64));
                        "AveragePool"
                    }
                };
                self.push(op_type, name, &[&x], &output, attrs);
            }
            Op::AdaptivePool(a) if out_shape[2..].iter().all(|&d| d == 1) => {
                let op_type = match a.kind {
                    PoolKind::Max => "GlobalMaxPool",
                    PoolKind::Avg => "GlobalAveragePool",
                };
                self.push(op_type, name, &[&x], &output, vec![]);
            }
            Op::AdaptivePool(a) if a.kind == PoolKind::Avg => {
                // The windows are rectangles, so the mean is separable: Rows · X · Colsᵀ,
                // with Rows (oh x h) and Colsᵀ (w x ow) averaging PyTorch's windows (a 1-d
                // pool has no rows).
                let r = in_shape.len();
                let (w, ow) = (in_shape[r - 1], out_shape[r - 1]);
                let cols = window_means(w, ow, true);
                let cols = self.float_const(&format!("{name}.col_means"), &[w, ow], &cols);
                if a.rank == 1 {
                    self.push("MatMul", name, &[&x, &cols], &output, vec![]);
                } else {
                    let (h, oh) = (in_shape[2], out_shape[2]);
                    let rows = window_means(h, oh, false);
                    let rows = self.float_const(&format!("{name}.row_means"), &[oh, h], &rows);
                    let pooled_rows = self.fresh(&format!("{name}.rows"));
                    self.push("MatMul", &pooled_rows, &[&rows, &x], &pooled_rows, vec![]);
                    self.push("MatMul", name, &[&pooled_rows, &cols], &output, vec![]);
                }
            }
            Op::AdaptivePool(_) => {
                // Adaptive max: the bins are rectangles, so the max is separable too: the
                // columns' bins (a `Slice` and a `ReduceMax` each, concatenated), then the rows'.
                let pooled: Vec<usize> = (2..in_shape.len())
                    .rev()
                    .filter(|&a| in_shape[a] != out_shape[a])
                    .collect();
                let mut from = x.clone();
                for (k, &axis) in pooled.iter().enumerate() {
                    let to = if k + 1 == pooled.len() {
                        output.clone()
                    } else {
                        self.fresh(&format!("{name}.axis{axis}"))
                    };
                    let (len, out) = (in_shape[axis], out_shape[axis]);
                    self.adaptive_max_axis(name, &from, &to, axis, len, out);
                    from = to;
                }
                if pooled.is_empty() {
                    self.push("Identity", name, &[&x], &output, vec![]);
                }
            }
            Op::Upsample(u) => {
                // Resize with PyTorch's coordinate rules: a given scale factor travels as the
                // `scales` input (ONNX then maps by `1 / scale`, as PyTorch does), a size or a
                // recomputed factor as `sizes` (mapping by `in / out`), and so does any factor
                // with align_corners, whose mapping PyTorch takes from the sizes alone.
                let attrs = match u.mode {
                    ResampleMode::Nearest => vec![
                        Attr::str("mode", "nearest"),
                        Attr::str("coordinate_transformation_mode", "asymmetric"),
                        Attr::str("nearest_mode", "floor"),
                    ],
                    _ => vec![
                        Attr::str("mode", "linear"),
                        Attr::str(
                            "coordinate_transformation_mode",
                            if u.align_corners {
                                "align_corners"
                            } else {
                                "pytorch_half_pixel"
                            },
                        ),
                    ],
                };
                let resize = match &u.target {
                    Target::ScaleFactor(f) if !u.recompute_scale_factor && !u.align_corners => {
                        let spatial = in_shape.len() - 2;
                        let mut scales = vec![1.0f32; 2];
                        scales.extend((0..spatial).map(|i| f[i.min(f.len() - 1)] as f32));
                        let scales =
                            self.float_const(&format!("{name}.scales"), &[scales.len()], &scales);
                        vec![x.clone(), String::new(), scales]
                    }
                    _ => {
                        let sizes: Vec<i64> = out_shape.iter().map(|&d| d as i64).collect();
                        let sizes = self.int_const(&format!("{name}.sizes"), &sizes);
                        vec![x.clone(), String::new(), String::new(), sizes]
                    }
                };
                let inputs: Vec<&str> = resize.iter().map(String::as_str).collect();
                self.push("Resize", name, &inputs, &output, attrs);
            }
            Op::ZeroPad(z) => {
                let p = &z.padding;
                let pads = [0, 0, p.top, p.left, 0, 0, p.bottom, p.right].map(|v| v as i64);
                let pads = self.int_const(&format!("{name}.pads"), &pads);
                self.push("Pad", name, &[&x, &pads], &output, vec![]);
            }
            Op::Flatten(_) | Op::Reshape(_) => {
                let shape: Vec<i64> = out_shape.iter().map(|&d| d as i64).collect();
                let shape = self.int_const(&format!("{name}.shape"), &shape);
                self.push("Reshape", name, &[&x, &shape], &output, vec![]);
            }
            Op::Permute(p) => {
                self.push(
                    "Transpose",
                    name,
                    &[&x],
                    &output,
                    vec![Attr::ints("perm", &p.dims)],
                );
            }
            Op::Slice(s) => {
                // ONNX Slice takes PyTorch's clamping bounds as they are; they are resolved
                // here so that the file states exactly the range taken.
                let (axis, start, len) = s.resolve(in_shape).expect("the graph was checked");
                let end = start + (len - 1) * s.step as usize + 1;
                let starts = self.int_const(&format!("{name}.starts"), &[start as i64]);
                let ends = self.int_const(&format!("{name}.ends"), &[end as i64]);
                let axes = self.int_const(&format!("{name}.axes"), &[axis as i64]);
                let steps = self.int_const(&format!("{name}.steps"), &[s.step]);
                self.push(
                    "Slice",
                    name,
                    &[&x, &starts, &ends, &axes, &steps],
                    &output,
                    vec![],
                );
            }
            Op::Concat(c) => {
                let inputs: Vec<String> = node
                    .inputs
                    .iter()
                    .map(|&v| self.value_names[v].clone())
                    .collect();
                let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
                self.push(
                    "Concat",
                    name,
                    &inputs,
                    &output,
                    vec![Attr::int("axis", c.dim)],
                );
            }
            Op::Binary(op) => {
                let y = self.value_names[node.inputs[1]].clone();
                let op_type = match op.kind {
                    BinaryKind::Add => "Add",
                    BinaryKind::Mul => "Mul",
                };
                self.push(op_type, name, &[&x, &y], &output, vec![]);
            }
            // The export is of the f32 graph; the conversions of a quantized graph are identities
            // there.
            Op::Dropout | Op::Quantize | Op::Dequantize => {
                self.push("Identity", name, &[&x], &output, vec![])
            }
        }
        if let Some(a) = node.fused {
            let act_name = self.fresh(&format!("{name}.{}", a.name()));
            self.activation(&act_name, a, &output, &final_output);
        }
        Ok(())
    }

    /// Emits `output = a(x)` as one ONNX op or its formula.
    fn activation(&mut self, name: &str, a: Activation, x: &str, output: &str) {
        match a {
            Activation::Relu => self.push("Relu", name, &[x], output, vec![]),
            Activation::Relu6 => {
                let lo = self.float_const(&format!("{name}.min"), &[], &[0.0]);
                let hi = self.float_const(&format!("{name}.max"), &[], &[6.0]);
                self.push("Clip", name, &[x, &lo, &hi], output, vec![]);
            }
            Activation::LeakyRelu { negative_slope } => self.push(
                "LeakyRelu",
                name,
                &[x],
                output,
                vec![Attr::float("alpha", negative_slope)],
            ),
            Activation::Sigmoid => self.push("Sigmoid", name, &[x], output, vec![]),
            Activation::Tanh => self.push("Tanh", name, &[x], output, vec![]),
            Activation::Silu => {
                let gate = self.fresh(&format!("{name}.sigmoid"));
                self.push("Sigmoid", &gate, &[x], &gate, vec![]);
                self.push("Mul", name, &[x, &gate], output, vec![]);
            }
            Activation::Hardswish => self.push("HardSwish", name, &[x], output, vec![]),
            Activation::Hardsigmoid => self.push(
                "HardSigmoid",
                name,
                &[x],
                output,
                vec![Attr::float("alpha", 1.0 / 6.0), Attr::float("beta", 0.5)],
            ),
            Activation::Gelu { tanh } => {
                // 0.5 * x * (1 + erf(x / sqrt 2)), or with tanh(sqrt(2/pi) (x + 0.044715 x^3)).
                let inner = if tanh {
                    let c = self.float_const(&format!("{name}.cubic"), &[], &[0.044715]);
                    let k = self.float_const(
                        &format!("{name}.sqrt_2_over_pi"),
                        &[],
                        &[(2.0 / std::f64::consts::PI).sqrt() as f32],
                    );
                    let chain = [
                        ("Mul", x.to_string(), x.to_string()),
                        ("Mul", String::new(), x.to_string()),
                        ("Mul", String::new(), c),
                        ("Add", String::new(), x.to_string()),
                        ("Mul", String::new(), k),
                        ("Tanh", String::new(), String::new()),
                    ];
                    self.chain(name, &chain)
                } else {
                    let r = self.float_const(
                        &format!("{name}.sqrt_2"),
                        &[],
                        &[std::f64::consts::SQRT_2 as f32],
                    );
                    let chain = [
                        ("Div", x.to_string(), r),
                        ("Erf", String::new(), String::new()),
                    ];
                    self.chain(name, &chain)
                };
                let one = self.float_const(&format!("{name}.one"), &[], &[1.0]);
                let half = self.float_const(&format!("{name}.half"), &[], &[0.5]);
                let rest = [("Add", inner, one), ("Mul", String::new(), x.to_string())];
                let scaled = self.chain(name, &rest);
                self.push("Mul", name, &[&scaled, &half], output, vec![]);
            }
        }
    }

    /// Emits a chain of unary/binary ops, each taking the previous result where its first operand
    /// is empty (and its second operand, if non-empty); returns the last result's name.
    fn chain(&mut self, name: &str, steps: &[(&str, String, String)]) -> String {
        let mut previous = String::new();
        for (op_type, first, second) in steps {
            let a = if first.is_empty() { &previous } else { first };
            let out = self.fresh(&format!("{name}.{}", op_type.to_lowercase()));
            let inputs: Vec<&str> = if second.is_empty() {
                vec![a]
            } else {
                vec![a, second]
            };
            self.push(op_type, &out, &inputs, &out, vec![]);
            previous = out;
        }
        previous
    }
}

/// The matrix averaging PyTorch's adaptive windows along one axis of length `input` into `output`
/// cells: window `i` spans `[floor(i * input / output), ceil((i + 1) * input / output))`. Row-major
/// `(output, input)`, or `(input, output)` when `transposed`.
impl Builder<'_> {
    /// PyTorch's adaptive max bins along one `axis` of `x` (`len` -> `out`): per bin a `Slice`
    /// and a `ReduceMax` keeping the axis, then a `Concat`, written to `target`.
    fn adaptive_max_axis(
        &mut self,
        name: &str,
        x: &str,
        target: &str,
        axis: usize,
        len: usize,
        out: usize,
    ) {
        let axes = self.int_const(&format!("{name}.axis{axis}.axes"), &[axis as i64]);
        let mut bins = Vec::with_capacity(out);
        for i in 0..out {
            let (start, end) = (i * len / out, ((i + 1) * len).div_ceil(out));
            let starts = self.int_const(&format!("{name}.bin{axis}_{i}.start"), &[start as i64]);
            let ends = self.int_const(&format!("{name}.bin{axis}_{i}.end"), &[end as i64]);
            let slice = self.fresh(&format!("{name}.bin{axis}_{i}.slice"));
            self.push("Slice", &slice, &[x, &starts, &ends, &axes], &slice, vec![]);
            let max = self.fresh(&format!("{name}.bin{axis}_{i}.max"));
            let attrs = vec![Attr::ints("axes", &[axis]), Attr::int("keepdims", 1)];
            self.push("ReduceMax", &max, &[&slice], &max, attrs);
            bins.push(max);
        }
        let bins: Vec<&str> = bins.iter().map(String::as_str).collect();
        let cat = self.fresh(&format!("{name}.axis{axis}.cat"));
        let attrs = vec![Attr::int("axis", axis as i64)];
        self.push("Concat", &cat, &bins, target, attrs);
    }
}

fn window_means(input: usize, output: usize, transposed: bool) -> Vec<f32> {
    let mut m = vec![0.0; input * output];
    for i in 0..output {
        let (start, end) = (i * input / output, ((i + 1) * input).div_ceil(output));
        for k in start..end {
            let at = if transposed {
                k * output + i
            } else {
                i * input + k
            };
            m[at] = (1.0 / (end - start) as f64) as f32;
        }
    }
    m
}

/// `base`, or `base_2`, `base_3`... — the first not yet in `used`, which it joins.
fn unique(used: &mut HashSet<String>, base: &str) -> String {
    let mut name = base.to_string();
    let mut n = 1;
    while used.contains(&name) {
        n += 1;
        name = format!("{base}_{n}");
    }
    used.insert(name.clone());
    name
}

/// A float32 tensor's name and static shape.
fn tensor_info(name: &str, shape: &[usize]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension::Value as Dim, Dimension};
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(pb::TensorShapeProto {
                    dim: shape
                        .iter()
                        .map(|&d| Dimension {
                            value: Some(Dim::DimValue(d as i64)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A node attribute.
enum Attr {
    Int(&'static str, i64),
    Ints(&'static str, Vec<i64>),
    Float(&'static str, f32),
    Str(&'static str, &'static str),
}

impl Attr {
    fn int(name: &'static str, value: i64) -> Attr {
        Attr::Int(name, value)
    }

    fn ints(name: &'static str, values: &[usize]) -> Attr {
        Attr::Ints(name, values.iter().map(|&v| v as i64).collect())
    }

    fn float(name: &'static str, value: f32) -> Attr {
        Attr::Float(name, value)
    }

    fn str(name: &'static str, value: &'static str) -> Attr {
        Attr::Str(name, value)
    }

    fn into_proto(self) -> pb::AttributeProto {
        use pb::attribute_proto::AttributeType;
        match self {
            Attr::Int(name, i) => pb::AttributeProto {
                name: name.into(),
                r#type: AttributeType::Int as i32,
                i,
                ..Default::default()
            },
            Attr::Ints(name, ints) => pb::AttributeProto {
                name: name.into(),
                r#type: AttributeType::Ints as i32,
                ints,
                ..Default::default()
            },
            Attr::Float(name, f) => pb::AttributeProto {
                name: name.into(),
                r#type: AttributeType::Float as i32,
                f,
                ..Default::default()
            },
            Attr::Str(name, s) => pb::AttributeProto {
                name: name.into(),
                r#type: AttributeType::String as i32,
                s: s.as_bytes().to_vec(),
                ..Default::default()
            },
        }
    }
}
