//! Removes reshapes and flattens whose output shape equals their input shape (e.g. `flatten(x, 1)`
//! of an `[1, 64]` value). Reshapes that do change the shape stay: in NCHW row-major they move no
//! data, and the planner gives them the input's memory.

use crate::graph::{Graph, Op};

pub fn apply(mut graph: Graph) -> Graph {
    while let Some(i) = graph.nodes.iter().position(|n| {
        matches!(n.op, Op::Flatten(_) | Op::Reshape(_))
            && n.fused.is_none()
            && graph.shape(n.inputs[0]) == graph.shape(n.output)
    }) {
        graph.bypass_node(i);
    }
    graph.compact();
    graph
}
