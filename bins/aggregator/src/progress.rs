//! Backfill progress: a bar on a terminal, plain log lines otherwise.

use std::io::IsTerminal as _;
use std::ops::ControlFlow;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::watch;
use tollgate_stats::BackfillProgress;

/// Reports backfill progress and stops it when a shutdown was requested.
pub(crate) struct Reporter {
    bar: Option<ProgressBar>,
    shutdown: watch::Receiver<bool>,
}

impl Reporter {
    /// A reporter that draws a bar when stderr is a terminal.
    pub(crate) fn new(shutdown: watch::Receiver<bool>) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} backfill [{bar:40}] {pos}/{len} days, {elapsed} elapsed, eta {eta} {msg}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        Self { bar, shutdown }
    }

    /// The backfill callback.
    pub(crate) fn on_progress(&mut self, progress: BackfillProgress) -> ControlFlow<()> {
        match &self.bar {
            Some(bar) => {
                bar.set_length(u64::try_from(progress.total).unwrap_or(u64::MAX));
                bar.set_position(u64::try_from(progress.done).unwrap_or(u64::MAX));
                if let Some(day) = progress.last {
                    bar.set_message(day.to_string());
                }
            }
            None => match progress.last {
                Some(day) => tracing::info!(
                    day = %day,
                    done = progress.done,
                    total = progress.total,
                    "backfilled day"
                ),
                None => tracing::info!(missing = progress.total, "backfill starting"),
            },
        }
        if *self.shutdown.borrow() {
            tracing::info!("shutdown requested: stopping after the current day");
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    /// Removes the bar.
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
