//! The tract reference runner's contract on a real ONNX export: names and shapes reported, inputs
//! matched by name, every mismatch refused with the file, the input and both shapes named.

use nnblob::npy::Array;
use nnblob::validate::{NamedTensor, ReferenceError, ReferenceModel, TensorSpec};
use nnblob_tests::{models_dir, ModelFixture};

fn lenet5() -> ModelFixture {
    ModelFixture::load(&models_dir().join("lenet5")).unwrap()
}

fn zeros(name: &str, shape: &[usize]) -> NamedTensor {
    let count = shape.iter().product();
    NamedTensor::new(name, Array::new(shape.to_vec(), vec![0.0; count]).unwrap())
}

#[test]
fn names_and_shapes_come_from_the_onnx_file() {
    let fixture = lenet5();
    let model = ReferenceModel::load(&fixture.dir.join("model.onnx")).unwrap();
    let input = &fixture.manifest.inputs[0];
    let output = &fixture.manifest.outputs[0];
    let with_batch = |sample: &[usize]| [&[1], sample].concat();
    assert_eq!(
        model.inputs(),
        [TensorSpec {
            name: input.name.clone(),
            shape: with_batch(&input.sample_shape)
        }]
    );
    assert_eq!(
        model.outputs(),
        [TensorSpec {
            name: output.name.clone(),
            shape: with_batch(&output.sample_shape)
        }]
    );
}

#[test]
fn wrong_name_missing_input_duplicate_and_wrong_shape_are_refused() {
    let fixture = lenet5();
    let path = fixture.dir.join("model.onnx");
    let model = ReferenceModel::load(&path).unwrap();

    let err = model.run(&[zeros("image", &[1, 1, 32, 32])]).unwrap_err();
    assert!(matches!(&err, ReferenceError::UnknownInput { input, .. } if input == "image"));
    assert!(
        err.to_string()
            .ends_with("'image' is not an input of the model (its inputs: input [1, 1, 32, 32])"),
        "{err}"
    );

    let err = model.run(&[]).unwrap_err();
    assert!(matches!(&err, ReferenceError::MissingInput { input, .. } if input == "input"));

    let twice = [
        zeros("input", &[1, 1, 32, 32]),
        zeros("input", &[1, 1, 32, 32]),
    ];
    assert!(matches!(
        model.run(&twice),
        Err(ReferenceError::DuplicateInput { .. })
    ));

    let err = model.run(&[zeros("input", &[1, 32, 32])]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: input 'input': the model expects shape [1, 1, 32, 32], given [1, 32, 32]",
            path.display()
        )
    );
}

#[test]
fn given_input_shapes_override_the_file_and_unknown_names_are_refused() {
    let fixture = lenet5();
    let path = fixture.dir.join("model.onnx");
    let err = ReferenceModel::load_with_input_shapes(
        &path,
        &[TensorSpec {
            name: "x".into(),
            shape: vec![1, 1, 32, 32],
        }],
    )
    .unwrap_err();
    assert!(matches!(err, ReferenceError::UnknownInput { .. }), "{err}");

    // The whole reference set as one batch: the rows must still be PyTorch's batch-1 outputs.
    let k = fixture.inputs.rows();
    let batched = ReferenceModel::load_with_input_shapes(
        &path,
        &[TensorSpec {
            name: "input".into(),
            shape: fixture.inputs.shape.clone(),
        }],
    )
    .unwrap();
    let outputs = batched
        .run(&[NamedTensor::new("input", fixture.inputs.clone())])
        .unwrap();
    assert_eq!(outputs[0].array.shape, fixture.torch_f32.shape);
    assert_eq!(outputs[0].array.shape[0], k);
    let metrics = nnblob::validate::compare(
        "output",
        &outputs[0].array.shape,
        nnblob::validate::OutputKind::Other,
        &outputs[0].array.data,
        &fixture.torch_f32.data,
    )
    .unwrap();
    assert!(
        nnblob::validate::Tolerances::f32().judge(&metrics).passed(),
        "{metrics:?}"
    );
}

#[test]
fn a_missing_or_broken_onnx_file_is_a_load_error_naming_it() {
    let err = ReferenceModel::load(&models_dir().join("lenet5/absent.onnx")).unwrap_err();
    assert!(
        matches!(&err, ReferenceError::Load { stage: "load", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("absent.onnx"), "{err}");
    // A .npy file is not an ONNX protobuf.
    let err = ReferenceModel::load(&models_dir().join("lenet5/inputs.npy")).unwrap_err();
    assert!(matches!(&err, ReferenceError::Load { .. }), "{err}");
}

#[test]
fn the_comparison_fails_a_different_network_with_the_same_output_shape() {
    // Guards the suite itself: lenet5's tract outputs against resnet8's PyTorch outputs (both
    // (4, 10) classifiers) must fail, or a test wired to the wrong files could pass unnoticed.
    let lenet5 = lenet5();
    let resnet8 = ModelFixture::load(&models_dir().join("resnet8")).unwrap();
    let tract_lenet5 = nnblob_tests::run_tract(&lenet5).unwrap();
    assert_eq!(tract_lenet5.shape, resnet8.torch_f32.shape);
    let metrics = nnblob::validate::compare(
        "output",
        &tract_lenet5.shape,
        nnblob::validate::OutputKind::Classification,
        &tract_lenet5.data,
        &resnet8.torch_f32.data,
    )
    .unwrap();
    let verdict = nnblob::validate::Tolerances::f32().judge(&metrics);
    assert!(!verdict.passed(), "{metrics:?}");
}

#[test]
fn rows_run_one_by_one_and_a_wrong_sample_shape_is_refused() {
    let fixture = lenet5();
    let model = ReferenceModel::load(&fixture.dir.join("model.onnx")).unwrap();
    let outputs = model.run_each_row(&fixture.inputs).unwrap();
    assert_eq!(outputs.shape, fixture.torch_f32.shape);

    // Images of 28x28 where the network takes 32x32: the error shows the batch-of-one shape given.
    let wrong = Array::new(vec![2, 1, 28, 28], vec![0.0; 2 * 28 * 28]).unwrap();
    let err = model.run_each_row(&wrong).unwrap_err();
    assert!(
        matches!(&err, ReferenceError::InputShape { expected, given, .. }
            if expected == &[1, 1, 32, 32] && given == &[1, 1, 28, 28]),
        "{err}"
    );
}
