//! Users and their client keys. Plaintext keys are shown once, at creation; cached key
//! look-ups are invalidated when a user is deactivated, demoted or deleted.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder,
};
use serde::{Deserialize, Serialize};
use tollgate_entities::insert_row;
use tollgate_entities::{UserRole, api_keys, new_id, now_utc, users};

use super::extract::{Admin, AdminId, AdminJson, nullable};
use super::{AdminError, ensure_unique, find_or_404};
use crate::app::AppState;
use crate::auth::ClientKeyByHash;
use tollgate_catalogue::generate_client_key;
use tollgate_catalogue::hash_client_key;
use tollgate_catalogue::rules as validate;

fn default_true() -> bool {
    true
}

/// `POST /api/admin/users`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserCreate {
    username: String,
    email: String,
    #[serde(default)]
    role: Option<UserRole>,
    #[serde(default = "default_true")]
    is_active: bool,
    #[serde(default)]
    quota_usd: Option<f64>,
}

/// `PATCH /api/admin/users/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserUpdate {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    role: Option<UserRole>,
    #[serde(default)]
    is_active: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    quota_usd: Option<Option<f64>>,
    /// Sets the spend counted against the quota, e.g. back to 0 for a new period.
    #[serde(default)]
    used_usd: Option<f64>,
}

/// `POST /api/admin/users/{id}/api-keys`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClientKeyCreate {
    name: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    expires_at: Option<time::OffsetDateTime>,
}

/// A new client key: the only response that ever carries the plaintext.
#[derive(Debug, Serialize)]
pub(crate) struct CreatedClientKey {
    id: String,
    user_id: String,
    name: String,
    /// The plaintext key; store it now, it is never shown again.
    key: String,
    #[serde(with = "time::serde::rfc3339::option")]
    expires_at: Option<time::OffsetDateTime>,
}

async fn find_user(state: &AppState, id: &str) -> Result<users::Model, AdminError> {
    find_or_404::<users::Entity>(state, "user", id).await
}

async fn ensure_unique_user(
    state: &AppState,
    column: users::Column,
    field: &str,
    value: &str,
    except: Option<&str>,
) -> Result<(), AdminError> {
    let condition = Condition::all().add(column.eq(value));
    ensure_unique::<users::Entity>(state, users::Column::Id, condition, except, || {
        format!("a user with {field} `{value}` already exists")
    })
    .await
}

/// The hashes of every client key of `user_id`.
async fn key_hashes(state: &AppState, user_id: &str) -> Result<Vec<String>, AdminError> {
    Ok(api_keys::Entity::find()
        .filter(api_keys::Column::UserId.eq(user_id))
        .all(state.conn())
        .await?
        .into_iter()
        .map(|key| key.key_hash)
        .collect())
}

/// Drops the cached look-ups of the keys with `hashes`, so a change to their user applies to
/// the very next request on every replica. Runs after the change is committed: a look-up
/// that ran in between would otherwise cache the old row again.
async fn forget_keys(state: &AppState, hashes: Vec<String>) {
    for hash in hashes {
        if let Err(error) = state.cache().delete(&ClientKeyByHash(hash)).await {
            tracing::warn!(%error, "client key invalidation did not reach redis");
        }
    }
}

/// `GET /api/admin/users`.
pub(crate) async fn list(
    _: Admin,
    State(state): State<AppState>,
) -> Result<Json<Vec<users::Model>>, AdminError> {
    let rows = users::Entity::find()
        .order_by_asc(users::Column::Username)
        .all(state.conn())
        .await?;
    Ok(Json(rows))
}

