//! `global_models`: the canonical models clients ask for.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{Capabilities, GlobalModelConfig, TieredPricing};

/// A row of `global_models`.
#[sea_orm::model]
#[expect(
    missing_docs,
    reason = "columns are documented in shared/spec/schema.md"
)]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "global_models")]
pub struct Model {
    #[sea_orm(
        primary_key,
        auto_increment = false,
        column_type = "String(StringLen::N(36))"
    )]
    pub id: String,
    #[sea_orm(unique, column_type = "String(StringLen::N(100))")]
    pub name: String,
    pub display_name: String,
    pub default_price_per_request: Option<f64>,
    #[sea_orm(column_type = "JsonBinary")]
    pub default_tiered_pricing: TieredPricing,
    #[sea_orm(column_type = "JsonBinary")]
    pub supported_capabilities: Capabilities,
    #[sea_orm(column_type = "JsonBinary")]
    pub config: GlobalModelConfig,
    pub is_active: bool,
    pub usage_count: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: TimeDateTimeWithTimeZone,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: TimeDateTimeWithTimeZone,
    /// Providers' implementations.
    #[sea_orm(has_many)]
    pub models: HasMany<super::models::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
