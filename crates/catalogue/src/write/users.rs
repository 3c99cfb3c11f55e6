//! Users and their client keys: one upsert each, and the user delete.

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, IntoActiveModel};
use serde::Deserialize;
use tollgate_entities::{UserRole, api_keys, new_id, now_utc, users};

use super::common::sealed::{Doomed, Upsert};
use super::common::{
    Fields, Slot, Stale, Target, Written, check, ensure_unique, inserted, key_hashes, required,
    set_given, updated,
};
use crate::error::CatalogError;
use crate::rules;
use crate::secret_box::SecretBox;

/// A user's fields, also the body of `PATCH /api/admin/users/{id}`. Absent fields keep their
/// value; a new user needs `username` and `email` and defaults to role `user`, active, no
/// quota and nothing spent. `null` clears `quota_usd` (unlimited).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UserFields {
    /// Unique user name, at most 100 bytes.
    pub username: Option<String>,
    /// Unique e-mail address.
    pub email: Option<String>,
    /// Role.
    pub role: Option<UserRole>,
    /// Active.
    pub is_active: Option<bool>,
    /// Quota in USD, 0 to 1e9.
    #[serde(deserialize_with = "super::common::nullable")]
    pub quota_usd: Option<Option<f64>>,
    /// The spend counted against the quota, e.g. back to 0 for a new period.
    pub used_usd: Option<f64>,
}

/// A user is deleted with its client keys (the database cascades; usage rows keep their
/// numbers with the user reference cleared), then the cached look-ups of those keys are
/// dropped. The keys the cascade removes are read before it happens and forgotten after it
/// committed: forgetting first would let a look-up in between cache a key again, alive for
/// its TTL.
impl Doomed for users::Model {
    type Active = users::ActiveModel;

    async fn doomed<C: ConnectionTrait>(&self, conn: &C) -> Result<Stale, DbErr> {
        Ok(Stale::ClientKeys(key_hashes(conn, &self.id).await?))
    }
}

async fn unique_user(
    conn: &impl ConnectionTrait,
    column: users::Column,
    value: &str,
    except: Option<&str>,
) -> Result<(), CatalogError> {
    let field = match column {
        users::Column::Email => "email",
        _ => "username",
    };
    ensure_unique::<users::Entity, _>(conn, users::Column::Id, column.eq(value), except, || {
        format!("a user with {field} `{value}` already exists")
    })
    .await
}

/// The user upsert: [`Target::Named`] goes by `username`. An update drops the cached
/// look-ups of every key of the user, so a deactivation, demotion or quota change applies to
/// the next request.
impl Fields for UserFields {
    type Row = users::Model;
    type Parent = ();
}

impl Upsert for UserFields {
    async fn upsert<C: ConnectionTrait>(
        self,
        conn: &C,
        _: &SecretBox,
        target: Target<users::Model>,
    ) -> Result<Written<users::Model>, CatalogError> {
        let UserFields {
            username,
            email,
            role,
            is_active,
            quota_usd,
            used_usd,
        } = self;
        let username = check(username, |name| rules::name("username", &name, 100))?;
        let email = check(email, |email| rules::email("email", &email))?;
        let quota_usd = check(quota_usd, |quota| {
            rules::USER_USD.check_optional("quota_usd", quota)
        })?;
        let used_usd = check(used_usd, |used| rules::USER_USD.check("used_usd", used))?;
        let named =
            |(): &()| Ok(users::Column::Username.eq(required("username", username.as_deref())?));
        let slot = target.slot::<users::Entity, _, _>(conn, named).await?;
        let except = slot.stored().map(|row| row.id.as_str());
        if let Some(username) = &username {
            unique_user(conn, users::Column::Username, username, except).await?;
        }
        if let Some(email) = &email {
            unique_user(conn, users::Column::Email, email, except).await?;
        }
        match slot {
            Slot::Insert(()) => {
                let username = required("username", username)?;
                let email = required("email", email)?;
                let now = now_utc();
                let row = users::Model {
                    id: new_id(),
                    email,
                    username,
                    role: role.unwrap_or(UserRole::User),
                    is_active: is_active.unwrap_or(true),
                    quota_usd: quota_usd.flatten(),
                    used_usd: used_usd.unwrap_or(0.0),
                    total_usd: 0.0,
                    created_at: now,
                    updated_at: now,
                };
                // A new user has no keys yet: nothing cached can depend on it.
                inserted(conn, row, |_| Stale::Nothing).await
            }
            Slot::Update(before) => {
                let mut row = before.into_active_model();
                set_given!(row: username, email, role, is_active, quota_usd, used_usd);
                let stale = |user: &users::Model| Stale::UserKeys(user.id.clone());
                updated(conn, row, users::Column::UpdatedAt, stale).await
            }
        }
    }
}

