//! `nnblob run`: a blob and `.npy` inputs in, the firmware engine's outputs as `.npy` files out.
//! The engine is the same `no_std` crate the device runs, so the outputs are the device's bits.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};

use crate::atomic_file;
use crate::npy;
use crate::validate::{stacked_shape, FirmwareModel, TensorSpec};

const EXAMPLES: &str = "\
Examples:
  nnblob run resnet8.nnb --input image.npy -o probs.npy
  nnblob run two_in.nnb --input a.npy --input b.npy -o y.npy -o z.npy
  nnblob run resnet8.nnb --input batch_of_16.npy -o probs_16.npy     runs each of the 16 samples

Shapes: for a model input of shape [1, 3, 32, 32] (the blob's shapes carry the batch of 1), an
.npy of shape (3, 32, 32) (batch omitted) or (1, 3, 32, 32) (batch included) is one sample, and
(K, 3, 32, 32) is K samples run one after the other. The outputs take the same form: (10,) for an
input without batch, (K, 10) for K samples (and for K = 1); an output without a batch axis of 1,
such as (6,) after flatten(x), is (6,) and (K, 6). With several inputs, all must have the same form
and K. Either every output file is written or, on any error, none is.

Inputs are float32 (float64 is rounded to float32); outputs are float32, little-endian, C order.
Inputs and outputs are given in the model's order (`nnblob inspect MODEL.nnb` lists them).";

/// Run a blob on the host with the firmware engine: .npy in, .npy out.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// The blob written by `nnblob convert`.
    model: PathBuf,
    /// An input .npy file; repeat for each model input, in order.
    #[arg(short, long = "input", value_name = "X.npy", required = true)]
    inputs: Vec<PathBuf>,
    /// Where to write an output .npy; repeat for each model output, in order.
    #[arg(short, long = "output", value_name = "OUT.npy", required = true)]
    outputs: Vec<PathBuf>,
}

/// How an .npy array maps onto a model input (`run` and `validate` accept the same forms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Form {
    /// The sample without its batch dimension.
    Unbatched,
    /// K samples stacked on a leading axis (K = 1: the model's shape itself).
    Stacked(usize),
}

