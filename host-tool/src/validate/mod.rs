//! Validation: does a network compute what its reference computes?
//!
//! In: an ONNX file and f32 inputs (run by [`tract_ref`], the independent reference engine), or two
//! sets of named outputs (from any engine, e.g. the firmware engine and tract, or tract and PyTorch's
//! recorded outputs). Out: per output, the error metrics of [`metrics`] and a pass/fail verdict against
//! [`Tolerances`], as a table for people or as serde-serialisable structs for `--json`.
//!
//! Inputs and outputs are paired by name, or by position when the names differ and the counts
//! agree ([`pair`]); a mismatch is an error that lists both sides.

pub mod firmware;
pub mod metrics;
pub mod tract_ref;

use serde::Serialize;

use crate::npy::Array;
pub use firmware::{FirmwareError, FirmwareModel};
pub use metrics::{
    compare, render_table, CompareError, OutputKind, OutputMetrics, OutputReport, Tolerances,
    Verdict,
};
pub use tract_ref::{ReferenceError, ReferenceModel};

/// A named f32 tensor: an input or output of a network.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    /// The input or output name (the ONNX graph's, or the blob's).
    pub name: String,
    /// Shape and row-major values.
    pub array: Array<f32>,
}

impl NamedTensor {
    /// A tensor from a name and an array.
    pub fn new(name: impl Into<String>, array: Array<f32>) -> Self {
        NamedTensor {
            name: name.into(),
            array,
        }
    }
}

/// A name and a shape: what a network declares for an input or output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TensorSpec {
    /// The name.
    pub name: String,
    /// The shape.
    pub shape: Vec<usize>,
}

/// `name [dims], ...`: a model's inputs, for error messages that list them.
fn describe(specs: &[TensorSpec]) -> String {
    specs
        .iter()
        .map(|s| format!("{} {:?}", s.name, s.shape))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The shape of `rows` samples of a tensor of shape `shape` stacked on a new leading axis: a
/// leading batch axis of 1 becomes the sample axis (`[1, 10]` → `[rows, 10]`), any other shape
/// gets one (`[10]` → `[rows, 10]`).
pub fn stacked_shape(rows: usize, shape: &[usize]) -> Vec<usize> {
    let sample = match shape.split_first() {
        Some((1, rest)) => rest,
        _ => shape,
    };
    std::iter::once(rows)
        .chain(sample.iter().copied())
        .collect()
}

/// How the tested side's inputs or outputs are paired with the reference's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pairing {
    /// Each with the one of the same name.
    Name,
    /// The first with the first, and so on.
    Position,
}

/// Two lists of inputs or outputs that do not pair up: how, and both lists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PairingMismatch {
    /// `inputs` or `outputs`.
    pub what: &'static str,
    /// The pairing asked for; `None` when neither would do.
    pub rule: Option<Pairing>,
    /// Names on the tested side.
    pub tested: Vec<String>,
    /// Names on the reference side.
    pub reference: Vec<String>,
}

impl std::fmt::Display for PairingMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (t, r) = (self.tested.join(", "), self.reference.join(", "));
        match self.rule {
            Some(Pairing::Name) => write!(
                f,
                "{} do not match by name: tested has [{t}], reference has [{r}]{}",
                self.what,
                describe_unmatched(&self.tested, &self.reference)
            ),
            Some(Pairing::Position) => write!(
                f,
                "{} do not match by position: tested has {} ([{t}]), reference has {} ([{r}])",
                self.what,
                self.tested.len(),
                self.reference.len()
            ),
            None => write!(
                f,
                "{} match neither by name nor by position: tested has {} ([{t}]), reference has {} ([{r}]){}",
                self.what,
                self.tested.len(),
                self.reference.len(),
                describe_unmatched(&self.tested, &self.reference)
            ),
        }
    }
}

fn describe_unmatched(tested: &[String], reference: &[String]) -> String {
    let only_tested: Vec<&str> = tested
        .iter()
        .filter(|n| !reference.contains(n))
        .map(String::as_str)
        .collect();
    let only_reference: Vec<&str> = reference
        .iter()
        .filter(|n| !tested.contains(n))
        .map(String::as_str)
        .collect();
    let mut text = String::new();
    if !only_tested.is_empty() {
        text += &format!("; only in tested: {}", only_tested.join(", "));
    }
    if !only_reference.is_empty() {
        text += &format!("; only in reference: {}", only_reference.join(", "));
    }
    text
}