/// `POST /api/admin/users`.
pub(crate) async fn create(
    _: Admin,
    State(state): State<AppState>,
    AdminJson(body): AdminJson<UserCreate>,
) -> Result<Response, AdminError> {
    let username = validate::name("username", &body.username, 100)?;
    let email = validate::email("email", &body.email)?;
    let quota = validate::USER_USD.check_optional("quota_usd", body.quota_usd)?;
    ensure_unique_user(&state, users::Column::Username, "username", &username, None).await?;
    ensure_unique_user(&state, users::Column::Email, "email", &email, None).await?;
    let now = now_utc();
    let row = users::Model {
        id: new_id(),
        email,
        username,
        role: body.role.unwrap_or(UserRole::User),
        is_active: body.is_active,
        quota_usd: quota,
        used_usd: 0.0,
        total_usd: 0.0,
        created_at: now,
        updated_at: now,
    };
    let stored = insert_row(state.conn(), row).await?;
    Ok((StatusCode::CREATED, Json(stored)).into_response())
}

/// `PATCH /api/admin/users/{id}`.
pub(crate) async fn update(
    _: Admin,
    State(state): State<AppState>,
    AdminId(id): AdminId,
    AdminJson(body): AdminJson<UserUpdate>,
) -> Result<Json<users::Model>, AdminError> {
    let before = find_user(&state, &id).await?;
    let mut active = before.into_active_model();
    if let Some(username) = body.username {
        let username = validate::name("username", &username, 100)?;
        ensure_unique_user(
            &state,
            users::Column::Username,
            "username",
            &username,
            Some(&id),
        )
        .await?;
        active.username = Set(username);
    }
    if let Some(email) = body.email {
        let email = validate::email("email", &email)?;
        ensure_unique_user(&state, users::Column::Email, "email", &email, Some(&id)).await?;
        active.email = Set(email);
    }
    if let Some(role) = body.role {
        active.role = Set(role);
    }
    if let Some(is_active) = body.is_active {
        active.is_active = Set(is_active);
    }
    if let Some(quota) = body.quota_usd {
        active.quota_usd = Set(validate::USER_USD.check_optional("quota_usd", quota)?);
    }
    if let Some(used) = body.used_usd {
        active.used_usd = Set(validate::USER_USD.check("used_usd", used)?);
    }
    active.updated_at = Set(now_utc());
    let after = active.update(state.conn()).await?;
    forget_keys(&state, key_hashes(&state, &id).await?).await;
    Ok(Json(after))
}

/// `DELETE /api/admin/users/{id}`: removes the user and its client keys; usage rows keep
/// their numbers with the user reference cleared.
pub(crate) async fn delete(
    Admin(caller): Admin,
    State(state): State<AppState>,
    AdminId(id): AdminId,
) -> Result<StatusCode, AdminError> {
    find_user(&state, &id).await?;
    if caller.user_id == id {
        return Err(AdminError::conflict(
            "an admin cannot delete their own user",
        ));
    }
    // Read the keys the cascade removes before it happens, forget them after it committed.
    let hashes = key_hashes(&state, &id).await?;
    users::Entity::delete_by_id(id).exec(state.conn()).await?;
    forget_keys(&state, hashes).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/admin/users/{id}/api-keys`: a new client key, plaintext returned once.
pub(crate) async fn create_key(
    _: Admin,
    State(state): State<AppState>,
    AdminId(id): AdminId,
    AdminJson(body): AdminJson<ClientKeyCreate>,
) -> Result<Response, AdminError> {
    find_user(&state, &id).await?;
    let name = validate::name("name", &body.name, 255)?;
    let plaintext = generate_client_key();
    let now = now_utc();
    let row = api_keys::Model {
        id: new_id(),
        user_id: id,
        key_hash: hash_client_key(plaintext.expose()),
        name,
        is_active: true,
        expires_at: body.expires_at.map(tollgate_entities::truncate_to_micros),
        total_requests: 0,
        total_cost_usd: 0.0,
        last_used_at: None,
        created_at: now,
        updated_at: now,
    };
    let stored = insert_row(state.conn(), row).await?;
    let created = CreatedClientKey {
        id: stored.id,
        user_id: stored.user_id,
        name: stored.name,
        key: plaintext.expose().to_owned(),
        expires_at: stored.expires_at,
    };
    Ok((StatusCode::CREATED, Json(created)).into_response())
}
