//! Eval-mode passes over a bound graph.
//!
//! In: a bound [`Graph`] as the spec describes it. Out: an equivalent graph (the reference
//! evaluator gives the same outputs up to f32 rounding) that is cheaper to run: no Dropout, no
//! ZeroPad2d before a convolution, BatchNorm folded into the convolution or linear layer before it
//! (or turned into a per-channel scale-and-shift), activations fused into the op before them, permutes of more than four
//! dimensions brought to four, and no identity reshapes. Each pass is a pure function `Graph -> Graph` in a module of its own.

pub mod drop_dropout;
pub mod fold_batchnorm;
pub mod fold_pad;
pub mod fuse_activation;
pub mod lower_rank;
pub mod remove_identity_reshape;

use crate::graph::Graph;

/// A pass: a pure function from graph to equivalent graph.
pub type Pass = fn(Graph) -> Graph;

/// Every pass with its name, in the order the pipeline runs them.
pub const PIPELINE: &[(&str, Pass)] = &[
    ("drop_dropout", drop_dropout::apply),
    ("fold_pad", fold_pad::apply),
    ("fold_batchnorm", fold_batchnorm::apply),
    ("fuse_activation", fuse_activation::apply),
    ("lower_rank", lower_rank::apply),
    ("remove_identity_reshape", remove_identity_reshape::apply),
];

/// Runs the whole pipeline.
pub fn optimize(graph: Graph) -> Graph {
    PIPELINE.iter().fold(graph, |g, (_, pass)| pass(g))
}
