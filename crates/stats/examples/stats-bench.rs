//! Statistics benchmark harness: fills a database with generated traffic, and times the
//! original service's aggregation pattern (the baseline) and `tollgate-stats` on one day.
//!
//! ```text
//! cargo run --release -p tollgate-stats --features generator --example stats-bench -- \
//!     --database-url URL generate --date 2025-06-01 --rows 1000000 --users 10000 --models 50
//! cargo run --release -p tollgate-stats --features generator --example stats-bench -- \
//!     --database-url URL baseline --date 2025-06-01
//! ```
//!
//! Section 9 (see docs/PERFORMANCE.md, "Statistics at scale"): `aggregate --days N` fills
//! history, `close-hours` times closing hours as the loop does, and `dashboard` times the
//! dashboard's reads at a fixed instant (no answer cache at this layer).

use std::time::Instant;

use clap::{Parser, Subcommand};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DbBackend};
use std::sync::Arc;
use tollgate_migrations::{Migrator, MigratorTraitReexport as _};

use tollgate_stats::{Aggregator, BusinessCalendar, FixedClock, GeneratorConfig};

#[derive(Parser)]
struct Cli {
    /// Database URL.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Business time zone.
    #[arg(long, default_value = "UTC")]
    timezone: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Insert users, usage and request_candidates rows.
    Generate {
        /// First business day, YYYY-MM-DD.
        #[arg(long)]
        date: String,
        /// Number of consecutive days.
        #[arg(long, default_value_t = 1)]
        days: u32,
        /// Usage rows per day.
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        #[arg(long, default_value_t = 10_000)]
        users: u32,
        #[arg(long, default_value_t = 50)]
        models: u32,
        #[arg(long, default_value_t = 8)]
        providers: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Usage rows per INSERT statement.
        #[arg(long, default_value_t = 2_000)]
        batch: usize,
    },
    /// Time the original service's pattern on one day.
    Baseline {
        #[arg(long)]
        date: String,
    },
    /// Time `Aggregator::aggregate_day` on one day (or `--days` consecutive days), in
    /// process; with `--close`, `close_day` (keeps the hours already closed).
    Aggregate {
        #[arg(long)]
        date: String,
        #[arg(long, default_value_t = 1)]
        days: u32,
        #[arg(long)]
        close: bool,
        /// Only compute (`Aggregator::compute_day`), write nothing.
        #[arg(long)]
        compute_only: bool,
    },
    /// Close the `--hours` hours that ended before `--at` (RFC 3339), one call per hour
    /// from the oldest, then time `--rounds` re-closings of the last 3 hours (the loop's
    /// cycle) and of the last hour alone.
    CloseHours {
        #[arg(long)]
        at: String,
        #[arg(long, default_value_t = 3)]
        hours: u32,
        #[arg(long, default_value_t = 5)]
        rounds: u32,
    },
    /// Refresh the summary as of `--at` (RFC 3339), then time the dashboard reads there:
    /// combined view, daily series of 30 and 90 days, hourly series of 24 and 168 hours;
    /// `--rounds` calls each, median and p95.
    Dashboard {
        #[arg(long)]
        at: String,
        #[arg(long, default_value_t = 20)]
        rounds: u32,
        /// Age of the loop's snapshot of the open hour at `--at` (the loop refreshes it
        /// every minute: 60 is the worst case); 0 for none.
        #[arg(long, default_value_t = 60)]
        snapshot_age: i64,
    },
}

fn parse_instant(raw: &str) -> anyhow::Result<time::OffsetDateTime> {
    Ok(time::OffsetDateTime::parse(
        raw,
        &time::format_description::well_known::Rfc3339,
    )?)
}

/// Median and p95 (nearest rank) of `samples` in milliseconds.
fn summary(samples: &mut [f64]) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    let rank = |q: f64| {
        let index = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[index]
    };
    (rank(0.5), rank(0.95))
}

/// Times `rounds` calls of `call` and prints median and p95.
async fn time_calls<F, Fut, T>(what: &str, rounds: u32, mut call: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tollgate_stats::StatsError>>,
{
    let mut samples = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        call().await?;
        samples.push(started.elapsed().as_secs_f64() * 1e3);
    }
    let (median, p95) = summary(&mut samples);
    eprintln!("{what}: median {median:.1} ms, p95 {p95:.1} ms over {rounds} calls");
    Ok(())
}

