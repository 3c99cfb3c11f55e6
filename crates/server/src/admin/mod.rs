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

use self::models::{GlobalModelCreate, ModelCreate};
use self::providers::{EndpointCreate, ProviderCreate, ProviderKeyCreate};
use self::users::UserCreate;
use crate::app::AppState;

/// The admin routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/admin/providers",
            get(providers::list).post(crud::create::<ProviderCreate>),
        )
        .route(
            "/api/admin/providers/{id}",
            get(crud::get::<ProviderFields>)
                .patch(crud::update::<ProviderFields>)
                .delete(crud::delete::<ProviderFields>),
        )
        .route(
            "/api/admin/providers/{id}/endpoints",
            get(providers::list_endpoints).post(crud::create::<EndpointCreate>),
        )
        .route(
            "/api/admin/endpoints/{id}",
            patch(crud::update::<EndpointFields>).delete(crud::delete::<EndpointFields>),
        )
        .route(
            "/api/admin/endpoints/{id}/keys",
            get(providers::list_keys).post(crud::create::<ProviderKeyCreate>),
        )
        .route(
            "/api/admin/provider-keys/{id}",
            patch(crud::update::<ProviderKeyFields>).delete(crud::delete::<ProviderKeyFields>),
        )
        .route(
            "/api/admin/models/global",
            get(models::list_global).post(crud::create::<GlobalModelCreate>),
        )
        .route(
            "/api/admin/models/global/{id}",
            get(crud::get::<GlobalModelFields>)
                .patch(crud::update::<GlobalModelFields>)
                .delete(crud::delete::<GlobalModelFields>),
        )
        .route(
            "/api/admin/providers/{id}/models",
            get(models::list_models).post(crud::create::<ModelCreate>),
        )
        .route(
            "/api/admin/providers/{pid}/models/{mid}",
            get(crud::get::<ModelFields>)
                .patch(crud::update::<ModelFields>)
                .delete(crud::delete::<ModelFields>),
        )
        .route(
            "/api/admin/users",
            get(users::list).post(crud::create::<UserCreate>),
        )
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
