//! The tested engine: the firmware engine (the same `no_std` crate the device runs) on the host.
//!
//! In: the bytes of a blob, validated once by `nnblob_firmware::Model::from_bytes`; then named f32
//! inputs with the blob's shapes (batch 1). Out: the blob's named f32 outputs, bit-identical to
//! what the device computes, or an error naming the blob's input or output at fault. The API
//! mirrors [`super::ReferenceModel`] so that both engines are driven the same way.

use nnblob_firmware::{IoInfo, Model, WeightDtype};

use super::{NamedTensor, TensorSpec};
use crate::npy::Array;

/// Why the firmware engine could not load or run a blob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FirmwareError {
    /// The engine's validator refused the blob.
    #[error("the engine refuses the blob: {0}")]
    Blob(nnblob_firmware::Error),
    /// A given tensor names no input of the blob.
    #[error("'{input}' is not an input of the blob (its inputs: {known})")]
    UnknownInput { input: String, known: String },
    /// An input of the blob was not given (or given twice).
    #[error("input '{input}' must be given exactly once (the blob's inputs: {known})")]
    MissingInput { input: String, known: String },
    /// Not one array per input of the blob.
    #[error("{given} input(s) given, the blob's inputs are: {known}")]
    InputCount { given: usize, known: String },
    /// A given tensor's shape differs from the blob's input shape.
    #[error("input '{input}': the blob expects shape {expected:?}, given {given:?}")]
    InputShape {
        input: String,
        expected: Vec<usize>,
        given: Vec<usize>,
    },
    /// Running row by row needs exactly one input and one output.
    #[error(
        "running row by row needs one input and one output, the blob has {inputs} and {outputs}"
    )]
    NotSingleInputOutput { inputs: usize, outputs: usize },
    /// The engine stopped while running.
    #[error("the engine failed to run: {0}")]
    Run(nnblob_firmware::Error),
    /// The engine stopped while running one of several samples.
    #[error("sample {sample}: the engine failed to run: {error}")]
    RunSample {
        sample: usize,
        error: nnblob_firmware::Error,
    },
    /// Stacked samples whose lengths are not whole samples of the blob's inputs.
    #[error("input '{input}': {given} values are not {samples} sample(s) of {per_sample}")]
    SampleLength {
        input: String,
        given: usize,
        samples: usize,
        per_sample: usize,
    },
}

/// A blob ready to run on the host, with its own arena.
pub struct FirmwareModel<'b> {
    model: Model<'b>,
    arena: Vec<f32>,
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
}

impl std::fmt::Debug for FirmwareModel<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirmwareModel")
            .field("name", &self.model.name())
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .finish_non_exhaustive()
    }
}

fn spec(io: IoInfo<'_>) -> TensorSpec {
    TensorSpec {
        name: io.name.to_string(),
        shape: io.shape().iter().map(|&d| d as usize).collect(),
    }
}

impl<'b> FirmwareModel<'b> {
    /// Validates `blob` and allocates its arena.
    pub fn new(blob: &'b [u8]) -> Result<Self, FirmwareError> {
        let model = Model::from_bytes(blob).map_err(FirmwareError::Blob)?;
        let inputs = (0..model.input_count())
            .filter_map(|i| model.input(i))
            .map(spec)
            .collect();
        let outputs = (0..model.output_count())
            .filter_map(|i| model.output(i))
            .map(spec)
            .collect();
        Ok(FirmwareModel {
            arena: vec![0.0; model.arena_len()],
            model,
            inputs,
            outputs,
        })
    }

