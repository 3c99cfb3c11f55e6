//! `provider_endpoints`: one base URL per provider and API format.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{ApiFormat, Headers};

/// A row of `provider_endpoints`.
#[sea_orm::model]
#[expect(
    missing_docs,
    reason = "columns are documented in shared/spec/schema.md"
)]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "provider_endpoints")]
pub struct Model {
    #[sea_orm(
        primary_key,
        auto_increment = false,
        column_type = "String(StringLen::N(36))"
    )]
    pub id: String,
    #[sea_orm(column_type = "String(StringLen::N(36))")]
    pub provider_id: String,
    pub api_format: ApiFormat,
    /// OpenAI: ends with the version (`…/v1`); Claude: the host only.
    pub base_url: String,
    /// Extra headers sent upstream.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub headers: Option<Headers>,
    /// Upstream timeout in seconds.
    pub timeout: i32,
    pub max_retries: i32,
    pub is_active: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: TimeDateTimeWithTimeZone,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: TimeDateTimeWithTimeZone,
    /// The owning provider.
    #[sea_orm(belongs_to, from = "provider_id", to = "id", on_delete = "Cascade")]
    pub provider: BelongsTo<super::providers::Entity>,
    /// The endpoint's upstream keys.
    #[sea_orm(has_many)]
    pub keys: HasMany<super::provider_api_keys::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
