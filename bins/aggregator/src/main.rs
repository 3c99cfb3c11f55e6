//! `tollgate-aggregator`: statistics CLI and daemon over `tollgate-stats`. This file only
//! sequences: parse flags, validate them, start logging, open and migrate (or adopt) the database,
//! run the command, map the outcome to an exit code (0 success, 1 failure, 2 bad usage).

mod cli;
mod config;
mod daemon;
mod jobs;
mod output;
mod progress;
mod telemetry;

use std::process::ExitCode;

use clap::Parser as _;
use sea_orm::{ConnectOptions, Database};
use tokio::sync::watch;
use tollgate_migrations::{StartOptions, prepare_database};
use tollgate_stats::Aggregator;

use crate::config::{Job, Settings};
use crate::telemetry::Metrics;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let settings = match Settings::from_cli(&cli) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_logs();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(settings, &cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(settings: Settings, cli: &cli::Cli) -> anyhow::Result<()> {
    let metrics = Metrics::install(cli.metrics_file.as_deref(), cli.metrics_listen)?;
    let mut options = ConnectOptions::new(settings.database_url.clone());
    options
        .max_connections(4)
        .connect_timeout(std::time::Duration::from_secs(10))
        .sqlx_logging(false);
    let db = Database::connect(options)
        .await
        .map_err(|error| anyhow::anyhow!("--database-url: cannot open the database: {error}"))?;
    let options = StartOptions {
        migrate: !cli.no_migrate,
        accept_aether: true,
    };
    let prepared = prepare_database(&db, options)
        .await
        .map_err(|error| anyhow::anyhow!("preparing the database: {error}"))?;
    if !prepared.changed.is_empty() {
        tracing::info!(kind = ?prepared.kind, changed = ?prepared.changed, "database schema updated");
    }
    let stats = Aggregator::new(db, settings.calendar);

    let outcome = match settings.job {
        Job::Daily { date } => jobs::daily(&stats, date).await,
        Job::Backfill { days } => jobs::backfill(&stats, days, shutdown_signal()).await,
        Job::Hourly { hours } => jobs::hourly(&stats, hours).await,
        Job::Summary => jobs::summary(&stats).await,
        Job::Today { json } => return jobs::today(&stats, json).await,
        Job::Show { days, json } => return jobs::show(&stats, days, json).await,
        Job::Prune { options, json } => {
            jobs::prune(&stats, options, json, &metrics, shutdown_signal()).await
        }
        Job::Daemon {
            at,
            refresh_today,
            catch_up_days,
            keep_days,
        } => {
            let config = daemon::DaemonConfig {
                at,
                refresh_today,
                catch_up_days,
                keep_days,
            };
            return daemon::run(&stats, config, &metrics, shutdown_signal()).await;
        }
    };
    metrics.record_run(outcome.is_ok());
    outcome
}

/// A flag that turns true on SIGINT or SIGTERM, for the long jobs (backfill, prune, daemon),
/// which check it between days. Short jobs keep the default handlers: a signal ends the process
/// and the database rolls back the open transaction.
fn shutdown_signal() -> watch::Receiver<bool> {
    let (sender, receiver) = watch::channel(false);
    tokio::spawn(async move {
        #[cfg(unix)]
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = terminate => {}
        }
        tracing::info!("shutdown signal received");
        let _ = sender.send(true);
    });
    receiver
}
