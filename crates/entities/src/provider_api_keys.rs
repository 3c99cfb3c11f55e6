//! `provider_api_keys`: upstream credentials of an endpoint.

use sea_orm::entity::prelude::*;

use crate::AllowedModels;

crate::table::table! {
    /// A row of `provider_api_keys`.
    ///
    /// `Debug` is derived, so never log a whole row: `api_key` is the upstream secret (encrypted
    /// at rest when an encryption key is configured).
    "provider_api_keys" with timestamps {
        #[sea_orm(column_type = "String(StringLen::N(36))")]
        pub endpoint_id: String,
        /// The upstream secret.
        #[sea_orm(column_type = "Text")]
        pub api_key: String,
        pub name: String,
        /// List cost × this = actual cost; 0.0 means the key costs nothing.
        pub rate_multiplier: f64,
        /// Lower is tried first.
        pub internal_priority: i32,
        /// `None` means every model.
        #[sea_orm(column_type = "JsonBinary", nullable)]
        pub allowed_models: Option<AllowedModels>,
        pub is_active: bool,
        /// The owning endpoint.
        #[sea_orm(belongs_to, from = "endpoint_id", to = "id", on_delete = "Cascade")]
        pub endpoint: BelongsTo<super::provider_endpoints::Entity>,
    }
}
