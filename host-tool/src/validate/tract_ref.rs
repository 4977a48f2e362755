//! The reference engine: tract running an ONNX file.
//!
//! In: the path of an ONNX model, optionally the shapes of its inputs (needed when the file leaves a
//! dimension symbolic, such as a batch axis), then named f32 input tensors. Out: the model's named
//! f32 outputs with their shapes, computed by tract's optimised plan, or an error naming the file and
//! the input or output at fault (with the expected and the given shape where shapes disagree).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

use super::{NamedTensor, TensorSpec};
use crate::npy::Array;

/// Why the reference could not be loaded or run. Each variant names the ONNX file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// tract could not read, analyse or optimise the model.
    #[error("{path}: tract cannot {stage} the model: {reason}")]
    Load {
        path: PathBuf,
        /// `load`, `type`, `optimise` or `plan`.
        stage: &'static str,
        reason: String,
    },
    /// An input's shape is not fully known from the file and was not given.
    #[error("{path}: input '{input}' has shape {declared} in the model; give its shape (e.g. 1x3x224x224)")]
    UnknownInputShape {
        path: PathBuf,
        input: String,
        declared: String,
    },
    /// A given shape names no input of the model.
    #[error("{path}: '{input}' is not an input of the model (its inputs: {known})")]
    UnknownInput {
        path: PathBuf,
        input: String,
        known: String,
    },
    /// An input of the model was not given a value.
    #[error("{path}: input '{input}' was not given (the model's inputs: {known})")]
    MissingInput {
        path: PathBuf,
        input: String,
        known: String,
    },
    /// The same input was given twice.
    #[error("{path}: input '{input}' is given more than once")]
    DuplicateInput { path: PathBuf, input: String },
    /// A given tensor's shape differs from the model's input shape.
    #[error("{path}: input '{input}': the model expects shape {expected:?}, given {given:?}")]
    InputShape {
        path: PathBuf,
        input: String,
        expected: Vec<usize>,
        given: Vec<usize>,
    },
    /// An input or output is not float32.
    #[error("{path}: {role} '{name}' is {dtype}; only float32 tensors are supported")]
    NotFloat32 {
        path: PathBuf,
        role: &'static str,
        name: String,
        dtype: String,
    },
    /// Running row by row needs exactly one input and one output.
    #[error("{path}: running row by row needs one input and one output, the model has {inputs} and {outputs}")]
    NotSingleInputOutput {
        path: PathBuf,
        inputs: usize,
        outputs: usize,
    },
    /// tract failed while running.
    #[error("{path}: tract failed to run the model: {reason}")]
    Run { path: PathBuf, reason: String },
}

/// An ONNX model ready to run in tract, with its inputs' and outputs' names and shapes.
pub struct ReferenceModel {
    path: PathBuf,
    plan: Arc<TypedRunnableModel>,
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
}

impl std::fmt::Debug for ReferenceModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReferenceModel")
            .field("path", &self.path)
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .finish_non_exhaustive()
    }
}

impl ReferenceModel {
    /// Loads `path` with the input shapes the file declares (all must be concrete).
    pub fn load(path: &Path) -> Result<Self, ReferenceError> {
        Self::load_with_input_shapes(path, &[])
    }

    /// Loads `path`, overriding the declared shape of each input named in `shapes`.
    pub fn load_with_input_shapes(
        path: &Path,
        shapes: &[TensorSpec],
    ) -> Result<Self, ReferenceError> {
        let load_error = |stage: &'static str| {
            move |e: TractError| ReferenceError::Load {
                path: path.to_path_buf(),
                stage,
                reason: format!("{e:#}"),
            }
        };
        let mut model = tract_onnx::onnx()
            .model_for_path(path)
            .map_err(load_error("load"))?;

        let input_names = model
            .input_outlets()
            .map_err(load_error("load"))?
            .iter()
            .map(|outlet| model.node(outlet.node).name.clone())
            .collect::<Vec<_>>();
        let known = input_names.join(", ");
        for given in shapes {
            if !input_names.contains(&given.name) {
                return Err(ReferenceError::UnknownInput {
                    path: path.to_path_buf(),
                    input: given.name.clone(),
                    known,
                });
            }
        }

