//! Fuses a parameter-free activation into the op that produces its input, when that op is a
//! convolution (transposed or not), a linear layer, a scale-and-shift or an element-wise add/mul, has no activation
//! fused yet, and the activation is the sole reader of its output (and that output is not a graph
//! output). The node keeps its name; its `fused` field holds the activation.

use crate::graph::{Graph, Op};

fn can_carry_activation(op: &Op) -> bool {
    matches!(
        op,
        Op::Conv(_) | Op::ConvTranspose(_) | Op::Linear(_) | Op::ScaleShift(_) | Op::Binary(_)
    )
}

pub fn apply(mut graph: Graph) -> Graph {
    loop {
        let found = graph.nodes.iter().enumerate().find_map(|(ai, act)| {
            let Op::Activation(a) = act.op else {
                return None;
            };
            let pi = graph.producer(act.inputs[0])?;
            let producer = &graph.nodes[pi];
            let ok = act.fused.is_none()
                && producer.fused.is_none()
                && can_carry_activation(&producer.op)
                && graph.has_sole_consumer(producer.output, ai);
            ok.then_some((ai, pi, a))
        });
        let Some((ai, pi, a)) = found else { break };
        graph.nodes[pi].fused = Some(a);
        // The producer's value takes the activation's place; the activation goes away.
        graph.bypass_node(ai);
    }
    graph.compact();
    graph
}
