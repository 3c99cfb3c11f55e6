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

mod acc;
mod aggregator;
mod breakdown;
mod calendar;
mod clock;
mod closing;
mod error;
#[cfg(feature = "generator")]
mod generator;
mod histogram;
mod hourly;
mod hours;
mod memo;
mod open_hour;
mod prune;
mod read;
mod rollup;
mod rows;
mod series;
mod sql;
mod stored;
mod types;
mod upsert;
mod write;

pub use aggregator::Aggregator;
pub use breakdown::{Breakdown, BreakdownBy, KeyDailyEntry};
pub use calendar::{BusinessCalendar, BusinessDay};
pub use clock::{Clock, FixedClock, SystemClock};
pub use closing::{ClosingConfig, CycleReport};
pub use error::StatsError;
#[cfg(feature = "generator")]
pub use generator::{GeneratedCounts, GeneratorConfig, baseline_aggregate_day, generate};
pub use histogram::{BOUNDS_MS, BUCKETS, ResponseTimeHistogram, bucket_of};
pub use hourly::{HourAggregate, HoursReport};
pub use hours::BusinessHour;
pub use prune::{PruneOptions, PruneProgress, PruneReport};
pub use types::{
    AccountCounts, BackfillProgress, BackfillReport, CombinedStats, DailyEntry, DayAggregate,
    DaySource, DayStats, HourEntry, HourSource, ModelStats, Percentiles, SliceStats, SummaryReport,
    TodayView, Totals, UserDailyEntry, UserStats,
};