    /// The engine's view of the blob (name, provenance, op count...).
    pub fn model(&self) -> &Model<'b> {
        &self.model
    }

    /// The weight dtype of the blob, which decides the default tolerances.
    pub fn dtype(&self) -> WeightDtype {
        self.model.dtype()
    }

    /// Whether the blob is int8 (which decides the default tolerances before the dtype).
    pub fn is_quantized(&self) -> bool {
        self.model.is_quantized()
    }

    /// The inputs, in the blob's order, with their shapes (batch 1 included).
    pub fn inputs(&self) -> &[TensorSpec] {
        &self.inputs
    }

    /// The outputs, in the blob's order, with their shapes.
    pub fn outputs(&self) -> &[TensorSpec] {
        &self.outputs
    }

    /// Runs on flat buffers in the blob's order: the allocation-free path timing loops use.
    pub fn run_slices(
        &mut self,
        inputs: &[&[f32]],
        outputs: &mut [&mut [f32]],
    ) -> Result<(), FirmwareError> {
        self.model
            .run_multi(inputs, outputs, &mut self.arena)
            .map_err(FirmwareError::Run)
    }

    /// Runs `samples` samples one after the other: `inputs[i]` holds that many samples of the
    /// blob's input `i` back to back (in the blob's order); the result holds, per output, the
    /// samples' outputs back to back. `nnblob run`, `nnblob validate` and [`Self::run_each_row`]
    /// all run stacked samples through here.
    pub fn run_samples(
        &mut self,
        inputs: &[&[f32]],
        samples: usize,
    ) -> Result<Vec<Vec<f32>>, FirmwareError> {
        let known = || super::describe(&self.inputs);
        if inputs.len() != self.inputs.len() {
            return Err(FirmwareError::InputCount {
                given: inputs.len(),
                known: known(),
            });
        }
        let in_lens: Vec<usize> = self
            .inputs
            .iter()
            .map(|s| s.shape.iter().product())
            .collect();
        for ((spec, data), &n) in self.inputs.iter().zip(inputs).zip(&in_lens) {
            if Some(data.len()) != n.checked_mul(samples) {
                return Err(FirmwareError::SampleLength {
                    input: spec.name.clone(),
                    given: data.len(),
                    samples,
                    per_sample: n,
                });
            }
        }
        let out_lens: Vec<usize> = self
            .outputs
            .iter()
            .map(|s| s.shape.iter().product())
            .collect();
        let mut outputs: Vec<Vec<f32>> = out_lens.iter().map(|&n| vec![0.0; n * samples]).collect();
        for k in 0..samples {
            let sample: Vec<&[f32]> = inputs
                .iter()
                .zip(&in_lens)
                .map(|(data, &n)| &data[k * n..(k + 1) * n])
                .collect();
            let mut views: Vec<&mut [f32]> = outputs
                .iter_mut()
                .zip(&out_lens)
                .map(|(data, &n)| &mut data[k * n..(k + 1) * n])
                .collect();
            self.model
                .run_multi(&sample, &mut views, &mut self.arena)
                .map_err(|error| FirmwareError::RunSample { sample: k, error })?;
        }
        Ok(outputs)
    }

    /// Runs on `inputs` (matched to the blob's inputs by name, in any order).
    pub fn run(&mut self, inputs: &[NamedTensor]) -> Result<Vec<NamedTensor>, FirmwareError> {
        let known = || super::describe(&self.inputs);
        if let Some(stray) = inputs
            .iter()
            .find(|t| !self.inputs.iter().any(|s| s.name == t.name))
        {
            return Err(FirmwareError::UnknownInput {
                input: stray.name.clone(),
                known: known(),
            });
        }
        let mut slices = Vec::with_capacity(self.inputs.len());
        for spec in &self.inputs {
            let mut same_name = inputs.iter().filter(|t| t.name == spec.name);
            let (Some(given), None) = (same_name.next(), same_name.next()) else {
                return Err(FirmwareError::MissingInput {
                    input: spec.name.clone(),
                    known: known(),
                });
            };
            if given.array.shape != spec.shape {
                return Err(FirmwareError::InputShape {
                    input: spec.name.clone(),
                    expected: spec.shape.clone(),
                    given: given.array.shape.clone(),
                });
            }
            slices.push(given.array.data.as_slice());
        }
        let mut buffers: Vec<Vec<f32>> = self
            .outputs
            .iter()
            .map(|s| vec![0.0; s.shape.iter().product()])
            .collect();
        let mut views: Vec<&mut [f32]> = buffers.iter_mut().map(Vec::as_mut_slice).collect();
        self.run_slices(&slices, &mut views)?;
        Ok(self
            .outputs
            .iter()
            .zip(buffers)
            .map(|(spec, data)| {
                NamedTensor::new(
                    spec.name.clone(),
                    Array {
                        shape: spec.shape.clone(),
                        data,
                    },
                )
            })
            .collect())
    }

    /// Runs a one-input, one-output blob on each row of `inputs` (shape `(K, *sample)`, the
    /// blob's input being `(1, *sample)`) and stacks the outputs into `(K, *output_sample)`, like
    /// [`super::ReferenceModel::run_each_row`].
    pub fn run_each_row(&mut self, inputs: &Array<f32>) -> Result<Array<f32>, FirmwareError> {
        let ([input], [output]) = (self.inputs.as_slice(), self.outputs.as_slice()) else {
            return Err(FirmwareError::NotSingleInputOutput {
                inputs: self.inputs.len(),
                outputs: self.outputs.len(),
            });
        };
        let rows = inputs.rows();
        let sample_of = |shape: &[usize]| shape.get(1..).unwrap_or_default().to_vec();
        let row_shape = sample_of(&inputs.shape);
        if inputs.shape.is_empty()
            || input.shape.first() != Some(&1)
            || row_shape != sample_of(&input.shape)
        {
            return Err(FirmwareError::InputShape {
                input: input.name.clone(),
                expected: input.shape.clone(),
                given: inputs.shape.clone(),
            });
        }
        let out_shape = super::stacked_shape(rows, &output.shape);
        let data = self.run_samples(&[&inputs.data], rows)?.remove(0);
        Ok(Array {
            shape: out_shape,
            data,
        })
    }
}
