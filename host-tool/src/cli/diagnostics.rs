//! The eval-mode findings about a checkpoint, on stderr: one `nnblob: warning:` line per
//! BatchNorm never run in train mode, one `nnblob: note:` line for training-only state read past
//! and one for values outside the weights left unbuilt;
//! with `--deny-warnings`, a warning fails the command.

use std::path::Path;

use anyhow::bail;

use crate::checkpoint::training::{skipped_note, training_state_note, untrained_batchnorms};
use crate::checkpoint::Checkpoint;

/// Prints the findings about `ckpt` (read from `file`); an error when `deny` and there is a
/// warning.
pub(super) fn report(ckpt: &Checkpoint, file: &Path, deny: bool) -> anyhow::Result<()> {
    let file = file.display();
    let warnings = untrained_batchnorms(ckpt);
    for w in &warnings {
        eprintln!("nnblob: warning: {file}: {w}");
    }
    for note in [training_state_note(ckpt), skipped_note(ckpt)]
        .into_iter()
        .flatten()
    {
        eprintln!("nnblob: note: {file}: {note}");
    }
    if deny && !warnings.is_empty() {
        bail!(
            "{file}: {} warning(s) above, refused by --deny-warnings",
            warnings.len()
        );
    }
    Ok(())
}
