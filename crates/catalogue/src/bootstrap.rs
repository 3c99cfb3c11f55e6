//! The bootstrap admin: `TOLLGATE_ADMIN_KEY` makes sure an admin user holds that key;
//! without it, a first start creates an admin user and a generated key, shown once.

use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use tollgate_entities::{UserRole, users};

use crate::error::CatalogError;
use crate::keys::{generate_client_key, hash_client_key};
use crate::secret::Secret;
use crate::secret_box::SecretBox;
use crate::write::{ClientKeyFields, Target, Upsert, UserFields};

const ADMIN_USERNAME: &str = "admin";

// The bootstrap runs at start, before this replica serves, and invalidates nothing: another
// replica's cached look-up of the key expires with its TTL, as for any key written outside
// the admin API.

/// The user `admin`, created (role admin) when there is none; an existing one is left as it
/// is.
async fn admin_user(conn: &DatabaseConnection) -> Result<users::Model, CatalogError> {
    if let Some(user) = users::Entity::find()
        .filter(users::Column::Username.eq(ADMIN_USERNAME))
        .one(conn)
        .await?
    {
        return Ok(user);
    }
    let fields = UserFields {
        username: Some(ADMIN_USERNAME.to_owned()),
        email: Some("admin@localhost".to_owned()),
        role: Some(UserRole::Admin),
        ..UserFields::default()
    };
    // Users and client keys hold no upstream secret: nothing is sealed.
    let (user, _) = fields
        .upsert(conn, &SecretBox::default(), Target::New(()))
        .await?
        .skip_invalidation();
    Ok(user)
}

/// Gives the admin user the key `plaintext` under `name` (the key is found by its hash).
async fn hold_key(
    conn: &DatabaseConnection,
    name: &str,
    plaintext: &str,
) -> Result<(), CatalogError> {
    let user = admin_user(conn).await?;
    let fields = ClientKeyFields {
        name: Some(name.to_owned()),
        key_hash: Some(hash_client_key(plaintext)),
        is_active: Some(true),
        expires_at: Some(None),
    };
    fields
        .upsert(conn, &SecretBox::default(), Target::Named(user.id))
        .await?
        .skip_invalidation();
    Ok(())
}

/// Applies the bootstrap rule; returns the generated key when one was created. A refused
/// write (the fixed values break no rule, so only a conflict can) reads as a database error.
pub async fn bootstrap_admin(
    conn: &DatabaseConnection,
    configured: Option<&Secret>,
) -> Result<Option<Secret>, DbErr> {
    bootstrap(conn, configured)
        .await
        .map_err(|error| match error {
            CatalogError::Database(error) => error,
            other => DbErr::Custom(other.to_string()),
        })
}

async fn bootstrap(
    conn: &DatabaseConnection,
    configured: Option<&Secret>,
) -> Result<Option<Secret>, CatalogError> {
    if let Some(key) = configured {
        hold_key(conn, "bootstrap admin key", key.expose()).await?;
        return Ok(None);
    }
    let has_admin = users::Entity::find()
        .filter(users::Column::Role.eq(UserRole::Admin))
        .one(conn)
        .await?
        .is_some();
    if has_admin {
        return Ok(None);
    }
    let key = generate_client_key();
    hold_key(conn, "generated admin key", key.expose()).await?;
    Ok(Some(key))
}
