//! `stats_daily_model`: one row per business day and model.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::HistogramCounts;

/// A row of `stats_daily_model`.
#[sea_orm::model]
#[expect(
    missing_docs,
    reason = "columns are documented in shared/spec/schema.md"
)]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "stats_daily_model")]
pub struct Model {
    #[sea_orm(
        primary_key,
        auto_increment = false,
        column_type = "String(StringLen::N(36))"
    )]
    pub id: String,
    /// UTC instant of the business day's local midnight.
    #[serde(with = "time::serde::rfc3339")]
    pub date: TimeDateTimeWithTimeZone,
    /// `COALESCE(global_model, model)` of the grouped usage rows.
    #[sea_orm(column_type = "String(StringLen::N(200))")]
    pub model: String,
    pub total_requests: i32,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_creation_tokens: i64,
    pub cache_read_tokens: i64,
    pub total_cost: f64,
    pub avg_response_time_ms: f64,
    /// Successful requests for which no price was found.
    pub unpriced_requests: i32,
    /// Response times per histogram bucket; null when there were none.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub response_time_histogram: Option<HistogramCounts>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: TimeDateTimeWithTimeZone,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: TimeDateTimeWithTimeZone,
}

impl ActiveModelBehavior for ActiveModel {}
