//! The memory planner: one arena for every tensor of an inference, with static offsets.
//!
//! In: a graph (bound or not; only shapes and the node order matter). Out: a [`Plan`] giving each
//! value a byte offset into one arena, the arena's size, and the lower bound no plan with these
//! buffers can beat.
//!
//! The algorithm, step by step:
//! - **Steps.** Node `i` runs at step `i`. A graph input is defined at step 0; a node's output at
//!   the node's step. A value is live from its definition to its last reader (graph outputs: to
//!   the last step).
//! - **Buffers.** Values that share memory form one buffer whose lifetime is the union of theirs:
//!   a free reshape (`flatten`, `reshape`, and `Dropout` if still present) always aliases its
//!   input (the bytes are the same in row-major NCHW); an element-wise op (activations,
//!   BatchNorm/scale-shift, PReLU, add, mul) writes in place over its first input when that input's
//!   buffer is read for the last time at this step, has the output's size, is not also the
//!   buffer of another operand of the op (`y * y` cannot overwrite `y`) and holds no graph output
//!   (`return y, relu(y)` needs `y` after the run).
//! - **Lower bound.** The largest total size of buffers live at one step.
//! - **Placement (greedy, as TensorFlow Lite Micro's greedy planner).** Buffers are taken in some
//!   order; each goes at the lowest offset where it overlaps no already placed buffer whose
//!   lifetime intersects its own. Three orders are tried and the smallest arena is kept: largest
//!   first (TFLite Micro's order; ties: earlier first), by first step (which packs chains, where
//!   largest-first can strand a big buffer in the middle), and by size times lifetime.
//!
//! Sizes are in bytes: 4 per f32 element, 1 per int8 one ([`crate::graph::Value::quant`]), each
//! buffer rounded up to a multiple of 4 so that every tensor starts 4-byte aligned (the engine's
//! f32 views need it).
//! - **Extra buffers.** An op may need buffers besides its values ([`crate::graph::Op::extras`]):
//!   a recurrent layer's state, live at every step (it persists between runs, so it shares memory
//!   with nothing), and its scratch row, live at the layer's step only. They are placed like the
//!   others and counted in the lower bound. Inputs and outputs live in the arena too.

use std::fmt::Write;

use crate::graph::ops::ExtraKind;
use crate::graph::{fmt_shape, numel, Graph, ValueId};

/// Memory shared by one or more values, or an op's extra buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Buffer {
    /// Values stored here, in definition order (none for an extra buffer).
    pub values: Vec<ValueId>,
    /// For an op's extra buffer ([`crate::graph::Op::extras`]): the node and the extra's index.
    pub extra: Option<(usize, usize)>,
    /// Size in bytes (a multiple of 4).
    pub len: usize,
    /// First and last step (inclusive) at which the buffer holds live data.
    pub first: usize,
    pub last: usize,
    /// Offset into the arena, in bytes.
    pub offset: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub buffers: Vec<Buffer>,
    /// `value_offset[v]`: the byte offset where value `v` starts in the arena, or `None` for
    /// values the graph no longer uses.
    pub value_offset: Vec<Option<usize>>,
    /// `extra_offset[node]`: the byte offsets of the node's extra buffers, in the order of
    /// [`crate::graph::Op::extras`].
    pub extra_offset: Vec<Vec<usize>>,
    /// Arena size in bytes.
    pub arena: usize,
    /// The largest total of buffer sizes live at one step, in bytes.
    pub lower_bound: usize,
}

impl Plan {
    /// Arena size in bytes.
    pub fn arena_bytes(&self) -> usize {
        self.arena
    }

    /// The lower bound in bytes.
    pub fn lower_bound_bytes(&self) -> usize {
        self.lower_bound
    }
}

/// Bytes value `v` takes in the arena: its elements at their size, rounded up to 4.
pub fn value_bytes(graph: &Graph, v: ValueId) -> usize {
    let elem = if graph.values[v].quant.is_some() {
        1
    } else {
        4
    };
    (numel(graph.shape(v)) * elem).next_multiple_of(4)
}

fn used_values(graph: &Graph) -> Vec<bool> {
    let mut used = vec![false; graph.values.len()];
    for &v in graph.inputs.iter().chain(&graph.outputs) {
        used[v] = true;
    }
    for n in &graph.nodes {
        used[n.output] = true;
    }
    used
}

