//! `global_models`: the canonical models clients ask for.

use sea_orm::entity::prelude::*;

use crate::{Capabilities, GlobalModelConfig, TieredPricing};

crate::table::table! {
    /// A row of `global_models`.
    "global_models" with timestamps {
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
        /// Providers' implementations.
        #[sea_orm(has_many)]
        pub models: HasMany<super::models::Entity>,
    }
}