        let mut inputs = Vec::with_capacity(input_names.len());
        for (ix, name) in input_names.iter().enumerate() {
            let declared = model.input_fact(ix).map_err(load_error("load"))?.clone();
            if let Some(dt) = declared.datum_type.concretize() {
                if dt != f32::datum_type() {
                    return Err(ReferenceError::NotFloat32 {
                        path: path.to_path_buf(),
                        role: "input",
                        name: name.clone(),
                        dtype: format!("{dt:?}"),
                    });
                }
            }
            let shape = match shapes.iter().find(|s| &s.name == name) {
                Some(given) => given.shape.clone(),
                None => declared
                    .shape
                    .as_concrete_finite()
                    .ok()
                    .flatten()
                    .map(|dims| dims.to_vec())
                    .ok_or_else(|| ReferenceError::UnknownInputShape {
                        path: path.to_path_buf(),
                        input: name.clone(),
                        declared: format!("{:?}", declared.shape),
                    })?,
            };
            model
                .set_input_fact(
                    ix,
                    InferenceFact::dt_shape(f32::datum_type(), shape.clone()),
                )
                .map_err(load_error("load"))?;
            inputs.push(TensorSpec {
                name: name.clone(),
                shape,
            });
        }

        let output_names = model
            .output_outlets()
            .map_err(load_error("load"))?
            .iter()
            .map(|&outlet| {
                model
                    .outlet_label(outlet)
                    .map(str::to_string)
                    .unwrap_or_else(|| model.node(outlet.node).name.clone())
            })
            .collect::<Vec<_>>();

