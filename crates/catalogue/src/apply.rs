//! Applying a catalogue document: every entry goes through the write path of
//! [`crate::write`] as a [`Target::Named`] upsert (the row with its name is updated, or one is
//! inserted), all in one transaction. An error names the entry and the field as the document
//! spells them.

use std::collections::BTreeMap;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use serde::Serialize;
use tollgate_entities::global_models;

use crate::document::{
    CatalogFile, ClientKeySpec, EndpointSpec, GlobalModelSpec, ModelSpec, ProviderKeySpec,
    ProviderSpec, UserSpec,
};
use crate::error::CatalogError;
use crate::keys::hash_client_key;
use crate::rules::{self, Invalid};
use crate::secret::Secret;
use crate::secret_box::SecretBox;
use crate::write::{
    ClientKeyFields, EndpointFields, Fields, GlobalModelFields, ModelFields, ProviderFields,
    ProviderKeyFields, Target, UserFields,
};

/// What an apply did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CatalogSummary {
    /// Rows inserted.
    pub created: usize,
    /// Rows updated.
    pub updated: usize,
}

/// Applies `file` to the database in one transaction. Nothing cached is invalidated: a
/// document can touch any row, so the caller drops every cached model entry once this
/// returns (the admin import and the gateway's start both flush).
pub async fn apply_catalog(
    conn: &DatabaseConnection,
    file: &CatalogFile,
    secrets: &SecretBox,
) -> Result<CatalogSummary, CatalogError> {
    // On SQLite the transaction takes the write lock at BEGIN (waiting its turn behind the
    // usage writer and the closing loop): a deferred one reads first, and its first write
    // then fails at once with "database is locked" when another connection committed in
    // between. PostgreSQL ignores the mode.
    let options = TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    };
    let txn = conn.begin_with_options(options).await?;
    let mut applier = Applier {
        conn: &txn,
        secrets,
        summary: CatalogSummary::default(),
    };
    if let Err(error) = applier.apply(file).await {
        // Roll back now rather than when the dropped transaction gets to it: until then the
        // connection keeps SQLite's write lock, and the caller's next write could find the
        // database locked.
        txn.rollback().await?;
        return Err(error);
    }
    let summary = applier.summary;
    txn.commit().await?;
    Ok(summary)
}

/// Names the entry at `at` in an error of its write: a field becomes `{at}.{field}`, spelled
/// as the document spells it (`spelled` maps the write's field names that differ), and a
/// conflict names the entry.
fn entry<'a>(at: &'a str, spelled: &'a [(&str, &str)]) -> impl Fn(CatalogError) -> CatalogError {
    move |error| match error {
        CatalogError::Invalid { at: field, reason } => {
            let field = spelled
                .iter()
                .find_map(|(written, document)| {
                    let rest = field.strip_prefix(written)?;
                    (rest.is_empty() || rest.starts_with(['.', '[']))
                        .then(|| format!("{document}{rest}"))
                })
                .unwrap_or(field);
            CatalogError::Invalid {
                at: if field.is_empty() {
                    at.to_owned()
                } else {
                    format!("{at}.{field}")
                },
                reason,
            }
        }
        CatalogError::Conflict(reason) => {
            CatalogError::Conflict(format!("catalogue entry {at}: {reason}"))
        }
        other => other,
    }
}

/// Field names the write and the document spell differently: (the write's, the document's).
type Spelled = [(&'static str, &'static str)];

/// A rule broken by a field of the entry at `at`, checked by the document itself.
fn broken(at: &str) -> impl Fn(Invalid) -> CatalogError {
    move |error| entry(at, &[])(error.into())
}

fn invalid(at: String, reason: impl Into<String>) -> CatalogError {
    CatalogError::Invalid {
        at,
        reason: reason.into(),
    }
}

/// Whether `name` can name an environment variable: not empty, no `=` and no control
/// characters (NUL included), so the look-up itself cannot fail or panic.
fn is_env_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('=') && !name.chars().any(char::is_control)
}

struct Applier<'a, C> {
    conn: &'a C,
    secrets: &'a SecretBox,
    summary: CatalogSummary,
}

