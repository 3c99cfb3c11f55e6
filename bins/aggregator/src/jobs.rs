//! The commands: each runs against an [`Aggregator`] and reports success or failure.

use anyhow::Context as _;
use tokio::sync::watch;
use tollgate_stats::Aggregator;

use crate::output;
use crate::progress::Reporter;

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

/// `backfill`: fill missing days, then the summary. Fails when stopped before the end.
pub(crate) async fn backfill(
    stats: &Aggregator,
    days: u32,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut reporter = Reporter::new(shutdown);
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
