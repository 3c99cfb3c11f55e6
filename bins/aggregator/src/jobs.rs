//! The commands: each runs against an [`Aggregator`] and reports success or failure.

use anyhow::Context as _;
use tokio::sync::watch;
use tollgate_stats::{Aggregator, BackfillProgress, PruneOptions, PruneProgress, PruneReport};

use crate::output;
use crate::progress::Reporter;
use crate::telemetry::Metrics;

/// `daily`: aggregate one day (default yesterday), then the summary.
pub(crate) async fn daily(stats: &Aggregator, date: Option<time::Date>) -> anyhow::Result<()> {
    let day = match date {
        Some(date) => stats.calendar().day(date)?,
        None => stats.yesterday()?,
    };
    stats
        .aggregate_day(&day)
        .await
        .with_context(|| format!("aggregating {day}"))?;
    stats
        .refresh_summary()
        .await
        .context("refreshing the summary")?;
    Ok(())
}

/// `hourly`: close the last `hours` ended hours and print one line.
pub(crate) async fn hourly(stats: &Aggregator, hours: u32) -> anyhow::Result<()> {
    let report = stats.close_hours(hours).await.context("closing hours")?;
    match (report.hours.first(), report.hours.last()) {
        (Some(first), Some(last)) => println!(
            "closed {} hours from {} to {}: {} requests",
            report.hours.len(),
            first.start(),
            last.end(),
            report.requests
        ),
        _ => println!("no hour to close"),
    }
    Ok(())
}

/// `backfill`: fill missing days, then the summary. Fails when stopped before the end.
pub(crate) async fn backfill(
    stats: &Aggregator,
    days: u32,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut reporter = Reporter::new::<BackfillProgress>(shutdown);
    let report = stats
        .backfill(days, |progress| reporter.on_progress(progress))
        .await;
    reporter.finish();
    let report = report.context("backfilling")?;
    if report.stopped {
        anyhow::bail!(
            "backfill stopped after {} of {} missing days; run it again to resume",
            report.filled.len(),
            report.missing
        );
    }
    stats
        .refresh_summary()
        .await
        .context("refreshing the summary")?;
    Ok(())
}

/// `prune`: delete the raw rows of aggregated days older than the retention, then print
/// what was done (one line, or JSON). Fails when stopped before the end.
pub(crate) async fn prune(
    stats: &Aggregator,
    options: PruneOptions,
    json: bool,
    metrics: &Metrics,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let report = run_prune(stats, options, metrics, shutdown).await?;
    let cutoff = stats.calendar().day_containing(report.cutoff)?;
    print(&report, json, |report| output::prune_line(report, &cutoff))?;
    if report.stopped {
        anyhow::bail!(
            "prune stopped after {} days; run it again to resume",
            report.pruned.len()
        );
    }
    Ok(())
}

/// A prune with progress (a bar or log lines, stopping on shutdown) that counts the deleted
/// rows in `aggregator_pruned_rows_total` as it goes; `prune` and the daemon share it.
pub(crate) async fn run_prune(
    stats: &Aggregator,
    options: PruneOptions,
    metrics: &Metrics,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<PruneReport> {
    let mut reporter = Reporter::new::<PruneProgress>(shutdown);
    let mut counted = (0, 0);
    let report = stats
        .prune(options, |progress| {
            metrics.record_pruned(
                progress.usage_rows_deleted - counted.0,
                progress.candidate_rows_deleted - counted.1,
            );
            counted = (progress.usage_rows_deleted, progress.candidate_rows_deleted);
            reporter.on_progress(progress)
        })
        .await;
    reporter.finish();
    report.context("pruning")
}

/// `summary`.
pub(crate) async fn summary(stats: &Aggregator) -> anyhow::Result<()> {
    stats.refresh_summary().await?;
    Ok(())
}

/// `today`.
pub(crate) async fn today(stats: &Aggregator, json: bool) -> anyhow::Result<()> {
    print(&stats.today_live().await?, json, output::today_table)
}

/// `show`.
pub(crate) async fn show(stats: &Aggregator, days: u32, json: bool) -> anyhow::Result<()> {
    print(&stats.daily_series(days).await?, json, |series| {
        output::daily_table(series)
    })
}

/// Prints `value` as pretty JSON, or as the table `table` makes of it.
fn print<T: serde::Serialize>(
    value: &T,
    json: bool,
    table: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    let text = if json {
        serde_json::to_string_pretty(value)?
    } else {
        table(value)
    };
    println!("{}", text.trim_end());
    Ok(())
}
