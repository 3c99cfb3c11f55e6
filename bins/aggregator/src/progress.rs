//! Backfill and prune progress: a bar on a terminal, plain log lines otherwise.

use std::io::IsTerminal as _;
use std::ops::ControlFlow;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::watch;
use tollgate_stats::{BackfillProgress, BusinessDay, PruneProgress};

/// What the reporter reads of a job's progress report.
pub(crate) trait DayProgress {
    /// The job, as the log says it ("backfill").
    const JOB: &'static str;
    /// What the job did to a day ("backfilled").
    const DONE: &'static str;
    /// Days done, days in all, the day just done.
    fn days(&self) -> (usize, usize, Option<BusinessDay>);
    /// `usage` and `request_candidates` rows deleted so far, for a job that deletes.
    fn rows_deleted(&self) -> Option<(u64, u64)> {
        None
    }
}

impl DayProgress for BackfillProgress {
    const JOB: &'static str = "backfill";
    const DONE: &'static str = "backfilled";
    fn days(&self) -> (usize, usize, Option<BusinessDay>) {
        (self.done, self.total, self.last)
    }
}

impl DayProgress for PruneProgress {
    const JOB: &'static str = "prune";
    const DONE: &'static str = "pruned";
    fn days(&self) -> (usize, usize, Option<BusinessDay>) {
        (self.done, self.total, self.last)
    }
    fn rows_deleted(&self) -> Option<(u64, u64)> {
        Some((self.usage_rows_deleted, self.candidate_rows_deleted))
    }
}

/// Reports progress day by day and stops the job when a shutdown was requested.
pub(crate) struct Reporter {
    bar: Option<ProgressBar>,
    shutdown: watch::Receiver<bool>,
}

impl Reporter {
    /// A reporter of job `P` that draws a bar when stderr is a terminal.
    pub(crate) fn new<P: DayProgress>(shutdown: watch::Receiver<bool>) -> Self {
        let job = P::JOB;
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

    /// The callback of both jobs: a log line per day without a terminal, then the bar.
    pub(crate) fn on_progress<P: DayProgress>(&mut self, progress: P) -> ControlFlow<()> {
        let (done, total, last) = progress.days();
        let deleted = progress.rows_deleted();
        if self.bar.is_none() {
            let (usage_rows, candidate_rows) = deleted.unzip();
            match last {
                Some(day) => tracing::info!(
                    day = %day,
                    done,
                    total,
                    usage_rows,
                    candidate_rows,
                    "{} day",
                    P::DONE,
                ),
                None => tracing::info!(days = total, "{} starting", P::JOB),
            }
        }
        self.step(
            done,
            total,
            last,
            deleted.map(|(usage, candidates)| usage + candidates),
        )
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
