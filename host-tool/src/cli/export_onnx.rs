//! `nnblob export-onnx`: a checkpoint and an architecture in, an fp32 ONNX file out — the
//! reference `nnblob validate` runs in tract, for users who have no ONNX export of their own.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::onnx_export;

const EXAMPLES: &str = "\
Examples:
  nnblob export-onnx resnet8.pth --arch resnet8 -o resnet8.onnx
  nnblob export-onnx net.pth --arch net.nnspec -o net.onnx
  nnblob export-onnx last.ckpt --arch mobilenet_v1_025 --key state_dict -o vww.onnx

then:
  nnblob convert resnet8.pth --arch resnet8 -o resnet8.nnb
  nnblob validate resnet8.nnb --onnx resnet8.onnx

The file is the network as the architecture describes it, before any compilation: float32
weights, BatchNorm kept as BatchNormalization (running statistics), Dropout as Identity,
ONNX opset 17, every shape static with a batch of 1. It is an independent reference because it
shares nothing with the blob beyond the checkpoint's tensors. It is written to a temporary file
and renamed into place.";

/// Write an fp32 ONNX reference of a checkpoint bound to its architecture.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// The checkpoint: .pth/.pt/.bin (torch zip or legacy), .ckpt (Lightning), .safetensors.
    weights: PathBuf,
    /// A catalog name (`nnblob archs` lists them) or the path of a spec file.
    #[arg(long, value_name = "A")]
    arch: String,
    /// Where to write the ONNX file.
    #[arg(short, long, value_name = "REF.onnx")]
    output: PathBuf,
    /// Dotted key path of the state_dict inside a nested checkpoint (default: detected).
    #[arg(long, value_name = "K")]
    key: Option<String>,
}

/// Run `export-onnx`.
pub fn exec(args: &Args) -> anyhow::Result<ExitCode> {
    let graph = super::convert::load_arch(&args.arch)?;
    let bound =
        super::convert::bind_checkpoint(graph, &args.weights, &args.arch, args.key.clone(), false)?;
    let bytes =
        onnx_export::to_bytes(&bound).with_context(|| format!("exporting '{}'", args.arch))?;
    crate::atomic_file::write_bytes(&args.output, &bytes)
        .with_context(|| format!("writing {}", args.output.display()))?;
    eprintln!(
        "wrote {} ({} bytes, {} nodes, ONNX opset {})",
        args.output.display(),
        bytes.len(),
        bound.nodes.len(),
        onnx_export::OPSET
    );
    Ok(ExitCode::SUCCESS)
}
