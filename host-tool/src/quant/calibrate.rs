//! Calibration: what range each value of the f32 graph covers on representative inputs.
//!
//! In: the optimized f32 graph and calibration samples (one tensor per graph input each). Out:
//! per value, its exact minimum and maximum and a histogram over them ([`Stats`]), from the
//! reference evaluator (`crate::eval`, f64 accumulation). Two passes over the samples: the first
//! finds the extremes, the second fills the histograms between them. A [`RangeMethod`] then
//! turns a value's statistics into the range its int8 form covers.

use crate::eval::{self, EvalError};
use crate::graph::{Graph, Tensor};

/// Histogram bins per value.
pub const BINS: usize = 2048;

/// How a value's range is chosen from its statistics.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RangeMethod {
    /// The extremes seen: every calibration value is representable, but one outlier stretches
    /// the scale for all.
    MinMax,
    /// The central `p` percent of the values seen (the extremes at `(100 - p) / 2` percent from
    /// each end): clips rare outliers.
    Percentile(f64),
    /// The range, among the extremes shrunk by factors 1.0, 0.99, ... 0.30, whose quantization
    /// error (rounding inside, clipping outside) is smallest in the mean square over the
    /// histogram.
    Mse,
}

/// A value's statistics over the calibration set.
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    pub min: f32,
    pub max: f32,
    /// Counts of `BINS` equal bins over `[min, max]`.
    pub hist: Vec<u64>,
}

impl Stats {
    fn bin_width(&self) -> f64 {
        (f64::from(self.max) - f64::from(self.min)) / BINS as f64
    }

    fn bin_center(&self, i: usize) -> f64 {
        f64::from(self.min) + (i as f64 + 0.5) * self.bin_width()
    }

    /// The range the method picks.
    pub fn range(&self, method: RangeMethod) -> (f32, f32) {
        let total: u64 = self.hist.iter().sum();
        if total == 0 || self.max <= self.min {
            return (self.min, self.max);
        }
        match method {
            RangeMethod::MinMax => (self.min, self.max),
            RangeMethod::Percentile(p) => {
                let tail = ((100.0 - p.clamp(50.0, 100.0)) / 200.0 * total as f64) as u64;
                let (mut lo_bin, mut acc) = (0, 0u64);
                while lo_bin < BINS - 1 && acc + self.hist[lo_bin] <= tail {
                    acc += self.hist[lo_bin];
                    lo_bin += 1;
                }
                let (mut hi_bin, mut acc) = (BINS - 1, 0u64);
                while hi_bin > lo_bin && acc + self.hist[hi_bin] <= tail {
                    acc += self.hist[hi_bin];
                    hi_bin -= 1;
                }
                let w = self.bin_width();
                let lo = f64::from(self.min) + lo_bin as f64 * w;
                let hi = f64::from(self.min) + (hi_bin + 1) as f64 * w;
                (lo as f32, hi as f32)
            }
            RangeMethod::Mse => {
                let mut best = (f64::INFINITY, self.min, self.max);
                for step in 0..=70 {
                    let f = 1.0 - 0.01 * step as f64;
                    let (lo, hi) = (
                        (f64::from(self.min) * f) as f32,
                        (f64::from(self.max) * f) as f32,
                    );
                    let err = self.mse(lo, hi);
                    if err < best.0 {
                        best = (err, lo, hi);
                    }
                }
                (best.1, best.2)
            }
        }
    }

    /// Mean square error of quantizing the histogram's bin centres over `[lo, hi]`.
    fn mse(&self, lo: f32, hi: f32) -> f64 {
        let q = super::params::range_quant(lo, hi);
        let mut sum = 0.0;
        for (i, &n) in self.hist.iter().enumerate() {
            if n > 0 {
                let x = self.bin_center(i);
                let back =
                    super::params::dequantize_value(super::params::quantize_value(x as f32, q), q);
                sum += n as f64 * (x - f64::from(back)).powi(2);
            }
        }
        sum
    }
}

/// The rows of a stacked `(K, ...)` array as K samples of a one-input graph whose input has
/// `shape` (each row holds that many values; the caller has checked it).
pub fn one_input_samples(array: &crate::npy::Array<f32>, shape: &[usize]) -> Vec<Vec<Tensor>> {
    (0..array.rows())
        .filter_map(|r| array.row(r))
        .map(|(_, data)| vec![Tensor::new(shape.to_vec(), data.to_vec())])
        .collect()
}

/// Runs the graph on every sample twice and gathers each value's [`Stats`] (`None` for values
/// the graph does not compute). `progress(done, total)` is called after every evaluation.
pub fn collect(
    graph: &Graph,
    samples: &[Vec<Tensor>],
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<Option<Stats>>, EvalError> {
    let total = 2 * samples.len();
    let mut extremes: Vec<Option<(f32, f32)>> = vec![None; graph.values.len()];
    for (i, sample) in samples.iter().enumerate() {
        let values = eval::evaluate_all(graph, sample)?;
        for (e, v) in extremes.iter_mut().zip(&values) {
            if let Some(t) = v {
                for &x in t.data.iter().filter(|x| x.is_finite()) {
                    let (lo, hi) = e.get_or_insert((x, x));
                    *lo = lo.min(x);
                    *hi = hi.max(x);
                }
            }
        }
        progress(i + 1, total);
    }
    let mut stats: Vec<Option<Stats>> = extremes
        .iter()
        .map(|e| {
            e.map(|(min, max)| Stats {
                min,
                max,
                hist: vec![0; BINS],
            })
        })
        .collect();
    for (i, sample) in samples.iter().enumerate() {
        let values = eval::evaluate_all(graph, sample)?;
        for (s, v) in stats.iter_mut().zip(&values) {
            if let (Some(s), Some(t)) = (s.as_mut(), v) {
                let w = s.bin_width();
                for &x in t.data.iter().filter(|x| x.is_finite()) {
                    let bin = if w > 0.0 {
                        ((f64::from(x) - f64::from(s.min)) / w) as usize
                    } else {
                        0
                    };
                    s.hist[bin.min(BINS - 1)] += 1;
                }
            }
        }
        progress(samples.len() + i + 1, total);
    }
    Ok(stats)
}
