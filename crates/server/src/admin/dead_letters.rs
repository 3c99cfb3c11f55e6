//! Usage dead letters (behaviour.md 7): list what the database refused, and replay it after a
//! fix, idempotent by request id.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Deserialize;
use tollgate_entities::usage_dead_letters;

use super::error::AdminError;
use super::extract::{Admin, AdminQuery, all_rows, parse_json};
use crate::app::AppState;
use tollgate_accounting::{REPLAY_LIMIT, ReplayError, ReplayReport};

/// Most dead letters one listing returns.
const LIST_LIMIT: u64 = 1000;

/// `GET /api/admin/usage/dead-letters` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// How many, newest first: 1 to 1000, default 100.
    #[serde(default)]
    limit: Option<u64>,
    /// Whether replayed dead letters are listed too (default false).
    #[serde(default)]
    include_replayed: bool,
}

/// `POST /api/admin/usage/dead-letters/replay` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplayBody {
    /// The dead letters to replay (default: every unreplayed one, oldest first, at most
    /// 1000 per call).
    #[serde(default)]
    ids: Option<Vec<String>>,
}

/// `GET /api/admin/usage/dead-letters`: newest first.
pub(crate) async fn list(
    _: Admin,
    State(state): State<AppState>,
    AdminQuery(query): AdminQuery<ListQuery>,
) -> Result<Json<Vec<usage_dead_letters::Model>>, AdminError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=LIST_LIMIT).contains(&limit) {
        return Err(AdminError::bad_request(format!(
            "limit must be between 1 and {LIST_LIMIT}, got {limit}"
        )));
    }
    let mut select = usage_dead_letters::Entity::find();
    if !query.include_replayed {
        select = select.filter(usage_dead_letters::Column::ReplayedAt.is_null());
    }
    all_rows(
        &state,
        select
            .order_by_desc(usage_dead_letters::Column::CreatedAt)
            .order_by_desc(usage_dead_letters::Column::Id)
            .limit(limit),
    )
    .await
}

/// `POST /api/admin/usage/dead-letters/replay`: imports the fallback file, then writes the
/// records. A record that still fails is listed in `failed`, never a 500.
pub(crate) async fn replay(
    _: Admin,
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ReplayReport>, AdminError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            AdminError::too_large("request body is over the size limit")
        } else {
            AdminError::bad_request(format!("cannot read request body: {rejection}"))
        }
    })?;
    // No body (or an empty one) replays the default set.
    let body: ReplayBody = if body.iter().all(u8::is_ascii_whitespace) {
        ReplayBody::default()
    } else {
        parse_json(&body)?
    };
    if let Some(ids) = &body.ids
        && ids.len() > REPLAY_LIMIT
    {
        return Err(AdminError::invalid_field(
            "ids",
            format!("at most {REPLAY_LIMIT} ids per call, got {}", ids.len()),
        ));
    }
    match state
        .usage()
        .replay(state.conn(), body.ids.as_deref())
        .await
    {
        Ok(report) => Ok(Json(report)),
        Err(ReplayError::Unavailable(error)) => {
            tracing::warn!(%error, "dead-letter replay stopped: database unavailable");
            Err(AdminError::unavailable(
                "database unavailable; what was replayed stays replayed, call again later",
            ))
        }
        Err(error) => Err(AdminError::internal("dead-letter replay", &error)),
    }
}
