//! The catalogue document (`--catalog FILE`, JSON or TOML, and the admin API's catalogue
//! import and export): providers with their endpoints, upstream keys and models, global
//! models, users and client keys. One definition serves both directions: import deserialises
//! it, export serialises it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tollgate_entities::{
    ApiFormat, BillingType, GlobalModelConfig, ModelAliases, TieredPricing, UserRole,
};

use crate::error::CatalogError;
use crate::secret::Secret;

/// A catalogue document: what `--catalog FILE` and `PUT /api/admin/catalog` read and
/// `GET /api/admin/catalog` writes ([`crate::export_catalog`]). Serialising one never writes a
/// secret: upstream keys' `api_key` and client keys' `key` are read, never written.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderKeySpec {
    /// Name, unique within the endpoint.
    pub name: String,
    /// The secret itself (read, never written)…
    #[serde(default, skip_serializing)]
    pub api_key: Option<Secret>,
    /// …or the environment variable holding it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientKeySpec {
    /// Name.
    pub name: String,
    /// Plaintext (hashed before storing; read, never written).
    #[serde(default, skip_serializing)]
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
    fn serialising_writes_no_secret_and_reads_back_the_same() {
        let text = r#"{"providers": [{"name": "p", "endpoints": [{"api_format": "OPENAI", "base_url": "http://x/v1",
            "keys": [{"name": "k", "api_key": "sk-very-secret"}]}]}],
            "users": [{"username": "u", "api_keys": [{"name": "c", "key": "tg-plain"}]}]}"#;
        let file: CatalogFile = serde_json::from_str(text).unwrap();
        let written = serde_json::to_string(&file).unwrap();
        assert!(
            !written.contains("sk-very-secret") && !written.contains("tg-plain"),
            "{written}"
        );
        let again: CatalogFile = serde_json::from_str(&written).unwrap();
        assert_eq!(serde_json::to_string(&again).unwrap(), written);
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
