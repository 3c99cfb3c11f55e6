//! Providers, their endpoints and their upstream keys: one upsert and one delete each.

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, IntoActiveModel};
use serde::Deserialize;
use tollgate_entities::{
    ApiFormat, BillingType, Headers, JsonObject, models, new_id, now_utc, provider_api_keys,
    provider_endpoints, providers,
};

use super::common::sealed::{Doomed, Upsert};
use super::common::{
    Fields, Slot, Stale, Target, Written, check, ensure_unique, inserted, models_where, required,
    set_given, updated,
};
use crate::error::CatalogError;
use crate::rules;
use crate::secret::Secret;
use crate::secret_box::SecretBox;

/// A provider's fields, also the body of `PATCH /api/admin/providers/{id}`. Absent fields
/// keep their value; a new provider defaults to its name as `display_name`,
/// `pay_as_you_go`, priority 100, active and no `config`. `null` clears `config`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderFields {
    /// Unique name, at most 100 bytes.
    pub name: Option<String>,
    /// Display name, at most 255 bytes.
    pub display_name: Option<String>,
    /// Billing type.
    pub billing_type: Option<BillingType>,
    /// Lower is preferred.
    pub provider_priority: Option<i32>,
    /// Active.
    pub is_active: Option<bool>,
    /// Free-form configuration object.
    #[serde(deserialize_with = "super::common::nullable")]
    pub config: Option<Option<JsonObject>>,
}

/// A provider is deleted with its endpoints, keys and models (the database cascades); its
/// models, read before the cascade, are the entries to invalidate.
impl Doomed for providers::Model {
    type Active = providers::ActiveModel;

    async fn doomed<C: ConnectionTrait>(&self, conn: &C) -> Result<Stale, DbErr> {
        let models = models_where(conn, models::Column::ProviderId.eq(&self.id)).await?;
        Ok(Stale::ProviderModels(models))
    }
}

async fn unique_provider_name<C: ConnectionTrait>(
    conn: &C,
    name: &str,
    except: Option<&str>,
) -> Result<(), CatalogError> {
    ensure_unique::<providers::Entity, _>(
        conn,
        providers::Column::Id,
        providers::Column::Name.eq(name),
        except,
        || format!("a provider named `{name}` already exists"),
    )
    .await
}

/// The provider upsert: [`Target::Named`] goes by `name`. A new provider changes nothing
/// cached; an update invalidates its models' entries.
impl Fields for ProviderFields {
    type Row = providers::Model;
    type Parent = ();
}

impl Upsert for ProviderFields {
    async fn upsert<C: ConnectionTrait>(
        self,
        conn: &C,
        _: &SecretBox,
        target: Target<providers::Model>,
    ) -> Result<Written<providers::Model>, CatalogError> {
        let ProviderFields {
            name,
            display_name,
            billing_type,
            provider_priority,
            is_active,
            config,
        } = self;
        let name = check(name, |name| rules::name("name", &name, 100))?;
        let display_name = check(display_name, |display| {
            rules::name("display_name", &display, 255)
        })?;
        let provider_priority = check(provider_priority, |priority| {
            rules::PRIORITY.check("provider_priority", priority)
        })?;
        if let Some(Some(config)) = &config {
            rules::json("config", config)?;
        }
        let named = |(): &()| Ok(providers::Column::Name.eq(required("name", name.as_deref())?));
        let slot = target.slot::<providers::Entity, _, _>(conn, named).await?;
        if let Some(name) = &name {
            let except = slot.stored().map(|row| row.id.as_str());
            unique_provider_name(conn, name, except).await?;
        }
        match slot {
            Slot::Insert(()) => {
                let name = required("name", name)?;
                let now = now_utc();
                let row = providers::Model {
                    id: new_id(),
                    display_name: display_name.unwrap_or_else(|| name.clone()),
                    name,
                    billing_type: billing_type.unwrap_or(BillingType::PayAsYouGo),
                    provider_priority: provider_priority.unwrap_or(100),
                    is_active: is_active.unwrap_or(true),
                    config: config.flatten(),
                    created_at: now,
                    updated_at: now,
                };
                // A new provider has no models yet: nothing cached can depend on it.
                inserted(conn, row, |_| Stale::Nothing).await
            }
            Slot::Update(before) => {
                let mut row = before.into_active_model();
                set_given!(
                    row: name,
                    display_name,
                    billing_type,
                    provider_priority,
                    is_active,
                    config,
                );
                let stale = |provider: &providers::Model| Stale::Provider(provider.id.clone());
                updated(conn, row, providers::Column::UpdatedAt, stale).await
            }
        }
    }
}

