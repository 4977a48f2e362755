//! `nnblob archs`: the built-in catalog with input shapes, parameters and MACs (`graph::summarize`).

use std::process::ExitCode;

use serde::Serialize;

use crate::graph::catalog::{self, Convention};
use crate::graph::{fmt_shape, summarize};

const EXAMPLES: &str = "\
Examples:
  nnblob archs
  nnblob archs --json | jq '.[].name'
  nnblob archs --spec resnet8 > my_resnet8.nnspec      start your own spec from a catalog entry

Each entry is defined exactly like its PyTorch reference, so that reference's state_dict() converts
untouched: `nnblob convert model.pth --arch NAME -o model.nnb`. Input shapes are given without the
batch dimension (always 1). Params count as PyTorch's sum(p.numel() for p in model.parameters());
MACs are the multiply-accumulates of one inference (convolutions and linear layers).";

/// List the catalog: the networks `--arch` accepts by name.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Print one JSON document instead of a table.
    #[arg(long)]
    json: bool,
    /// Print the spec text of one entry instead of the list.
    #[arg(long, value_name = "NAME")]
    spec: Option<String>,
}

#[derive(Serialize)]
struct Row {
    name: &'static str,
    description: &'static str,
    convention: &'static str,
    inputs: Vec<Vec<usize>>,
    outputs: Vec<Vec<usize>>,
    params: u64,
    macs: u64,
}

fn convention(c: Convention) -> &'static str {
    match c {
        Convention::PyTorch => "PyTorch",
        Convention::Keras => "TF/Keras",
        Convention::Torchvision => "torchvision",
    }
}

/// Run `archs`.
pub fn exec(args: &Args) -> anyhow::Result<ExitCode> {
    if let Some(name) = &args.spec {
        print!("{}", catalog::entry(name)?.spec());
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = Vec::new();
    for e in catalog::ENTRIES {
        let g = e.graph()?;
        let s = summarize(&g);
        let without_batch = |vs: &[usize]| -> Vec<Vec<usize>> {
            vs.iter().map(|&v| g.shape(v)[1..].to_vec()).collect()
        };
        rows.push(Row {
            name: e.name,
            description: e.description,
            convention: convention(e.convention),
            inputs: without_batch(&g.inputs),
            outputs: without_batch(&g.outputs),
            params: s.total_params,
            macs: s.total_macs,
        });
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    let shapes = |v: &[Vec<usize>]| v.iter().map(|s| fmt_shape(s)).collect::<Vec<_>>().join(" ");
    println!(
        "{:16}  {:13}  {:>11}  {:>14}  {:11}  description",
        "name", "input", "params", "MACs", "convention"
    );
    for r in &rows {
        println!(
            "{:16}  {:13}  {:>11}  {:>14}  {:11}  {}",
            r.name,
            shapes(&r.inputs),
            r.params,
            r.macs,
            r.convention,
            r.description
        );
    }
    Ok(ExitCode::SUCCESS)
}
