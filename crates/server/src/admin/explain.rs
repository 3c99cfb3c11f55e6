//! `GET /api/admin/resolve?model=NAME`: how a name resolves and where its requests would go,
//! and `DELETE /api/admin/cache/model-mapping`.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use tollgate_entities::ApiFormat;

use super::error::AdminError;
use super::extract::{Admin, AdminQuery};
use crate::app::AppState;

/// Query of the explainer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExplainQuery {
    model: String,
    /// `OPENAI` (default) or `CLAUDE`.
    #[serde(default)]
    api_format: Option<String>,
    /// The client key id whose affinity orders ties (default: none).
    #[serde(default)]
    client_key_id: Option<String>,
}

#[derive(Debug, Serialize)]
struct ResolvedView {
    global_model_id: String,
    global_model: String,
    method: &'static str,
    cache_tier: &'static str,
}

#[derive(Debug, Serialize)]
struct CandidateView {
    index: usize,
    provider_id: String,
    provider: String,
    provider_priority: i32,
    model_id: String,
    endpoint_id: Option<String>,
    base_url: Option<String>,
    key_id: Option<String>,
    key_name: Option<String>,
    key_masked: Option<String>,
    internal_priority: Option<i32>,
    upstream_model_name: String,
    usable: bool,
    skip_reason: Option<&'static str>,
}

/// The explainer's answer.
#[derive(Debug, Serialize)]
pub(crate) struct Explanation {
    model: String,
    api_format: ApiFormat,
    resolution_order: &'static str,
    resolved: Option<ResolvedView>,
    candidates: Vec<CandidateView>,
}

/// `GET /api/admin/resolve`.
pub(crate) async fn explain(
    _: Admin,
    State(state): State<AppState>,
    AdminQuery(query): AdminQuery<ExplainQuery>,
) -> Result<Json<Explanation>, AdminError> {
    let api_format = match query.api_format.as_deref() {
        None => ApiFormat::OpenAi,
        Some(text) => text.parse().map_err(|_| {
            AdminError::bad_request(format!("api_format `{text}` is not OPENAI or CLAUDE"))
        })?,
    };
    let resolver = state.resolver();
    let planned = resolver
        .plan(&query.model, api_format, query.client_key_id.as_deref())
        .await
        .map_err(AdminError::from)?;
    let mut explanation = Explanation {
        model: query.model.trim().to_owned(),
        api_format,
        resolution_order: resolver.config().resolution_order.as_str(),
        resolved: None,
        candidates: Vec::new(),
    };
    if let Some((resolved, plan)) = planned {
        explanation.resolved = Some(ResolvedView {
            global_model_id: resolved.global_model.id.clone(),
            global_model: resolved.global_model.name.clone(),
            method: resolved.method.as_str(),
            cache_tier: resolved.tier.as_str(),
        });
        explanation.candidates = plan
            .candidates()
            .enumerate()
            .map(|(index, candidate)| CandidateView {
                index,
                provider_id: candidate.provider.id.clone(),
                provider: candidate.provider.name.clone(),
                provider_priority: candidate.provider.provider_priority,
                model_id: candidate.model.id.clone(),
                endpoint_id: candidate.endpoint.map(|e| e.id.clone()),
                base_url: candidate.endpoint.map(|e| e.base_url.clone()),
                key_id: candidate.key.map(|k| k.id.clone()),
                key_name: candidate.key.map(|k| k.name.clone()),
                key_masked: candidate.key.map(|k| state.secrets().hint(&k.api_key)),
                internal_priority: candidate.key.map(|k| k.internal_priority),
                upstream_model_name: candidate.upstream_model_name.to_owned(),
                usable: candidate.is_usable(),
                skip_reason: candidate.skip_reason.map(|r| r.as_str()),
            })
            .collect();
    }
    Ok(Json(explanation))
}

/// `DELETE /api/admin/cache/model-mapping`: drops every cached model entry in every tier and
/// replica.
pub(crate) async fn flush(
    _: Admin,
    State(state): State<AppState>,
) -> Result<Json<serde_json::Value>, AdminError> {
    match state.resolver().flush().await {
        Ok(removed) => Ok(Json(
            serde_json::json!({ "flushed": true, "redis_keys_removed": removed }),
        )),
        Err(error) => {
            tracing::warn!(%error, "cache flush did not reach redis");
            Err(AdminError::unavailable(
                "in-process caches were flushed, but Redis could not be reached: other replicas keep their entries until they expire",
            ))
        }
    }
}