/// An endpoint's fields, also the body of `PATCH /api/admin/endpoints/{id}` (its
/// `api_format` is part of the [`Target`] and cannot change). Absent fields keep their value;
/// a new endpoint needs `base_url` and defaults to no headers, a 300 s timeout, 1 retry and
/// active. `null` clears `headers`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EndpointFields {
    /// An absolute `http(s)` URL; a trailing `/` is dropped.
    pub base_url: Option<String>,
    /// Extra headers sent upstream.
    #[serde(deserialize_with = "super::common::nullable")]
    pub headers: Option<Option<Headers>>,
    /// Timeout in seconds, 1 to 3600.
    pub timeout: Option<i32>,
    /// Retries, 0 to 10.
    pub max_retries: Option<i32>,
    /// Active.
    pub is_active: Option<bool>,
}

/// An endpoint is deleted with its keys (the database cascades); its provider's routes are
/// replanned.
impl Doomed for provider_endpoints::Model {
    type Active = provider_endpoints::ActiveModel;

    async fn doomed<C: ConnectionTrait>(&self, _: &C) -> Result<Stale, DbErr> {
        Ok(Stale::ProviderRoutes(self.provider_id.clone()))
    }
}

/// The endpoint upsert under (provider id, format): [`Target::Named`] goes by both. Any
/// change replans the routes of every global model its provider serves.
impl Fields for EndpointFields {
    type Row = provider_endpoints::Model;
    type Parent = (String, ApiFormat);
}

impl Upsert for EndpointFields {
    async fn upsert<C: ConnectionTrait>(
        self,
        conn: &C,
        _: &SecretBox,
        target: Target<provider_endpoints::Model, (String, ApiFormat)>,
    ) -> Result<Written<provider_endpoints::Model>, CatalogError> {
        let EndpointFields {
            base_url,
            headers,
            timeout,
            max_retries,
            is_active,
        } = self;
        let at = |provider_id: &str, format: ApiFormat| {
            sea_orm::Condition::all()
                .add(provider_endpoints::Column::ProviderId.eq(provider_id))
                .add(provider_endpoints::Column::ApiFormat.eq(format))
        };
        let named = |(provider_id, format): &(String, ApiFormat)| Ok(at(provider_id, *format));
        let slot = target
            .slot::<provider_endpoints::Entity, _, _>(conn, named)
            .await?;
        // A second endpoint of one format is refused before its fields are read, as the admin
        // API always answered: 409 rather than 422 when a body is both.
        if let Slot::Insert((provider_id, api_format)) = &slot {
            ensure_unique::<provider_endpoints::Entity, _>(
                conn,
                provider_endpoints::Column::Id,
                at(provider_id, *api_format),
                None,
                || format!("provider `{provider_id}` already has a {api_format} endpoint"),
            )
            .await?;
        }
        let base_url = check(base_url, |url| rules::base_url("base_url", &url))?;
        if let Some(Some(headers)) = &headers {
            rules::headers("headers", &headers.0)?;
        }
        let timeout = check(timeout, |secs| rules::TIMEOUT_SECS.check("timeout", secs))?;
        let max_retries = check(max_retries, |retries| {
            rules::MAX_RETRIES.check("max_retries", retries)
        })?;
        match slot {
            Slot::Insert((provider_id, api_format)) => {
                let base_url = required("base_url", base_url)?;
                let now = now_utc();
                let row = provider_endpoints::Model {
                    id: new_id(),
                    provider_id,
                    api_format,
                    base_url,
                    headers: headers.flatten(),
                    timeout: timeout.unwrap_or(300),
                    max_retries: max_retries.unwrap_or(1),
                    is_active: is_active.unwrap_or(true),
                    created_at: now,
                    updated_at: now,
                };
                inserted(conn, row, routes).await
            }
            Slot::Update(before) => {
                let mut row = before.into_active_model();
                set_given!(row: base_url, headers, timeout, max_retries, is_active);
                updated(conn, row, provider_endpoints::Column::UpdatedAt, routes).await
            }
        }
    }
}