/// A client key's fields. Absent fields keep their value; a new key needs `name` and
/// `key_hash` and defaults to active without expiry. `Some(None)` clears `expires_at`.
#[derive(Debug, Clone, Default)]
pub struct ClientKeyFields {
    /// Name, at most 255 bytes.
    pub name: Option<String>,
    /// Hex SHA-256 of the plaintext ([`crate::hash_client_key`]); the plaintext is never
    /// stored.
    pub key_hash: Option<String>,
    /// Active.
    pub is_active: Option<bool>,
    /// Expiry (kept to whole microseconds, as every backend stores it).
    pub expires_at: Option<Option<time::OffsetDateTime>>,
}

/// The client key upsert under a user id: [`Target::Named`] goes by `key_hash`, whichever
/// user holds it, and moves the key to that user. An update drops the key's cached look-up.
impl Fields for ClientKeyFields {
    type Row = api_keys::Model;
    type Parent = String;
}

impl Upsert for ClientKeyFields {
    async fn upsert<C: ConnectionTrait>(
        self,
        conn: &C,
        _: &SecretBox,
        target: Target<api_keys::Model, String>,
    ) -> Result<Written<api_keys::Model>, CatalogError> {
        let name = check(self.name, |name| rules::name("name", &name, 255))?;
        let key_hash = check(self.key_hash, |hash| rules::key_hash("key_hash", &hash))?;
        let expires_at = self
            .expires_at
            .map(|at| at.map(tollgate_entities::truncate_to_micros));
        // A named key moves to the user it is named under.
        let owner = match &target {
            Target::Named(user_id) => Some(user_id.clone()),
            _ => None,
        };
        let named = |_: &String| {
            Ok(api_keys::Column::KeyHash.eq(required("key_hash", key_hash.as_deref())?))
        };
        match target.slot::<api_keys::Entity, _, _>(conn, named).await? {
            Slot::Insert(user_id) => {
                let now = now_utc();
                let row = api_keys::Model {
                    id: new_id(),
                    user_id,
                    key_hash: required("key_hash", key_hash)?,
                    name: required("name", name)?,
                    is_active: self.is_active.unwrap_or(true),
                    expires_at: expires_at.flatten(),
                    total_requests: 0,
                    total_cost_usd: 0.0,
                    last_used_at: None,
                    created_at: now,
                    updated_at: now,
                };
                // An unknown key's cached "missing" lives a few seconds only (the key TTLs).
                inserted(conn, row, |_| Stale::Nothing).await
            }
            Slot::Update(before) => {
                let mut hashes = vec![before.key_hash.clone()];
                hashes.extend(key_hash.clone().filter(|hash| *hash != before.key_hash));
                let mut row = before.into_active_model();
                set_given!(
                    row: user_id = owner,
                    key_hash,
                    name,
                    is_active = self.is_active,
                    expires_at,
                );
                let stale = |_: &api_keys::Model| Stale::ClientKeys(hashes);
                updated(conn, row, api_keys::Column::UpdatedAt, stale).await
            }
        }
    }
}
