//! The bootstrap admin: `TOLLGATE_ADMIN_KEY` makes sure an admin user holds that key;
//! without it, a first start creates an admin user and a generated key, shown once.

use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use tollgate_entities::insert_row;
use tollgate_entities::{UserRole, users};

use crate::file::{new_user, upsert_client_key};
use crate::keys::{generate_client_key, hash_client_key};
use crate::secret::Secret;

const ADMIN_USERNAME: &str = "admin";

async fn admin_user(conn: &DatabaseConnection) -> Result<users::Model, DbErr> {
    if let Some(user) = users::Entity::find()
        .filter(users::Column::Username.eq(ADMIN_USERNAME))
        .one(conn)
        .await?
    {
        return Ok(user);
    }
    let admin = new_user(
        ADMIN_USERNAME,
        "admin@localhost",
        UserRole::Admin,
        true,
        None,
    );
    insert_row(conn, admin).await
}

/// Applies the bootstrap rule; returns the generated key when one was created.
pub async fn bootstrap_admin(
    conn: &DatabaseConnection,
    configured: Option<&Secret>,
) -> Result<Option<Secret>, DbErr> {
    if let Some(key) = configured {
        let user = admin_user(conn).await?;
        upsert_client_key(
            conn,
            &user.id,
            "bootstrap admin key",
            &hash_client_key(key.expose()),
            true,
            None,
        )
        .await?;
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
    let user = admin_user(conn).await?;
    let key = generate_client_key();
    upsert_client_key(
        conn,
        &user.id,
        "generated admin key",
        &hash_client_key(key.expose()),
        true,
        None,
    )
    .await?;
    Ok(Some(key))
}
