//! `daemon`: catch up at start, then close each hour shortly after it ends (re-aggregating
//! the last 3, behaviour.md 9) and run shortly after each business midnight, optionally
//! refreshing today's rows and pruning old raw rows after each run, until SIGINT or SIGTERM.

use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::watch;
use tollgate_stats::{Aggregator, ClosingConfig, PruneOptions};

use crate::jobs;
use crate::telemetry::Metrics;

/// How long to wait before retrying a failed nightly run.
const RETRY_AFTER: time::Duration = time::Duration::minutes(5);
/// The longest single sleep, so a wall-clock jump is noticed within a minute.
const MAX_SLEEP: time::Duration = time::Duration::minutes(1);

/// Daemon settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DaemonConfig {
    /// Local time of the nightly run.
    pub(crate) at: time::Time,
    /// Period of the refresh of today's rows.
    pub(crate) refresh_today: Option<Duration>,
    /// Days the catch-up looks back.
    pub(crate) catch_up_days: u32,
    /// Prune raw rows older than this many business days after each successful run.
    pub(crate) keep_days: Option<u32>,
}

/// Runs until a shutdown is requested.
pub(crate) async fn run(
    stats: &Aggregator,
    config: DaemonConfig,
    metrics: &Metrics,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    tracing::info!(
        timezone = stats.calendar().zone_name(),
        at = %config.at,
        "daemon starting: catching up"
    );
    let mut next_run = cycle(stats, config, metrics, &shutdown).await?;
    let refresh = config
        .refresh_today
        .and_then(|period| time::Duration::try_from(period).ok());
    let mut next_refresh = refresh.map(|period| stats.now() + period);
    // The nightly run below does the catch-up over `--catch-up-days`.
    let closing = ClosingConfig {
        catch_up_days: 0,
        ..ClosingConfig::default()
    };
    let mut next_close = stats.now();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let now = stats.now();
        if now >= next_close {
            next_close = match stats.closing_cycle(&closing).await {
                Ok(_) => stats.next_cycle_at(closing.delay)?,
                Err(error) => {
                    tracing::warn!(%error, "closing hours failed; retrying in a minute");
                    now + MAX_SLEEP
                }
            };
            metrics.write();
        }
        // At every wake (at least once a minute): a snapshot of the current hour, so the
        // dashboards read at most about a minute of raw rows.
        if let Err(error) = stats.refresh_open_hour().await {
            tracing::warn!(%error, "refreshing the open hour failed");
        }
        if now >= next_run {
            next_run = cycle(stats, config, metrics, &shutdown).await?;
        }
        if let (Some(period), Some(due)) = (refresh, next_refresh)
            && now >= due
        {
            let refreshed = async { stats.aggregate_day(&stats.today()?).await }.await;
            if let Err(error) = refreshed {
                tracing::warn!(%error, "refreshing today's rows failed");
            }
            next_refresh = Some(stats.now() + period);
        }
        let wake = [
            Some(next_run),
            Some(next_close),
            next_refresh,
            Some(now + MAX_SLEEP),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(now + MAX_SLEEP);
        let pause = Duration::try_from(wake - stats.now()).unwrap_or(Duration::ZERO);
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => {}
        }
    }
    tracing::info!("daemon stopped");
    Ok(())
}

/// One catch-up: backfill the window (which includes yesterday), then the summary, then
/// (with `keep_days`) a prune. Returns when to run next: the next nightly time, or a retry
/// after a failed backfill.
async fn cycle(
    stats: &Aggregator,
    config: DaemonConfig,
    metrics: &Metrics,
    shutdown: &watch::Receiver<bool>,
) -> anyhow::Result<OffsetDateTime> {
    let result = jobs::backfill(stats, config.catch_up_days, shutdown.clone()).await;
    let stopping = *shutdown.borrow();
    match result {
        Ok(()) => {
            metrics.record_run(true);
            if let Some(keep_days) = config.keep_days {
                prune(stats, keep_days, metrics, shutdown).await;
            }
            Ok(stats.calendar().next_local_time(stats.now(), config.at)?)
        }
        Err(_) if stopping => Ok(stats.now()),
        Err(error) => {
            metrics.record_run(false);
            tracing::error!(
                error = format!("{error:#}"),
                "nightly run failed; retrying later"
            );
            Ok(stats.now() + RETRY_AFTER)
        }
    }
}

/// The prune after a successful run. A failure is logged and not retried before the next
/// run: the rows it would have deleted are still counted correctly meanwhile.
async fn prune(
    stats: &Aggregator,
    keep_days: u32,
    metrics: &Metrics,
    shutdown: &watch::Receiver<bool>,
) {
    let options = PruneOptions::keep_days(keep_days);
    if let Err(error) = jobs::run_prune(stats, options, metrics, shutdown.clone()).await {
        tracing::error!(
            error = format!("{error:#}"),
            "pruning failed; trying again after the next run"
        );
    }
    metrics.write();
}
