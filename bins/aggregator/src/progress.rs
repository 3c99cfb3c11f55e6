//! Backfill and prune progress: a bar on a terminal, plain log lines otherwise.

use std::io::IsTerminal as _;
use std::ops::ControlFlow;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::watch;
use tollgate_stats::{BackfillProgress, BusinessDay, PruneProgress};

/// Reports progress day by day and stops the job when a shutdown was requested.
pub(crate) struct Reporter {
    bar: Option<ProgressBar>,
    shutdown: watch::Receiver<bool>,
}

impl Reporter {
    /// A backfill reporter that draws a bar when stderr is a terminal.
    pub(crate) fn new(shutdown: watch::Receiver<bool>) -> Self {
        Self::with_bar(shutdown, "backfill")
    }

    /// A prune reporter that draws a bar when stderr is a terminal.
    pub(crate) fn for_prune(shutdown: watch::Receiver<bool>) -> Self {
        Self::with_bar(shutdown, "prune")
    }

    fn with_bar(shutdown: watch::Receiver<bool>, job: &'static str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} {prefix} [{bar:40}] {pos}/{len} days, {elapsed} elapsed, eta {eta} {msg}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(job);
            bar
        });
        Self { bar, shutdown }
    }

    /// The backfill callback.
    pub(crate) fn on_progress(&mut self, progress: BackfillProgress) -> ControlFlow<()> {
        if self.bar.is_none() {
            match progress.last {
                Some(day) => tracing::info!(
                    day = %day,
                    done = progress.done,
                    total = progress.total,
                    "backfilled day"
                ),
                None => tracing::info!(missing = progress.total, "backfill starting"),
            }
        }
        self.step(progress.done, progress.total, progress.last, None)
    }

    /// The prune callback.
    pub(crate) fn on_prune_progress(&mut self, progress: PruneProgress) -> ControlFlow<()> {
        if self.bar.is_none() {
            match progress.last {
                Some(day) => tracing::info!(
                    day = %day,
                    done = progress.done,
                    total = progress.total,
                    usage_rows = progress.usage_rows_deleted,
                    candidate_rows = progress.candidate_rows_deleted,
                    "pruned day"
                ),
                None => tracing::info!(days = progress.total, "prune starting"),
            }
        }
        let rows = progress.usage_rows_deleted + progress.candidate_rows_deleted;
        self.step(progress.done, progress.total, progress.last, Some(rows))
    }

    /// Moves the bar, then says whether to go on.
    fn step(
        &self,
        done: usize,
        total: usize,
        last: Option<BusinessDay>,
        rows: Option<u64>,
    ) -> ControlFlow<()> {
        if let Some(bar) = &self.bar {
            bar.set_length(u64::try_from(total).unwrap_or(u64::MAX));
            bar.set_position(u64::try_from(done).unwrap_or(u64::MAX));
            if let Some(day) = last {
                bar.set_message(match rows {
                    Some(rows) => format!("{day}, {rows} rows deleted"),
                    None => day.to_string(),
                });
            }
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
