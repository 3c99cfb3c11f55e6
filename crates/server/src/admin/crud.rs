//! The catalogue handlers every table shares: list, get, create, update and delete, and the
//! routes serving them, written once over [`Edited`] (how a table's rows are found and shown),
//! [`Listed`] (the rows under the parent a collection's path names) and [`Created`] (what a
//! `POST` body hangs its new row under).

use std::future::Future;
use std::marker::PhantomData;

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{self, MethodRouter};
use sea_orm::DbErr;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tollgate_catalogue::{self as catalogue, Fields, Stored, Target};

use super::error::AdminError;
use super::extract::{Admin, AdminId, AdminJson};
use crate::app::AppState;

/// The row of a table that a path of the admin API names (its `PATCH` body is `Self`).
pub(crate) trait Edited: Fields<Row: Stored + Sync> + DeserializeOwned + 'static {
    /// The path parameters naming one row.
    type Path: FromRequestParts<AppState, Rejection = AdminError> + Send;
    /// A row as the API shows it.
    type View: Serialize;

    /// The row the path names, or a 404 (also when a parent in the path does not exist).
    fn find(
        state: &AppState,
        path: Self::Path,
    ) -> impl Future<Output = Result<Self::Row, AdminError>> + Send;

    /// The row as the API shows it.
    fn view(state: &AppState, row: Self::Row) -> Self::View;
}

/// A table's collection (`/api/admin/providers`, `/api/admin/providers/{id}/models`): `GET`
/// lists the rows under the parent its path names, `POST` adds one there.
pub(crate) trait Listed: Edited {
    /// The path naming the parent.
    type Under: Parent;

    /// The rows under the parent, in the order the API lists them.
    fn rows(
        state: &AppState,
        key: Key<Self>,
    ) -> impl Future<Output = Result<Vec<Self::Row>, DbErr>> + Send;
}

/// What the rows of `T`'s collection keep of their parent: `()`, or its id.
pub(crate) type Key<T> = <<T as Listed>::Under as Parent>::Key;

/// A `POST` body that creates a row of `Self::Fields`.
pub(crate) trait Created: DeserializeOwned + Send + 'static {
    /// The fields the body stands for.
    type Fields: Listed + From<Self>;

    /// What the new row hangs under, in the parent the path names (checked after the body is
    /// read, before it is written).
    fn parent(&self, key: Key<Self::Fields>) -> <Self::Fields as Fields>::Parent;
}

/// The parent a collection's path names.
pub(crate) trait Parent: FromRequestParts<AppState, Rejection = AdminError> + Send {
    /// What the rows under it keep of it.
    type Key: Send;

    /// Checks that the parent exists (a 404 when not) and gives its key.
    fn key(self, state: &AppState) -> impl Future<Output = Result<Self::Key, AdminError>> + Send;
}

/// The path of a top-level table's collection (`/api/admin/providers`): no parameters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Top;

impl FromRequestParts<AppState> for Top {
    type Rejection = AdminError;

    async fn from_request_parts(_: &mut Parts, _: &AppState) -> Result<Self, AdminError> {
        Ok(Self)
    }
}

impl Parent for Top {
    type Key = ();

    async fn key(self, _: &AppState) -> Result<(), AdminError> {
        Ok(())
    }
}

/// The path of a collection under a row of the table `P` (`/api/admin/providers/{id}/models`):
/// that row's id.
#[derive(Debug)]
pub(crate) struct Under<P>(AdminId, PhantomData<fn() -> P>);

impl<P> FromRequestParts<AppState> for Under<P> {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AdminError> {
        Ok(Self(
            AdminId::from_request_parts(parts, state).await?,
            PhantomData,
        ))
    }
}

/// The parent row is found as `P`'s own path finds it, with the same 404.
impl<P: Edited<Path = AdminId>> Parent for Under<P> {
    type Key = String;

    async fn key(self, state: &AppState) -> Result<String, AdminError> {
        let Self(AdminId(id), _) = self;
        P::find(state, AdminId(id.clone())).await?;
        Ok(id)
    }
}

/// Implements [`Edited`] for a table whose rows one id names (`$noun` in a 404) and the API
/// shows as stored.
macro_rules! edited_by_id {
    ($fields:ty, $table:ident, $noun:literal) => {
        impl $crate::admin::crud::Edited for $fields {
            type Path = $crate::admin::extract::AdminId;
            type View = $table::Model;

            async fn find(
                state: &$crate::app::AppState,
                $crate::admin::extract::AdminId(id): $crate::admin::extract::AdminId,
            ) -> Result<$table::Model, $crate::admin::error::AdminError> {
                $crate::admin::extract::find_or_404::<$table::Entity>(state, $noun, &id).await
            }

            fn view(_: &$crate::app::AppState, row: $table::Model) -> $table::Model {
                row
            }
        }
    };
}

