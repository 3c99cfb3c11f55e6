//! Client-key authentication (behaviour.md 4 step 1): SHA-256 of the presented key against
//! `api_keys.key_hash`, with the key and its owner cached briefly in the shared cache.

use std::time::Duration;

use axum::http::HeaderMap;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use tollgate_cache::{Cache, CacheKey};
use tollgate_entities::{ApiFormat, UserRole, api_keys, users};

use tollgate_catalogue::hash_client_key;

use crate::error::{ApiError, ErrorCode};

/// Longest life of a cached client key: a deactivated key stops working within this time on
/// every replica even without an invalidation.
const KEY_TTL: Duration = Duration::from_secs(30);
/// Longest life of a cached unknown key, so a key created elsewhere works within seconds.
const UNKNOWN_KEY_TTL: Duration = Duration::from_secs(5);

tollgate_cache::string_key! {
    /// `client_key:hash:{sha256}`: a client key and its owner, by the key's hash.
    pub(crate) struct ClientKeyByHash(pub(crate) String);
    family = "client_key", prefix = "client_key:hash:";
}

impl CacheKey for ClientKeyByHash {
    type Value = ClientIdentity;

    fn ttl(config: &tollgate_cache::Config) -> Duration {
        config.ttl.min(KEY_TTL)
    }

    fn negative_ttl(config: &tollgate_cache::Config) -> Duration {
        config.negative_ttl.min(UNKNOWN_KEY_TTL)
    }
}

/// What authentication needs to know about a client key; plain data, safe to cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ClientIdentity {
    /// `api_keys.id`.
    pub(crate) key_id: String,
    /// The owner's `users.id`.
    pub(crate) user_id: String,
    /// The owner's role.
    pub(crate) role: UserRole,
    key_active: bool,
    user_active: bool,
    /// Expiry as a Unix timestamp, checked at every request (not at caching time).
    expires_at_unix: Option<i64>,
    /// The owner's `quota_usd` (`None`: unlimited).
    pub(crate) quota_usd: Option<f64>,
    /// The owner's `used_usd` when this was read from the database.
    pub(crate) used_usd: f64,
    /// When this was read from the database (Unix seconds, taken before the query).
    pub(crate) loaded_at_unix: i64,
}

/// The presented key: `Authorization: Bearer` first for OpenAI, `x-api-key` first for
/// Claude, the other one as a fallback (SDKs of both families use both).
fn presented_key(format: ApiFormat, headers: &HeaderMap) -> Option<&str> {
    let bearer = || {
        headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|k| !k.is_empty())
    };
    let x_api_key = || {
        headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|k| !k.is_empty())
    };
    match format {
        ApiFormat::OpenAi => bearer().or_else(x_api_key),
        ApiFormat::Claude => x_api_key().or_else(bearer),
    }
}

async fn load(conn: &DatabaseConnection, hash: &str) -> Result<Option<ClientIdentity>, DbErr> {
    let loaded_at_unix = time::OffsetDateTime::now_utc().unix_timestamp();
    let found = api_keys::Entity::find()
        .filter(api_keys::Column::KeyHash.eq(hash))
        .find_also_related(users::Entity)
        .one(conn)
        .await?;
    Ok(found.and_then(|(key, user)| {
        let user = user?;
        Some(ClientIdentity {
            key_id: key.id,
            user_id: user.id,
            role: user.role,
            key_active: key.is_active,
            user_active: user.is_active,
            expires_at_unix: key.expires_at.map(time::OffsetDateTime::unix_timestamp),
            quota_usd: user.quota_usd,
            used_usd: user.used_usd,
            loaded_at_unix,
        })
    }))
}

/// Authenticates a request; errors are 401 in the endpoint's shape (503 when the database
/// cannot answer).
pub(crate) async fn authenticate(
    conn: &DatabaseConnection,
    cache: &Cache,
    format: ApiFormat,
    headers: &HeaderMap,
) -> Result<ClientIdentity, ApiError> {
    let unauthorized = |message: &str| ApiError::new(ErrorCode::InvalidApiKey, format, message);
    let Some(key) = presented_key(format, headers) else {
        return Err(unauthorized(match format {
            ApiFormat::OpenAi => "missing client key: send `Authorization: Bearer <key>`",
            ApiFormat::Claude => "missing client key: send `x-api-key: <key>`",
        }));
    };
    let hash = hash_client_key(key);
    let lookup = cache
        .get_or_load(&ClientKeyByHash(hash.clone()), || load(conn, &hash))
        .await
        .map_err(|error| {
            tracing::error!(%error, "client key look-up failed");
            ApiError::new(
                ErrorCode::ServiceUnavailable,
                format,
                "database unavailable",
            )
        })?;
    let Some(identity) = lookup.entry.found() else {
        return Err(unauthorized("invalid client key"));
    };
    if !identity.key_active {
        return Err(unauthorized("client key is inactive"));
    }
    if !identity.user_active {
        return Err(unauthorized("the client key's user is inactive"));
    }
    if identity
        .expires_at_unix
        .is_some_and(|at| at <= time::OffsetDateTime::now_utc().unix_timestamp())
    {
        return Err(unauthorized("client key has expired"));
    }
    Ok(identity)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderMap;
    use tollgate_entities::ApiFormat;

    use super::presented_key;

    #[test]
    fn key_header_follows_the_format() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer one".parse().unwrap());
        headers.insert("x-api-key", "two".parse().unwrap());
        assert_eq!(presented_key(ApiFormat::OpenAi, &headers), Some("one"));
        assert_eq!(presented_key(ApiFormat::Claude, &headers), Some("two"));
        assert_eq!(presented_key(ApiFormat::OpenAi, &HeaderMap::new()), None);
    }
}