        let typed = model.into_typed().map_err(load_error("type"))?;
        let optimized = typed.into_optimized().map_err(load_error("optimise"))?;
        let mut outputs = Vec::with_capacity(output_names.len());
        for (ix, name) in output_names.into_iter().enumerate() {
            let fact = optimized.output_fact(ix).map_err(load_error("optimise"))?;
            if fact.datum_type != f32::datum_type() {
                return Err(ReferenceError::NotFloat32 {
                    path: path.to_path_buf(),
                    role: "output",
                    name,
                    dtype: format!("{:?}", fact.datum_type),
                });
            }
            let shape = fact.shape.as_concrete().map(<[usize]>::to_vec);
            outputs.push(TensorSpec {
                name,
                shape: shape.unwrap_or_default(),
            });
        }
        let plan = optimized.into_runnable().map_err(load_error("plan"))?;
        Ok(ReferenceModel {
            path: path.to_path_buf(),
            plan,
            inputs,
            outputs,
        })
    }

    /// The ONNX file this model was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The inputs, in the model's order, with the shapes they must be given.
    pub fn inputs(&self) -> &[TensorSpec] {
        &self.inputs
    }

    /// The outputs, in the model's order, with their shapes.
    pub fn outputs(&self) -> &[TensorSpec] {
        &self.outputs
    }

    /// Runs the model on `inputs` (matched to the model's inputs by name, in any order).
    pub fn run(&self, inputs: &[NamedTensor]) -> Result<Vec<NamedTensor>, ReferenceError> {
        let values = self.values(inputs)?;
        let results = self.plan.run(values).map_err(|e| self.run_error(e))?;
        self.outputs_of(&results)
    }

    /// A closure running the model on `inputs` (converted once, here) and discarding the
    /// outputs: the plan's own cost, for timing loops.
    pub fn runner(
        &self,
        inputs: &[NamedTensor],
    ) -> Result<impl FnMut() -> Result<(), ReferenceError> + '_, ReferenceError> {
        let values = self.values(inputs)?;
        Ok(move || {
            self.plan
                .run(values.clone())
                .map(drop)
                .map_err(|e| self.run_error(e))
        })
    }

    /// `inputs` checked against the model's and converted to tract values, in the model's order.
    fn values(&self, inputs: &[NamedTensor]) -> Result<TVec<TValue>, ReferenceError> {
        let known = || super::describe(&self.inputs);
        for (i, given) in inputs.iter().enumerate() {
            if !self.inputs.iter().any(|s| s.name == given.name) {
                return Err(ReferenceError::UnknownInput {
                    path: self.path.clone(),
                    input: given.name.clone(),
                    known: known(),
                });
            }
            if inputs[..i].iter().any(|earlier| earlier.name == given.name) {
                return Err(ReferenceError::DuplicateInput {
                    path: self.path.clone(),
                    input: given.name.clone(),
                });
            }
        }
        let mut values = TVec::with_capacity(self.inputs.len());
        for spec in &self.inputs {
            let given = inputs.iter().find(|t| t.name == spec.name).ok_or_else(|| {
                ReferenceError::MissingInput {
                    path: self.path.clone(),
                    input: spec.name.clone(),
                    known: known(),
                }
            })?;
            if given.array.shape != spec.shape {
                return Err(ReferenceError::InputShape {
                    path: self.path.clone(),
                    input: spec.name.clone(),
                    expected: spec.shape.clone(),
                    given: given.array.shape.clone(),
                });
            }
            let tensor = Tensor::from_shape(&given.array.shape, &given.array.data)
                .map_err(|e| self.run_error(e))?;
            values.push(tensor.into_tvalue());
        }

        Ok(values)
    }

    /// The plan's results as named arrays.
    fn outputs_of(&self, results: &[TValue]) -> Result<Vec<NamedTensor>, ReferenceError> {
        results
            .iter()
            .zip(&self.outputs)
            .map(|(value, spec)| {
                let view = value
                    .to_plain_array_view::<f32>()
                    .map_err(|e| self.run_error(e))?;
                let shape = view.shape().to_vec();
                let data = view.iter().copied().collect();
                let array = Array::new(shape, data).ok_or_else(|| ReferenceError::Run {
                    path: self.path.clone(),
                    reason: format!("output '{}' has inconsistent shape", spec.name),
                })?;
                Ok(NamedTensor::new(spec.name.clone(), array))
            })
            .collect()
    }

    /// Runs a one-input, one-output model on each row of `inputs` (shape `(K, *sample)`) as a batch
    /// of one (`(1, *sample)`), and stacks the outputs into `(K, *output_sample)`.
    ///
    /// This is how reference sets are stored (`inputs.npy` holds K samples, each fed alone).
    pub fn run_each_row(&self, inputs: &Array<f32>) -> Result<Array<f32>, ReferenceError> {
        let ([input], [output]) = (self.inputs.as_slice(), self.outputs.as_slice()) else {
            return Err(ReferenceError::NotSingleInputOutput {
                path: self.path.clone(),
                inputs: self.inputs.len(),
                outputs: self.outputs.len(),
            });
        };
        let rows = inputs.rows();
        let batch_shape: Vec<usize> = std::iter::once(1)
            .chain(inputs.shape.iter().skip(1).copied())
            .collect();
        if inputs.shape.is_empty() || batch_shape != input.shape {
            return Err(ReferenceError::InputShape {
                path: self.path.clone(),
                input: input.name.clone(),
                expected: input.shape.clone(),
                given: batch_shape,
            });
        }
        let mut data = Vec::new();
        let mut sample_shape = output.shape.get(1..).unwrap_or_default().to_vec();
        for k in 0..rows {
            let row = inputs
                .row(k)
                .map(|(_, row)| row.to_vec())
                .unwrap_or_default();
            let batch =
                Array::new(batch_shape.clone(), row).ok_or_else(|| ReferenceError::Run {
                    path: self.path.clone(),
                    reason: format!("row {k} of the inputs is incomplete"),
                })?;
            let mut result = self.run(&[NamedTensor::new(input.name.clone(), batch)])?;
            let produced = result.pop().map(|t| t.array).unwrap_or_else(|| Array {
                shape: Vec::new(),
                data: Vec::new(),
            });
            match produced.shape.split_first() {
                Some((1, sample)) => sample_shape = sample.to_vec(),
                _ => {
                    return Err(ReferenceError::Run {
                        path: self.path.clone(),
                        reason: format!(
                            "output '{}' has shape {:?} for a batch of one",
                            output.name, produced.shape
                        ),
                    })
                }
            }
            data.extend_from_slice(&produced.data);
        }
        let shape = std::iter::once(rows).chain(sample_shape).collect();
        Array::new(shape, data).ok_or_else(|| ReferenceError::Run {
            path: self.path.clone(),
            reason: format!("output '{}' changes shape between rows", output.name),
        })
    }

    fn run_error(&self, e: TractError) -> ReferenceError {
        ReferenceError::Run {
            path: self.path.clone(),
            reason: format!("{e:#}"),
        }
    }
}
