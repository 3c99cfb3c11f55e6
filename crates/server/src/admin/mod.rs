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

/// The admin routes, every one under `/api/admin`.
pub(crate) fn routes() -> Router<AppState> {
    let admin = Router::new()
        .route("/providers", collection::<ProviderCreate>())
        .route("/providers/{id}", row::<ProviderFields>())
        .route("/providers/{id}/endpoints", collection::<EndpointCreate>())
        .route("/endpoints/{id}", edit::<EndpointFields>())
        .route("/endpoints/{id}/keys", collection::<ProviderKeyCreate>())
        .route("/provider-keys/{id}", edit::<ProviderKeyFields>())
        .route("/models/global", collection::<GlobalModelCreate>())
        .route("/models/global/{id}", row::<GlobalModelFields>())
        .route("/providers/{id}/models", collection::<ModelCreate>())
        .route("/providers/{pid}/models/{mid}", row::<ModelFields>())
        .route("/users", collection::<UserCreate>())
        .route(
            "/users/{id}",
            patch(crud::update::<UserFields>).delete(users::delete),
        )
        .route("/users/{id}/api-keys", post(users::create_key))
        .route("/resolve", get(explain::explain))
        .route("/cache/model-mapping", delete(explain::flush))
        .route("/catalog", get(catalog_io::export).put(catalog_io::import))
        .route("/usage/dead-letters", get(dead_letters::list))
        .route("/usage/dead-letters/replay", post(dead_letters::replay));
    Router::new().nest("/api/admin", admin)
}
