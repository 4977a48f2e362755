//! Prints the markdown tables of `docs/ACCURACY.md`: every engine against PyTorch on every catalog
//! model with a reference set, and the digits demo. Run from the workspace root:
//! `cargo run -p nnblob-tests --bin accuracy-table`.

use anyhow::Result;
use nnblob_tests::{
    discover_models, evaluate, evaluate_digits, DigitsFixture, Engine, FixtureLocation,
    ModelFixture, TABLE_COMMAND,
};

fn main() {
    if let Err(e) = run() {
        eprintln!("accuracy-table: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let mut records = Vec::new();
    let mut skipped = Vec::new();
    for location in discover_models()? {
        match &location {
            FixtureLocation::Committed(dir) | FixtureLocation::Local(dir) => {
                records.push(evaluate(&ModelFixture::load(dir)?)?);
            }
            FixtureLocation::Absent { .. } => skipped.extend(location.skip_line()),
        }
    }
    let digits = DigitsFixture::load()?;
    let digits_records = Engine::ALL
        .into_iter()
        .map(|engine| Ok((engine, evaluate_digits(&digits, engine)?)))
        .collect::<Result<Vec<_>>>()?;
    println!("<!-- made by `{TABLE_COMMAND}` -->");
    print!(
        "{}",
        nnblob_tests::render_markdown(&records, &skipped, &digits_records, digits.torch_accuracy)
    );
    Ok(())
}
