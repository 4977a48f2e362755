//! Comparison of one output tensor against a reference: error metrics, tolerances, a verdict.
//!
//! In: the tensor under test (`actual`), the reference tensor (`reference`), their shape, and whether
//! the output is a classification (top-1 is then meaningful). Out: [`OutputMetrics`], judged by
//! [`Tolerances`] into a [`Verdict`]. Everything is computed in f64 whatever the inputs' type.
//!
//! Definitions, with `a` the actual and `b` the reference values over the `n` element pairs where
//! both are finite:
//!
//! | metric | definition |
//! |---|---|
//! | max abs error | `max |a_i - b_i|`, with the flat and multi-index of the first element reaching it |
//! | mean abs error | `sum |a_i - b_i| / n` |
//! | RMSE | `sqrt(sum (a_i - b_i)^2 / n)` |
//! | L2-relative error | `||a - b||_2 / ||b||_2`; 0 when both are 0, +inf when only `b` is 0 |
//! | max relative error | `max |a_i - b_i| / max(max |b_i|, f32::MIN_POSITIVE)`: the worst error relative to the reference's largest magnitude |
//! | cosine similarity | `a . b / (||a|| ||b||)`, clamped to [-1, 1]; 1 when both are 0, 0 when only one is |
//! | top-1 agreement | per row (the last axis is the class axis; every other axis indexes rows), whether the first index of the largest value is the same in `a` and `b` |
//!
//! The max relative error normalises by the reference's largest magnitude rather than element by
//! element: near-zero reference elements (small logits, softmax tails) would otherwise turn
//! rounding noise into huge relative errors.
//!
//! A NaN or infinity in either tensor is never averaged away: the pairs holding one are counted, the
//! first is reported with its index, the other metrics cover the finite pairs, and the verdict fails.
//!
//! Every struct serialises with serde (`--json`); JSON has no infinity, so an infinite L2-relative
//! error (a zero reference with a non-zero output) appears as `null`.

use std::fmt::{self, Write as _};

use serde::Serialize;

/// What an output means, which decides whether top-1 agreement is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    /// Scores or probabilities over classes along the last axis.
    Classification,
    /// Anything else (regression, reconstruction, embeddings): no top-1.
    Other,
}

/// Where an element sits: its offset in row-major order and its index on every axis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ElementIndex {
    /// Row-major offset.
    pub flat: usize,
    /// One index per axis of the shape.
    pub multi: Vec<usize>,
}

impl ElementIndex {
    fn new(flat: usize, shape: &[usize]) -> Self {
        let mut multi = vec![0; shape.len()];
        let mut rest = flat;
        for (slot, &extent) in multi.iter_mut().zip(shape).rev() {
            if extent > 0 {
                *slot = rest % extent;
                rest /= extent;
            }
        }
        ElementIndex { flat, multi }
    }
}

impl fmt::Display for ElementIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let axes: Vec<String> = self.multi.iter().map(usize::to_string).collect();
        write!(f, "[{}]", axes.join(", "))
    }
}

/// The element with the largest absolute error.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorstElement {
    /// Where it is.
    pub index: ElementIndex,
    /// The value under test.
    pub actual: f64,
    /// The reference value.
    pub reference: f64,
}

/// NaN or infinite values found in either tensor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NonFinite {
    /// Element pairs where the value under test is NaN or infinite.
    pub in_actual: usize,
    /// Element pairs where the reference is NaN or infinite.
    pub in_reference: usize,
    /// The first such pair.
    pub first: WorstElement,
}

/// Top-1 agreement over the rows of a classification output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Top1 {
    /// Rows compared (elements / classes).
    pub rows: usize,
    /// Rows whose argmax is the same in both tensors.
    pub agreeing: usize,
    /// The rows that disagree (at most [`Top1::MAX_LISTED`] listed).
    pub disagreements: Vec<Top1Disagreement>,
    /// The smallest gap between the largest and second-largest reference value over all rows: an
    /// error larger than this can flip the top-1 legitimately.
    pub min_reference_margin: f64,
}

impl Top1 {
    /// How many disagreeing rows are listed.
    pub const MAX_LISTED: usize = 8;
}

