//! Usage statistics for tollgate (behaviour.md section 6): daily, per-model, per-user and
//! summary rollups stored with idempotent upserts, today's live numbers, the combined
//! view, daily series for dashboards, backfill with gap detection, and retention (pruning
//! raw rows of aggregated days), in any IANA business time zone.
//!
//! The entry point is [`Aggregator`]. The crate picks no database driver: the caller opens
//! a sea-orm [`DatabaseConnection`](sea_orm::DatabaseConnection) on SQLite or PostgreSQL.
//!
//! ```ignore
//! let stats = Aggregator::new(db, BusinessCalendar::new("Asia/Shanghai")?);
//! stats.aggregate_day(&stats.yesterday()?).await?;
//! stats.refresh_summary().await?;
//! let dashboard = stats.combined().await?;
//! ```

mod aggregator;
mod calendar;
mod clock;
mod error;
#[cfg(feature = "generator")]
mod generator;
mod histogram;
mod prune;
mod series;
mod sql;
mod types;
mod write;

pub use aggregator::Aggregator;
pub use calendar::{BusinessCalendar, BusinessDay};
pub use clock::{Clock, FixedClock, SystemClock};
pub use error::StatsError;
#[cfg(feature = "generator")]
pub use generator::{GeneratedCounts, GeneratorConfig, baseline_aggregate_day, generate};
pub use histogram::{BOUNDS_MS, BUCKETS, ResponseTimeHistogram, bucket_of};
pub use prune::{PruneOptions, PruneProgress, PruneReport};
pub use types::{
    AccountCounts, BackfillProgress, BackfillReport, CombinedStats, DailyEntry, DayAggregate,
    DaySource, DayStats, ModelStats, SummaryReport, Totals, UserDailyEntry, UserStats,
};