/// Implements [`Listed`] for a table: a top-level one in the order of the columns `$order`, or
/// one whose rows hang under a row of the table `$parent` by their column `$column`.
macro_rules! listed {
    ($fields:ty, $table:ident, [$($order:ident),+]) => {
        impl $crate::admin::crud::Listed for $fields {
            type Under = $crate::admin::crud::Top;

            async fn rows(
                state: &$crate::app::AppState,
                (): (),
            ) -> Result<Vec<$table::Model>, sea_orm::DbErr> {
                use sea_orm::{EntityTrait as _, QueryOrder as _};
                $table::Entity::find()
                    $(.order_by_asc($table::Column::$order))+
                    .all(state.conn())
                    .await
            }
        }
    };
    ($fields:ty, $table:ident under $parent:ty, by $column:ident, [$($order:ident),+]) => {
        impl $crate::admin::crud::Listed for $fields {
            type Under = $crate::admin::crud::Under<$parent>;

            async fn rows(
                state: &$crate::app::AppState,
                id: String,
            ) -> Result<Vec<$table::Model>, sea_orm::DbErr> {
                use sea_orm::{ColumnTrait as _, EntityTrait as _};
                use sea_orm::{QueryFilter as _, QueryOrder as _};
                $table::Entity::find()
                    .filter($table::Column::$column.eq(id))
                    $(.order_by_asc($table::Column::$order))+
                    .all(state.conn())
                    .await
            }
        }
    };
}

/// Implements [`Created`] for a `POST` body whose new row hangs under the parent itself.
macro_rules! created {
    ($body:ty => $fields:ty) => {
        impl $crate::admin::crud::Created for $body {
            type Fields = $fields;

            fn parent(
                &self,
                key: $crate::admin::crud::Key<$fields>,
            ) -> <$fields as tollgate_catalogue::Fields>::Parent {
                key
            }
        }
    };
}

pub(crate) use {created, edited_by_id, listed};

/// The routes of a table's collection: `GET` lists it, `POST` adds a row.
pub(crate) fn collection<B: Created>() -> MethodRouter<AppState> {
    routing::get(list::<B::Fields>).post(create::<B>)
}

/// The routes of one row: `GET`, `PATCH` and `DELETE`.
pub(crate) fn row<T: Edited>() -> MethodRouter<AppState> {
    edit::<T>().get(get::<T>)
}

/// The routes of one row that the API does not show alone: `PATCH` and `DELETE`.
pub(crate) fn edit<T: Edited>() -> MethodRouter<AppState> {
    routing::patch(update::<T>).delete(delete::<T>)
}

/// `GET` the rows under the parent the path names.
pub(crate) async fn list<T: Listed>(
    _: Admin,
    State(state): State<AppState>,
    under: T::Under,
) -> Result<Json<Vec<T::View>>, AdminError> {
    let key = under.key(&state).await?;
    let rows = T::rows(&state, key).await?;
    Ok(Json(
        rows.into_iter().map(|row| T::view(&state, row)).collect(),
    ))
}

/// `GET` one row.
pub(crate) async fn get<T: Edited>(
    _: Admin,
    State(state): State<AppState>,
    path: T::Path,
) -> Result<Json<T::View>, AdminError> {
    let row = T::find(&state, path).await?;
    Ok(Json(T::view(&state, row)))
}

/// `POST` a new row: 201 with the row as stored.
pub(crate) async fn create<B: Created>(
    _: Admin,
    State(state): State<AppState>,
    under: <B::Fields as Listed>::Under,
    AdminJson(body): AdminJson<B>,
) -> Result<Response, AdminError> {
    let key = under.key(&state).await?;
    let parent = body.parent(key);
    let stored = catalogue::write(&state, Target::New(parent), B::Fields::from(body)).await?;
    let view = <B::Fields as Edited>::view(&state, stored);
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// `PATCH` one row: absent fields keep their value.
pub(crate) async fn update<T: Edited>(
    _: Admin,
    State(state): State<AppState>,
    path: T::Path,
    AdminJson(body): AdminJson<T>,
) -> Result<Json<T::View>, AdminError> {
    let before = T::find(&state, path).await?;
    let after = catalogue::write(&state, Target::Stored(before), body).await?;
    Ok(Json(T::view(&state, after)))
}

/// `DELETE` one row (and what the database cascades to): 204.
pub(crate) async fn delete<T: Edited>(
    _: Admin,
    State(state): State<AppState>,
    path: T::Path,
) -> Result<StatusCode, AdminError> {
    remove(&state, T::find(&state, path).await?).await
}

/// Deletes `row`: 204.
pub(crate) async fn remove(state: &AppState, row: impl Stored) -> Result<StatusCode, AdminError> {
    catalogue::delete(state, row).await?;
    Ok(StatusCode::NO_CONTENT)
}