/// (first, last) step of each value (`None` for unused ones).
pub fn lifetimes(graph: &Graph) -> Vec<Option<(usize, usize)>> {
    let used = used_values(graph);
    let end = graph.nodes.len().saturating_sub(1);
    let mut life: Vec<Option<(usize, usize)>> = vec![None; graph.values.len()];
    for &v in &graph.inputs {
        life[v] = Some((0, 0));
    }
    for (i, n) in graph.nodes.iter().enumerate() {
        for &v in &n.inputs {
            if let Some((_, last)) = &mut life[v] {
                *last = (*last).max(i);
            }
        }
        life[n.output] = Some((i, i));
    }
    for &v in &graph.outputs {
        if let Some((_, last)) = &mut life[v] {
            *last = end;
        }
    }
    for (v, l) in life.iter_mut().enumerate() {
        if !used[v] {
            *l = None;
        }
    }
    life
}

/// Groups values into buffers (aliasing and in-place rules of the module doc).
fn buffers(graph: &Graph) -> (Vec<Buffer>, Vec<Option<usize>>) {
    let life = lifetimes(graph);
    let mut buffer_of: Vec<Option<usize>> = vec![None; graph.values.len()];
    let mut bufs: Vec<Buffer> = Vec::new();
    let open = |v: ValueId, bufs: &mut Vec<Buffer>, buffer_of: &mut Vec<Option<usize>>| {
        if let Some((first, last)) = life[v] {
            buffer_of[v] = Some(bufs.len());
            bufs.push(Buffer {
                values: vec![v],
                extra: None,
                len: value_bytes(graph, v),
                first,
                last,
                offset: 0,
            });
        }
    };
    for &v in &graph.inputs {
        open(v, &mut bufs, &mut buffer_of);
    }
    for (step, n) in graph.nodes.iter().enumerate() {
        let out = n.output;
        let share = n.inputs.first().and_then(|&input| {
            let b = buffer_of[input]?;
            let same_len = bufs[b].len == value_bytes(graph, out);
            let alias = n.op.is_free_reshape() && n.fused.is_none();
            // In place only when no other operand of this node reads the same buffer (`y * y`).
            let others_elsewhere = n.inputs[1..].iter().all(|&o| buffer_of[o] != Some(b));
            // A graph output must still hold its value after the run, even when its last reader
            // is the last step.
            let holds_output = bufs[b].values.iter().any(|v| graph.outputs.contains(v));
            let in_place = n.op.is_elementwise()
                && same_len
                && bufs[b].last == step
                && others_elsewhere
                && !holds_output;
            (same_len && (alias || in_place)).then_some(b)
        });
        match (share, life[out]) {
            (Some(b), Some((_, last))) => {
                bufs[b].values.push(out);
                bufs[b].last = bufs[b].last.max(last);
                buffer_of[out] = Some(b);
            }
            _ => open(out, &mut bufs, &mut buffer_of),
        }
        // A state lives at every step, so it shares memory with nothing; a scratch buffer
        // only at the node's.
        let end = graph.nodes.len() - 1;
        for (k, e) in n.op.extras(graph.shape(out)).iter().enumerate() {
            let (first, last) = match e.kind {
                ExtraKind::State => (0, end),
                ExtraKind::Scratch => (step, step),
            };
            bufs.push(Buffer {
                values: Vec::new(),
                extra: Some((step, k)),
                len: 4 * numel(&e.shape),
                first,
                last,
                offset: 0,
            });
        }
    }
    (bufs, buffer_of)
}

fn overlaps_in_time(a: &Buffer, b: &Buffer) -> bool {
    a.first <= b.last && b.first <= a.last
}

/// The largest total length of buffers live at one step.
pub fn lower_bound(buffers: &[Buffer]) -> usize {
    let steps = buffers.iter().map(|b| b.last + 1).max().unwrap_or(0);
    (0..steps)
        .map(|s| {
            buffers
                .iter()
                .filter(|b| b.first <= s && s <= b.last)
                .map(|b| b.len)
                .sum()
        })
        .max()
        .unwrap_or(0)
}

/// The placement orders tried, by name.
const ORDERS: &[&str] = &["largest-first", "first-step", "size-x-lifetime"];

fn order(buffers: &[Buffer], which: &str) -> Vec<usize> {
    use std::cmp::Reverse;
    let mut order: Vec<usize> = (0..buffers.len()).collect();
    let b = buffers;
    match which {
        "largest-first" => order.sort_by_key(|&i| (Reverse(b[i].len), b[i].first)),
        "first-step" => order.sort_by_key(|&i| (b[i].first, Reverse(b[i].len))),
        _ => order.sort_by_key(|&i| (Reverse(b[i].len * (b[i].last - b[i].first + 1)), b[i].first)),
    }
    order
}