/// Pairs `tested` with `reference` names: `(tested index, reference index)` in the reference's
/// order, and how. `rule` forces a pairing; without one, by name when both sides hold the same
/// names (each once), otherwise by position when the counts agree (a blob's `b, a` against
/// `torch.onnx.export`'s `output0, output1`).
pub fn pair(
    what: &'static str,
    tested: &[&str],
    reference: &[&str],
    rule: Option<Pairing>,
) -> Result<(Vec<(usize, usize)>, Pairing), PairingMismatch> {
    let mismatch = |rule| PairingMismatch {
        what,
        rule,
        tested: tested.iter().map(|s| s.to_string()).collect(),
        reference: reference.iter().map(|s| s.to_string()).collect(),
    };
    // The tested output of this name, when there is exactly one.
    let only = |name: &str| {
        let mut same = (0..tested.len()).filter(|&i| tested[i] == name);
        match (same.next(), same.next()) {
            (Some(i), None) => Some(i),
            _ => None,
        }
    };
    let by_name: Option<Vec<(usize, usize)>> = if tested.len() == reference.len() {
        (0..reference.len())
            .map(|j| only(reference[j]).map(|i| (i, j)))
            .collect()
    } else {
        None
    };
    let by_position =
        || (tested.len() == reference.len()).then(|| (0..tested.len()).map(|i| (i, i)).collect());
    match rule {
        Some(Pairing::Name) => by_name
            .map(|p| (p, Pairing::Name))
            .ok_or_else(|| mismatch(rule)),
        Some(Pairing::Position) => by_position()
            .map(|p| (p, Pairing::Position))
            .ok_or_else(|| mismatch(rule)),
        None => match by_name {
            Some(p) => Ok((p, Pairing::Name)),
            None => by_position()
                .map(|p| (p, Pairing::Position))
                .ok_or_else(|| mismatch(None)),
        },
    }
}

/// A tested output and the reference output it is compared with.
pub type OutputPair<'a> = (&'a NamedTensor, &'a NamedTensor);

/// Pairs every tested output with a reference output ([`pair`]), in the reference's order.
pub fn match_outputs<'a>(
    tested: &'a [NamedTensor],
    reference: &'a [NamedTensor],
    rule: Option<Pairing>,
) -> Result<(Vec<OutputPair<'a>>, Pairing), PairingMismatch> {
    let names = |ts: &'a [NamedTensor]| ts.iter().map(|t| t.name.as_str()).collect::<Vec<_>>();
    let (pairs, how) = pair("outputs", &names(tested), &names(reference), rule)?;
    Ok((
        pairs
            .into_iter()
            .map(|(i, j)| (&tested[i], &reference[j]))
            .collect(),
        how,
    ))
}

/// Why two sets of outputs could not be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidateError {
    /// The outputs do not pair up.
    #[error(transparent)]
    Mismatch(#[from] PairingMismatch),
    /// A pair has different shapes.
    #[error(
        "output '{name}': the tested shape is {tested:?}, the reference shape is {reference:?}"
    )]
    Shape {
        name: String,
        tested: Vec<usize>,
        reference: Vec<usize>,
    },
    /// The metrics could not be computed.
    #[error(transparent)]
    Compare(#[from] CompareError),
}

