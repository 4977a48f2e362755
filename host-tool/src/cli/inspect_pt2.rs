//! `nnblob inspect MODEL.pt2`: what a torch.export archive holds — the torch release and schema
//! that wrote it, inputs and outputs, the weights, every ATen op with its count, and whether
//! nnblob converts it (with every node it cannot run yet, and the user's source line).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;

use crate::graph::fmt_shape;
use crate::pt2::{self, lower};

#[derive(Serialize)]
struct Io {
    name: String,
    shape: Vec<usize>,
}

#[derive(Serialize)]
struct Report {
    file: String,
    torch_version: Option<String>,
    schema_version: String,
    archive_version: Option<u32>,
    inputs: Vec<Io>,
    outputs: Vec<Io>,
    weights: usize,
    weight_elements: usize,
    weight_bytes: usize,
    /// `aten.conv2d` → node count.
    ops: BTreeMap<String, usize>,
    /// Layers of nnblob's graph when the archive converts.
    layers: Option<usize>,
    /// Why it does not (one line per node).
    cannot_convert: Vec<String>,
    /// Pickled entries nnblob leaves unread (sample inputs, constants).
    unread: Vec<String>,
}

/// Run `inspect` on a `.pt2` archive.
pub fn exec(path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let archive = pt2::open(path).with_context(|| path.display().to_string())?;
    let program = &archive.program;
    let g = &program.graph_module.graph;
    let mut ops = BTreeMap::new();
    for n in &g.nodes {
        *ops.entry(lower::op_name(&n.target).to_string())
            .or_insert(0) += 1;
    }
    let lowered = lower(program, "model");
    let io = |names: &[usize], graph: &crate::graph::Graph| -> Vec<Io> {
        names
            .iter()
            .map(|&v| Io {
                name: graph.values[v].name.clone(),
                shape: graph.values[v].shape.clone(),
            })
            .collect()
    };
    let (inputs, outputs) = match &lowered {
        Ok(graph) => (io(&graph.inputs, graph), io(&graph.outputs, graph)),
        Err(_) => (Vec::new(), Vec::new()),
    };
    let (major, minor) = archive.schema_version();
    let report = Report {
        file: path.display().to_string(),
        torch_version: program.torch_version.clone(),
        schema_version: format!("{major}.{minor}"),
        archive_version: archive.archive_version,
        inputs,
        outputs,
        weights: archive.weights.len(),
        weight_elements: archive.weights.iter().map(|t| t.numel()).sum(),
        weight_bytes: archive.weights.iter().map(|t| t.bytes().len()).sum(),
        ops,
        layers: lowered.as_ref().ok().map(|g| g.nodes.len()),
        cannot_convert: match &lowered {
            Ok(_) => Vec::new(),
            Err(e) => e.problems.iter().map(ToString::to_string).collect(),
        },
        unread: archive.unread.clone(),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print(&report);
    }
    Ok(ExitCode::SUCCESS)
}

fn print(r: &Report) {
    println!("file:      {}", r.file);
    println!(
        "format:    torch.export archive (torch {}, schema {}, archive version {})",
        r.torch_version.as_deref().unwrap_or("unknown"),
        r.schema_version,
        r.archive_version
            .map_or("none: the layout of torch 2.5-2.7".into(), |v| v
                .to_string())
    );
    for (what, list) in [("input", &r.inputs), ("output", &r.outputs)] {
        for io in list {
            println!("{what:9}  {} {}", io.name, fmt_shape(&io.shape));
        }
    }
    println!(
        "weights:   {} tensors, {} elements, {} bytes",
        r.weights, r.weight_elements, r.weight_bytes
    );
    if !r.unread.is_empty() {
        println!(
            "not read:  {} (pickled sample inputs or constants: never unpickled)",
            r.unread.join(", ")
        );
    }
    println!();
    let w = r.ops.keys().map(String::len).max().unwrap_or(2).max(2);
    println!("{:w$}  {:>5}", "op", "nodes");
    for (op, n) in &r.ops {
        println!("{op:w$}  {n:>5}");
    }
    println!();
    match r.layers {
        Some(layers) => println!(
            "converts:  yes, to {layers} layers (nnblob convert {})",
            r.file
        ),
        None => {
            println!("converts:  not yet:");
            for line in &r.cannot_convert {
                println!("  {line}");
            }
        }
    }
}
