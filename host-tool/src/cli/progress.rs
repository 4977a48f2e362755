//! Progress on stderr for the commands whose work can take long (`demo`, `extract`, `convert`).
//!
//! In: the length of the work or the name of its current step. Out: a bar or a spinner drawn on
//! stderr when stderr is a terminal, and hidden otherwise, so that pipes, logs and tests see only
//! the commands' own lines. A bar dropped early (on an error) clears itself, so that the error
//! stays the only line.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressFinish, ProgressStyle};

fn shown(bar: ProgressBar, template: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.with_finish(ProgressFinish::AndClear)
}

/// A bar over `len` items, labelled `what`.
pub(super) fn bar(len: usize, what: &str) -> ProgressBar {
    let bar = shown(
        ProgressBar::new(len as u64),
        "{msg:<16} [{bar:30}] {pos}/{len}",
    );
    bar.set_message(what.to_string());
    bar
}

/// A spinner naming the step under way (set with `set_message`), with the time it has taken;
/// it turns by itself while a step runs.
pub(super) fn steps() -> ProgressBar {
    let bar = shown(ProgressBar::new_spinner(), "{spinner} {msg} ({elapsed})");
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}
