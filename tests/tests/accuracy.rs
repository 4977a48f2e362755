//! The accuracy suite: every engine against PyTorch's recorded outputs, on every catalog model
//! with a reference set and on the digits demo's held-out test set.
//!
//! Expected values are PyTorch's (`outputs.npy`, `outputs_f64.npy`, `torch_outputs.npy`,
//! `metrics.json`), made by the committed fixture scripts.

use nnblob_tests::{
    discover_models, evaluate, evaluate_digits, Column, DigitsFixture, Engine, FixtureLocation,
    ModelFixture, ModelRecord,
};

fn failures(record: &ModelRecord) -> Vec<String> {
    let mut failed = Vec::new();
    for (engine, column) in &record.columns {
        if let Column::Measured {
            vs_torch_f32,
            vs_torch_f64,
            ..
        } = column
        {
            for (reference, report) in [("torch f32", vs_torch_f32), ("torch f64", vs_torch_f64)] {
                for failure in &report.verdict.failures {
                    failed.push(format!(
                        "{} / {} vs {reference}: {failure}",
                        record.name,
                        engine.label()
                    ));
                }
            }
        }
    }
    failed
}

fn print_record(record: &ModelRecord) {
    for (engine, column) in &record.columns {
        match column {
            Column::Pending => println!("{}: {}: pending", record.name, engine.label()),
            Column::Measured {
                vs_torch_f32,
                vs_torch_f64,
                top1_excluded,
            } => {
                for (row, margin) in top1_excluded {
                    println!(
                        "{}: {}: row {row} excluded from top-1 (torch margin {margin:.3e})",
                        record.name,
                        engine.label()
                    );
                }
                println!("{}: {} vs torch f32", record.name, engine.label());
                print!(
                    "{}",
                    nnblob::validate::render_table(std::slice::from_ref(vs_torch_f32))
                );
                println!("{}: {} vs torch f64", record.name, engine.label());
                print!(
                    "{}",
                    nnblob::validate::render_table(std::slice::from_ref(vs_torch_f64))
                );
            }
        }
    }
}

#[test]
fn every_engine_matches_torch_on_every_committed_model() {
    let committed: Vec<_> = discover_models()
        .unwrap()
        .into_iter()
        .filter_map(|location| match location {
            FixtureLocation::Committed(dir) => Some(dir),
            _ => None,
        })
        .collect();
    // The five small catalog models have their reference sets committed; finding none would mean
    // the discovery is broken, not that everything passed.
    assert!(
        committed.len() >= 5,
        "found only {} committed reference sets",
        committed.len()
    );
    let mut failed = Vec::new();
    for dir in committed {
        let fixture = ModelFixture::load(&dir).unwrap();
        let record = evaluate(&fixture).unwrap();
        print_record(&record);
        for engine in Engine::ALL {
            let measured = record
                .columns
                .iter()
                .find(|(e, _)| *e == engine)
                .map(|(_, column)| column.passed().is_some());
            assert_eq!(
                measured,
                Some(true),
                "{}: {} must be measured",
                record.name,
                engine.label()
            );
        }
        failed.extend(failures(&record));
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn every_engine_matches_torch_on_local_torchvision_models_when_generated() {
    for location in discover_models().unwrap() {
        match &location {
            FixtureLocation::Committed(_) => {}
            FixtureLocation::Absent { .. } => println!("{}", location.skip_line().unwrap()),
            FixtureLocation::Local(dir) => {
                let fixture = ModelFixture::load(dir).unwrap();
                let record = evaluate(&fixture).unwrap();
                print_record(&record);
                let failed = failures(&record);
                assert!(failed.is_empty(), "{}", failed.join("\n"));
            }
        }
    }
}

#[test]
fn every_engine_reproduces_the_digits_demo_accuracy_and_every_torch_decision() {
    let fixture = DigitsFixture::load().unwrap();
    for engine in Engine::ALL {
        let record = evaluate_digits(&fixture, engine).unwrap();
        println!(
            "digits: {} {}/{} correct ({:.2}%), torch recorded {:.2}%, top-1 agreement {}/{}",
            engine.label(),
            record.correct,
            record.count,
            record.accuracy() * 100.0,
            fixture.torch_accuracy * 100.0,
            record.agreeing_with_torch,
            record.count
        );
        print!(
            "{}",
            nnblob::validate::render_table(std::slice::from_ref(&record.vs_torch))
        );
        // Torch's accuracy is a ratio of counts over the same N images: compare the counts.
        let torch_correct = (fixture.torch_accuracy * record.count as f64).round() as usize;
        assert_eq!(record.correct, torch_correct, "{}", engine.label());
        assert_eq!(
            record.agreeing_with_torch,
            record.count,
            "{}",
            engine.label()
        );
        assert!(
            record.vs_torch.verdict.passed(),
            "{}: {:?}",
            engine.label(),
            record.vs_torch.verdict
        );
    }
}
