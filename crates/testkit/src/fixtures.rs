//! Catalogue and traffic rows with sensible defaults, for tests to adjust and insert.
//!
//! Each constructor returns a complete entity `Model`; change the fields a test cares
//! about, then [`insert`] it.

use sea_orm::{ActiveModelTrait, ConnectionTrait, IntoActiveModel};
use tollgate_entities::{
    ApiFormat, BillingType, Capabilities, GlobalModelConfig, TieredPricing, UserRole, api_keys,
    global_models, models, new_id, now_utc, provider_api_keys, provider_endpoints, providers,
    users,
};

/// Inserts a complete row and returns it as stored.
pub async fn insert<M, A, C>(conn: &C, model: M) -> M
where
    M: IntoActiveModel<A>,
    A: ActiveModelTrait + sea_orm::ActiveModelBehavior + Send,
    <A::Entity as sea_orm::EntityTrait>::Model: IntoActiveModel<A> + Into<M>,
    C: ConnectionTrait,
{
    tollgate_entities::insert_row(conn, model)
        .await
        .unwrap_or_else(|error| panic!("fixture insert failed: {error}"))
}

/// An active `user` role.
pub fn user(username: &str) -> users::Model {
    let now = now_utc();
    users::Model {
        id: new_id(),
        email: format!("{username}@example.test"),
        username: username.to_owned(),
        role: UserRole::User,
        is_active: true,
        quota_usd: None,
        used_usd: 0.0,
        total_usd: 0.0,
        created_at: now,
        updated_at: now,
    }
}

/// An active client key for `user_id` whose hash is `key_hash`.
pub fn api_key(user_id: &str, key_hash: &str) -> api_keys::Model {
    let now = now_utc();
    api_keys::Model {
        id: new_id(),
        user_id: user_id.to_owned(),
        key_hash: key_hash.to_owned(),
        name: "test key".to_owned(),
        is_active: true,
        expires_at: None,
        total_requests: 0,
        total_cost_usd: 0.0,
        last_used_at: None,
        created_at: now,
        updated_at: now,
    }
}

/// An active pay-as-you-go provider.
pub fn provider(name: &str, priority: i32) -> providers::Model {
    let now = now_utc();
    providers::Model {
        id: new_id(),
        name: name.to_owned(),
        display_name: name.to_owned(),
        billing_type: BillingType::PayAsYouGo,
        provider_priority: priority,
        is_active: true,
        config: None,
        created_at: now,
        updated_at: now,
    }
}

/// An active endpoint of `provider_id`.
pub fn endpoint(
    provider_id: &str,
    api_format: ApiFormat,
    base_url: &str,
) -> provider_endpoints::Model {
    let now = now_utc();
    provider_endpoints::Model {
        id: new_id(),
        provider_id: provider_id.to_owned(),
        api_format,
        base_url: base_url.to_owned(),
        headers: None,
        timeout: 300,
        max_retries: 1,
        is_active: true,
        created_at: now,
        updated_at: now,
    }
}

/// An active upstream key of `endpoint_id`, serving every model at list price.
pub fn provider_key(endpoint_id: &str, secret: &str) -> provider_api_keys::Model {
    let now = now_utc();
    provider_api_keys::Model {
        id: new_id(),
        endpoint_id: endpoint_id.to_owned(),
        api_key: secret.to_owned(),
        name: "upstream key".to_owned(),
        rate_multiplier: 1.0,
        internal_priority: 50,
        allowed_models: None,
        is_active: true,
        created_at: now,
        updated_at: now,
    }
}

/// An active global model priced at $1 / $2 per million input / output tokens.
pub fn global_model(name: &str) -> global_models::Model {
    let now = now_utc();
    global_models::Model {
        id: new_id(),
        name: name.to_owned(),
        display_name: name.to_owned(),
        default_price_per_request: None,
        default_tiered_pricing: TieredPricing::fixed(1.0, 2.0),
        supported_capabilities: Capabilities::default(),
        config: GlobalModelConfig::default(),
        is_active: true,
        usage_count: 0,
        created_at: now,
        updated_at: now,
    }
}

/// An active model of `provider_id` implementing `global_model_id`, inheriting prices.
pub fn model(provider_id: &str, global_model_id: &str, provider_model_name: &str) -> models::Model {
    let now = now_utc();
    models::Model {
        id: new_id(),
        provider_id: provider_id.to_owned(),
        global_model_id: global_model_id.to_owned(),
        provider_model_name: provider_model_name.to_owned(),
        provider_model_aliases: None,
        price_per_request: None,
        tiered_pricing: None,
        supports_vision: None,
        supports_function_calling: None,
        supports_streaming: None,
        supports_extended_thinking: None,
        supports_image_generation: None,
        is_active: true,
        is_available: true,
        config: None,
        created_at: now,
        updated_at: now,
    }
}

// The traffic rows live in `tollgate-entities` (its `fixtures` feature), whose own tests
// need them and cannot depend on this crate.
pub use tollgate_entities::fixtures::{candidate_row, usage_row};