/// One row where the classes differ.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Top1Disagreement {
    /// The row (offset along the flattened leading axes).
    pub row: usize,
    /// The argmax of the value under test.
    pub actual_class: usize,
    /// The argmax of the reference.
    pub reference_class: usize,
    /// The reference's gap between its two largest values in this row.
    pub reference_margin: f64,
}

/// The comparison of one output. Metrics cover the element pairs where both values are finite.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutputMetrics {
    /// The output's name.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Number of elements.
    pub elements: usize,
    /// Largest |a - b|.
    pub max_abs_error: f64,
    /// The element reaching it (absent for an empty tensor or when no pair is finite).
    pub worst: Option<WorstElement>,
    /// Mean |a - b|.
    pub mean_abs_error: f64,
    /// Root mean square of a - b.
    pub rmse: f64,
    /// ||a - b|| / ||b||.
    pub l2_relative_error: f64,
    /// max |a - b| / max(max |b|, f32::MIN_POSITIVE).
    pub max_relative_error: f64,
    /// a . b / (||a|| ||b||).
    pub cosine_similarity: f64,
    /// Largest |b|.
    pub reference_max_abs: f64,
    /// For classification outputs.
    pub top1: Option<Top1>,
    /// NaN or infinities in either tensor.
    pub non_finite: Option<NonFinite>,
}

/// Why two tensors cannot be compared at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompareError {
    /// The two tensors, or the shape, disagree on the element count.
    #[error(
        "output '{name}': shape {shape:?} has {expected} elements, the tested tensor has {actual} and the reference {reference}"
    )]
    Length {
        name: String,
        shape: Vec<usize>,
        expected: usize,
        actual: usize,
        reference: usize,
    },
    /// A classification output needs a class axis.
    #[error("output '{name}': a classification output needs a last axis with at least one class, the shape is {shape:?}")]
    NoClassAxis { name: String, shape: Vec<usize> },
}

/// Compares `actual` with `reference`, both row-major with the given `shape`.
pub fn compare<A, B>(
    name: &str,
    shape: &[usize],
    kind: OutputKind,
    actual: &[A],
    reference: &[B],
) -> Result<OutputMetrics, CompareError>
where
    A: Copy + Into<f64>,
    B: Copy + Into<f64>,
{
    let elements = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    if elements != Some(actual.len()) || elements != Some(reference.len()) {
        return Err(CompareError::Length {
            name: name.to_string(),
            shape: shape.to_vec(),
            expected: elements.unwrap_or(usize::MAX),
            actual: actual.len(),
            reference: reference.len(),
        });
    }
    let classes = shape.last().copied().unwrap_or(0);
    if kind == OutputKind::Classification && classes == 0 {
        return Err(CompareError::NoClassAxis {
            name: name.to_string(),
            shape: shape.to_vec(),
        });
    }

    let mut finite_pairs = 0usize;
    let mut sum_abs = 0.0f64;
    let mut sum_sq = 0.0f64;
    let mut norm_a_sq = 0.0f64;
    let mut norm_b_sq = 0.0f64;
    let mut dot = 0.0f64;
    let mut reference_max_abs = 0.0f64;
    let mut worst: Option<(usize, f64, f64, f64)> = None;
    let mut non_finite: Option<NonFinite> = None;

    for (i, (&a, &b)) in actual.iter().zip(reference).enumerate() {
        let (a, b): (f64, f64) = (a.into(), b.into());
        if !a.is_finite() || !b.is_finite() {
            let entry = non_finite.get_or_insert_with(|| NonFinite {
                in_actual: 0,
                in_reference: 0,
                first: WorstElement {
                    index: ElementIndex::new(i, shape),
                    actual: a,
                    reference: b,
                },
            });
            entry.in_actual += usize::from(!a.is_finite());
            entry.in_reference += usize::from(!b.is_finite());
            continue;
        }
        let diff = a - b;
        let abs = diff.abs();
        finite_pairs += 1;
        sum_abs += abs;
        sum_sq += diff * diff;
        norm_a_sq += a * a;
        norm_b_sq += b * b;
        dot += a * b;
        reference_max_abs = reference_max_abs.max(b.abs());
        if worst.is_none_or(|(_, max, _, _)| abs > max) {
            worst = Some((i, abs, a, b));
        }
    }

    let max_abs_error = worst.map_or(0.0, |(_, max, _, _)| max);
    let mean = |sum: f64| {
        if finite_pairs == 0 {
            0.0
        } else {
            sum / finite_pairs as f64
        }
    };
    let l2_relative_error = if sum_sq == 0.0 {
        0.0
    } else if norm_b_sq == 0.0 {
        f64::INFINITY
    } else {
        (sum_sq / norm_b_sq).sqrt()
    };
    let cosine_similarity = match (norm_a_sq == 0.0, norm_b_sq == 0.0) {
        (true, true) => 1.0,
        (true, false) | (false, true) => 0.0,
        (false, false) => (dot / (norm_a_sq.sqrt() * norm_b_sq.sqrt())).clamp(-1.0, 1.0),
    };
    let top1 = match kind {
        OutputKind::Classification => Some(top1(actual, reference, classes)),
        OutputKind::Other => None,
    };

    Ok(OutputMetrics {
        name: name.to_string(),
        shape: shape.to_vec(),
        elements: actual.len(),
        max_abs_error,
        worst: worst.map(|(i, _, a, b)| WorstElement {
            index: ElementIndex::new(i, shape),
            actual: a,
            reference: b,
        }),
        mean_abs_error: mean(sum_abs),
        rmse: mean(sum_sq).sqrt(),
        l2_relative_error,
        max_relative_error: max_abs_error / reference_max_abs.max(f64::from(f32::MIN_POSITIVE)),
        cosine_similarity,
        reference_max_abs,
        top1,
        non_finite,
    })
}

