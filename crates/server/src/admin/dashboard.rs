//! The dashboard API: combined statistics, the daily series with per-model breakdown and a
//! user's daily series, over `tollgate-stats`. Answers are cached for a few seconds per
//! caller key, never shared between callers.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use sea_orm::EntityTrait;
use serde::Deserialize;
use tollgate_entities::users;

use super::error::AdminError;
use super::extract::{Admin, AdminId, AdminQuery, Caller};
use crate::app::AppState;

/// The dashboard routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/dashboard/stats", get(combined))
        .route("/api/dashboard/daily-stats", get(daily))
        .route("/api/dashboard/users/{id}/daily-stats", get(user_daily))
}

/// `?days=N`, 1 to 90 (default 7).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DaysQuery {
    #[serde(default)]
    days: Option<String>,
}

impl DaysQuery {
    fn days(&self) -> Result<u32, AdminError> {
        let Some(text) = &self.days else {
            return Ok(7);
        };
        match text.parse::<u32>() {
            Ok(days) if (1..=90).contains(&days) => Ok(days),
            _ => Err(AdminError::bad_request(format!(
                "days `{text}` must be a whole number from 1 to 90"
            ))),
        }
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, AdminError> {
    serde_json::to_value(value)
        .map_err(|error| AdminError::internal("dashboard serialisation", &error))
}

/// `GET /api/dashboard/stats`: summary + aggregated days since its cutoff + today live.
pub(crate) async fn combined(
    Admin(caller): Admin,
    State(state): State<AppState>,
) -> Result<Json<Arc<serde_json::Value>>, AdminError> {
    let key = format!("{}|stats", caller.key_id);
    let answer = state
        .dashboard()
        .answer(key, || async {
            let combined = state.stats().combined().await.map_err(AdminError::from)?;
            to_json(&combined)
        })
        .await?;
    Ok(Json(answer))
}

/// `GET /api/dashboard/daily-stats?days=N`: one entry per business day, zeros included,
/// with per-model breakdown.
pub(crate) async fn daily(
    Admin(caller): Admin,
    State(state): State<AppState>,
    AdminQuery(query): AdminQuery<DaysQuery>,
) -> Result<Json<Arc<serde_json::Value>>, AdminError> {
    let days = query.days()?;
    let key = format!("{}|daily|{days}", caller.key_id);
    let answer = state
        .dashboard()
        .answer(key, || async {
            let series = state
                .stats()
                .daily_series(days)
                .await
                .map_err(AdminError::from)?;
            Ok(serde_json::json!({
                "timezone": state.stats().calendar().zone_name(),
                "days": to_json(&series)?,
            }))
        })
        .await?;
    Ok(Json(answer))
}

/// `GET /api/dashboard/users/{id}/daily-stats?days=N`: an admin may read any user; any
/// other caller only their own user.
pub(crate) async fn user_daily(
    caller: Caller,
    State(state): State<AppState>,
    AdminId(user_id): AdminId,
    AdminQuery(query): AdminQuery<DaysQuery>,
) -> Result<Json<Arc<serde_json::Value>>, AdminError> {
    if !caller.is_admin() && caller.0.user_id != user_id {
        return Err(AdminError::forbidden(
            "a user may read only their own statistics",
        ));
    }
    let days = query.days()?;
    if users::Entity::find_by_id(user_id.clone())
        .one(state.conn())
        .await?
        .is_none()
    {
        return Err(AdminError::not_found("user", &user_id));
    }
    let key = format!("{}|user|{user_id}|{days}", caller.0.key_id);
    let answer = state
        .dashboard()
        .answer(key, || async {
            let series = state
                .stats()
                .user_daily_series(&user_id, days)
                .await
                .map_err(AdminError::from)?;
            Ok(serde_json::json!({
                "user_id": user_id,
                "timezone": state.stats().calendar().zone_name(),
                "days": to_json(&series)?,
            }))
        })
        .await?;
    Ok(Json(answer))
}