impl<C: ConnectionTrait> Applier<'_, C> {
    /// Upserts `fields` as the entry at `at` (named by `spelled` as in [`entry`]) inside the
    /// transaction, counts the write and hands out its row.
    async fn upsert<F: Fields>(
        &mut self,
        at: &str,
        spelled: &[(&str, &str)],
        parent: F::Parent,
        fields: F,
    ) -> Result<F::Row, CatalogError> {
        let written = fields
            .upsert(self.conn, self.secrets, Target::Named(parent))
            .await
            .map_err(entry(at, spelled))?;
        let (row, created) = written.skip_invalidation();
        if created {
            self.summary.created += 1;
        } else {
            self.summary.updated += 1;
        }
        Ok(row)
    }

    async fn apply(&mut self, file: &CatalogFile) -> Result<(), CatalogError> {
        let mut global_ids: BTreeMap<String, String> = BTreeMap::new();
        for (at, spec) in entries("global_models", &file.global_models) {
            let row = self.upsert(&at, &[], (), spec.fields()).await?;
            global_ids.insert(row.name, row.id);
        }
        for (at, spec) in entries("providers", &file.providers) {
            self.provider(&at, spec, &mut global_ids).await?;
        }
        for (at, spec) in entries("users", &file.users) {
            let user = self.upsert(&at, &[], (), spec.fields()).await?;
            for (at, key) in entries(&format!("{at}.api_keys"), &spec.api_keys) {
                let fields = key.fields(&at)?;
                self.upsert(&at, &[], user.id.clone(), fields).await?;
            }
        }
        Ok(())
    }

    /// The id of the global model named `name` (in the document or stored).
    async fn global_id(
        &self,
        at: &str,
        name: &str,
        known: &mut BTreeMap<String, String>,
    ) -> Result<String, CatalogError> {
        let name = rules::model_name("global_model", name, 100).map_err(broken(at))?;
        if let Some(id) = known.get(name.as_str()) {
            return Ok(id.clone());
        }
        let row = global_models::Entity::find()
            .filter(global_models::Column::Name.eq(name.as_str()))
            .one(self.conn)
            .await?
            .ok_or_else(|| invalid(at.to_owned(), format!("unknown global model `{name}`")))?;
        known.insert(name, row.id.clone());
        Ok(row.id)
    }

    /// A provider with its endpoints (each with its upstream keys) and its models.
    async fn provider(
        &mut self,
        at: &str,
        spec: &ProviderSpec,
        global_ids: &mut BTreeMap<String, String>,
    ) -> Result<(), CatalogError> {
        let spelled = [("provider_priority", "priority")];
        let provider = self.upsert(at, &spelled, (), spec.fields()).await?;
        for (at, endpoint) in entries(&format!("{at}.endpoints"), &spec.endpoints) {
            let parent = (provider.id.clone(), endpoint.api_format);
            let stored = self.upsert(&at, &[], parent, endpoint.fields()).await?;
            for (at, key) in entries(&format!("{at}.keys"), &endpoint.keys) {
                let (fields, spelled) = key.fields(&at)?;
                self.upsert(&at, spelled, stored.id.clone(), fields).await?;
            }
        }
        for (at, model) in entries(&format!("{at}.models"), &spec.models) {
            let global_id = self.global_id(&at, &model.global_model, global_ids).await?;
            let spelled = [("provider_model_aliases", "aliases")];
            let fields = model.fields(global_id);
            self.upsert(&at, &spelled, provider.id.clone(), fields)
                .await?;
        }
        Ok(())
    }
}

/// The entries of the document's list at `list`, each with where it stands (`{list}[i]`).
fn entries<'a, T>(list: &'a str, items: &'a [T]) -> impl Iterator<Item = (String, &'a T)> {
    items
        .iter()
        .enumerate()
        .map(move |(i, item)| (format!("{list}[{i}]"), item))
}

/// The display name of an entry named `name`: the document's, or else the name itself.
fn displayed(name: &str, display_name: Option<&String>) -> String {
    display_name.map_or_else(|| name.to_owned(), Clone::clone)
}

/// Each entry of the document writes every field the document has, so applying it again
/// changes nothing and a value taken out of it returns to its default; fields the document
/// does not have (a provider's `config`, a model's capability flags) keep their value.
impl GlobalModelSpec {
    fn fields(&self) -> GlobalModelFields {
        GlobalModelFields {
            name: Some(self.name.clone()),
            display_name: Some(displayed(&self.name, self.display_name.as_ref())),
            default_tiered_pricing: Some(self.default_tiered_pricing.clone()),
            default_price_per_request: Some(self.default_price_per_request),
            supported_capabilities: Some(self.supported_capabilities.clone()),
            config: Some(self.config.clone()),
            is_active: Some(self.is_active),
        }
    }
}

