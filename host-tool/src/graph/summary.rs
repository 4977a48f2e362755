//! Per-layer figures for `nnblob archs` and `nnblob convert`: name, op, output shape, parameter
//! count and multiply-accumulates, with totals. Works on bound and unbound graphs alike (counts
//! come from the declared shapes).

use std::collections::BTreeSet;

use super::{numel, Graph};

/// One row of the summary table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerRow {
    pub name: String,
    /// The op as PyTorch names it, with a fused activation after `+` (`Conv2d+ReLU`).
    pub op: String,
    pub output_shape: Vec<usize>,
    /// Parameters of this layer, as `sum(p.numel() for p in module.parameters())` counts them:
    /// BatchNorm's running statistics (buffers) are not parameters. A module called twice counts
    /// once (at its first call).
    pub params: u64,
    pub macs: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub rows: Vec<LayerRow>,
    pub total_params: u64,
    pub total_macs: u64,
}

pub fn summarize(graph: &Graph) -> Summary {
    let mut counted = BTreeSet::new();
    let rows: Vec<LayerRow> = graph
        .nodes
        .iter()
        .map(|n| {
            let first = n.module.as_ref().is_none_or(|m| counted.insert(m.clone()));
            let params = if first {
                n.op.params()
                    .iter()
                    .filter(|(name, _)| !name.starts_with("running_"))
                    .map(|(_, s)| numel(s) as u64)
                    .sum()
            } else {
                0
            };
            let output_shape = graph.shape(n.output).to_vec();
            let fused = n
                .fused
                .map(|a| format!("+{}", a.name()))
                .unwrap_or_default();
            LayerRow {
                name: n.name.clone(),
                op: format!("{}{}", n.op.kind(), fused),
                macs: n.op.macs(&output_shape),
                output_shape,
                params,
            }
        })
        .collect();
    Summary {
        total_params: rows.iter().map(|r| r.params).sum(),
        total_macs: rows.iter().map(|r| r.macs).sum(),
        rows,
    }
}
