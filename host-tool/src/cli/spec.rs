//! `nnblob spec`: any architecture written as spec text — a torch.export archive (the readable,
//! editable form of the import), a catalog entry or a spec file (normalised).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::graph::to_spec;

const EXAMPLES: &str = "\
Examples:
  nnblob spec model.pt2 -o model.nnspec
      the graph of a torch.export archive as a spec: modules named by their state_dict
      prefixes, a forward: that reads like the model's
  nnblob convert retrained.pth --arch model.nnspec -o model.nnb
      the spec (edited or not) converts with any state_dict of the same model
  nnblob spec resnet8
      a catalog entry's spec";

/// Print an architecture as a spec file (docs/SPEC.md).
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// A torch.export archive (.pt2), a catalog name or a spec file.
    arch: String,
    /// Where to write the spec (default: standard output).
    #[arg(short, long, value_name = "NET.nnspec")]
    output: Option<PathBuf>,
}

/// Run `spec`.
pub fn exec(args: &Args) -> anyhow::Result<ExitCode> {
    let graph = super::convert::load_arch(&args.arch)?;
    let header = vec![
        format!(
            "The architecture of {}, written by `nnblob spec`.",
            args.arch
        ),
        "Module names are the state_dict prefixes: a state_dict of the same model binds to it."
            .to_string(),
    ];
    let text = to_spec(&graph, &header)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("writing {} as a spec", args.arch))?;
    match &args.output {
        Some(path) => {
            crate::atomic_file::write_bytes(path, text.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
