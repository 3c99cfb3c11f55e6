//! The declarative catalogue file (`--catalog FILE`, JSON or TOML): providers with their
//! endpoints, upstream keys and models, global models, users and client keys, applied at
//! start in one transaction as an upsert keyed by names. Every value obeys the admin API's
//! rules (`admin::validate`); an error names the entry and the field.

use std::collections::BTreeMap;
use std::path::Path;

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, IntoActiveModel, QueryFilter, TransactionTrait,
};
use serde::Deserialize;
use tollgate_entities::insert_row;
use tollgate_entities::{
    ApiFormat, BillingType, GlobalModelConfig, Headers, ModelAliases, TieredPricing, UserRole,
    api_keys, global_models, models, new_id, now_utc, provider_api_keys, provider_endpoints,
    providers, users,
};

use crate::keys::hash_client_key;
use crate::rules::{self as validate, Invalid};
use crate::secret::Secret;
use crate::secret_box::SecretBox;

/// A catalogue document.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    /// Global models (canonical names clients ask for).
    #[serde(default)]
    pub global_models: Vec<GlobalModelSpec>,
    /// Providers with endpoints, keys and models.
    #[serde(default)]
    pub providers: Vec<ProviderSpec>,
    /// Users with client keys.
    #[serde(default)]
    pub users: Vec<UserSpec>,
}

fn yes() -> bool {
    true
}
fn default_priority() -> i32 {
    100
}
fn default_timeout() -> i32 {
    300
}
fn default_retries() -> i32 {
    1
}
fn default_multiplier() -> f64 {
    1.0
}
fn default_key_priority() -> i32 {
    50
}

/// A global model, keyed by `name`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalModelSpec {
    /// Canonical name.
    pub name: String,
    /// Display name (default: the name).
    #[serde(default)]
    pub display_name: Option<String>,
    /// Default prices.
    pub default_tiered_pricing: TieredPricing,
    /// Default per-request price.
    #[serde(default)]
    pub default_price_per_request: Option<f64>,
    /// Capabilities.
    #[serde(default)]
    pub supported_capabilities: Vec<String>,
    /// Configuration object.
    #[serde(default)]
    pub config: GlobalModelConfig,
    /// Active (default true).
    #[serde(default = "yes")]
    pub is_active: bool,
}

/// A provider, keyed by `name`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    /// Unique name.
    pub name: String,
    /// Display name (default: the name).
    #[serde(default)]
    pub display_name: Option<String>,
    /// Billing type (default `pay_as_you_go`).
    #[serde(default = "default_billing")]
    pub billing_type: BillingType,
    /// `provider_priority`, lower is preferred (default 100).
    #[serde(default = "default_priority")]
    pub priority: i32,
    /// Active (default true).
    #[serde(default = "yes")]
    pub is_active: bool,
    /// Endpoints, keyed by `api_format`.
    #[serde(default)]
    pub endpoints: Vec<EndpointSpec>,
    /// Models, keyed by `provider_model_name`.
    #[serde(default)]
    pub models: Vec<ModelSpec>,
}

fn default_billing() -> BillingType {
    BillingType::PayAsYouGo
}

/// An endpoint, keyed by its provider and `api_format`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSpec {
    /// `OPENAI` or `CLAUDE`.
    pub api_format: ApiFormat,
    /// OpenAI: ends with the version (`https://api.openai.com/v1`); Claude: the host.
    pub base_url: String,
    /// Extra headers sent upstream.
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    /// Timeout in seconds (default 300).
    #[serde(default = "default_timeout")]
    pub timeout: i32,
    /// Retries (default 1).
    #[serde(default = "default_retries")]
    pub max_retries: i32,
    /// Active (default true).
    #[serde(default = "yes")]
    pub is_active: bool,
    /// Upstream keys, keyed by `name`.
    #[serde(default)]
    pub keys: Vec<ProviderKeySpec>,
}

