//! Fuses a parameter-free activation into the op that produces its input, when that op is a
//! convolution (transposed or not), a linear layer, a scale-and-shift or an element-wise add/mul, has no activation
//! fused yet, and the activation is the sole reader of its output (and that output is not a graph
//! output). The node keeps its name; its `fused` field holds the activation. Free reshapes
//! between the two (Core ATen's 2-d views around a Linear on a 3-d input) do not stop it: an
//! element-wise activation gives the same values before a reshape as after it.

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
            // Back through free reshapes that only the next node reads.
            let (mut pi, mut reader) = (graph.producer(act.inputs[0])?, ai);
            while graph.nodes[pi].op.is_free_reshape()
                && graph.has_sole_consumer(graph.nodes[pi].output, reader)
            {
                reader = pi;
                pi = graph.producer(graph.nodes[pi].inputs[0])?;
            }
            let producer = &graph.nodes[pi];
            let ok = act.fused.is_none()
                && producer.fused.is_none()
                && can_carry_activation(&producer.op)
                && graph.has_sole_consumer(producer.output, reader);
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