impl ProviderSpec {
    fn fields(&self) -> ProviderFields {
        ProviderFields {
            name: Some(self.name.clone()),
            display_name: Some(displayed(&self.name, self.display_name.as_ref())),
            billing_type: Some(self.billing_type),
            provider_priority: Some(self.priority),
            is_active: Some(self.is_active),
            config: None,
        }
    }
}

impl EndpointSpec {
    fn fields(&self) -> EndpointFields {
        EndpointFields {
            base_url: Some(self.base_url.clone()),
            headers: Some(self.headers.clone().map(tollgate_entities::Headers)),
            timeout: Some(self.timeout),
            max_retries: Some(self.max_retries),
            is_active: Some(self.is_active),
        }
    }
}

impl ProviderKeySpec {
    /// The key's fields (the entry at `at`), its secret read from the document or from the
    /// environment variable it names, with how the document spells the secret's field.
    fn fields(&self, at: &str) -> Result<(ProviderKeyFields, &'static Spelled), CatalogError> {
        let name = rules::name("name", &self.name, 255).map_err(broken(at))?;
        let (plaintext, spelled) = match (&self.api_key, &self.api_key_env) {
            (Some(secret), None) => (secret.clone(), &[][..]),
            (None, Some(var)) if !is_env_name(var) => {
                return Err(invalid(
                    format!("{at}.api_key_env"),
                    format!(
                        "`{}` is not an environment variable name",
                        rules::shown(var)
                    ),
                ));
            }
            (None, Some(var)) => match std::env::var(var) {
                Ok(value) => (Secret::new(value), &[("api_key", "api_key_env")][..]),
                Err(_) => {
                    return Err(invalid(
                        format!("{at}.api_key_env"),
                        format!("environment variable `{var}` is not set"),
                    ));
                }
            },
            _ => {
                return Err(invalid(
                    at.to_owned(),
                    format!("key `{name}` needs exactly one of api_key and api_key_env"),
                ));
            }
        };
        let fields = ProviderKeyFields {
            api_key: Some(plaintext),
            name: Some(self.name.clone()),
            rate_multiplier: Some(self.rate_multiplier),
            internal_priority: Some(self.internal_priority),
            allowed_models: Some(self.allowed_models.clone()),
            is_active: Some(self.is_active),
        };
        Ok((fields, spelled))
    }
}

impl ModelSpec {
    fn fields(&self, global_model_id: String) -> ModelFields {
        ModelFields {
            global_model_id: Some(global_model_id),
            provider_model_name: Some(self.provider_model_name.clone()),
            provider_model_aliases: Some(self.aliases.clone().map(|aliases| aliases.0)),
            price_per_request: Some(self.price_per_request),
            tiered_pricing: Some(self.tiered_pricing.clone()),
            is_active: Some(self.is_active),
            ..ModelFields::default()
        }
    }
}

impl UserSpec {
    fn fields(&self) -> UserFields {
        UserFields {
            username: Some(self.username.clone()),
            // The default address follows the name; it obeys the e-mail rule like any other.
            email: Some(
                self.email
                    .clone()
                    .unwrap_or_else(|| format!("{}@localhost", self.username.trim())),
            ),
            role: Some(self.role),
            is_active: Some(self.is_active),
            quota_usd: Some(self.quota_usd),
            used_usd: None,
        }
    }
}

impl ClientKeySpec {
    /// The key's fields (the entry at `at`): its hash given, or made from its plaintext, and
    /// its expiry read as RFC 3339.
    fn fields(&self, at: &str) -> Result<ClientKeyFields, CatalogError> {
        let name = rules::name("name", &self.name, 255).map_err(broken(at))?;
        let key_hash = match (&self.key, &self.key_hash) {
            (Some(key), None) if !key.expose().trim().is_empty() => {
                hash_client_key(key.expose().trim())
            }
            (None, Some(hash)) => hash.clone(),
            _ => {
                return Err(invalid(
                    at.to_owned(),
                    format!("client key `{name}` needs exactly one of key and key_hash"),
                ));
            }
        };
        let expires_at = self
            .expires_at
            .as_deref()
            .map(|raw| {
                time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
                    .map_err(|e| {
                        invalid(
                            format!("{at}.expires_at"),
                            format!("`{}` is not RFC 3339: {e}", rules::shown(raw)),
                        )
                    })
            })
            .transpose()?;
        Ok(ClientKeyFields {
            name: Some(self.name.clone()),
            key_hash: Some(key_hash),
            is_active: Some(self.is_active),
            expires_at: Some(expires_at),
        })
    }
}