/// An upstream key, keyed by its endpoint and `name`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderKeySpec {
    /// Name, unique within the endpoint.
    pub name: String,
    /// The secret itself…
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// …or the environment variable holding it.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// List-to-actual cost multiplier (default 1.0).
    #[serde(default = "default_multiplier")]
    pub rate_multiplier: f64,
    /// Lower is tried first (default 50).
    #[serde(default = "default_key_priority")]
    pub internal_priority: i32,
    /// Model names the key may serve (absent: all).
    #[serde(default)]
    pub allowed_models: Option<Vec<String>>,
    /// Active (default true).
    #[serde(default = "yes")]
    pub is_active: bool,
}

/// A provider's model, keyed by its provider and `provider_model_name`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// The global model it implements (by name).
    pub global_model: String,
    /// The name the provider's API expects.
    pub provider_model_name: String,
    /// Alternative upstream names.
    #[serde(default)]
    pub aliases: Option<ModelAliases>,
    /// Own prices (absent: the global model's).
    #[serde(default)]
    pub tiered_pricing: Option<TieredPricing>,
    /// Own per-request price.
    #[serde(default)]
    pub price_per_request: Option<f64>,
    /// Active (default true).
    #[serde(default = "yes")]
    pub is_active: bool,
}

/// A user, keyed by `username`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    /// Unique user name.
    pub username: String,
    /// E-mail (default `{username}@localhost`).
    #[serde(default)]
    pub email: Option<String>,
    /// `admin` or `user` (default `user`).
    #[serde(default = "default_role")]
    pub role: UserRole,
    /// Active (default true).
    #[serde(default = "yes")]
    pub is_active: bool,
    /// Quota in USD (absent: unlimited).
    #[serde(default)]
    pub quota_usd: Option<f64>,
    /// Client keys, keyed by their hash.
    #[serde(default)]
    pub api_keys: Vec<ClientKeySpec>,
}

fn default_role() -> UserRole {
    UserRole::User
}

/// A client key, given as plaintext (`key`) or as its hex SHA-256 (`key_hash`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientKeySpec {
    /// Name.
    pub name: String,
    /// Plaintext (hashed before storing).
    #[serde(default)]
    pub key: Option<Secret>,
    /// Hex SHA-256 of the plaintext.
    #[serde(default)]
    pub key_hash: Option<String>,
    /// RFC 3339 expiry.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// Active (default true).
    #[serde(default = "yes")]
    pub is_active: bool,
}

/// Why a catalogue could not be read or applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The file could not be read.
    #[error("cannot read catalogue file `{path}`: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid catalogue document.
    #[error("catalogue file `{path}` is invalid: {reason}")]
    Parse {
        /// The file.
        path: String,
        /// Parser message (names the field and position).
        reason: String,
    },
    /// A value breaks a rule.
    #[error("catalogue entry {at} is invalid: {reason}")]
    Invalid {
        /// Where, e.g. `providers[0].endpoints[1]`.
        at: String,
        /// What is wrong.
        reason: String,
    },
    /// The database refused the change.
    #[error("applying the catalogue failed: {0}")]
    Database(#[from] DbErr),
}

/// What an apply did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CatalogSummary {
    /// Rows inserted.
    pub created: usize,
    /// Rows updated.
    pub updated: usize,
}

impl CatalogFile {
    /// Reads a `.toml` file as TOML and anything else as JSON.
    pub fn load(path: &Path) -> Result<Self, CatalogError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
            path: shown.clone(),
            source,
        })?;
        let is_toml = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
        if is_toml {
            toml::from_str(&text).map_err(|error| CatalogError::Parse {
                path: shown,
                reason: error.message().to_owned() + &span_of(&text, error.span()),
            })
        } else {
            // The path to the failing field makes the message name it (`users[0].quota_usd`).
            let mut deserializer = serde_json::Deserializer::from_str(&text);
            let file = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
                let at = error.path().to_string();
                CatalogError::Parse {
                    path: shown.clone(),
                    reason: if at == "." {
                        error.into_inner().to_string()
                    } else {
                        format!("{at}: {}", error.into_inner())
                    },
                }
            })?;
            deserializer.end().map_err(|error| CatalogError::Parse {
                path: shown,
                reason: error.to_string(),
            })?;
            Ok(file)
        }
    }
}

fn span_of(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    span.map(|span| {
        let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
        format!(" (line {line})")
    })
    .unwrap_or_default()
}

fn invalid(at: String, reason: impl Into<String>) -> CatalogError {
    CatalogError::Invalid {
        at,
        reason: reason.into(),
    }
}

