//! `models`: a provider's implementation of a global model.

use sea_orm::entity::prelude::*;

use crate::{JsonObject, ModelAliases, TieredPricing};

crate::table::table! {
    /// A row of `models`.
    "models" with timestamps {
        #[sea_orm(column_type = "String(StringLen::N(36))")]
        pub provider_id: String,
        #[sea_orm(column_type = "String(StringLen::N(36))")]
        pub global_model_id: String,
        /// The name this provider's API expects (and a name clients may use).
        #[sea_orm(column_type = "String(StringLen::N(200))")]
        pub provider_model_name: String,
        /// Alternative upstream names; never used for global resolution.
        #[sea_orm(column_type = "JsonBinary", nullable)]
        pub provider_model_aliases: Option<ModelAliases>,
        /// `None` inherits the global model's default.
        pub price_per_request: Option<f64>,
        /// `None` inherits the global model's default.
        #[sea_orm(column_type = "JsonBinary", nullable)]
        pub tiered_pricing: Option<TieredPricing>,
        pub supports_vision: Option<bool>,
        pub supports_function_calling: Option<bool>,
        pub supports_streaming: Option<bool>,
        pub supports_extended_thinking: Option<bool>,
        pub supports_image_generation: Option<bool>,
        pub is_active: bool,
        pub is_available: bool,
        #[sea_orm(column_type = "JsonBinary", nullable)]
        pub config: Option<JsonObject>,
        /// The provider serving it.
        #[sea_orm(belongs_to, from = "provider_id", to = "id", on_delete = "Cascade")]
        pub provider: BelongsTo<super::providers::Entity>,
        /// The global model it implements.
        #[sea_orm(belongs_to, from = "global_model_id", to = "id", on_delete = "Cascade")]
        pub global_model: BelongsTo<super::global_models::Entity>,
    }
}
