//! `usage_dead_letters`: usage records the database rejected, kept with its error until an
//! operator replays them (behaviour.md 7).

use sea_orm::entity::prelude::*;

crate::table::table! {
    /// A row of `usage_dead_letters`.
    "usage_dead_letters" {
        /// The request the record belongs to (not unique: a record may fail more than once).
        #[sea_orm(column_type = "String(StringLen::N(100))")]
        pub request_id: String,
        /// The usage record and its candidate rows, as the writer held them.
        #[sea_orm(column_type = "JsonBinary")]
        pub payload: serde_json::Value,
        /// The database's error message.
        #[sea_orm(column_type = "Text")]
        pub error: String,
        /// When a replay wrote the record (null: still waiting).
        #[serde(with = "time::serde::rfc3339::option")]
        pub replayed_at: Option<TimeDateTimeWithTimeZone>,
        /// When the record was dead-lettered.
        #[serde(with = "time::serde::rfc3339")]
        pub created_at: TimeDateTimeWithTimeZone,
    }
}
