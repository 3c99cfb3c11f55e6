//! The catalogue handlers every table shares: get, create, update and delete one row, written
//! once over [`Edited`] (how a table's rows are found and shown) and [`Created`] (what a
//! `POST` body hangs its new row under).

use std::future::Future;

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tollgate_catalogue::{self as catalogue, Fields, Stored, Target};

use super::error::AdminError;
use super::extract::{Admin, AdminJson};
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

/// A `POST` body that creates a row of `Self::Fields`.
pub(crate) trait Created: DeserializeOwned + Send + 'static {
    /// The fields the body stands for.
    type Fields: Edited + From<Self>;
    /// The path parameters naming the parent, checked before the body is written.
    type Path: FromRequestParts<AppState, Rejection = AdminError> + Send;

    /// What the new row hangs under, or a 404 when the path names no parent.
    fn parent(
        &self,
        state: &AppState,
        path: Self::Path,
    ) -> impl Future<Output = Result<<Self::Fields as Fields>::Parent, AdminError>> + Send;
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

/// Implements [`Created`] for the `POST` body of a top-level table: nothing to hang under.
macro_rules! created_top {
    ($body:ty => $fields:ty) => {
        impl $crate::admin::crud::Created for $body {
            type Fields = $fields;
            type Path = $crate::admin::crud::Top;

            async fn parent(
                &self,
                _: &$crate::app::AppState,
                _: $crate::admin::crud::Top,
            ) -> Result<(), $crate::admin::error::AdminError> {
                Ok(())
            }
        }
    };
}

pub(crate) use {created_top, edited_by_id};

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
    path: B::Path,
    AdminJson(body): AdminJson<B>,
) -> Result<Response, AdminError> {
    let parent = body.parent(&state, path).await?;
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
