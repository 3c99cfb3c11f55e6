//! `api_keys`: client keys, stored as the hex SHA-256 of the plaintext.

use sea_orm::entity::prelude::*;

crate::table::table! {
    /// A row of `api_keys`.
    "api_keys" with timestamps {
        #[sea_orm(column_type = "String(StringLen::N(36))")]
        pub user_id: String,
        /// Hex SHA-256 of the plaintext key; the plaintext is never stored.
        #[sea_orm(unique, column_type = "String(StringLen::N(64))")]
        pub key_hash: String,
        pub name: String,
        pub is_active: bool,
        #[serde(with = "time::serde::rfc3339::option")]
        pub expires_at: Option<TimeDateTimeWithTimeZone>,
        pub total_requests: i32,
        pub total_cost_usd: f64,
        #[serde(with = "time::serde::rfc3339::option")]
        pub last_used_at: Option<TimeDateTimeWithTimeZone>,
        /// The owner.
        #[sea_orm(belongs_to, from = "user_id", to = "id", on_delete = "Cascade")]
        pub user: BelongsTo<super::users::Entity>,
    }
}
