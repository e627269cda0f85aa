//! Progress on stderr: a bar on a terminal, one line per phase otherwise.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Progress of a bench run, counted in measurements.
pub(crate) struct Progress {
    bar: ProgressBar,
    lines: bool,
}

impl Progress {
    /// A bar over `total` measurements; `quiet` shows nothing.
    pub(crate) fn new(total: u64, quiet: bool) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = ProgressBar::with_draw_target(
            Some(total),
            if quiet || !terminal {
                ProgressDrawTarget::hidden()
            } else {
                ProgressDrawTarget::stderr()
            },
        );
        if let Ok(style) =
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        Self {
            bar,
            lines: !quiet && !terminal,
        }
    }

    /// What is being measured now.
    pub(crate) fn phase(&self, message: impl Into<String>) {
        let message = message.into();
        if self.lines {
            eprintln!("bench: {message}");
        }
        self.bar.set_message(message);
    }

    /// One measurement done.
    pub(crate) fn tick(&self) {
        self.bar.inc(1);
    }

    /// Remove the bar.
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
