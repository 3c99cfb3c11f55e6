//! `providers`: upstream vendors (or accounts) that serve models.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{BillingType, JsonObject};

/// A row of `providers`.
#[sea_orm::model]
#[expect(
    missing_docs,
    reason = "columns are documented in shared/spec/schema.md"
)]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "providers")]
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
    pub billing_type: BillingType,
    /// Lower is preferred.
    pub provider_priority: i32,
    pub is_active: bool,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub config: Option<JsonObject>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: TimeDateTimeWithTimeZone,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: TimeDateTimeWithTimeZone,
    /// The provider's endpoints.
    #[sea_orm(has_many)]
    pub endpoints: HasMany<super::provider_endpoints::Entity>,
    /// The provider's models.
    #[sea_orm(has_many)]
    pub models: HasMany<super::models::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