/// A rule of `admin::validate` broken by a field of the entry at `at`.
fn broken(at: &str) -> impl Fn(Invalid) -> CatalogError + '_ {
    move |error| invalid(format!("{at}.{}", error.field), error.reason)
}

struct Applier<'a, C> {
    conn: &'a C,
    secrets: &'a SecretBox,
    summary: CatalogSummary,
}

/// Applies `file` to the database in one transaction.
pub async fn apply_catalog(
    conn: &DatabaseConnection,
    file: &CatalogFile,
    secrets: &SecretBox,
) -> Result<CatalogSummary, CatalogError> {
    let txn = conn.begin().await?;
    let mut applier = Applier {
        conn: &txn,
        secrets,
        summary: CatalogSummary::default(),
    };
    applier.apply(file).await?;
    let summary = applier.summary;
    txn.commit().await?;
    Ok(summary)
}

impl<C: ConnectionTrait> Applier<'_, C> {
    /// Inserts a new row and counts it.
    async fn create<M, A>(&mut self, model: M) -> Result<M, DbErr>
    where
        M: IntoActiveModel<A>,
        A: ActiveModelTrait + sea_orm::ActiveModelBehavior + Send,
        <A::Entity as EntityTrait>::Model: IntoActiveModel<A> + Into<M>,
    {
        let stored = insert_row(self.conn, model).await?;
        self.summary.created += 1;
        Ok(stored)
    }

    async fn apply(&mut self, file: &CatalogFile) -> Result<(), CatalogError> {
        let mut global_ids: BTreeMap<String, String> = BTreeMap::new();
        for (i, spec) in file.global_models.iter().enumerate() {
            let (name, id) = self
                .global_model(&format!("global_models[{i}]"), spec)
                .await?;
            global_ids.insert(name, id);
        }
        for (i, spec) in file.providers.iter().enumerate() {
            self.provider(&format!("providers[{i}]"), spec, &mut global_ids)
                .await?;
        }
        for (i, spec) in file.users.iter().enumerate() {
            self.user(&format!("users[{i}]"), spec).await?;
        }
        Ok(())
    }

    /// Upserts a global model; returns its (normalised) name and id.
    async fn global_model(
        &mut self,
        at: &str,
        spec: &GlobalModelSpec,
    ) -> Result<(String, String), CatalogError> {
        let name = validate::model_name("name", &spec.name, 100).map_err(broken(at))?;
        let name = name.as_str();
        validate::pricing("default_tiered_pricing", &spec.default_tiered_pricing)
            .map_err(broken(at))?;
        let price_per_request = validate::PRICE_PER_REQUEST
            .check_optional("default_price_per_request", spec.default_price_per_request)
            .map_err(broken(at))?;
        let capabilities =
            validate::capabilities("supported_capabilities", &spec.supported_capabilities)
                .map_err(broken(at))?;
        validate::json("config", &spec.config).map_err(broken(at))?;
        let display_name = match &spec.display_name {
            Some(display) => validate::name("display_name", display, 255).map_err(broken(at))?,
            None => name.to_owned(),
        };
        let now = now_utc();
        let existing = global_models::Entity::find()
            .filter(global_models::Column::Name.eq(name))
            .one(self.conn)
            .await?;
        let id = match existing {
            Some(row) => {
                let id = row.id.clone();
                let mut active = row.into_active_model();
                active.display_name = Set(display_name);
                active.default_tiered_pricing = Set(spec.default_tiered_pricing.clone());
                active.default_price_per_request = Set(price_per_request);
                active.supported_capabilities = Set(capabilities);
                active.config = Set(spec.config.clone());
                active.is_active = Set(spec.is_active);
                active.updated_at = Set(now);
                active.update(self.conn).await?;
                self.summary.updated += 1;
                id
            }
            None => {
                let row = global_models::Model {
                    id: new_id(),
                    name: name.to_owned(),
                    display_name,
                    default_price_per_request: price_per_request,
                    default_tiered_pricing: spec.default_tiered_pricing.clone(),
                    supported_capabilities: capabilities,
                    config: spec.config.clone(),
                    is_active: spec.is_active,
                    usage_count: 0,
                    created_at: now,
                    updated_at: now,
                };
                let id = row.id.clone();
                self.create(row).await?;
                id
            }
        };
        Ok((name.to_owned(), id))
    }

    async fn global_id(
        &self,
        at: &str,
        name: &str,
        known: &mut BTreeMap<String, String>,
    ) -> Result<String, CatalogError> {
        let name = validate::model_name("global_model", name, 100).map_err(broken(at))?;
        let name = name.as_str();
        if let Some(id) = known.get(name) {
            return Ok(id.clone());
        }
        let row = global_models::Entity::find()
            .filter(global_models::Column::Name.eq(name))
            .one(self.conn)
            .await?
            .ok_or_else(|| invalid(at.to_owned(), format!("unknown global model `{name}`")))?;
        known.insert(name.to_owned(), row.id.clone());
        Ok(row.id)
    }

    async fn provider(
        &mut self,
        at: &str,
        spec: &ProviderSpec,
        global_ids: &mut BTreeMap<String, String>,
    ) -> Result<(), CatalogError> {
        let name = validate::name("name", &spec.name, 100).map_err(broken(at))?;
        let name = name.as_str();
        let priority = validate::PRIORITY
            .check("priority", spec.priority)
            .map_err(broken(at))?;
        let display_name = match &spec.display_name {
            Some(display) => validate::name("display_name", display, 255).map_err(broken(at))?,
            None => name.to_owned(),
        };
        let now = now_utc();
        let existing = providers::Entity::find()
            .filter(providers::Column::Name.eq(name))
            .one(self.conn)
            .await?;
        let provider_id = match existing {
            Some(row) => {
                let id = row.id.clone();
                let mut active = row.into_active_model();
                active.display_name = Set(display_name);
                active.billing_type = Set(spec.billing_type);
                active.provider_priority = Set(priority);
                active.is_active = Set(spec.is_active);
                active.updated_at = Set(now);
                active.update(self.conn).await?;
                self.summary.updated += 1;
                id
            }
            None => {
                let row = providers::Model {
                    id: new_id(),
                    name: name.to_owned(),
                    display_name,
                    billing_type: spec.billing_type,
                    provider_priority: priority,
                    is_active: spec.is_active,
                    config: None,
                    created_at: now,
                    updated_at: now,
                };
                let id = row.id.clone();
                self.create(row).await?;
                id
            }
        };
        for (i, endpoint) in spec.endpoints.iter().enumerate() {
            self.endpoint(&format!("{at}.endpoints[{i}]"), &provider_id, endpoint)
                .await?;
        }
        for (i, model) in spec.models.iter().enumerate() {
            let at = format!("{at}.models[{i}]");
            let global_id = self.global_id(&at, &model.global_model, global_ids).await?;
            self.model(&at, &provider_id, &global_id, model).await?;
        }
        Ok(())
    }

    async fn endpoint(
        &mut self,
        at: &str,
        provider_id: &str,
        spec: &EndpointSpec,
    ) -> Result<(), CatalogError> {
        let base_url = validate::base_url("base_url", &spec.base_url).map_err(broken(at))?;
        let base_url = base_url.as_str();
        let timeout = validate::TIMEOUT_SECS
            .check("timeout", spec.timeout)
            .map_err(broken(at))?;
        let max_retries = validate::MAX_RETRIES
            .check("max_retries", spec.max_retries)
            .map_err(broken(at))?;
        if let Some(headers) = &spec.headers {
            validate::headers("headers", headers).map_err(broken(at))?;
        }
        let now = now_utc();
        let headers = spec.headers.clone().map(Headers);
        let existing = provider_endpoints::Entity::find()
            .filter(provider_endpoints::Column::ProviderId.eq(provider_id))
            .filter(provider_endpoints::Column::ApiFormat.eq(spec.api_format))
            .one(self.conn)
            .await?;
        let endpoint_id = match existing {
            Some(row) => {
                let id = row.id.clone();
                let mut active = row.into_active_model();
                active.base_url = Set(base_url.to_owned());
                active.headers = Set(headers);
                active.timeout = Set(timeout);
                active.max_retries = Set(max_retries);
                active.is_active = Set(spec.is_active);
                active.updated_at = Set(now);
                active.update(self.conn).await?;
                self.summary.updated += 1;
                id
            }
            None => {
                let row = provider_endpoints::Model {
                    id: new_id(),
                    provider_id: provider_id.to_owned(),
                    api_format: spec.api_format,
                    base_url: base_url.to_owned(),
                    headers,
                    timeout,
                    max_retries,
                    is_active: spec.is_active,
                    created_at: now,
                    updated_at: now,
                };
                let id = row.id.clone();
                self.create(row).await?;
                id
            }
        };
        for (i, key) in spec.keys.iter().enumerate() {
            self.provider_key(&format!("{at}.keys[{i}]"), &endpoint_id, key)
                .await?;
        }
        Ok(())
    }

    async fn provider_key(
        &mut self,
        at: &str,
        endpoint_id: &str,
        spec: &ProviderKeySpec,
    ) -> Result<(), CatalogError> {
        let name = validate::name("name", &spec.name, 255).map_err(broken(at))?;
        let plaintext = match (&spec.api_key, &spec.api_key_env) {
            (Some(secret), None) => secret.expose().to_owned(),
            (None, Some(var)) if !is_env_name(var) => {
                return Err(invalid(
                    format!("{at}.api_key_env"),
                    format!(
                        "`{}` is not an environment variable name",
                        validate::shown(var)
                    ),
                ));
            }
            (None, Some(var)) => std::env::var(var).map_err(|_| {
                invalid(
                    format!("{at}.api_key_env"),
                    format!("environment variable `{var}` is not set"),
                )
            })?,
            _ => {
                return Err(invalid(
                    at.to_owned(),
                    format!("key `{name}` needs exactly one of api_key and api_key_env"),
                ));
            }
        };
        let field = if spec.api_key.is_some() {
            "api_key"
        } else {
            "api_key_env"
        };
        let plaintext = validate::secret(field, &plaintext).map_err(broken(at))?;
        let rate_multiplier = validate::RATE_MULTIPLIER
            .check("rate_multiplier", spec.rate_multiplier)
            .map_err(broken(at))?;
        let internal_priority = validate::PRIORITY
            .check("internal_priority", spec.internal_priority)
            .map_err(broken(at))?;
        let allowed = spec
            .allowed_models
            .as_deref()
            .map(|models| validate::allowed_models("allowed_models", models))
            .transpose()
            .map_err(broken(at))?;
        let secret = self.secrets.seal(plaintext);
        let now = now_utc();
        let existing = provider_api_keys::Entity::find()
            .filter(provider_api_keys::Column::EndpointId.eq(endpoint_id))
            .filter(provider_api_keys::Column::Name.eq(name.as_str()))
            .one(self.conn)
            .await?;
        match existing {
            Some(row) => {
                let mut active = row.into_active_model();
                active.api_key = Set(secret);
                active.rate_multiplier = Set(rate_multiplier);
                active.internal_priority = Set(internal_priority);
                active.allowed_models = Set(allowed);
                active.is_active = Set(spec.is_active);
                active.updated_at = Set(now);
                active.update(self.conn).await?;
                self.summary.updated += 1;
            }
            None => {
                self.create(provider_api_keys::Model {
                    id: new_id(),
                    endpoint_id: endpoint_id.to_owned(),
                    api_key: secret,
                    name,
                    rate_multiplier,
                    internal_priority,
                    allowed_models: allowed,
                    is_active: spec.is_active,
                    created_at: now,
                    updated_at: now,
                })
                .await?;
            }
        }
        Ok(())
    }

    async fn model(
        &mut self,
        at: &str,
        provider_id: &str,
        global_id: &str,
        spec: &ModelSpec,
    ) -> Result<(), CatalogError> {
        let name = validate::model_name("provider_model_name", &spec.provider_model_name, 200)
            .map_err(broken(at))?;
        let name = name.as_str();
        if let Some(pricing) = &spec.tiered_pricing {
            validate::pricing("tiered_pricing", pricing).map_err(broken(at))?;
        }
        let price_per_request = validate::PRICE_PER_REQUEST
            .check_optional("price_per_request", spec.price_per_request)
            .map_err(broken(at))?;
        let aliases = spec
            .aliases
            .clone()
            .map(|aliases| validate::aliases("aliases", aliases.0))
            .transpose()
            .map_err(broken(at))?;
        let now = now_utc();
        let existing = models::Entity::find()
            .filter(models::Column::ProviderId.eq(provider_id))
            .filter(models::Column::ProviderModelName.eq(name))
            .one(self.conn)
            .await?;
        match existing {
            Some(row) => {
                let mut active = row.into_active_model();
                active.global_model_id = Set(global_id.to_owned());
                active.provider_model_aliases = Set(aliases);
                active.tiered_pricing = Set(spec.tiered_pricing.clone());
                active.price_per_request = Set(price_per_request);
                active.is_active = Set(spec.is_active);
                active.updated_at = Set(now);
                active.update(self.conn).await?;
                self.summary.updated += 1;
            }
            None => {
                self.create(models::Model {
                    id: new_id(),
                    provider_id: provider_id.to_owned(),
                    global_model_id: global_id.to_owned(),
                    provider_model_name: name.to_owned(),
                    provider_model_aliases: aliases,
                    price_per_request,
                    tiered_pricing: spec.tiered_pricing.clone(),
                    supports_vision: None,
                    supports_function_calling: None,
                    supports_streaming: None,
                    supports_extended_thinking: None,
                    supports_image_generation: None,
                    is_active: spec.is_active,
                    is_available: true,
                    config: None,
                    created_at: now,
                    updated_at: now,
                })
                .await?;
            }
        }
        Ok(())
    }

    async fn user(&mut self, at: &str, spec: &UserSpec) -> Result<(), CatalogError> {
        let username = validate::name("username", &spec.username, 100).map_err(broken(at))?;
        let username = username.as_str();
        // The default address only has to fit its column: the username already does.
        let email = match &spec.email {
            Some(email) => validate::email("email", email).map_err(broken(at))?,
            None => format!("{username}@localhost"),
        };
        let quota_usd = validate::USER_USD
            .check_optional("quota_usd", spec.quota_usd)
            .map_err(broken(at))?;
        let now = now_utc();
        let existing = users::Entity::find()
            .filter(users::Column::Username.eq(username))
            .one(self.conn)
            .await?;
        let user_id = match existing {
            Some(row) => {
                let id = row.id.clone();
                let mut active = row.into_active_model();
                active.email = Set(email);
                active.role = Set(spec.role);
                active.is_active = Set(spec.is_active);
                active.quota_usd = Set(quota_usd);
                active.updated_at = Set(now);
                active.update(self.conn).await?;
                self.summary.updated += 1;
                id
            }
            None => {
                let row = new_user(username, &email, spec.role, spec.is_active, quota_usd);
                let id = row.id.clone();
                self.create(row).await?;
                id
            }
        };
        for (i, key) in spec.api_keys.iter().enumerate() {
            self.client_key(&format!("{at}.api_keys[{i}]"), &user_id, key)
                .await?;
        }
        Ok(())
    }

    async fn client_key(
        &mut self,
        at: &str,
        user_id: &str,
        spec: &ClientKeySpec,
    ) -> Result<(), CatalogError> {
        let name = validate::name("name", &spec.name, 255).map_err(broken(at))?;
        let hash = match (&spec.key, &spec.key_hash) {
            (Some(key), None) if !key.expose().trim().is_empty() => {
                hash_client_key(key.expose().trim())
            }
            (None, Some(hash)) => {
                let hash = hash.trim().to_ascii_lowercase();
                if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(invalid(
                        format!("{at}.key_hash"),
                        format!(
                            "`{}` is not a hex SHA-256 (64 hex digits)",
                            validate::shown(&hash)
                        ),
                    ));
                }
                hash
            }
            _ => {
                return Err(invalid(
                    at.to_owned(),
                    format!("client key `{name}` needs exactly one of key and key_hash"),
                ));
            }
        };
        let expires_at = spec
            .expires_at
            .as_deref()
            .map(|raw| {
                time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
                    .map(tollgate_entities::truncate_to_micros)
                    .map_err(|e| {
                        invalid(
                            format!("{at}.expires_at"),
                            format!("`{}` is not RFC 3339: {e}", validate::shown(raw)),
                        )
                    })
            })
            .transpose()?;
        upsert_client_key(self.conn, user_id, &name, &hash, spec.is_active, expires_at).await?;
        self.summary.updated += 1;
        Ok(())
    }
}

