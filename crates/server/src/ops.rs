//! Operations endpoints (`/health`, `/ready`, `/metrics`), the model list, and the JSON 404.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use tollgate_entities::{ApiFormat, global_models};

use crate::app::AppState;
use crate::auth::authenticate;
use crate::error::ApiError;

/// `GET /health`: the process answers.
pub(crate) async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// `GET /ready`: the usage writer is not stalled and the database answers.
pub(crate) async fn ready(State(state): State<AppState>) -> Response {
    let writer = state.usage().health();
    if let Some(reason) = writer.stall_reason() {
        tracing::warn!(
            waiting = writer.waiting,
            oldest_record_age_s = writer.oldest_age.as_secs(),
            "readiness check: {reason}"
        );
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({
                "status": "unavailable",
                "reason": reason,
                "usage_writer": {
                    "waiting": writer.waiting,
                    "oldest_record_age_seconds": writer.oldest_age.as_secs_f64(),
                    "seconds_since_progress": writer.since_progress.as_secs_f64(),
                },
            })),
        )
            .into_response();
    }
    match state.conn().ping().await {
        Ok(()) => Json(serde_json::json!({"status": "ready"})).into_response(),
        Err(error) => {
            tracing::warn!(%error, "readiness check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(
                    serde_json::json!({"status": "unavailable", "reason": "database unreachable"}),
                ),
            )
                .into_response()
        }
    }
}

/// `GET /metrics`: Prometheus text.
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    match state.metrics() {
        Some(handle) => {
            handle.run_upkeep();
            (
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                handle.render(),
            )
                .into_response()
        }
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder not installed\n",
        )
            .into_response(),
    }
}

/// Unknown routes: a JSON 404 in the OpenAI shape.
pub(crate) async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({"error": {"message": "unknown route",
            "type": "invalid_request_error", "code": "not_found"}})),
    )
        .into_response()
}

/// `GET /v1/models`: active global models with at least one usable candidate in either
/// format, in OpenAI's list shape.
pub(crate) async fn models(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let format = ApiFormat::OpenAi;
    let identity = match authenticate(state.conn(), state.cache(), format, &headers).await {
        Ok(identity) => identity,
        Err(error) => return error.into_response(),
    };
    let globals = match global_models::Entity::find()
        .filter(global_models::Column::IsActive.eq(true))
        .order_by_asc(global_models::Column::Name)
        .all(state.conn())
        .await
    {
        Ok(globals) => globals,
        Err(error) => {
            return ApiError::internal(format, "listing global models", &error).into_response();
        }
    };
    let mut data = Vec::new();
    for global in globals {
        let mut usable = false;
        for api_format in [ApiFormat::OpenAi, ApiFormat::Claude] {
            if let Ok(Some((resolved, plan))) = state
                .resolver()
                .plan(&global.name, api_format, Some(&identity.key_id))
                .await
                && resolved.global_model.id == global.id
                && plan.has_usable()
            {
                usable = true;
                break;
            }
        }
        if usable {
            data.push(serde_json::json!({
                "id": global.name,
                "object": "model",
                "created": global.created_at.unix_timestamp(),
                "owned_by": "tollgate",
            }));
        }
    }
    Json(serde_json::json!({"object": "list", "data": data})).into_response()
}
