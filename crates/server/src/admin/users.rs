//! Users and their client keys. Plaintext keys are shown once, at creation; cached key
//! look-ups are invalidated when a user is deactivated, demoted or deleted.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tollgate_catalogue::{
    self as catalogue, ClientKeyFields, Target, UserFields, generate_client_key, hash_client_key,
};
use tollgate_entities::{UserRole, users};

use super::crud::{created, edited_by_id, listed, remove};
use super::error::AdminError;
use super::extract::{Admin, AdminId, AdminJson, find_or_404};
use crate::app::AppState;

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

impl From<UserCreate> for UserFields {
    fn from(body: UserCreate) -> Self {
        Self {
            username: Some(body.username),
            email: Some(body.email),
            role: body.role,
            is_active: Some(body.is_active),
            quota_usd: Some(body.quota_usd),
            used_usd: None,
        }
    }
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

// `/api/admin/users/{id}`.
edited_by_id!(UserFields, users, "user");

// `/api/admin/users`, by name.
listed!(UserFields, users, [Username]);
created!(UserCreate => UserFields);

/// `DELETE /api/admin/users/{id}`: removes the user and its client keys; usage rows keep
/// their numbers with the user reference cleared.
pub(crate) async fn delete(
    Admin(caller): Admin,
    State(state): State<AppState>,
    AdminId(id): AdminId,
) -> Result<StatusCode, AdminError> {
    let before = find_user(&state, &id).await?;
    if caller.user_id == id {
        return Err(AdminError::conflict(
            "an admin cannot delete their own user",
        ));
    }
    remove(&state, before).await
}

/// `POST /api/admin/users/{id}/api-keys`: a new client key, plaintext returned once.
pub(crate) async fn create_key(
    _: Admin,
    State(state): State<AppState>,
    AdminId(id): AdminId,
    AdminJson(body): AdminJson<ClientKeyCreate>,
) -> Result<Response, AdminError> {
    find_user(&state, &id).await?;
    let plaintext = generate_client_key();
    let fields = ClientKeyFields {
        name: Some(body.name),
        key_hash: Some(hash_client_key(plaintext.expose())),
        is_active: Some(true),
        expires_at: Some(body.expires_at),
    };
    let stored = catalogue::write(&state, Target::New(id), fields).await?;
    let created = CreatedClientKey {
        id: stored.id,
        user_id: stored.user_id,
        name: stored.name,
        key: plaintext.expose().to_owned(),
        expires_at: stored.expires_at,
    };
    Ok((StatusCode::CREATED, Json(created)).into_response())
}