/// Places `buffers` with each order of [`ORDERS`] and keeps the smallest arena.
fn place(buffers: &mut [Buffer]) -> usize {
    let mut best: Option<(usize, Vec<Buffer>)> = None;
    for which in ORDERS {
        let mut candidate = buffers.to_vec();
        let arena = place_in_order(&mut candidate, &order(buffers, which));
        if best.as_ref().is_none_or(|(a, _)| arena < *a) {
            best = Some((arena, candidate));
        }
    }
    let (arena, placed) = best.unwrap_or_default();
    buffers.clone_from_slice(&placed);
    arena
}

/// Places buffers in `order`, each at the lowest offset that fits.
fn place_in_order(buffers: &mut [Buffer], order: &[usize]) -> usize {
    let mut placed: Vec<usize> = Vec::new();
    let mut arena = 0;
    for &i in order {
        let mut busy: Vec<(usize, usize)> = placed
            .iter()
            .filter(|&&j| overlaps_in_time(&buffers[i], &buffers[j]))
            .map(|&j| (buffers[j].offset, buffers[j].offset + buffers[j].len))
            .collect();
        busy.sort_unstable();
        let mut offset = 0;
        for (start, end) in busy {
            if offset + buffers[i].len <= start {
                break;
            }
            offset = offset.max(end);
        }
        buffers[i].offset = offset;
        arena = arena.max(offset + buffers[i].len);
        placed.push(i);
    }
    arena
}

/// Plans `graph`'s arena.
pub fn plan(graph: &Graph) -> Plan {
    let (mut bufs, buffer_of) = buffers(graph);
    let arena = place(&mut bufs);
    let value_offset = buffer_of
        .iter()
        .map(|b| b.map(|b| bufs[b].offset))
        .collect();
    let mut extra_offset = vec![Vec::new(); graph.nodes.len()];
    for b in &bufs {
        if let Some((node, _)) = b.extra {
            extra_offset[node].push(b.offset);
        }
    }
    let plan = Plan {
        lower_bound: lower_bound(&bufs),
        extra_offset,
        buffers: bufs,
        value_offset,
        arena,
    };
    debug_assert_eq!(check_overlaps(&plan), Ok(()));
    plan
}

/// Checks that no two buffers live at the same step share memory and that every buffer fits the
/// arena; the error names the two buffers.
pub fn check_overlaps(plan: &Plan) -> Result<(), String> {
    for (i, a) in plan.buffers.iter().enumerate() {
        if a.offset + a.len > plan.arena {
            return Err(format!(
                "buffer {i} ends at {} past the arena ({})",
                a.offset + a.len,
                plan.arena
            ));
        }
        for (j, b) in plan.buffers.iter().enumerate().skip(i + 1) {
            let in_memory = a.offset < b.offset + b.len && b.offset < a.offset + a.len;
            if in_memory && overlaps_in_time(a, b) && a.len > 0 && b.len > 0 {
                return Err(format!(
                    "buffers {i} [{}, {}) steps {}..={} and {j} [{}, {}) steps {}..={} overlap",
                    a.offset,
                    a.offset + a.len,
                    a.first,
                    a.last,
                    b.offset,
                    b.offset + b.len,
                    b.first,
                    b.last
                ));
            }
        }
    }
    Ok(())
}

/// A text dump: one line per buffer (offset, length, lifetime, the values it holds), then the
/// arena and its lower bound.
pub fn dump(graph: &Graph, plan: &Plan) -> String {
    let mut s = String::new();
    let mut order: Vec<&Buffer> = plan.buffers.iter().collect();
    order.sort_by_key(|b| (b.first, b.offset));
    for b in order {
        let mut names: Vec<String> = b
            .values
            .iter()
            .map(|&v| format!("{} {}", graph.values[v].name, fmt_shape(graph.shape(v))))
            .collect();
        names.extend(b.extra.map(|(node, k)| extra_name(graph, node, k)));
        let _ = writeln!(
            s,
            "[{:>9}, {:>9})  steps {:>3}..={:<3}  {}",
            b.offset,
            b.offset + b.len,
            b.first,
            b.last,
            names.join(" = ")
        );
    }
    let _ = writeln!(
        s,
        "arena {} bytes, lower bound {} bytes, ratio {:.3}",
        plan.arena,
        plan.lower_bound,
        plan.arena as f64 / plan.lower_bound.max(1) as f64
    );
    s
}

/// `gru.l0 state [1, 1, 32]`: an extra buffer as the dump and the footprint name it.
pub fn extra_name(graph: &Graph, node: usize, k: usize) -> String {
    let n = &graph.nodes[node];
    let e = &n.op.extras(graph.shape(n.output))[k];
    format!("{} {} {}", n.name, e.kind.name(), fmt_shape(&e.shape))
}
