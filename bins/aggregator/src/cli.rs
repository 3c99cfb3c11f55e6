//! Command-line flags of `tollgate-aggregator` (product.md, "Aggregator CLI").

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Aggregates tollgate usage into daily, per-model, per-user and summary statistics.
#[derive(Debug, Parser)]
#[command(name = "tollgate-aggregator", version)]
pub(crate) struct Cli {
    /// Database URL (sqlite://… or postgres://…).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://tollgate.db?mode=rwc",
        global = true,
        hide_env_values = true
    )]
    pub(crate) database_url: String,

    /// IANA time zone of the business day.
    #[arg(long, env = "TOLLGATE_TIMEZONE", default_value = "UTC", global = true)]
    pub(crate) timezone: String,

    /// Change no schema: check that the database has every table, column and index this
    /// version needs and stop, naming what is missing, when it does not (an Aether database
    /// is otherwise adopted at start, a tollgate one migrated).
    #[arg(long, env = "TOLLGATE_NO_MIGRATE", global = true)]
    pub(crate) no_migrate: bool,

    /// Also write the run's Prometheus metrics to this file (textfile-collector format).
    #[arg(long, env = "TOLLGATE_METRICS_FILE", global = true)]
    pub(crate) metrics_file: Option<PathBuf>,

    /// Also serve the Prometheus metrics at `http://ADDR/metrics` while the command runs
    /// (for the daemon: a scrape target).
    #[arg(
        long,
        env = "TOLLGATE_METRICS_LISTEN",
        global = true,
        value_name = "ADDR"
    )]
    pub(crate) metrics_listen: Option<std::net::SocketAddr>,

    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Aggregate one business day (default: yesterday), then refresh the summary.
    Daily {
        /// The business day, YYYY-MM-DD.
        #[arg(long)]
        date: Option<String>,
    },
    /// Fill every missing day in the last N days, oldest first, then refresh the summary.
    Backfill {
        /// How many days before today to check.
        #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=36_600))]
        days: u32,
    },
    /// Close the last N business hours that have ended (re-aggregate their hourly rows).
    Hourly {
        /// How many ended hours.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=8_784))]
        hours: u32,
    },
    /// Refresh the stats_summary row.
    Summary,
    /// Print today's live numbers.
    Today {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print recent days as a table, or JSON.
    Show {
        /// How many days, today included.
        #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=3_660))]
        days: u32,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete raw usage and request_candidates rows older than N business days, only for
    /// days whose rollups are complete, in bounded batches; stops cleanly on SIGINT or
    /// SIGTERM after the day in progress.
    Prune {
        /// Keep the raw rows of today and of the N business days before it.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=36_600))]
        keep_days: u32,
        /// The most rows one DELETE statement removes.
        #[arg(
            long,
            value_name = "N",
            default_value_t = tollgate_stats::PruneOptions::DEFAULT_BATCH_ROWS,
            value_parser = clap::value_parser!(u32).range(1..=1_000_000)
        )]
        batch_rows: u32,
        /// Print the report as JSON instead of one line.
        #[arg(long)]
        json: bool,
    },
    /// Catch up, then aggregate each day shortly after the business midnight; stops cleanly
    /// on SIGINT or SIGTERM.
    Daemon {
        /// Local time (in --timezone) of the nightly run, HH:MM.
        #[arg(long, default_value = "00:05")]
        at: String,
        /// Also re-aggregate today's rows every SECS seconds.
        #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(10..))]
        refresh_today: Option<u64>,
        /// How many days back the catch-up looks for missing days.
        #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=36_600))]
        catch_up_days: u32,
        /// Also prune raw rows older than N business days after each nightly run (as
        /// `prune --keep-days N`).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=36_600))]
        keep_days: Option<u32>,
    },
}