fn tuple(shape: &[usize]) -> String {
    match shape {
        [d] => format!("({d},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

impl Form {
    /// How many samples the array holds.
    pub(super) fn samples(self) -> usize {
        match self {
            Form::Unbatched => 1,
            Form::Stacked(k) => k,
        }
    }
}

/// The form of `shape` for a model input of shape `model` (batch 1 first).
pub(super) fn form(shape: &[usize], model: &[usize]) -> Option<Form> {
    if shape == model {
        return Some(Form::Stacked(1));
    }
    let rest = model.get(1..).filter(|_| model.first() == Some(&1))?;
    if shape == rest {
        Some(Form::Unbatched)
    } else if shape.len() == model.len() && &shape[1..] == rest && shape[0] > 0 {
        Some(Form::Stacked(shape[0]))
    } else {
        None
    }
}

/// The shape of an output of model shape `model` for inputs of form `form`: without its batch of 1
/// for unbatched inputs, with the K axis for K stacked samples (as `validate` stacks them).
pub(super) fn output_shape(form: Form, model: &[usize]) -> Vec<usize> {
    match form {
        Form::Unbatched => match model.split_first() {
            Some((1, rest)) => rest.to_vec(),
            _ => model.to_vec(),
        },
        Form::Stacked(k) => stacked_shape(k, model),
    }
}

/// Run `run`.
pub fn exec(args: &Args) -> anyhow::Result<ExitCode> {
    let path = args.model.display().to_string();
    let bytes = std::fs::read(&args.model).with_context(|| path.clone())?;
    let mut model = FirmwareModel::new(&bytes).with_context(|| path.clone())?;
    let ins = model.inputs().to_vec();
    let outs = model.outputs().to_vec();
    let names = |specs: &[TensorSpec]| {
        specs
            .iter()
            .map(|s| format!("'{}' {}", s.name, tuple(&s.shape)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if args.inputs.len() != ins.len() {
        bail!(
            "{path}: the model has {} input(s) ({}), {} --input given",
            ins.len(),
            names(&ins),
            args.inputs.len()
        );
    }
    if args.outputs.len() != outs.len() {
        bail!(
            "{path}: the model has {} output(s) ({}), {} --output given",
            outs.len(),
            names(&outs),
            args.outputs.len()
        );
    }
    for (i, file) in args.outputs.iter().enumerate() {
        if args.outputs[..i].contains(file) {
            bail!("--output {} is given twice", file.display());
        }
    }
    let mut arrays = Vec::new();
    let mut common: Option<(Form, PathBuf)> = None;
    for (io, file) in ins.iter().zip(&args.inputs) {
        let a = npy::read_f32_lenient(file)?;
        let want = &io.shape;
        let f = form(&a.shape, want).with_context(|| {
            let rest = want.get(1..).unwrap_or_default();
            format!(
                "{}: shape {} does not fit the model's input '{}' of shape {}: give {} (one sample, \
                 batch omitted), {} (batch included) or (K, {}) for K samples",
                file.display(),
                tuple(&a.shape),
                io.name,
                tuple(want),
                tuple(rest),
                tuple(want),
                rest.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
            )
        })?;
        match &common {
            Some((g, first)) if *g != f => bail!(
                "{} is {:?} but {} is {:?}: all inputs must hold the same number of samples, \
                 with or without the batch dimension alike",
                file.display(),
                f,
                first.display(),
                g
            ),
            Some(_) => {}
            None => common = Some((f, file.clone())),
        }
        arrays.push(a);
    }
    let Some((form, _)) = common else {
        bail!("{path}: the model has no input");
    };
    let inputs: Vec<&[f32]> = arrays.iter().map(|a| a.data.as_slice()).collect();
    let results = model
        .run_samples(&inputs, form.samples())
        .with_context(|| path.clone())?;
    let mut files: Vec<(&Path, Vec<u8>, Vec<usize>)> = Vec::with_capacity(outs.len());
    for ((io, data), file) in outs.iter().zip(results).zip(&args.outputs) {
        let shape = output_shape(form, &io.shape);
        let array = npy::Array::new(shape.clone(), data).with_context(|| {
            format!(
                "{path}: output '{}' of shape {} gave a number of values that is not {} sample(s)",
                io.name,
                tuple(&io.shape),
                form.samples()
            )
        })?;
        let bytes =
            npy::to_bytes(&array).with_context(|| format!("encoding {}", file.display()))?;
        files.push((file, bytes, shape));
    }
    let set: Vec<(&Path, &[u8])> = files.iter().map(|(f, b, _)| (*f, b.as_slice())).collect();
    atomic_file::write_all_bytes(&set)?;
    for ((file, _, shape), io) in files.iter().zip(&outs) {
        eprintln!(
            "wrote {} ('{}', shape {})",
            file.display(),
            io.name,
            tuple(shape)
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let m = [1, 3, 8, 8];
        assert_eq!(form(&[1, 3, 8, 8], &m), Some(Form::Stacked(1)));
        assert_eq!(form(&[3, 8, 8], &m), Some(Form::Unbatched));
        assert_eq!(form(&[5, 3, 8, 8], &m), Some(Form::Stacked(5)));
        assert_eq!(form(&[5, 3, 8, 7], &m), None);
        assert_eq!(form(&[0, 3, 8, 8], &m), None);
        assert_eq!(form(&[192], &m), None);
        assert_eq!(form(&[640], &[1, 640]), Some(Form::Unbatched));
    }

    #[test]
    fn output_shapes_follow_the_input_form() {
        assert_eq!(output_shape(Form::Unbatched, &[1, 10]), [10]);
        assert_eq!(output_shape(Form::Stacked(1), &[1, 10]), [1, 10]);
        assert_eq!(output_shape(Form::Stacked(4), &[1, 10]), [4, 10]);
        // An output without a batch axis of 1 (flatten over every axis) gets the K axis in front.
        assert_eq!(output_shape(Form::Unbatched, &[6]), [6]);
        assert_eq!(output_shape(Form::Stacked(4), &[6]), [4, 6]);
        assert_eq!(output_shape(Form::Stacked(4), &[2, 3]), [4, 2, 3]);
    }
}
