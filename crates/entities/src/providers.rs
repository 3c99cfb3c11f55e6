//! `providers`: upstream vendors (or accounts) that serve models.

use sea_orm::entity::prelude::*;

use crate::{BillingType, JsonObject};

crate::table::table! {
    /// A row of `providers`.
    "providers" with timestamps {
        #[sea_orm(unique, column_type = "String(StringLen::N(100))")]
        pub name: String,
        pub display_name: String,
        pub billing_type: BillingType,
        /// Lower is preferred.
        pub provider_priority: i32,
        pub is_active: bool,
        #[sea_orm(column_type = "JsonBinary", nullable)]
        pub config: Option<JsonObject>,
        /// The provider's endpoints.
        #[sea_orm(has_many)]
        pub endpoints: HasMany<super::provider_endpoints::Entity>,
        /// The provider's models.
        #[sea_orm(has_many)]
        pub models: HasMany<super::models::Entity>,
    }
}
