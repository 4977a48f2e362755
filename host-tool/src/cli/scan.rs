//! `nnblob scan`: a security verdict per file, listing every global its pickles reference.

use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;

use crate::checkpoint::{self, Scan, Verdict};

use super::{EXIT_ERROR, EXIT_FINDINGS, EXIT_OK};

const EXAMPLES: &str = "\
Examples:
  nnblob scan model.pth
  nnblob scan model.pt2        every pickle a torch.export archive carries (its sample inputs,
                               which torch.export.load unpickles), one report each
  nnblob scan downloads/*.pt downloads/*.ckpt
  nnblob scan downloads/*.pth --json | jq '.files[] | select(.status != \"clean\") | .file'

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
    /// Print one JSON document (every file, every distinct global) instead of text; the exit
    /// status is the same.
    #[arg(long)]
    json: bool,
}

/// `scan --json`: the files in the order given.
#[derive(Serialize)]
struct Report {
    files: Vec<FileReport>,
    /// The exit status: 0 clean, 1 a refused global, 2 an unreadable file.
    exit_code: u8,
}

#[derive(Serialize)]
struct FileReport {
    file: String,
    /// `clean`, `refused` or `unreadable`.
    status: &'static str,
    /// The container (absent when unreadable).
    #[serde(skip_serializing_if = "Option::is_none")]
    container: Option<&'static str>,
    /// Global references in total (absent when unreadable).
    #[serde(skip_serializing_if = "Option::is_none")]
    references: Option<usize>,
    /// One entry per distinct global, at its first reference.
    globals: Vec<GlobalReport>,
    /// Why the file could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct GlobalReport {
    name: String,
    entry: String,
    offset: u64,
    /// `ok`, `info` or `refused`.
    verdict: &'static str,
    why: String,
    references: usize,
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
    let mut files = Vec::new();
    for file in &args.files {
        let name = file.display().to_string();
        // A torch.export archive: each pickle it carries (`torch.export.load` unpickles its
        // sample inputs), as `FILE:ENTRY`.
        let scans: Vec<(String, checkpoint::Result<Scan>)> = if crate::pt2::is_pt2_file(file) {
            match crate::pt2::scan_pickles(file) {
                // No pickle at all (raw weights, no sample inputs): nothing can run.
                Ok(scans) if scans.is_empty() => vec![(
                    name,
                    Ok(Scan {
                        container: checkpoint::Container::TorchZip,
                        globals: Vec::new(),
                        findings: Vec::new(),
                    }),
                )],
                Ok(scans) => scans
                    .into_iter()
                    .map(|(entry, scan)| (format!("{name}:{entry}"), scan))
                    .collect(),
                Err(e) => vec![(
                    name,
                    Err(checkpoint::Error::malformed("archive", e.to_string())),
                )],
            }
        } else {
            vec![(name, checkpoint::scan(file))]
        };
        for (name, scan) in scans {
            let report = match scan {
                Ok(scan) => file_report(name, &scan),
                Err(e) => FileReport {
                    file: name,
                    status: "unreadable",
                    container: None,
                    references: None,
                    globals: Vec::new(),
                    error: Some(e.to_string()),
                },
            };
            let status = match report.status {
                "clean" => EXIT_OK,
                "refused" => EXIT_FINDINGS,
                _ => EXIT_ERROR,
            };
            worst = worst.max(status);
            if !args.json {
                print_file(&report);
            }
            files.push(report);
        }
    }
    if args.json {
        let report = Report {
            files,
            exit_code: worst,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(ExitCode::from(worst))
}

fn file_report(file: String, scan: &Scan) -> FileReport {
    // One entry per distinct global, at its first reference.
    let mut seen = std::collections::HashSet::new();
    let mut globals = Vec::new();
    for g in &scan.globals {
        if !seen.insert(g.name.as_str()) {
            continue;
        }
        let finding = scan.findings.iter().find(|f| f.global == g.name);
        let (verdict, why) = match finding {
            Some(f) => ("refused", f.reason.clone()),
            None => (verdict_word(&g.verdict), g.verdict.explain().to_string()),
        };
        globals.push(GlobalReport {
            name: g.name.clone(),
            entry: g.entry.clone(),
            offset: g.offset,
            verdict,
            why,
            references: scan.globals.iter().filter(|o| o.name == g.name).count(),
        });
    }
    FileReport {
        file,
        status: if scan.findings.is_empty() {
            "clean"
        } else {
            "refused"
        },
        container: Some(scan.container.as_str()),
        references: Some(scan.globals.len()),
        globals,
        error: None,
    }
}

fn print_file(r: &FileReport) {
    let name = &r.file;
    if let Some(e) = &r.error {
        println!("{name}: UNREADABLE: {e}");
        return;
    }
    let refused = r.globals.iter().filter(|g| g.verdict == "refused").count();
    let verdict = if r.status == "clean" {
        "clean"
    } else {
        "REFUSED GLOBALS"
    };
    println!(
        "{name}: {verdict} ({}, {} global references, {refused} refused)",
        r.container.unwrap_or_default(),
        r.references.unwrap_or_default(),
    );
    for g in &r.globals {
        let word = if g.verdict == "refused" {
            "REFUSED"
        } else {
            g.verdict
        };
        let times = if g.references > 1 {
            format!(", {} references", g.references)
        } else {
            String::new()
        };
        println!(
            "  {word:8} {} ({} byte {}{times}): {}",
            g.name, g.entry, g.offset, g.why
        );
    }
}
