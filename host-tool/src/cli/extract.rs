//! `nnblob extract`: the selected state_dict as a safetensors file.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::atomic_file;
use crate::checkpoint::{self, Options, Tensor};

const EXAMPLES: &str = "\
Examples:
  nnblob extract model.pth -o model.safetensors
  nnblob extract last.ckpt -o weights.safetensors    (Lightning: state_dict found automatically)
  nnblob extract run.pt --key model_state_dict -o w.safetensors

The output holds the tensors under the names they have in the checkpoint, in their
original dtype, as row-major contiguous little-endian values. It is written to a
temporary file beside OUT and renamed into place, so OUT is never left half-written.";

/// Convert a checkpoint's state_dict to safetensors, safely, once.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// The checkpoint to read.
    file: PathBuf,
    /// Where to write the safetensors file.
    #[arg(short, long, value_name = "OUT.safetensors")]
    output: PathBuf,
    /// Dotted key path of the state_dict inside a nested checkpoint (default: detected).
    #[arg(long, value_name = "K")]
    key: Option<String>,
}

struct TensorView<'a>(&'a Tensor);

impl safetensors::View for TensorView<'_> {
    fn dtype(&self) -> safetensors::Dtype {
        self.0.dtype.to_safetensors()
    }
    fn shape(&self) -> &[usize] {
        &self.0.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self.0.bytes())
    }
    fn data_len(&self) -> usize {
        self.0.bytes().len()
    }
}

/// Run `extract`.
pub fn exec(args: &Args) -> anyhow::Result<ExitCode> {
    let options = Options {
        key: args.key.clone(),
    };
    let progress = super::progress::steps();
    progress.set_message(format!("reading {}", args.file.display()));
    let ckpt =
        checkpoint::open(&args.file, &options).with_context(|| args.file.display().to_string())?;
    let bytes: usize = ckpt.tensors.iter().map(|t| t.bytes().len()).sum();
    progress.set_message(format!("writing {} ({bytes} bytes)", args.output.display()));
    let mut metadata = HashMap::from([("format".to_owned(), ckpt.format.as_str().to_owned())]);
    if let Some(k) = &ckpt.key {
        metadata.insert("key".to_owned(), k.clone());
    }
    let views = ckpt
        .tensors
        .iter()
        .map(|t| (t.name.as_str(), TensorView(t)));
    atomic_file::write_with(&args.output, |path| {
        safetensors::serialize_to_file(views, &Some(metadata), path).map_err(anyhow::Error::from)
    })
    .with_context(|| format!("writing {}", args.output.display()))?;
    progress.finish_and_clear();
    eprintln!(
        "wrote {} tensors ({bytes} bytes) to {}",
        ckpt.tensors.len(),
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}