fn parse_date(raw: &str) -> anyhow::Result<time::Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Ok(time::Date::parse(raw, format)?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut options = ConnectOptions::new(cli.database_url.clone());
    options.max_connections(4).sqlx_logging(false);
    let db = Database::connect(options).await?;
    Migrator::up(&db, None).await?;
    let calendar = BusinessCalendar::new(&cli.timezone)?;
    match cli.command {
        Command::Generate {
            date,
            days,
            rows,
            users,
            models,
            providers,
            seed,
            batch,
        } => {
            let mut day = calendar.day(parse_date(&date)?)?;
            let mut all = Vec::new();
            for _ in 0..days {
                all.push(day);
                day = calendar.next(&day)?;
            }
            let config = GeneratorConfig {
                days: all,
                rows_per_day: rows,
                users,
                models,
                providers,
                seed,
                batch_rows: batch,
            };
            let started = Instant::now();
            let counts = tollgate_stats::generate(&db, &config).await?;
            let inserted = started.elapsed();
            if db.get_database_backend() == DbBackend::Postgres {
                db.execute_unprepared("ANALYZE").await?;
            }
            eprintln!(
                "generated {} users, {} usage rows, {} request_candidates rows in {:.1} s \
                 (+ANALYZE: {:.1} s total)",
                counts.users,
                counts.usage,
                counts.candidates,
                inserted.as_secs_f64(),
                started.elapsed().as_secs_f64()
            );
        }
        Command::Baseline { date } => {
            let day = calendar.day(parse_date(&date)?)?;
            let started = Instant::now();
            let users = tollgate_stats::baseline_aggregate_day(&db, &day).await?;
            eprintln!(
                "baseline: {day} with {users} active users in {:.2} s",
                started.elapsed().as_secs_f64()
            );
        }
        Command::Aggregate {
            date,
            days,
            close,
            compute_only,
        } => {
            let mut day = calendar.day(parse_date(&date)?)?;
            let stats = Aggregator::new(db, calendar.clone());
            for _ in 0..days {
                let started = Instant::now();
                let aggregate = if compute_only {
                    stats.compute_day(&day).await?
                } else if close {
                    stats.close_day(&day).await?
                } else {
                    stats.aggregate_day(&day).await?
                };
                eprintln!(
                    "{}: {day}, {} requests, {} models, {} users, {} keys, {} hours recomputed \
                     in {:.2} s",
                    if close { "close_day" } else { "aggregate_day" },
                    aggregate.stats.total_requests,
                    aggregate.models.len(),
                    aggregate.users.len(),
                    aggregate.api_keys.len(),
                    aggregate.hours.len(),
                    started.elapsed().as_secs_f64()
                );
                day = calendar.next(&day)?;
            }
        }
        Command::CloseHours { at, hours, rounds } => {
            let clock = Arc::new(FixedClock::new(parse_instant(&at)?));
            let stats = Aggregator::new(db, calendar.clone()).with_clock(clock);
            let all = calendar.hours_before(stats.now(), hours)?;
            for hour in &all {
                let started = Instant::now();
                let closed = stats.aggregate_hours(std::slice::from_ref(hour)).await?;
                eprintln!(
                    "close {hour}: {} requests, {} users in {:.0} ms",
                    closed[0].stats.total_requests,
                    closed[0].users.len(),
                    started.elapsed().as_secs_f64() * 1e3
                );
            }
            time_calls("re-close the last hour", rounds, || stats.close_hours(1)).await?;
            time_calls("re-close the last 3 hours (one cycle)", rounds, || {
                stats.close_hours(3)
            })
            .await?;
        }
        Command::Dashboard {
            at,
            rounds,
            snapshot_age,
        } => {
            let at = parse_instant(&at)?;
            let clock = Arc::new(FixedClock::new(at));
            let stats = Aggregator::new(db, calendar).with_clock(clock.clone());
            if snapshot_age > 0 {
                clock.set(at - time::Duration::seconds(snapshot_age));
                stats.refresh_open_hour().await?;
                clock.set(at);
            }
            // The nightly run's summary, as of `--at`: every complete day before today.
            let summary = stats.refresh_summary().await?;
            eprintln!(
                "summary: cutoff {}, {} requests",
                summary.cutoff, summary.totals.requests
            );
            let view = stats.today_view().await?;
            eprintln!(
                "today: {} requests, {} hours closed, live from {}",
                view.today.stats.total_requests, view.hours_closed, view.live_from
            );
            time_calls("combined (GET /api/dashboard/stats)", rounds, || {
                stats.combined()
            })
            .await?;
            time_calls("daily_series(30)", rounds, || stats.daily_series(30)).await?;
            time_calls("daily_series(90)", rounds, || stats.daily_series(90)).await?;
            time_calls("hourly_series(24)", rounds, || stats.hourly_series(24)).await?;
            time_calls("hourly_series(168)", rounds, || stats.hourly_series(168)).await?;
        }
    }
    Ok(())
}
