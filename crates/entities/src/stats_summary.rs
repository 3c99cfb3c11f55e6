//! `stats_summary`: all-time totals up to a cutoff; exactly one row.

use sea_orm::entity::prelude::*;

/// The fixed primary key of the single summary row; a check constraint enforces it.
pub const SINGLETON_ID: &str = "00000000-0000-0000-0000-000000000001";

crate::table::table! {
    /// The row of `stats_summary`.
    "stats_summary" with timestamps {
        /// Totals cover business days before this instant.
        #[serde(with = "time::serde::rfc3339")]
        pub cutoff_date: TimeDateTimeWithTimeZone,
        pub all_time_requests: i64,
        pub all_time_success_requests: i64,
        pub all_time_error_requests: i64,
        pub all_time_input_tokens: i64,
        pub all_time_output_tokens: i64,
        pub all_time_cache_creation_tokens: i64,
        pub all_time_cache_read_tokens: i64,
        pub all_time_cost: f64,
        pub all_time_actual_cost: f64,
        pub total_users: i32,
        pub active_users: i32,
        pub total_api_keys: i32,
        pub active_api_keys: i32,
    }
}
