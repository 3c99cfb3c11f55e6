//! The admin API (product.md): catalogue CRUD with validation and live cache invalidation
//! (behaviour.md section 3, after the commit and before answering), the resolution
//! explainer, cache flush, and catalogue import and export. Every route needs an admin
//! user's client key.

pub(crate) mod answers;
mod catalog_io;
mod crud;
mod dashboard;
mod dead_letters;
mod error;
mod explain;
mod extract;
mod models;
mod providers;
mod users;

use axum::Router;
use axum::routing::{delete, get, patch, post};

pub(crate) use dashboard::routes as dashboard_routes;

use tollgate_catalogue::{
    EndpointFields, GlobalModelFields, ModelFields, ProviderFields, ProviderKeyFields, UserFields,
};

use self::crud::{collection, edit, row};
use self::models::{GlobalModelCreate, ModelCreate};
use self::providers::{EndpointCreate, ProviderCreate, ProviderKeyCreate};
use self::users::UserCreate;
use crate::app::AppState;

/// The admin routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/admin/providers", collection::<ProviderCreate>())
        .route("/api/admin/providers/{id}", row::<ProviderFields>())
        .route(
            "/api/admin/providers/{id}/endpoints",
            collection::<EndpointCreate>(),
        )
        .route("/api/admin/endpoints/{id}", edit::<EndpointFields>())
        .route(
            "/api/admin/endpoints/{id}/keys",
            collection::<ProviderKeyCreate>(),
        )
        .route("/api/admin/provider-keys/{id}", edit::<ProviderKeyFields>())
        .route(
            "/api/admin/models/global",
            collection::<GlobalModelCreate>(),
        )
        .route("/api/admin/models/global/{id}", row::<GlobalModelFields>())
        .route(
            "/api/admin/providers/{id}/models",
            collection::<ModelCreate>(),
        )
        .route(
            "/api/admin/providers/{pid}/models/{mid}",
            row::<ModelFields>(),
        )
        .route("/api/admin/users", collection::<UserCreate>())
        .route(
            "/api/admin/users/{id}",
            patch(crud::update::<UserFields>).delete(users::delete),
        )
        .route("/api/admin/users/{id}/api-keys", post(users::create_key))
        .route("/api/admin/resolve", get(explain::explain))
        .route("/api/admin/cache/model-mapping", delete(explain::flush))
        .route(
            "/api/admin/catalog",
            get(catalog_io::export).put(catalog_io::import),
        )
        .route("/api/admin/usage/dead-letters", get(dead_letters::list))
        .route(
            "/api/admin/usage/dead-letters/replay",
            post(dead_letters::replay),
        )
}