/// Top-1 agreement per row of `classes` values. NaN is never the argmax (a row of NaN has class 0);
/// NaN itself is reported by the non-finite check.
fn top1<A, B>(actual: &[A], reference: &[B], classes: usize) -> Top1
where
    A: Copy + Into<f64>,
    B: Copy + Into<f64>,
{
    let mut result = Top1 {
        rows: 0,
        agreeing: 0,
        disagreements: Vec::new(),
        min_reference_margin: f64::INFINITY,
    };
    for (row, (a, b)) in actual
        .chunks_exact(classes)
        .zip(reference.chunks_exact(classes))
        .enumerate()
    {
        let (actual_class, _) = argmax_and_margin(a);
        let (reference_class, reference_margin) = argmax_and_margin(b);
        result.rows += 1;
        result.min_reference_margin = result.min_reference_margin.min(reference_margin);
        if actual_class == reference_class {
            result.agreeing += 1;
        } else if result.disagreements.len() < Top1::MAX_LISTED {
            result.disagreements.push(Top1Disagreement {
                row,
                actual_class,
                reference_class,
                reference_margin,
            });
        }
    }
    result
}

/// The first index of the largest value (0 for an empty row): the class a classifier picks.
pub fn argmax<T: Copy + Into<f64>>(row: &[T]) -> usize {
    argmax_and_margin(row).0
}

/// The first index of the largest value, and the gap to the second-largest (+inf for one class).
fn argmax_and_margin<T: Copy + Into<f64>>(row: &[T]) -> (usize, f64) {
    let mut best = (0usize, f64::NEG_INFINITY);
    let mut second = f64::NEG_INFINITY;
    for (i, &v) in row.iter().enumerate() {
        let v: f64 = v.into();
        if v > best.1 {
            second = best.1;
            best = (i, v);
        } else if v > second {
            second = v;
        }
    }
    (best.0, best.1 - second)
}

/// Limits an output must meet. `None` disables a check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tolerances {
    /// Largest allowed max relative error (see the module doc for its definition).
    pub max_relative_error: Option<f64>,
    /// Smallest allowed cosine similarity.
    pub min_cosine_similarity: Option<f64>,
    /// The smallest share of rows of a classification output that must have the reference's
    /// top-1 class (1.0: every row); `None`: top-1 is reported, not judged.
    pub min_top1_agreement: Option<f64>,
}

