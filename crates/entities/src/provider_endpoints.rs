//! `provider_endpoints`: one base URL per provider and API format.

use sea_orm::entity::prelude::*;

use crate::{ApiFormat, Headers};

crate::table::table! {
    /// A row of `provider_endpoints`.
    "provider_endpoints" with timestamps {
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
        /// The owning provider.
        #[sea_orm(belongs_to, from = "provider_id", to = "id", on_delete = "Cascade")]
        pub provider: BelongsTo<super::providers::Entity>,
        /// The endpoint's upstream keys.
        #[sea_orm(has_many)]
        pub keys: HasMany<super::provider_api_keys::Entity>,
    }
}
