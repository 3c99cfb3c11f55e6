//! `GET /api/admin/catalog` (export) and `PUT /api/admin/catalog` (import): the catalogue as
//! one document in the `--catalog` file's shape, one type both ways ([`CatalogFile`]). Exports
//! carry no upstream secrets and no plaintext client keys (hashes only); an import must supply
//! the secrets again.

use axum::Json;
use axum::extract::State;
use tollgate_catalogue::{CatalogFile, CatalogSummary, apply_catalog, export_catalog};

use super::error::AdminError;
use super::extract::{Admin, AdminJson};
use crate::app::AppState;

/// `GET /api/admin/catalog`.
pub(crate) async fn export(
    _: Admin,
    State(state): State<AppState>,
) -> Result<Json<CatalogFile>, AdminError> {
    Ok(Json(export_catalog(state.conn()).await?))
}

/// `PUT /api/admin/catalog`: upserts the document (rows it does not mention are kept), then
/// drops every cached model entry in every replica.
pub(crate) async fn import(
    _: Admin,
    State(state): State<AppState>,
    AdminJson(document): AdminJson<CatalogFile>,
) -> Result<Json<CatalogSummary>, AdminError> {
    let summary = apply_catalog(state.conn(), &document, state.secrets()).await?;
    if let Err(error) = state.resolver().flush().await {
        tracing::warn!(%error, "cache flush after catalogue import did not reach redis");
    }
    Ok(Json(summary))
}
