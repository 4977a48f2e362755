//! Helpers shared by the blob tests: running a blob on the engine and comparing outputs.
//!
//! Metrics: relative error = max|got - want| / max|want| over an output; cosine in f64; top-1 =
//! index of the largest value.

#![allow(dead_code)]

use nnblob::graph::{Graph, Op};
use nnblob::validate::FirmwareModel;

/// Runs a blob on one sample per input (batch 1) with the firmware engine, through the runner
/// `nnblob run` and `nnblob validate` use; one vector per output.
pub fn run_engine(bytes: &[u8], inputs: &[&[f32]]) -> Vec<Vec<f32>> {
    FirmwareModel::new(bytes)
        .unwrap()
        .run_samples(inputs, 1)
        .unwrap()
}

pub fn relative_error(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    let scale = want
        .iter()
        .fold(0f64, |m, x| m.max(x.abs() as f64))
        .max(1e-30);
    let diff = got
        .iter()
        .zip(want)
        .fold(0f64, |m, (a, b)| m.max((*a as f64 - *b as f64).abs()));
    diff / scale
}

pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

/// The graph with every weight matrix (Conv, Linear, GRU/LSTM) rounded to f16 and back: what an fp16 blob computes
/// (its vectors stay f32).
pub fn with_f16_weights(graph: &Graph) -> Graph {
    let mut g = graph.clone();
    for n in &mut g.nodes {
        // The parameters the blob stores as weight matrices.
        let matrices = match n.op {
            Op::Conv(_) | Op::ConvTranspose(_) | Op::Linear(_) => 1,
            Op::Recurrent(_) => 2,
            _ => 0,
        };
        for p in &mut n.params[..matrices] {
            for w in &mut p.data {
                *w = half::f16::from_f32(*w).to_f32();
            }
        }
    }
    g
}
