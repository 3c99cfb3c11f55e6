//! Statistics benchmark harness: fills a database with generated traffic, and times the
//! original service's aggregation pattern (the baseline) and `tollgate-stats` on one day.
//!
//! ```text
//! cargo run --release -p tollgate-stats --features generator --example stats-bench -- \
//!     --database-url URL generate --date 2025-06-01 --rows 1000000 --users 10000 --models 50
//! cargo run --release -p tollgate-stats --features generator --example stats-bench -- \
//!     --database-url URL baseline --date 2025-06-01
//! ```

use std::time::Instant;

use clap::{Parser, Subcommand};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DbBackend};
use tollgate_migrations::{Migrator, MigratorTraitReexport as _};
use tollgate_stats::{Aggregator, BusinessCalendar, GeneratorConfig};

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
    /// Time `Aggregator::aggregate_day` on one day, in process.
    Aggregate {
        #[arg(long)]
        date: String,
    },
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
        Command::Aggregate { date } => {
            let day = calendar.day(parse_date(&date)?)?;
            let stats = Aggregator::new(db, calendar);
            let started = Instant::now();
            let aggregate = stats.aggregate_day(&day).await?;
            eprintln!(
                "aggregate: {day}, {} requests, {} models, {} users in {:.2} s",
                aggregate.stats.total_requests,
                aggregate.models.len(),
                aggregate.users.len(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}
