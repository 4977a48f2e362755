//! `nnblob scan`: a security verdict per file, listing every global its pickles reference.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::checkpoint::{self, Scan, Verdict};

use super::{EXIT_ERROR, EXIT_FINDINGS, EXIT_OK};

const EXAMPLES: &str = "\
Examples:
  nnblob scan model.pth
  nnblob scan downloads/*.pt downloads/*.ckpt

Verdicts:
  ok        a tensor, storage, dtype or container name the reader interprets itself
  info      a class, e.g. __main__.Net in a full-model pickle: nnblob only builds
            inert objects from it (torch.load would import its module)
  REFUSED   a name that can run code or reach the system (os.system, eval,
            subprocess.Popen, ...), or a class the pickle calls

A scan does not stop at the first refused global. Exit status (the worst file wins):
  0 every file is clean, 1 some file has a REFUSED global, 2 some file is unreadable.";

/// Report, for each file, every global its pickles reference and whether nnblob accepts it.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// The files to scan.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// The word `scan` and `inspect --json` use for a verdict.
pub(crate) fn verdict_word(v: &Verdict) -> &'static str {
    match v {
        Verdict::Known(_) => "ok",
        Verdict::Unsupported(_) | Verdict::Class => "info",
        Verdict::Refused(_) => "refused",
    }
}

/// Run `scan`.
pub fn exec(args: &Args) -> anyhow::Result<ExitCode> {
    let mut worst = EXIT_OK;
    for file in &args.files {
        let name = file.display();
        let status = match checkpoint::scan(file) {
            Ok(scan) => print_scan(&name.to_string(), &scan),
            Err(e) => {
                println!("{name}: UNREADABLE: {e}");
                EXIT_ERROR
            }
        };
        worst = worst.max(status);
    }
    Ok(ExitCode::from(worst))
}

fn print_scan(name: &str, scan: &Scan) -> u8 {
    let verdict = if scan.findings.is_empty() {
        "clean"
    } else {
        "REFUSED GLOBALS"
    };
    println!(
        "{name}: {verdict} ({}, {} global references, {} refused)",
        scan.container.as_str(),
        scan.globals.len(),
        scan.findings.len()
    );
    // One line per distinct global, at its first reference.
    let mut seen = std::collections::HashSet::new();
    for g in &scan.globals {
        if !seen.insert(g.name.as_str()) {
            continue;
        }
        let finding = scan.findings.iter().find(|f| f.global == g.name);
        let (word, why) = match finding {
            Some(f) => ("REFUSED", f.reason.as_str()),
            None => (verdict_word(&g.verdict), g.verdict.explain()),
        };
        let count = scan.globals.iter().filter(|o| o.name == g.name).count();
        let times = if count > 1 {
            format!(", {count} references")
        } else {
            String::new()
        };
        println!(
            "  {word:8} {} ({} byte {}{times}): {why}",
            g.name, g.entry, g.offset
        );
    }
    if scan.findings.is_empty() {
        EXIT_OK
    } else {
        EXIT_FINDINGS
    }
}