/// Compares every tested output with the reference output it pairs with ([`match_outputs`])
/// and judges it; also says how they were paired. A report is named after the tested output, and
/// carries the reference's name when it differs.
///
/// `kind_of` says for each output name whether top-1 is meaningful.
pub fn compare_outputs(
    tested: &[NamedTensor],
    reference: &[NamedTensor],
    rule: Option<Pairing>,
    kind_of: impl Fn(&str) -> OutputKind,
    tolerances: &Tolerances,
) -> Result<(Vec<OutputReport>, Pairing), ValidateError> {
    let (pairs, how) = match_outputs(tested, reference, rule)?;
    let reports = pairs
        .into_iter()
        .map(|(t, r)| {
            if t.array.shape != r.array.shape {
                return Err(ValidateError::Shape {
                    name: if t.name == r.name {
                        t.name.clone()
                    } else {
                        format!("{}' / reference '{}", t.name, r.name)
                    },
                    tested: t.array.shape.clone(),
                    reference: r.array.shape.clone(),
                });
            }
            let metrics = compare(
                &t.name,
                &r.array.shape,
                kind_of(&t.name),
                &t.array.data,
                &r.array.data,
            )?;
            let mut report = OutputReport::new(metrics, tolerances);
            if t.name != r.name {
                report.reference = Some(r.name.clone());
            }
            Ok(report)
        })
        .collect::<Result<_, _>>()?;
    Ok((reports, how))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(name: &str, values: &[f32]) -> NamedTensor {
        NamedTensor::new(
            name,
            Array::new(vec![values.len()], values.to_vec()).unwrap(),
        )
    }

    #[test]
    fn outputs_pair_by_name_whatever_the_order() {
        let tested = [tensor("b", &[2.0]), tensor("a", &[1.0])];
        let reference = [tensor("a", &[1.0]), tensor("b", &[2.0])];
        let (pairs, how) = match_outputs(&tested, &reference, None).unwrap();
        assert_eq!(how, Pairing::Name);
        assert!(pairs.iter().all(|(t, r)| t.name == r.name));
        let (reports, _) = compare_outputs(
            &tested,
            &reference,
            None,
            |_| OutputKind::Other,
            &Tolerances::f32(),
        )
        .unwrap();
        assert!(reports
            .iter()
            .all(|r| r.verdict.passed() && r.reference.is_none()));
    }

    #[test]
    fn outputs_named_otherwise_pair_by_position_when_the_counts_agree() {
        // A blob's `return b, a` against torch.onnx.export's `output0, output1`.
        let tested = [tensor("b", &[2.0, 3.0]), tensor("a", &[1.0])];
        let reference = [tensor("output0", &[2.0, 3.0]), tensor("output1", &[1.0])];
        let (reports, how) = compare_outputs(
            &tested,
            &reference,
            None,
            |_| OutputKind::Other,
            &Tolerances::f32(),
        )
        .unwrap();
        assert_eq!(how, Pairing::Position);
        let named: Vec<(&str, Option<&str>)> = reports
            .iter()
            .map(|r| (r.metrics.name.as_str(), r.reference.as_deref()))
            .collect();
        assert_eq!(named, [("b", Some("output0")), ("a", Some("output1"))]);
        assert!(render_table(&reports).contains("b = output0"));
        // One output on each side: the same rule.
        let (tested, reference) = ([tensor("logits", &[1.0])], [tensor("output", &[1.0])]);
        let (pairs, how) = match_outputs(&tested, &reference, None).unwrap();
        assert_eq!(how, Pairing::Position);
        assert_eq!(
            (pairs[0].0.name.as_str(), pairs[0].1.name.as_str()),
            ("logits", "output")
        );
    }

    #[test]
    fn a_forced_pairing_is_kept_or_refused_with_both_lists() {
        let tested = [tensor("a", &[1.0]), tensor("x", &[1.0])];
        let reference = [tensor("a", &[1.0]), tensor("b", &[1.0])];
        let err = match_outputs(&tested, &reference, Some(Pairing::Name)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "outputs do not match by name: tested has [a, x], reference has [a, b]; only in tested: x; only in reference: b"
        );
        // Same names in another order, paired by position on request.
        let swapped = [tensor("x", &[1.0]), tensor("a", &[1.0])];
        let (pairs, _) = match_outputs(&swapped, &tested, Some(Pairing::Position)).unwrap();
        assert_eq!(pairs[0].0.name, "x");
        let err = match_outputs(&tested[..1], &reference, Some(Pairing::Position)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "outputs do not match by position: tested has 1 ([a]), reference has 2 ([a, b])"
        );
        let err = match_outputs(&tested[..1], &reference, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "outputs match neither by name nor by position: tested has 1 ([a]), reference has 2 ([a, b]); only in reference: b"
        );
    }

    #[test]
    fn shape_mismatch_names_the_output_and_both_shapes() {
        let tested = [NamedTensor::new(
            "y",
            Array::new(vec![2, 1], vec![1.0, 2.0]).unwrap(),
        )];
        let reference = [tensor("y", &[1.0, 2.0])];
        let err = compare_outputs(
            &tested,
            &reference,
            None,
            |_| OutputKind::Other,
            &Tolerances::f32(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "output 'y': the tested shape is [2, 1], the reference shape is [2]"
        );
    }
}
