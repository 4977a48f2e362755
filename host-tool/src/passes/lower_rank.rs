//! Brings permutes of more than four dimensions (the engine's limit, batch included) down to
//! four, and with them the values around them. ShuffleNet's channel shuffle,
//! `view(1, g, c / g, h, w).transpose(1, 2).view(1, c, h, w)`, is a 5-d permute; with size-1 axes
//! dropped and the axes that stay neighbours merged (`h, w` into one) it moves the same elements as
//! a 3-d one. The permute becomes that one between two reshapes, then every chain of reshapes
//! becomes a single reshape, so the 5-d values are gone. A permute that cannot be brought to four
//! dimensions is left for the blob writer to refuse.

use crate::graph::ops::{Permute, Reshape};
use crate::graph::{Graph, Node, Op};

/// The input shape and permutation of the smallest permute that moves the elements of a permute
/// `perm` of `shape` as it does: size-1 axes dropped, runs of input axes that stay adjacent and in
/// order in the output merged.
pub fn minimal_permute(shape: &[usize], perm: &[usize]) -> (Vec<usize>, Vec<usize>) {
    // Output order of the input axes that are not of size 1.
    let order: Vec<usize> = perm.iter().copied().filter(|&a| shape[a] > 1).collect();
    // Groups of input axes, in output order: a group continues while the next output axis is the
    // next input axis (skipping size-1 axes in between).
    let next_kept = |a: usize| (a + 1..shape.len()).find(|&b| shape[b] > 1);
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for &a in &order {
        match groups.last_mut() {
            Some(g) if next_kept(*g.last().unwrap_or(&a)) == Some(a) => g.push(a),
            _ => groups.push(vec![a]),
        }
    }
    let mut by_input: Vec<usize> = (0..groups.len()).collect();
    by_input.sort_by_key(|&g| groups[g][0]);
    let merged: Vec<usize> = by_input
        .iter()
        .map(|&g| groups[g].iter().map(|&a| shape[a]).product())
        .collect();
    // Output position k holds group k; its place in the merged input is its rank by first axis.
    let merged_perm: Vec<usize> = (0..groups.len())
        .map(|k| by_input.iter().position(|&g| g == k).unwrap_or(0))
        .collect();
    (merged, merged_perm)
}

pub fn apply(mut graph: Graph) -> Graph {
    let mut i = 0;
    while i < graph.nodes.len() {
        let node = &graph.nodes[i];
        let Op::Permute(p) = &node.op else {
            i += 1;
            continue;
        };
        let shape = graph.shape(node.inputs[0]).to_vec();
        let (merged, perm) = minimal_permute(&shape, &p.dims);
        if shape.len() <= 4 || merged.len() + 1 > 4 {
            i += 1;
            continue;
        }
        let (name, input, output) = (node.name.clone(), node.inputs[0], node.output);
        let in_shape: Vec<usize> = std::iter::once(1).chain(merged.iter().copied()).collect();
        let out_shape: Vec<usize> = std::iter::once(1)
            .chain(perm.iter().map(|&a| merged[a]))
            .collect();
        let base = graph.values[output].name.clone();
        let a = graph.push_value(&format!("{base}.merged_in"), in_shape.clone());
        let b = graph.push_value(&format!("{base}.merged_out"), out_shape);
        let reshape = |name: String, from, to, shape: &[usize]| Node {
            name,
            module: None,
            op: Op::Reshape(Reshape {
                shape: shape.iter().map(|&d| d as i64).collect(),
            }),
            inputs: vec![from],
            output: to,
            fused: None,
            params: Vec::new(),
            quant: None,
        };
        let final_shape = graph.shape(output).to_vec();
        let node = &mut graph.nodes[i];
        node.op = Op::Permute(Permute {
            dims: std::iter::once(0)
                .chain(perm.iter().map(|&a| a + 1))
                .collect(),
        });
        node.inputs = vec![a];
        node.output = b;
        graph
            .nodes
            .insert(i, reshape(format!("{name}.in"), input, a, &in_shape));
        graph.nodes.insert(
            i + 2,
            reshape(format!("{name}.out"), b, output, &final_shape),
        );
        i += 3;
    }
    merge_reshape_chains(&mut graph);
    graph.compact();
    graph
}

/// `reshape(reshape(x))` → `reshape(x)` where the inner one has no other reader.
fn merge_reshape_chains(graph: &mut Graph) {
    let is_reshape =
        |n: &Node| matches!(n.op, Op::Flatten(_) | Op::Reshape(_)) && n.fused.is_none();
    while let Some((outer, inner)) = (0..graph.nodes.len()).find_map(|o| {
        let n = &graph.nodes[o];
        let p = graph.producer(n.inputs[0])?;
        (is_reshape(n) && is_reshape(&graph.nodes[p]) && graph.has_sole_consumer(n.inputs[0], o))
            .then_some((o, p))
    }) {
        let source = graph.nodes[inner].inputs[0];
        let shape = graph
            .shape(graph.nodes[outer].output)
            .iter()
            .map(|&d| d as i64)
            .collect();
        let n = &mut graph.nodes[outer];
        n.inputs = vec![source];
        n.op = Op::Reshape(Reshape { shape });
        graph.nodes.remove(inner);
    }
}

#[cfg(test)]
mod tests {
    use super::minimal_permute;

    #[test]
    fn channel_shuffle_is_a_3d_transpose() {
        // [1, g=2, c/g=8, h=4, w=4] with dims 1 and 2 swapped: [2, 8, 16] with [1, 0, 2].
        assert_eq!(
            minimal_permute(&[1, 2, 8, 4, 4], &[0, 2, 1, 3, 4]),
            (vec![2, 8, 16], vec![1, 0, 2])
        );
    }

    #[test]
    fn identity_permute_is_one_axis() {
        assert_eq!(
            minimal_permute(&[1, 3, 1, 5], &[0, 2, 1, 3]),
            (vec![15], vec![0])
        );
    }

    #[test]
    fn a_full_reversal_keeps_every_axis() {
        assert_eq!(
            minimal_permute(&[2, 3, 4], &[2, 1, 0]),
            (vec![2, 3, 4], vec![2, 1, 0])
        );
    }
}
