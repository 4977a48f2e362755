//! Seeded random weights and inputs for tests and demos: a state_dict that binds to a graph, with
//! BatchNorm statistics spread out (means in [-0.5, 0.5), variances in [0.25, 2.25)) so that
//! folding is really exercised.

use super::{bind::expected_keys, numel, Graph, StateDict, Tensor};

/// SplitMix64: small, seedable, good enough for test data.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let unit = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * unit
    }

    /// Uniform integer in [lo, hi].
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    pub fn tensor(&mut self, shape: &[usize], lo: f32, hi: f32) -> Tensor {
        let data = (0..numel(shape)).map(|_| self.uniform(lo, hi)).collect();
        Tensor::new(shape.to_vec(), data)
    }
}

/// Random weights for every key of `graph`, scaled by fan-in so activations stay near unit size.
pub fn random_state_dict(graph: &Graph, seed: u64) -> StateDict {
    let mut rng = Rng::new(seed);
    expected_keys(graph)
        .into_iter()
        .map(|(key, shape)| {
            let (lo, hi) = if key.ends_with("running_var") {
                (0.25, 2.25)
            } else if key.ends_with("running_mean") || key.ends_with("bias") && shape.len() == 1 {
                (-0.5, 0.5)
            } else if shape.len() > 1 {
                let bound = (3.0 / numel(&shape[1..]) as f32).sqrt();
                (-bound, bound)
            } else {
                (0.5, 1.5)
            };
            let t = rng.tensor(&shape, lo, hi);
            (key, t)
        })
        .collect()
}

/// Random values in [-1, 1) for every graph input.
pub fn random_inputs(graph: &Graph, seed: u64) -> Vec<Tensor> {
    let mut rng = Rng::new(seed);
    graph
        .inputs
        .iter()
        .map(|&v| rng.tensor(graph.shape(v), -1.0, 1.0))
        .collect()
}
