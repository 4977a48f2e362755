//! Removes Dropout: in eval mode it is the identity. Readers of its output read its input.

use crate::graph::{Graph, Op};

pub fn apply(mut graph: Graph) -> Graph {
    while let Some(i) = graph.nodes.iter().position(|n| n.op == Op::Dropout) {
        graph.bypass_node(i);
    }
    graph.compact();
    graph
}
