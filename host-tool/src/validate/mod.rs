//! Validation: does a network compute what its reference computes?
//!
//! In: an ONNX file and f32 inputs (run by [`tract_ref`], the independent reference engine), or two
//! sets of named outputs (from any engine, e.g. the firmware engine and tract, or tract and PyTorch's
//! recorded outputs). Out: per output, the error metrics of [`metrics`] and a pass/fail verdict against
//! [`Tolerances`], as a table for people or as serde-serialisable structs for `--json`.
//!
//! Outputs are matched by name ([`match_outputs`]); a mismatch is an error that lists both sides.

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

/// Two sets of outputs that do not pair up by name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("outputs do not match by name: tested has [{}], reference has [{}]{}", .tested.join(", "), .reference.join(", "), describe_unmatched(.tested, .reference))]
pub struct OutputMismatch {
    /// Names on the tested side.
    pub tested: Vec<String>,
    /// Names on the reference side.
    pub reference: Vec<String>,
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

/// Pairs every tested output with the reference output of the same name, in the reference's order.
///
/// Both sides must have exactly the same set of names, except that a single output on each side is
/// paired whatever the names (a blob and an ONNX export may name their one output differently).
pub fn match_outputs<'a>(
    tested: &'a [NamedTensor],
    reference: &'a [NamedTensor],
) -> Result<Vec<(&'a NamedTensor, &'a NamedTensor)>, OutputMismatch> {
    let mismatch = || OutputMismatch {
        tested: tested.iter().map(|t| t.name.clone()).collect(),
        reference: reference.iter().map(|t| t.name.clone()).collect(),
    };
    if let ([one_tested], [one_reference]) = (tested, reference) {
        return Ok(vec![(one_tested, one_reference)]);
    }
    if tested.len() != reference.len() {
        return Err(mismatch());
    }
    reference
        .iter()
        .map(|r| {
            let mut same_name = tested.iter().filter(|t| t.name == r.name);
            match (same_name.next(), same_name.next()) {
                (Some(t), None) => Ok((t, r)),
                _ => Err(mismatch()),
            }
        })
        .collect()
}

/// Why two sets of outputs could not be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidateError {
    /// The names do not pair up.
    #[error(transparent)]
    Mismatch(#[from] OutputMismatch),
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

/// Compares every tested output with its reference and judges it.
///
/// `kind_of` says for each output name whether top-1 is meaningful.
pub fn compare_outputs(
    tested: &[NamedTensor],
    reference: &[NamedTensor],
    kind_of: impl Fn(&str) -> OutputKind,
    tolerances: &Tolerances,
) -> Result<Vec<OutputReport>, ValidateError> {
    match_outputs(tested, reference)?
        .into_iter()
        .map(|(t, r)| {
            if t.array.shape != r.array.shape {
                return Err(ValidateError::Shape {
                    name: r.name.clone(),
                    tested: t.array.shape.clone(),
                    reference: r.array.shape.clone(),
                });
            }
            let metrics = compare(
                &r.name,
                &r.array.shape,
                kind_of(&r.name),
                &t.array.data,
                &r.array.data,
            )?;
            Ok(OutputReport::new(metrics, tolerances))
        })
        .collect()
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
        let pairs = match_outputs(&tested, &reference).unwrap();
        assert!(pairs.iter().all(|(t, r)| t.name == r.name));
        let reports = compare_outputs(
            &tested,
            &reference,
            |_| OutputKind::Other,
            &Tolerances::f32(),
        )
        .unwrap();
        assert!(reports.iter().all(|r| r.verdict.passed()));
    }

    #[test]
    fn a_single_output_pairs_whatever_its_name() {
        let (tested, reference) = ([tensor("logits", &[1.0])], [tensor("output", &[1.0])]);
        let pairs = match_outputs(&tested, &reference).unwrap();
        assert_eq!(
            (pairs[0].0.name.as_str(), pairs[0].1.name.as_str()),
            ("logits", "output")
        );
    }

    #[test]
    fn unmatched_names_are_listed_on_both_sides() {
        let tested = [tensor("a", &[1.0]), tensor("x", &[1.0])];
        let reference = [tensor("a", &[1.0]), tensor("b", &[1.0])];
        let err = match_outputs(&tested, &reference).unwrap_err();
        assert_eq!(
            err.to_string(),
            "outputs do not match by name: tested has [a, x], reference has [a, b]; only in tested: x; only in reference: b"
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
