//! Providers, their endpoints and upstream keys: CRUD with validation and invalidation.

use serde::{Deserialize, Serialize};
use tollgate_catalogue::{EndpointFields, ProviderFields, ProviderKeyFields, Secret};
use tollgate_entities::{
    AllowedModels, ApiFormat, BillingType, Headers, JsonObject, provider_api_keys,
    provider_endpoints, providers,
};

use super::crud::{Created, Edited, created, edited_by_id, listed};
use super::error::AdminError;
use super::extract::{AdminId, find_or_404};
use crate::app::AppState;

fn default_true() -> bool {
    true
}

/// `POST /api/admin/providers`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProviderCreate {
    name: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    billing_type: Option<BillingType>,
    #[serde(default)]
    provider_priority: Option<i32>,
    #[serde(default = "default_true")]
    is_active: bool,
    #[serde(default)]
    config: Option<JsonObject>,
}

impl From<ProviderCreate> for ProviderFields {
    fn from(body: ProviderCreate) -> Self {
        Self {
            name: Some(body.name),
            display_name: body.display_name,
            billing_type: body.billing_type,
            provider_priority: body.provider_priority,
            is_active: Some(body.is_active),
            config: Some(body.config),
        }
    }
}

pub(super) async fn find_provider(
    state: &AppState,
    id: &str,
) -> Result<providers::Model, AdminError> {
    find_or_404::<providers::Entity>(state, "provider", id).await
}

// `/api/admin/providers/{id}`.
edited_by_id!(ProviderFields, providers, "provider");

// `/api/admin/providers`, by priority, then name.
listed!(ProviderFields, providers, [ProviderPriority, Name]);
created!(ProviderCreate => ProviderFields);

/// `POST /api/admin/providers/{id}/endpoints`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EndpointCreate {
    api_format: ApiFormat,
    base_url: String,
    #[serde(default)]
    headers: Option<Headers>,
    #[serde(default)]
    timeout: Option<i32>,
    #[serde(default)]
    max_retries: Option<i32>,
    #[serde(default = "default_true")]
    is_active: bool,
}

impl From<EndpointCreate> for EndpointFields {
    fn from(body: EndpointCreate) -> Self {
        Self {
            base_url: Some(body.base_url),
            headers: Some(body.headers),
            timeout: body.timeout,
            max_retries: body.max_retries,
            is_active: Some(body.is_active),
        }
    }
}

// `/api/admin/endpoints/{id}`.
edited_by_id!(EndpointFields, provider_endpoints, "endpoint");

// `/api/admin/providers/{id}/endpoints`, by format: the provider must exist.
listed!(EndpointFields, provider_endpoints under ProviderFields, by ProviderId, [ApiFormat]);

/// `POST /api/admin/providers/{id}/endpoints`: one endpoint per format.
impl Created for EndpointCreate {
    type Fields = EndpointFields;

    fn parent(&self, provider_id: String) -> (String, ApiFormat) {
        (provider_id, self.api_format)
    }
}

/// An upstream key as the API shows it: the secret is write-only.
#[derive(Debug, Serialize)]
pub(crate) struct ProviderKeyView {
    id: String,
    endpoint_id: String,
    name: String,
    /// A masked form of the secret (`sk-…wxyz`).
    api_key_masked: String,
    rate_multiplier: f64,
    internal_priority: i32,
    allowed_models: Option<AllowedModels>,
    is_active: bool,
    #[serde(with = "time::serde::rfc3339")]
    created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: time::OffsetDateTime,
}

impl ProviderKeyView {
    pub(crate) fn new(state: &AppState, row: provider_api_keys::Model) -> Self {
        Self {
            api_key_masked: state.secrets().hint(&row.api_key),
            id: row.id,
            endpoint_id: row.endpoint_id,
            name: row.name,
            rate_multiplier: row.rate_multiplier,
            internal_priority: row.internal_priority,
            allowed_models: row.allowed_models,
            is_active: row.is_active,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// `POST /api/admin/endpoints/{id}/keys`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProviderKeyCreate {
    api_key: Secret,
    name: String,
    #[serde(default)]
    rate_multiplier: Option<f64>,
    #[serde(default)]
    internal_priority: Option<i32>,
    #[serde(default)]
    allowed_models: Option<Vec<String>>,
    #[serde(default = "default_true")]
    is_active: bool,
}

impl From<ProviderKeyCreate> for ProviderKeyFields {
    fn from(body: ProviderKeyCreate) -> Self {
        Self {
            api_key: Some(body.api_key),
            name: Some(body.name),
            rate_multiplier: body.rate_multiplier,
            internal_priority: body.internal_priority,
            allowed_models: Some(body.allowed_models),
            is_active: Some(body.is_active),
        }
    }
}

/// `/api/admin/provider-keys/{id}`: the secret is write-only.
impl Edited for ProviderKeyFields {
    type Path = AdminId;
    type View = ProviderKeyView;

    async fn find(
        state: &AppState,
        AdminId(id): AdminId,
    ) -> Result<provider_api_keys::Model, AdminError> {
        find_or_404::<provider_api_keys::Entity>(state, "provider key", &id).await
    }

    fn view(state: &AppState, row: provider_api_keys::Model) -> ProviderKeyView {
        ProviderKeyView::new(state, row)
    }
}

// `/api/admin/endpoints/{id}/keys`, by priority, then name: the endpoint must exist.
listed!(
    ProviderKeyFields, provider_api_keys under EndpointFields, by EndpointId,
    [InternalPriority, Name]
);
created!(ProviderKeyCreate => ProviderKeyFields);