/// Whether `name` can name an environment variable: not empty, no `=` and no control
/// characters (NUL included), so the look-up itself cannot fail or panic.
fn is_env_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('=') && !name.chars().any(char::is_control)
}

/// A new `users` row.
pub(crate) fn new_user(
    username: &str,
    email: &str,
    role: UserRole,
    is_active: bool,
    quota_usd: Option<f64>,
) -> users::Model {
    let now = now_utc();
    users::Model {
        id: new_id(),
        email: email.to_owned(),
        username: username.to_owned(),
        role,
        is_active,
        quota_usd,
        used_usd: 0.0,
        total_usd: 0.0,
        created_at: now,
        updated_at: now,
    }
}

/// Inserts the client key with `hash`, or updates its owner, name, state and expiry.
pub(crate) async fn upsert_client_key<C: ConnectionTrait>(
    conn: &C,
    user_id: &str,
    name: &str,
    hash: &str,
    is_active: bool,
    expires_at: Option<time::OffsetDateTime>,
) -> Result<(), DbErr> {
    let now = now_utc();
    let existing = api_keys::Entity::find()
        .filter(api_keys::Column::KeyHash.eq(hash))
        .one(conn)
        .await?;
    match existing {
        Some(row) => {
            let mut active = row.into_active_model();
            active.user_id = Set(user_id.to_owned());
            active.name = Set(name.to_owned());
            active.is_active = Set(is_active);
            active.expires_at = Set(expires_at);
            active.updated_at = Set(now);
            active.update(conn).await?;
        }
        None => {
            insert_row(
                conn,
                api_keys::Model {
                    id: new_id(),
                    user_id: user_id.to_owned(),
                    key_hash: hash.to_owned(),
                    name: name.to_owned(),
                    is_active,
                    expires_at,
                    total_requests: 0,
                    total_cost_usd: 0.0,
                    last_used_at: None,
                    created_at: now,
                    updated_at: now,
                },
            )
            .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::CatalogFile;

    #[test]
    fn toml_and_json_read_the_same_shape() {
        let toml_text = r#"
            [[global_models]]
            name = "gpt-4o"
            default_tiered_pricing = { tiers = [{ input_price_per_1m = 2.5, output_price_per_1m = 10.0 }] }

            [[providers]]
            name = "openai"
            priority = 10
            [[providers.endpoints]]
            api_format = "OPENAI"
            base_url = "https://api.openai.com/v1"
            [[providers.endpoints.keys]]
            name = "main"
            api_key_env = "OPENAI_API_KEY"
            [[providers.models]]
            global_model = "gpt-4o"
            provider_model_name = "gpt-4o-2024-08-06"

            [[users]]
            username = "alice"
            [[users.api_keys]]
            name = "laptop"
            key = "tg-alice"
        "#;
        let file: CatalogFile = toml::from_str(toml_text).unwrap();
        assert_eq!(file.providers[0].endpoints[0].keys[0].name, "main");
        assert_eq!(
            file.users[0].api_keys[0].key.as_ref().unwrap().expose(),
            "tg-alice"
        );
        let json: CatalogFile = serde_json::from_str(
            r#"{"providers": [{"name": "p", "endpoints": [{"api_format": "CLAUDE", "base_url": "https://api.anthropic.com"}]}]}"#,
        )
        .unwrap();
        assert_eq!(json.providers[0].priority, 100);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let error =
            serde_json::from_str::<CatalogFile>(r#"{"providers": [{"name": "p", "prority": 1}]}"#)
                .unwrap_err()
                .to_string();
        assert!(error.contains("prority"), "{error}");
    }

    #[test]
    fn debug_never_prints_secrets() {
        let file: CatalogFile = serde_json::from_str(
            r#"{"providers": [{"name": "p", "endpoints": [{"api_format": "OPENAI", "base_url": "http://x/v1",
                "keys": [{"name": "k", "api_key": "sk-very-secret"}]}]}]}"#,
        )
        .unwrap();
        assert!(!format!("{file:?}").contains("sk-very-secret"));
    }
}
