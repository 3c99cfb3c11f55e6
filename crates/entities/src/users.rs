//! `users`: people and services that own client keys.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::UserRole;

/// A row of `users`.
#[sea_orm::model]
#[expect(
    missing_docs,
    reason = "columns are documented in shared/spec/schema.md"
)]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(
        primary_key,
        auto_increment = false,
        column_type = "String(StringLen::N(36))"
    )]
    pub id: String,
    #[sea_orm(unique)]
    pub email: String,
    #[sea_orm(unique)]
    pub username: String,
    pub role: UserRole,
    pub is_active: bool,
    /// `None` means no quota.
    pub quota_usd: Option<f64>,
    pub used_usd: f64,
    pub total_usd: f64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: TimeDateTimeWithTimeZone,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: TimeDateTimeWithTimeZone,
    /// The user's client keys.
    #[sea_orm(has_many)]
    pub api_keys: HasMany<super::api_keys::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
