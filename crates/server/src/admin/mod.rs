//! The admin API (product.md): catalogue CRUD with validation and live cache invalidation
//! (behaviour.md section 3, after the commit and before answering), the resolution
//! explainer, cache flush, and catalogue import and export. Every route needs an admin
//! user's client key.

pub(crate) mod answers;
mod catalog_io;
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

use crate::app::AppState;

/// The admin routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/admin/providers",
            get(providers::list).post(providers::create),
        )
        .route(
            "/api/admin/providers/{id}",
            get(providers::get)
                .patch(providers::update)
                .delete(providers::delete),
        )
        .route(
            "/api/admin/providers/{id}/endpoints",
            get(providers::list_endpoints).post(providers::create_endpoint),
        )
        .route(
            "/api/admin/endpoints/{id}",
            patch(providers::update_endpoint).delete(providers::delete_endpoint),
        )
        .route(
            "/api/admin/endpoints/{id}/keys",
            get(providers::list_keys).post(providers::create_key),
        )
        .route(
            "/api/admin/provider-keys/{id}",
            patch(providers::update_key).delete(providers::delete_key),
        )
        .route(
            "/api/admin/models/global",
            get(models::list_global).post(models::create_global),
        )
        .route(
            "/api/admin/models/global/{id}",
            get(models::get_global)
                .patch(models::update_global)
                .delete(models::delete_global),
        )
        .route(
            "/api/admin/providers/{id}/models",
            get(models::list_models).post(models::create_model),
        )
        .route(
            "/api/admin/providers/{pid}/models/{mid}",
            get(models::get_model)
                .patch(models::update_model)
                .delete(models::delete_model),
        )
        .route("/api/admin/users", get(users::list).post(users::create))
        .route(
            "/api/admin/users/{id}",
            patch(users::update).delete(users::delete),
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
