//! Folds `ZeroPad2d` into the convolution that reads it: the padding is added to the
//! convolution's explicit (possibly asymmetric) padding. Only when the convolution is the padded
//! value's sole reader (another reader would need the padded tensor) and it is not a graph output.
//! Zero padding before a max pool is not folded: a max pool pads with -infinity.

use crate::graph::{Graph, Op};

pub fn apply(mut graph: Graph) -> Graph {
    loop {
        let found = graph.nodes.iter().enumerate().find_map(|(pi, pad)| {
            let Op::ZeroPad(z) = &pad.op else { return None };
            if pad.fused.is_some() {
                return None;
            }
            let ci = graph.consumers(pad.output).first().copied()?;
            let Op::Conv(c) = &graph.nodes[ci].op else {
                return None;
            };
            let foldable = graph.has_sole_consumer(pad.output, ci)
                && (c.rank == 2 || z.padding.top + z.padding.bottom == 0);
            foldable.then_some((pi, ci, z.padding))
        });
        let Some((pi, ci, p)) = found else { break };
        if let Op::Conv(c) = &mut graph.nodes[ci].op {
            c.padding.top += p.top;
            c.padding.bottom += p.bottom;
            c.padding.left += p.left;
            c.padding.right += p.right;
        }
        graph.bypass_node(pi);
    }
    graph.compact();
    graph
}
