//! sea-orm entities for every tollgate table, the typed JSON columns they carry, and the
//! cost maths of behaviour.md section 5.
//!
//! This crate chooses no database driver: it compiles against sea-orm's driver-neutral API,
//! and the binaries (or an embedder) pick SQLite, PostgreSQL or both.
//!
//! Row types are the sea-orm `Model`s of each entity module; they derive `Serialize` and
//! `Deserialize`, so the cache stores them as plain read-only snapshots.
//!
//! Entities use sea-orm 2's dense format (`#[sea_orm::model]`): relations are fields of the
//! `Model` declaration (`BelongsTo`, `HasMany`), from which the macro derives the `Relation`
//! enum and the `Related` impls; the `Model` itself keeps only the columns.

mod cost;
mod enums;
mod error;
mod insert;
mod json;
mod pricing;
mod sanitize;
mod slices;
mod table;

#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;

pub mod api_keys;
pub mod global_models;
pub mod models;
pub mod provider_api_keys;
pub mod provider_endpoints;
pub mod providers;
pub mod request_candidates;
pub mod stats_daily_model;
pub mod stats_summary;
pub mod stats_user_daily;
pub mod tollgate_meta;
pub mod usage;
pub mod usage_dead_letters;
pub mod users;

pub use cost::{
    CostBreakdown, CostRequest, EffectivePricing, MAX_AMOUNT, TokenCounts, clamp_amount,
    compute_cost,
};
pub use enums::{ApiFormat, BillingType, CandidateStatus, UsageStatus, UserRole};
pub use error::EntityError;
pub use insert::insert_row;
pub use json::{
    AllowedModels, Capabilities, GlobalModelConfig, Headers, HistogramCounts, JsonObject,
    ModelAlias, ModelAliases,
};
pub use pricing::{PriceTier, TieredPricing};
pub use sanitize::{MAX_TEXT_CHARS, fit_json, fit_text};
pub use slices::{
    stats_daily, stats_daily_api_key, stats_daily_provider, stats_hourly, stats_hourly_api_key,
    stats_hourly_model, stats_hourly_provider, stats_hourly_user,
};

/// A new application-generated primary key: a UUID v7 rendered as a 36-character string.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The current instant in UTC, the only offset tollgate ever stores, truncated to whole
/// microseconds: PostgreSQL keeps no more, so a stored value reads back equal on every
/// backend.
pub fn now_utc() -> time::OffsetDateTime {
    truncate_to_micros(time::OffsetDateTime::now_utc())
}

/// `instant` with its sub-microsecond part dropped, converted to UTC.
pub fn truncate_to_micros(instant: time::OffsetDateTime) -> time::OffsetDateTime {
    let instant = instant.to_offset(time::UtcOffset::UTC);
    let micros = instant.microsecond();
    instant.replace_microsecond(micros).unwrap_or(instant)
}