impl Tolerances {
    /// For fp16 weights: the outputs point the same way (cosine >= 0.9999) and classify the same.
    ///
    /// Half precision keeps 11 significant bits (relative rounding 2^-11 ~ 4.9e-4 per weight), so an
    /// element-wise bound would have to be loose enough to say little; direction and decision are
    /// what a user relies on.
    pub fn fp16() -> Self {
        Tolerances {
            max_relative_error: None,
            min_cosine_similarity: Some(0.9999),
            min_top1_agreement: Some(1.0),
        }
    }

    /// For f32 weights: max relative error <= 1e-5, top-1 identical.
    ///
    /// Two correct f32 implementations differ only by summation order and fused multiply-adds:
    /// a few units of f32 rounding (2^-24 ~ 6e-8) per accumulation, far below 1e-5 of the output's
    /// range on the catalog models.
    pub fn f32() -> Self {
        Tolerances {
            max_relative_error: Some(1e-5),
            min_cosine_similarity: None,
            min_top1_agreement: Some(1.0),
        }
    }

    /// For int8 blobs: cosine >= 0.999 and the reference's class on at least 99 % of the rows.
    ///
    /// Each int8 layer rounds its outputs to 1/255 of their range, so outputs move by a few
    /// percent of their scale and near-ties flip: what a user checks is how often the decision
    /// holds over a representative set (the digits demo keeps PyTorch's on 449 of 450 images).
    pub fn int8() -> Self {
        Tolerances {
            max_relative_error: None,
            min_cosine_similarity: Some(0.999),
            min_top1_agreement: Some(0.99),
        }
    }

    /// Judges one output's metrics.
    pub fn judge(&self, metrics: &OutputMetrics) -> Verdict {
        let mut failures = Vec::new();
        if let Some(nf) = &metrics.non_finite {
            failures.push(Failure::NonFinite {
                in_actual: nf.in_actual,
                in_reference: nf.in_reference,
                first: nf.first.index.clone(),
            });
        }
        if let Some(limit) = self.max_relative_error {
            let value = metrics.max_relative_error;
            if value.is_nan() || value > limit {
                failures.push(Failure::MaxRelativeError { value, limit });
            }
        }
        if let Some(limit) = self.min_cosine_similarity {
            let value = metrics.cosine_similarity;
            if value.is_nan() || value < limit {
                failures.push(Failure::CosineSimilarity { value, limit });
            }
        }
        if let (Some(min), Some(top1)) = (self.min_top1_agreement, &metrics.top1) {
            if (top1.agreeing as f64) < min * top1.rows as f64 {
                failures.push(Failure::Top1 {
                    disagreeing: top1.rows - top1.agreeing,
                    rows: top1.rows,
                    min_agreement: min,
                });
            }
        }
        Verdict { failures }
    }
}

/// The outcome of judging one output: passed when there are no failures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// Every limit not met.
    pub failures: Vec<Failure>,
}

impl Verdict {
    /// Whether every limit was met.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// One limit not met.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum Failure {
    /// NaN or infinity in either tensor.
    NonFinite {
        in_actual: usize,
        in_reference: usize,
        first: ElementIndex,
    },
    /// Max relative error above the limit.
    MaxRelativeError { value: f64, limit: f64 },
    /// Cosine similarity below the limit.
    CosineSimilarity { value: f64, limit: f64 },
    /// More rows classify differently than the share allowed.
    Top1 {
        disagreeing: usize,
        rows: usize,
        min_agreement: f64,
    },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::NonFinite {
                in_actual,
                in_reference,
                first,
            } => write!(
                f,
                "non-finite values: {in_actual} in the tested output, {in_reference} in the reference (first at {first})"
            ),
            Failure::MaxRelativeError { value, limit } => {
                write!(f, "max relative error {value:.3e} > {limit:.1e}")
            }
            Failure::CosineSimilarity { value, limit } => {
                write!(f, "cosine similarity {value:.6} < {limit}")
            }
            Failure::Top1 {
                disagreeing,
                rows,
                min_agreement,
            } => {
                write!(f, "top-1 differs on {disagreeing} of {rows} rows")?;
                if *min_agreement < 1.0 {
                    write!(f, " (at most {:.2} % may)", 100.0 * (1.0 - min_agreement))?;
                }
                Ok(())
            }
        }
    }
}

