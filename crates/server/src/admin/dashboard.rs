//! The dashboard API: combined statistics, the daily and hourly series, per-provider and
//! per-client-key breakdowns, and a user's or a client key's own daily series, over
//! `tollgate-stats` (which reads rollups, never scans past days). Answers are cached for a
//! few seconds per caller key, never shared between callers.

use std::future::Future;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use sea_orm::EntityTrait;
use serde::Deserialize;
use serde_json::json;
use tollgate_entities::{api_keys, users};
use tollgate_stats::{BreakdownBy, StatsError};

use super::error::AdminError;
use super::extract::{Admin, AdminId, AdminQuery, Caller};
use crate::app::AppState;

/// The dashboard routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/dashboard/stats", get(combined))
        .route("/api/dashboard/daily-stats", get(daily))
        .route("/api/dashboard/users/{id}/daily-stats", get(user_daily))
        .route("/api/dashboard/hourly-stats", get(hourly))
        .route("/api/dashboard/breakdown", get(breakdown))
        .route("/api/dashboard/keys/{id}/daily-stats", get(key_daily))
}

/// A whole number from `min` to `max` in query parameter `name`, or `default`.
fn bounded(name: &str, text: Option<&String>, default: u32, max: u32) -> Result<u32, AdminError> {
    let Some(text) = text else {
        return Ok(default);
    };
    match text.parse::<u32>() {
        Ok(value) if (1..=max).contains(&value) => Ok(value),
        _ => Err(AdminError::bad_request(format!(
            "{name} `{text}` must be a whole number from 1 to {max}"
        ))),
    }
}

/// `?hours=N`, 1 to 168 (default 24).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HoursQuery {
    #[serde(default)]
    hours: Option<String>,
}

/// `?by=provider|api_key&days=N`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BreakdownQuery {
    #[serde(default)]
    by: Option<String>,
    #[serde(default)]
    days: Option<String>,
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
        bounded("days", self.days.as_ref(), 7, 90)
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, AdminError> {
    serde_json::to_value(value)
        .map_err(|error| AdminError::internal("dashboard serialisation", &error))
}

/// The answer cached under `key` (the caller's key id first), or else `series` computed: as
/// JSON, shaped by `answer` with the business timezone's name.
async fn cached<T: serde::Serialize>(
    state: &AppState,
    key: String,
    series: impl Future<Output = Result<T, StatsError>>,
    answer: impl FnOnce(&str, serde_json::Value) -> serde_json::Value,
) -> Result<Json<Arc<serde_json::Value>>, AdminError> {
    state
        .dashboard()
        .answer(key, || async {
            let series = to_json(&series.await?)?;
            Ok(answer(state.stats().calendar().zone_name(), series))
        })
        .await
}

/// `GET /api/dashboard/stats`: summary + aggregated days since its cutoff + today live.
pub(crate) async fn combined(
    Admin(caller): Admin,
    State(state): State<AppState>,
) -> Result<Json<Arc<serde_json::Value>>, AdminError> {
    let key = format!("{}|stats", caller.key_id);
    cached(&state, key, state.stats().combined(), |_, stats| stats).await
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
    cached(
        &state,
        key,
        state.stats().daily_series(days),
        |zone, days| json!({ "timezone": zone, "days": days }),
    )
    .await
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
    let series = state.stats().user_daily_series(&user_id, days);
    cached(
        &state,
        key,
        series,
        |zone, days| json!({ "user_id": user_id, "timezone": zone, "days": days }),
    )
    .await
}

/// `GET /api/dashboard/hourly-stats?hours=N`: the last N business hours, the current one
/// included, oldest first.
pub(crate) async fn hourly(
    Admin(caller): Admin,
    State(state): State<AppState>,
    AdminQuery(query): AdminQuery<HoursQuery>,
) -> Result<Json<Arc<serde_json::Value>>, AdminError> {
    let hours = bounded("hours", query.hours.as_ref(), 24, 168)?;
    let key = format!("{}|hourly|{hours}", caller.key_id);
    cached(
        &state,
        key,
        state.stats().hourly_series(hours),
        |zone, hours| json!({ "timezone": zone, "hours": hours }),
    )
    .await
}

/// `GET /api/dashboard/breakdown?by=provider|api_key&days=N`: totals per provider or
/// client key over the last N business days.
pub(crate) async fn breakdown(
    Admin(caller): Admin,
    State(state): State<AppState>,
    AdminQuery(query): AdminQuery<BreakdownQuery>,
) -> Result<Json<Arc<serde_json::Value>>, AdminError> {
    let by = match query.by.as_deref() {
        None | Some("provider") => BreakdownBy::Provider,
        Some("api_key") => BreakdownBy::ApiKey,
        Some(other) => {
            return Err(AdminError::bad_request(format!(
                "by `{other}` must be `provider` or `api_key`"
            )));
        }
    };
    let days = bounded("days", query.days.as_ref(), 7, 90)?;
    let key = format!("{}|breakdown|{by:?}|{days}", caller.key_id);
    cached(
        &state,
        key,
        state.stats().breakdown(by, days),
        |zone, mut totals| {
            totals["timezone"] = zone.into();
            totals
        },
    )
    .await
}

/// `GET /api/dashboard/keys/{id}/daily-stats?days=N`: one client key's daily series; an
/// admin may read any key, any other caller only keys of their own user.
pub(crate) async fn key_daily(
    caller: Caller,
    State(state): State<AppState>,
    AdminId(key_id): AdminId,
    AdminQuery(query): AdminQuery<DaysQuery>,
) -> Result<Json<Arc<serde_json::Value>>, AdminError> {
    let days = query.days()?;
    let api_key = api_keys::Entity::find_by_id(key_id.clone())
        .one(state.conn())
        .await?;
    // A non-admin learns nothing about keys that are not theirs, not even whether they exist.
    let own = api_key
        .as_ref()
        .is_some_and(|api_key| api_key.user_id == caller.0.user_id);
    if !caller.is_admin() && !own {
        return Err(AdminError::forbidden(
            "a user may read only the statistics of their own client keys",
        ));
    }
    if api_key.is_none() {
        return Err(AdminError::not_found("client key", &key_id));
    }
    let key = format!("{}|key|{key_id}|{days}", caller.0.key_id);
    let series = state.stats().api_key_daily_series(&key_id, days);
    cached(
        &state,
        key,
        series,
        |zone, days| json!({ "api_key_id": key_id, "timezone": zone, "days": days }),
    )
    .await
}