/// What any change to an endpoint makes stale.
fn routes(endpoint: &provider_endpoints::Model) -> Stale {
    Stale::ProviderRoutes(endpoint.provider_id.clone())
}

/// An upstream key's fields, also the body of `PATCH /api/admin/provider-keys/{id}`. Absent
/// fields keep their value; a new key needs `api_key` and `name` and defaults to a rate
/// multiplier of 1.0, priority 50, every model and active. `null` clears `allowed_models`
/// (all models).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderKeyFields {
    /// The secret, sealed before it is stored; never shown again.
    pub api_key: Option<Secret>,
    /// Name, at most 255 bytes.
    pub name: Option<String>,
    /// List-to-actual cost multiplier, 0 (free) to 100.
    pub rate_multiplier: Option<f64>,
    /// Lower is tried first.
    pub internal_priority: Option<i32>,
    /// Model names the key may serve.
    #[serde(deserialize_with = "super::common::nullable")]
    pub allowed_models: Option<Option<Vec<String>>>,
    /// Active.
    pub is_active: Option<bool>,
}

/// An upstream key's delete replans its provider's routes.
impl Doomed for provider_api_keys::Model {
    type Active = provider_api_keys::ActiveModel;

    async fn doomed<C: ConnectionTrait>(&self, _: &C) -> Result<Stale, DbErr> {
        Ok(key_routes(self))
    }
}

/// The upstream key upsert under an endpoint id, its secret sealed by `secrets`:
/// [`Target::Named`] goes by endpoint and `name`. Any change replans the routes of every
/// global model its provider serves.
impl Fields for ProviderKeyFields {
    type Row = provider_api_keys::Model;
    type Parent = String;
}

impl Upsert for ProviderKeyFields {
    async fn upsert<C: ConnectionTrait>(
        self,
        conn: &C,
        secrets: &SecretBox,
        target: Target<provider_api_keys::Model, String>,
    ) -> Result<Written<provider_api_keys::Model>, CatalogError> {
        let ProviderKeyFields {
            api_key,
            name,
            rate_multiplier,
            internal_priority,
            allowed_models,
            is_active,
        } = self;
        let api_key = check(api_key, |key| {
            rules::secret("api_key", key.expose()).map(|key| secrets.seal(key))
        })?;
        let name = check(name, |name| rules::name("name", &name, 255))?;
        let rate_multiplier = check(rate_multiplier, |multiplier| {
            rules::RATE_MULTIPLIER.check("rate_multiplier", multiplier)
        })?;
        let internal_priority = check(internal_priority, |priority| {
            rules::PRIORITY.check("internal_priority", priority)
        })?;
        let allowed_models = check(allowed_models, |models| {
            check(models, |models| {
                rules::allowed_models("allowed_models", &models)
            })
        })?;
        let named = |endpoint_id: &String| {
            Ok(sea_orm::Condition::all()
                .add(provider_api_keys::Column::EndpointId.eq(endpoint_id))
                .add(provider_api_keys::Column::Name.eq(required("name", name.as_deref())?)))
        };
        match target
            .slot::<provider_api_keys::Entity, _, _>(conn, named)
            .await?
        {
            Slot::Insert(endpoint_id) => {
                let now = now_utc();
                let row = provider_api_keys::Model {
                    id: new_id(),
                    endpoint_id,
                    api_key: required("api_key", api_key)?,
                    name: required("name", name)?,
                    rate_multiplier: rate_multiplier.unwrap_or(1.0),
                    internal_priority: internal_priority.unwrap_or(50),
                    allowed_models: allowed_models.flatten(),
                    is_active: is_active.unwrap_or(true),
                    created_at: now,
                    updated_at: now,
                };
                inserted(conn, row, key_routes).await
            }
            Slot::Update(before) => {
                let mut row = before.into_active_model();
                set_given!(
                    row: api_key,
                    name,
                    rate_multiplier,
                    internal_priority,
                    allowed_models,
                    is_active,
                );
                updated(conn, row, provider_api_keys::Column::UpdatedAt, key_routes).await
            }
        }
    }
}

/// What any change to an upstream key makes stale.
fn key_routes(key: &provider_api_keys::Model) -> Stale {
    Stale::EndpointRoutes(key.endpoint_id.clone())
}