/// One output's metrics with its verdict: the unit of a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutputReport {
    /// The measurements.
    #[serde(flatten)]
    pub metrics: OutputMetrics,
    /// The judgement.
    pub verdict: Verdict,
    /// The reference output compared with, when its name is not the output's own (outputs
    /// paired by position).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

impl OutputReport {
    /// Judges `metrics` with `tolerances`.
    pub fn new(metrics: OutputMetrics, tolerances: &Tolerances) -> Self {
        let verdict = tolerances.judge(&metrics);
        OutputReport {
            metrics,
            verdict,
            reference: None,
        }
    }
}

/// A human-readable table of the reports, one row per output, then the reasons for each failure.
pub fn render_table(reports: &[OutputReport]) -> String {
    let header = [
        "output", "shape", "max abs", "at", "mean abs", "RMSE", "L2R", "max rel", "cosine",
        "top-1", "verdict",
    ];
    let rows: Vec<[String; 11]> = reports
        .iter()
        .map(|r| {
            let m = &r.metrics;
            [
                match &r.reference {
                    Some(reference) => format!("{} = {reference}", m.name),
                    None => m.name.clone(),
                },
                format!("{:?}", m.shape),
                format!("{:.3e}", m.max_abs_error),
                m.worst
                    .as_ref()
                    .map_or_else(|| "-".to_string(), |w| w.index.to_string()),
                format!("{:.3e}", m.mean_abs_error),
                format!("{:.3e}", m.rmse),
                format!("{:.3e}", m.l2_relative_error),
                format!("{:.3e}", m.max_relative_error),
                format!("{:.8}", m.cosine_similarity),
                m.top1
                    .as_ref()
                    .map_or_else(|| "-".to_string(), |t| format!("{}/{}", t.agreeing, t.rows)),
                if r.verdict.passed() { "pass" } else { "FAIL" }.to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, &w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", padded.join("  ").trim_end());
    };
    line(&header);
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
    for r in reports {
        for failure in &r.verdict.failures {
            let _ = writeln!(out, "{}: {failure}", r.metrics.name);
        }
        if let Some(top1) = &r.metrics.top1 {
            for d in &top1.disagreements {
                let _ = writeln!(
                    out,
                    "{}: row {}: class {} where the reference has {} (reference margin {:.3e})",
                    r.metrics.name, d.row, d.actual_class, d.reference_class, d.reference_margin
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    //! Hand-built vectors whose metric values are obvious by construction (no external reference is
    //! needed for a definition: identical vectors have zero error, a scaled vector has a known
    //! relative error, and so on).

    use super::*;

    fn metrics(actual: &[f32], reference: &[f32]) -> OutputMetrics {
        compare("y", &[actual.len()], OutputKind::Other, actual, reference).unwrap()
    }

    #[test]
    fn identical_vectors_have_no_error_and_cosine_one() {
        let v = [0.5f32, -1.25, 3.0, 7.75, -0.001];
        let m = metrics(&v, &v);
        assert_eq!(m.max_abs_error, 0.0);
        assert_eq!(m.mean_abs_error, 0.0);
        assert_eq!(m.rmse, 0.0);
        assert_eq!(m.l2_relative_error, 0.0);
        assert_eq!(m.max_relative_error, 0.0);
        // a.a / (|a| |a|) may round one ulp away from 1.
        assert!((m.cosine_similarity - 1.0).abs() < 1e-15);
        assert!(m.non_finite.is_none());
        assert!(Tolerances::f32().judge(&m).passed());
        assert!(Tolerances::fp16().judge(&m).passed());
    }

    #[test]
    fn scaled_vector_has_the_scale_as_relative_error() {
        // a = 1.01 * b: every relative measure is 0.01, the cosine is exactly 1 in exact arithmetic.
        let b = [1.0f64, -2.0, 4.0, 0.5];
        let a: Vec<f64> = b.iter().map(|x| x * 1.01).collect();
        let m = compare("y", &[4], OutputKind::Other, &a, &b).unwrap();
        assert!((m.l2_relative_error - 0.01).abs() < 1e-12);
        // max |a - b| = 0.04 at the element 4.0, which is also max |b|.
        assert!((m.max_relative_error - 0.01).abs() < 1e-12);
        assert!((m.max_abs_error - 0.04).abs() < 1e-12);
        assert_eq!(m.worst.as_ref().unwrap().index.flat, 2);
        assert!((m.cosine_similarity - 1.0).abs() < 1e-15);
        assert!(!Tolerances::f32().judge(&m).passed());
        assert!(Tolerances::fp16().judge(&m).passed());
    }

    #[test]
    fn single_offset_gives_known_mean_rmse_and_l2r() {
        // One element off by 3 out of four: mean 3/4, RMSE sqrt(9/4) = 1.5, L2R 3 / ||b|| = 3 / 5.
        let b = [3.0f32, 4.0, 0.0, 0.0];
        let a = [3.0f32, 4.0, 0.0, 3.0];
        let m = metrics(&a, &b);
        assert_eq!(m.max_abs_error, 3.0);
        assert_eq!(m.mean_abs_error, 0.75);
        assert_eq!(m.rmse, 1.5);
        assert_eq!(m.l2_relative_error, 0.6);
        assert_eq!(m.max_relative_error, 0.75);
        // cos = 25 / (5 * sqrt(34)).
        assert!((m.cosine_similarity - 25.0 / (5.0 * 34f64.sqrt())).abs() < 1e-15);
    }

    #[test]
    fn orthogonal_and_opposite_vectors() {
        let m = metrics(&[1.0, 0.0], &[0.0, 1.0]);
        assert_eq!(m.cosine_similarity, 0.0);
        let m = metrics(&[-1.0, -2.0], &[1.0, 2.0]);
        assert!((m.cosine_similarity + 1.0).abs() < 1e-15);
        assert!((m.l2_relative_error - 2.0).abs() < 1e-15);
    }

    #[test]
    fn zero_vectors_follow_the_documented_conventions() {
        let m = metrics(&[0.0, 0.0], &[0.0, 0.0]);
        assert_eq!((m.cosine_similarity, m.l2_relative_error), (1.0, 0.0));
        let m = metrics(&[1.0, 0.0], &[0.0, 0.0]);
        assert_eq!(m.cosine_similarity, 0.0);
        assert_eq!(m.l2_relative_error, f64::INFINITY);
        // Normalised by f32::MIN_POSITIVE, not by zero.
        assert!(m.max_relative_error.is_finite() && m.max_relative_error > 1e37);
    }

    #[test]
    fn worst_element_is_located_by_flat_and_multi_index() {
        let shape = [2, 3, 4];
        let reference = vec![0.0f32; 24];
        let mut actual = reference.clone();
        // Flat 17 = 1*12 + 1*4 + 1.
        actual[17] = -0.5;
        let m = compare("y", &shape, OutputKind::Other, &actual, &reference).unwrap();
        let worst = m.worst.unwrap();
        assert_eq!(worst.index.flat, 17);
        assert_eq!(worst.index.multi, vec![1, 1, 1]);
        assert_eq!((worst.actual, worst.reference), (-0.5, 0.0));
        assert_eq!(worst.index.to_string(), "[1, 1, 1]");
    }

    #[test]
    fn nan_or_infinity_in_either_tensor_fails_and_is_located() {
        let reference = [1.0f32, 2.0, 3.0, 4.0];
        let actual = [1.0f32, f32::NAN, 3.0, f32::INFINITY];
        let m = compare("y", &[2, 2], OutputKind::Other, &actual, &reference).unwrap();
        let nf = m.non_finite.as_ref().unwrap();
        assert_eq!((nf.in_actual, nf.in_reference), (2, 0));
        assert_eq!(nf.first.index.multi, vec![0, 1]);
        // The finite pairs agree exactly, and still the verdict fails, with no tolerance at all.
        assert_eq!(m.max_abs_error, 0.0);
        let lenient = Tolerances {
            max_relative_error: None,
            min_cosine_similarity: None,
            min_top1_agreement: None,
        };
        let verdict = lenient.judge(&m);
        assert!(matches!(
            verdict.failures.as_slice(),
            [Failure::NonFinite { in_actual: 2, .. }]
        ));

        let m = metrics(&[1.0, 2.0], &[f32::NAN, 2.0]);
        assert_eq!(m.non_finite.as_ref().unwrap().in_reference, 1);
        assert!(!Tolerances::fp16().judge(&m).passed());
    }

    #[test]
    fn top1_counts_rows_over_the_last_axis() {
        // Three rows of four classes; row 1's argmax moves from class 2 to class 0.
        let reference = [
            0.1f32, 0.7, 0.1, 0.1, //
            0.3, 0.1, 0.5, 0.1, //
            0.0, 0.0, 0.0, 1.0,
        ];
        let mut actual = reference;
        actual[4] = 0.6;
        let m = compare(
            "p",
            &[3, 4],
            OutputKind::Classification,
            &actual,
            &reference,
        )
        .unwrap();
        let top1 = m.top1.as_ref().unwrap();
        assert_eq!((top1.rows, top1.agreeing), (3, 2));
        let d = &top1.disagreements[0];
        assert_eq!((d.row, d.actual_class, d.reference_class), (1, 0, 2));
        assert!((d.reference_margin - 0.2).abs() < 1e-6);
        assert!((top1.min_reference_margin - 0.2).abs() < 1e-6);
        let verdict = Tolerances::fp16().judge(&m);
        assert!(verdict.failures.contains(&Failure::Top1 {
            disagreeing: 1,
            rows: 3,
            min_agreement: 1.0,
        }));
        let table = render_table(&[OutputReport::new(m, &Tolerances::fp16())]);
        assert!(table.contains("2/3"), "{table}");
        assert!(
            table.contains("p: row 1: class 0 where the reference has 2"),
            "{table}"
        );
    }

    #[test]
    fn top1_is_absent_for_other_outputs_and_needs_a_class_axis() {
        assert!(metrics(&[1.0, 2.0], &[1.0, 2.0]).top1.is_none());
        let err = compare::<f32, f32>("s", &[], OutputKind::Classification, &[1.0], &[1.0]);
        assert!(matches!(err, Err(CompareError::NoClassAxis { .. })));
    }

    #[test]
    fn length_mismatch_is_an_error_naming_the_counts() {
        let err = compare(
            "out",
            &[2, 3],
            OutputKind::Other,
            &[0.0f32; 6],
            &[0.0f32; 5],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "output 'out': shape [2, 3] has 6 elements, the tested tensor has 6 and the reference 5"
        );
    }

    #[test]
    fn f32_tolerance_passes_below_and_fails_above_1e_5() {
        // Reference max |b| = 2^0 = 1 and an error of exactly 2^-17 (7.6e-6) passes; 2^-16 (1.5e-5) fails.
        let b = [1.0f64, 0.25];
        let pass = compare(
            "y",
            &[2],
            OutputKind::Other,
            &[1.0 + 2f64.powi(-17), 0.25],
            &b,
        )
        .unwrap();
        assert!(Tolerances::f32().judge(&pass).passed());
        let fail = compare(
            "y",
            &[2],
            OutputKind::Other,
            &[1.0 + 2f64.powi(-16), 0.25],
            &b,
        )
        .unwrap();
        assert!(matches!(
            Tolerances::f32().judge(&fail).failures.as_slice(),
            [Failure::MaxRelativeError { .. }]
        ));
    }

    #[test]
    fn reports_serialize_to_json() {
        let m = metrics(&[1.0, 2.0], &[1.0, 2.5]);
        let report = OutputReport::new(m, &Tolerances::f32());
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["name"], "y");
        assert_eq!(json["max_abs_error"], 0.5);
        assert_eq!(json["worst"]["index"]["multi"][0], 1);
        assert_eq!(
            json["verdict"]["failures"][0]["check"],
            "max_relative_error"
        );
    }
}
