//! `tollgate_meta`: settings that belong to the database itself, such as the deployment's
//! random identity (behaviour.md 8b) and the statistics retention watermark, one row per key.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// The key under which the deployment id is stored.
pub const DEPLOYMENT_ID: &str = "deployment_id";

/// The key under which the statistics retention watermark is stored: the RFC 3339 UTC
/// instant before which raw `usage` and `request_candidates` rows of aggregated business
/// days may have been deleted (behaviour.md 9, "Retention"). It only ever moves forward.
pub const STATS_PRUNED_BEFORE: &str = "stats_pruned_before";

/// A row of `tollgate_meta`.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "tollgate_meta")]
pub struct Model {
    /// The setting's name.
    #[sea_orm(
        primary_key,
        auto_increment = false,
        column_type = "String(StringLen::N(64))"
    )]
    pub key: String,
    /// Its value.
    #[sea_orm(column_type = "Text")]
    pub value: String,
    /// When it was first written.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: TimeDateTimeWithTimeZone,
}

impl ActiveModelBehavior for ActiveModel {}
