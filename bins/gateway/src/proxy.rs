//! The client API's request flow (behaviour.md 4): authenticate, read `model` and `stream`,
//! plan, try candidates with fallback, relay the answer whole or streamed, and queue one
//! usage record with a `request_candidates` row per candidate considered.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tollgate_entities::{
    ApiFormat, BillingType, CandidateStatus, CostRequest, EffectivePricing, JsonObject,
    TokenCounts, UsageStatus, compute_cost, new_id, now_utc, request_candidates, usage,
};
use tollgate_resolver::{Candidate, ResolverError};

use crate::app::AppState;
use crate::auth::{ClientIdentity, authenticate};
use crate::error::{ApiError, ErrorKind};
use crate::relay::{self, RelaySettings, StreamEnd};
use crate::request::{ClientRequest, parse_request, short};
use crate::upstream::{Attempt, Outcome};
use crate::writer::UsageRecord;
use crate::{quota, tokens};

/// `POST /v1/chat/completions`.
pub(crate) async fn chat_completions(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    serve(state, ApiFormat::OpenAi, headers, body).await
}

/// `POST /v1/messages`.
pub(crate) async fn messages(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    serve(state, ApiFormat::Claude, headers, body).await
}

/// Runs one client request in a task of its own, so the request runs to its end (and is
/// recorded) even when the client hangs up and the server drops this handler: an upstream
/// that was called is always accounted for (behaviour.md 8).
async fn serve(
    state: AppState,
    format: ApiFormat,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let request_id = new_id();
    let mut watch = ClientWatch::default();
    let client_gone = watch.gone.clone();
    let tasks = state.tasks().clone();
    let task = tasks.spawn(async move {
        let mut response = match proxy(
            &state,
            format,
            &headers,
            body,
            started,
            &request_id,
            client_gone,
        )
        .await
        {
            Ok(response) => response,
            Err(error) => error.into_response(),
        };
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("x-request-id", value);
        }
        metrics::counter!(
            "gateway_requests_total",
            "api_format" => format.as_str(),
            "status" => status_label(response.status()),
        )
        .increment(1);
        response
    });
    let response = match task.await {
        Ok(response) => response,
        Err(error) => ApiError::internal(format, "running the request", &error).into_response(),
    };
    watch.armed = false;
    response
}

/// Marks the client as gone when the server drops the handler before the answer is ready.
struct ClientWatch {
    gone: Arc<AtomicBool>,
    armed: bool,
}

impl Default for ClientWatch {
    fn default() -> Self {
        Self {
            gone: Arc::new(AtomicBool::new(false)),
            armed: true,
        }
    }
}

impl Drop for ClientWatch {
    fn drop(&mut self) {
        if self.armed {
            self.gone.store(true, Ordering::Relaxed);
        }
    }
}

/// A bounded label for a status code.
fn status_label(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200 => "200",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        413 => "413",
        429 => "429",
        500 => "500",
        502 => "502",
        503 => "503",
        code if code < 300 => "2xx",
        code if code < 500 => "4xx",
        _ => "5xx",
    }
}

/// The candidate that answered (or was tried last), owned so a stream can keep it.
#[derive(Clone)]
struct Served {
    provider: String,
    provider_id: String,
    endpoint_id: String,
    key_id: String,
    target_model: String,
    pricing: EffectivePricing,
    rate_multiplier: f64,
    billing_type: BillingType,
}

impl Served {
    fn of(candidate: &Candidate<'_>, global: &tollgate_entities::global_models::Model) -> Self {
        Self {
            provider: candidate.provider.name.clone(),
            provider_id: candidate.provider.id.clone(),
            endpoint_id: candidate.endpoint.map(|e| e.id.clone()).unwrap_or_default(),
            key_id: candidate.key.map(|k| k.id.clone()).unwrap_or_default(),
            target_model: candidate.upstream_model_name.to_owned(),
            pricing: EffectivePricing::resolve(
                candidate.model.tiered_pricing.as_ref(),
                candidate.model.price_per_request,
                &global.default_tiered_pricing,
                global.default_price_per_request,
            ),
            rate_multiplier: candidate.key.map_or(1.0, |k| k.rate_multiplier),
            billing_type: candidate.provider.billing_type,
        }
    }
}

/// What every row of one request shares.
#[derive(Clone)]
struct RequestContext {
    state: AppState,
    format: ApiFormat,
    request_id: String,
    identity: ClientIdentity,
    model: String,
    global_model: Option<String>,
    is_stream: bool,
    created_at: time::OffsetDateTime,
    started: Instant,
    /// Size of the client's body: the base of the input estimate (`estimate`).
    request_bytes: usize,
    /// Set when the client hung up before the answer was handed over.
    client_gone: Arc<AtomicBool>,
}

/// How the request ended, for its usage row.
struct Ending {
    status: UsageStatus,
    status_code: u16,
    error: Option<String>,
    tokens: TokenCounts,
    first_byte: Option<Duration>,
    /// What `request_metadata` says about how the tokens were obtained.
    notes: serde_json::Map<String, serde_json::Value>,
}

/// Error message of a request whose client hung up.
const CLIENT_DISCONNECTED: &str = "client disconnected";

/// Status code recorded for a request whose client hung up (nginx's convention).
const CLIENT_CLOSED_REQUEST: u16 = 499;

impl Ending {
    /// A successful answer whose usage block (if any) was `reading`; when the client is
    /// already gone it is recorded as a failed 499 with the upstream's tokens.
    fn answered(
        status: StatusCode,
        reading: Option<tokens::UsageReading>,
        first_byte: Duration,
        client_gone: bool,
    ) -> Self {
        let reading = reading.unwrap_or_default();
        let mut ending = Self {
            status: UsageStatus::Completed,
            status_code: status.as_u16(),
            error: None,
            tokens: reading.tokens,
            first_byte: Some(first_byte),
            notes: serde_json::Map::new(),
        };
        ending.note_clamped(reading.clamped);
        if client_gone {
            ending.client_gone();
        }
        ending
    }

    fn client_gone(&mut self) {
        self.status = UsageStatus::Failed;
        self.status_code = CLIENT_CLOSED_REQUEST;
        self.error = Some(CLIENT_DISCONNECTED.to_owned());
    }

    fn note_clamped(&mut self, clamped: Vec<String>) {
        if !clamped.is_empty() {
            self.notes
                .insert("usage_clamped".to_owned(), serde_json::json!(clamped));
        }
    }

    /// Estimates what an interrupted stream used when the client left before the upstream's
    /// usage block: input = ⌈request body bytes / 4⌉ unless the upstream reported it, output
    /// = the larger of what it reported and ⌈relayed answer characters / 4⌉ (about four
    /// characters a token). `request_metadata.tokens_estimated` records it.
    fn estimate(&mut self, end: &StreamEnd, request_bytes: usize) {
        let quarter = |n: u64| i64::try_from(n.div_ceil(4)).unwrap_or(i64::MAX);
        if !end.usage_seen {
            self.tokens.input = quarter(request_bytes as u64);
        }
        self.tokens.output = self.tokens.output.max(quarter(end.text_chars));
        self.notes.insert(
            "tokens_estimated".to_owned(),
            serde_json::json!({
                "reason": "client disconnected before the upstream's usage block",
                "input": !end.usage_seen,
                "output": true,
                "rule": "input = request bytes / 4, output = relayed answer characters / 4",
            }),
        );
    }
}

fn millis(duration: Duration) -> i32 {
    i32::try_from(duration.as_millis()).unwrap_or(i32::MAX)
}

impl RequestContext {
    fn candidate_row(
        &self,
        index: usize,
        candidate: &Candidate<'_>,
        status: CandidateStatus,
    ) -> request_candidates::Model {
        request_candidates::Model {
            id: new_id(),
            request_id: self.request_id.clone(),
            user_id: Some(self.identity.user_id.clone()),
            api_key_id: Some(self.identity.key_id.clone()),
            candidate_index: i32::try_from(index).unwrap_or(i32::MAX),
            retry_index: 0,
            provider_id: Some(candidate.provider.id.clone()),
            endpoint_id: candidate.endpoint.map(|e| e.id.clone()),
            key_id: candidate.key.map(|k| k.id.clone()),
            status,
            skip_reason: candidate.skip_reason.map(|r| r.as_str().to_owned()),
            is_cached: false,
            status_code: None,
            error_type: None,
            error_message: None,
            latency_ms: None,
            extra_data: None,
            created_at: now_utc(),
            started_at: None,
            finished_at: None,
        }
    }

    fn usage_row(&self, served: Option<&Served>, ending: &Ending) -> usage::Model {
        let succeeded = ending.status == UsageStatus::Completed;
        let cost = served.map(|served| {
            compute_cost(&CostRequest {
                pricing: &served.pricing,
                api_format: self.format,
                tokens: ending.tokens,
                rate_multiplier: served.rate_multiplier,
                billing_type: served.billing_type,
                succeeded,
            })
        });
        let cost = cost.unwrap_or_default();
        let tokens = ending.tokens.clamped();
        let columns = tokens.columns();
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        usage::Model {
            id: new_id(),
            user_id: Some(self.identity.user_id.clone()),
            api_key_id: Some(self.identity.key_id.clone()),
            request_id: self.request_id.clone(),
            provider: served.map(|s| s.provider.clone()).unwrap_or_default(),
            model: self.model.chars().take(200).collect(),
            global_model: self.global_model.clone(),
            target_model: served.map(|s| s.target_model.clone()),
            provider_id: served.map(|s| s.provider_id.clone()),
            provider_endpoint_id: served.and_then(|s| non_empty(&s.endpoint_id)),
            provider_api_key_id: served.and_then(|s| non_empty(&s.key_id)),
            input_tokens: columns[0],
            output_tokens: columns[1],
            total_tokens: tokens.total_i32(),
            cache_creation_input_tokens: columns[2],
            cache_read_input_tokens: columns[3],
            input_cost_usd: cost.input_cost,
            output_cost_usd: cost.output_cost,
            cache_creation_cost_usd: cost.cache_creation_cost,
            cache_read_cost_usd: cost.cache_read_cost,
            cache_cost_usd: cost.cache_cost,
            request_cost_usd: cost.request_cost,
            total_cost_usd: cost.total_cost,
            actual_input_cost_usd: cost.actual_input_cost,
            actual_output_cost_usd: cost.actual_output_cost,
            actual_cache_creation_cost_usd: cost.actual_cache_creation_cost,
            actual_cache_read_cost_usd: cost.actual_cache_read_cost,
            actual_request_cost_usd: cost.actual_request_cost,
            actual_total_cost_usd: cost.actual_total_cost,
            rate_multiplier: served.map_or(1.0, |_| cost.rate_multiplier),
            input_price_per_1m: cost.input_price_per_1m,
            output_price_per_1m: cost.output_price_per_1m,
            cache_creation_price_per_1m: cost.cache_creation_price_per_1m,
            cache_read_price_per_1m: cost.cache_read_price_per_1m,
            price_per_request: cost.price_per_request,
            request_type: "chat".to_owned(),
            api_format: self.format.as_str().to_owned(),
            is_stream: self.is_stream,
            status_code: Some(i32::from(ending.status_code)),
            error_message: ending.error.clone(),
            response_time_ms: Some(millis(self.started.elapsed())),
            first_byte_time_ms: ending.first_byte.map(millis),
            status: ending.status,
            request_metadata: (!ending.notes.is_empty()).then(|| JsonObject(ending.notes.clone())),
            created_at: self.created_at,
        }
    }

    fn record(
        &self,
        served: Option<&Served>,
        ending: &Ending,
        candidates: Vec<request_candidates::Model>,
    ) {
        let mut usage = self.usage_row(served, ending);
        // Client- and upstream-supplied text must never be what makes the database reject a
        // row (behaviour.md 7).
        usage.fit_columns();
        let mut candidates = candidates;
        for row in &mut candidates {
            row.fit_columns();
        }
        if self.identity.quota_usd.is_some() {
            self.state.spend().record(
                &self.identity.user_id,
                time::OffsetDateTime::now_utc().unix_timestamp(),
                usage.total_cost_usd,
            );
        }
        self.state.usage().send(UsageRecord { usage, candidates });
    }
}

fn finish_row(
    row: &mut request_candidates::Model,
    status: CandidateStatus,
    status_code: Option<u16>,
    error: Option<(&str, String)>,
    started_at: time::OffsetDateTime,
    latency: Duration,
) {
    row.status = status;
    row.status_code = status_code.map(i32::from);
    if let Some((error_type, message)) = error {
        row.error_type = Some(error_type.to_owned());
        row.error_message = Some(message);
    }
    row.started_at = Some(started_at);
    row.finished_at = Some(now_utc());
    row.latency_ms = Some(millis(latency));
}

fn set_header(response: &mut Response, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

fn routing_headers(response: &mut Response, served: Option<&Served>, attempts: usize) {
    if let Some(served) = served {
        set_header(response, "x-tollgate-provider", &served.provider);
        set_header(response, "x-tollgate-model", &served.target_model);
    }
    set_header(response, "x-tollgate-attempts", &attempts.to_string());
}

fn upstream_response(
    status: StatusCode,
    content_type: Option<HeaderValue>,
    body: Body,
) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        content_type.unwrap_or(HeaderValue::from_static("application/json")),
    );
    response
}

async fn proxy(
    state: &AppState,
    format: ApiFormat,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    started: Instant,
    request_id: &str,
    client_gone: Arc<AtomicBool>,
) -> Result<Response, ApiError> {
    let created_at = now_utc();
    let identity = authenticate(state.conn(), state.cache(), format, headers).await?;
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                ErrorKind::PayloadTooLarge,
                format,
                format!(
                    "request body is larger than the limit of {} bytes",
                    state.body_limit()
                ),
            )
        } else {
            ApiError::new(
                ErrorKind::InvalidRequest,
                format,
                format!("cannot read request body: {}", rejection.body_text()),
            )
        }
    })?;
    let request = parse_request(format, &body)?;
    let request_bytes = body.len();
    drop(body);
    let mut ctx = RequestContext {
        state: state.clone(),
        format,
        request_id: request_id.to_owned(),
        identity,
        model: request.model.clone(),
        global_model: None,
        is_stream: request.stream,
        created_at,
        started,
        request_bytes,
        client_gone,
    };
    if let Err(error) = check_quota(state, format, &ctx.identity) {
        ctx.record(None, &failed_ending(&error), Vec::new());
        return Err(error);
    }
    let planned = state
        .resolver()
        .plan(&request.model, format, Some(&ctx.identity.key_id))
        .await;
    let (resolved, plan) = match planned {
        Ok(Some(found)) => found,
        Ok(None) => {
            let error = ApiError::new(
                ErrorKind::ModelNotFound,
                format,
                format!("model `{}` not found", short(request.model.trim())),
            );
            ctx.record(None, &failed_ending(&error), Vec::new());
            return Err(error);
        }
        Err(ResolverError::InvalidName { name, reason }) => {
            return Err(ApiError::new(
                ErrorKind::InvalidRequest,
                format,
                format!("invalid model name `{name}`: {reason}"),
            ));
        }
        Err(error) => {
            tracing::error!(%error, "routing plan failed");
            return Err(ApiError::new(
                ErrorKind::Unavailable,
                format,
                "catalogue unavailable",
            ));
        }
    };
    let global = &resolved.global_model;
    ctx.global_model = Some(global.name.clone());
    let mut rows: Vec<request_candidates::Model> = Vec::new();
    let mut attempts = 0_usize;
    let mut upstream_time = Duration::ZERO;
    let mut last: Option<(Served, String)> = None;
    for (index, candidate) in plan.candidates().enumerate() {
        let (Some(endpoint), Some(key), None) =
            (candidate.endpoint, candidate.key, candidate.skip_reason)
        else {
            rows.push(ctx.candidate_row(index, &candidate, CandidateStatus::Skipped));
            continue;
        };
        attempts += 1;
        let attempt_started_at = now_utc();
        let attempt_started = Instant::now();
        let body = request
            .upstream_body(candidate.upstream_model_name)
            .map_err(|error| ApiError::internal(format, "serialising the upstream body", &error))?;
        let attempt = Attempt {
            http: state.http(),
            format,
            endpoint,
            key,
            secrets: state.secrets(),
            client_headers: headers,
            body,
            stream: request.stream,
            max_response_bytes: state.limits().max_response_bytes,
        };
        let mut drain = state.drain_signal();
        let outcome = tokio::select! {
            biased;
            () = drain.cut() => Outcome::Failed {
                status: None,
                error_type: SHUTDOWN,
                message: "the gateway is shutting down".to_owned(),
            },
            outcome = attempt.run() => outcome,
        };
        let latency = attempt_started.elapsed();
        upstream_time += latency;
        metrics::counter!(
            "gateway_upstream_attempts_total",
            "provider" => candidate.provider.name.clone(),
            "outcome" => outcome.label(),
        )
        .increment(1);
        let mut row = ctx.candidate_row(index, &candidate, CandidateStatus::Pending);
        let served = Served::of(&candidate, global);
        match outcome {
            Outcome::Whole {
                status,
                content_type,
                body,
            } => {
                state.resolver().key_health().record_success(&key.id);
                finish_row(
                    &mut row,
                    CandidateStatus::Success,
                    Some(status.as_u16()),
                    None,
                    attempt_started_at,
                    latency,
                );
                rows.push(row);
                let ending = Ending::answered(
                    status,
                    tokens::from_body(format, &body),
                    started.elapsed(),
                    ctx.client_gone.load(Ordering::Relaxed),
                );
                ctx.record(Some(&served), &ending, rows);
                let mut response = upstream_response(status, content_type, Body::from(body));
                routing_headers(&mut response, Some(&served), attempts);
                observe_overhead(started, upstream_time);
                return Ok(response);
            }
            Outcome::Stream {
                status,
                content_type,
                first,
                rest,
            } => {
                state.resolver().key_health().record_success(&key.id);
                finish_row(
                    &mut row,
                    CandidateStatus::Streaming,
                    Some(status.as_u16()),
                    None,
                    attempt_started_at,
                    latency,
                );
                rows.push(row);
                observe_overhead(started, upstream_time);
                let relayed = Relayed {
                    status,
                    content_type,
                    first,
                    rest,
                    idle: endpoint_timeout(endpoint),
                };
                let mut response = stream_response(&ctx, &request, served.clone(), rows, relayed);
                routing_headers(&mut response, Some(&served), attempts);
                return Ok(response);
            }
            Outcome::ClientError {
                status,
                content_type,
                body,
            } => {
                finish_row(
                    &mut row,
                    CandidateStatus::Failed,
                    Some(status.as_u16()),
                    Some(("client_error", format!("upstream answered {status}"))),
                    attempt_started_at,
                    latency,
                );
                rows.push(row);
                let ending = Ending {
                    status: UsageStatus::Failed,
                    status_code: status.as_u16(),
                    error: Some(format!("upstream answered {status}")),
                    tokens: TokenCounts::default(),
                    first_byte: Some(started.elapsed()),
                    notes: serde_json::Map::new(),
                };
                ctx.record(Some(&served), &ending, rows);
                let mut response = upstream_response(status, content_type, Body::from(body));
                routing_headers(&mut response, Some(&served), attempts);
                observe_overhead(started, upstream_time);
                return Ok(response);
            }
            Outcome::Failed {
                status,
                error_type,
                message,
            } => {
                let shutting_down = error_type == SHUTDOWN;
                if !shutting_down {
                    state.resolver().key_health().record_failure(&key.id);
                }
                tracing::warn!(
                    request_id = %ctx.request_id,
                    provider = %candidate.provider.name,
                    error_type,
                    status,
                    "upstream attempt failed; trying the next candidate"
                );
                finish_row(
                    &mut row,
                    CandidateStatus::Failed,
                    status,
                    Some((error_type, message.clone())),
                    attempt_started_at,
                    latency,
                );
                rows.push(row);
                last = Some((served, message));
                if shutting_down {
                    break;
                }
            }
        }
    }
    let error = match &last {
        None => ApiError::new(
            ErrorKind::NoCandidate,
            format,
            format!("no usable upstream for model `{}`", global.name),
        ),
        Some((_, message)) => ApiError::new(
            ErrorKind::Upstream,
            format,
            format!(
                "all {attempts} upstream attempts failed for model `{}` (last: {message})",
                global.name
            ),
        ),
    };
    ctx.record(last.as_ref().map(|(s, _)| s), &failed_ending(&error), rows);
    let mut response = error.into_response();
    routing_headers(&mut response, last.as_ref().map(|(s, _)| s), attempts);
    observe_overhead(started, upstream_time);
    Ok(response)
}

/// 402 when the client key's user has spent their quota (see `quota`).
fn check_quota(
    state: &AppState,
    format: ApiFormat,
    identity: &ClientIdentity,
) -> Result<(), ApiError> {
    let Some(quota) = identity.quota_usd else {
        return Ok(());
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let recent = state
        .spend()
        .spent_since(&identity.user_id, identity.loaded_at_unix, now);
    if quota::within(Some(quota), identity.used_usd, recent) {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorKind::QuotaExceeded,
        format,
        format!(
            "quota exceeded: this key's user has spent {:.4} of a {quota:.4} USD quota",
            identity.used_usd + recent
        ),
    ))
}

fn failed_ending(error: &ApiError) -> Ending {
    Ending {
        status: UsageStatus::Failed,
        status_code: error.status().as_u16(),
        error: Some(error.to_string()),
        tokens: TokenCounts::default(),
        first_byte: None,
        notes: serde_json::Map::new(),
    }
}

/// The `error_type` of an attempt cut by the shutdown.
const SHUTDOWN: &str = "shutdown";

/// An endpoint's timeout: the bound of every upstream wait (behaviour.md 8).
fn endpoint_timeout(endpoint: &tollgate_entities::provider_endpoints::Model) -> Duration {
    Duration::from_secs(u64::try_from(endpoint.timeout.max(1)).unwrap_or(1))
}

/// A streamed answer whose first event has arrived.
struct Relayed {
    status: StatusCode,
    content_type: Option<HeaderValue>,
    first: Bytes,
    rest: crate::upstream::ByteStream,
    idle: Duration,
}

fn observe_overhead(started: Instant, upstream: Duration) {
    let overhead = started.elapsed().saturating_sub(upstream);
    metrics::histogram!("gateway_overhead_seconds").record(overhead.as_secs_f64());
}

fn stream_response(
    ctx: &RequestContext,
    request: &ClientRequest,
    served: Served,
    mut rows: Vec<request_candidates::Model>,
    relayed: Relayed,
) -> Response {
    let settings = RelaySettings {
        format: ctx.format,
        strip_usage_chunk: request.strip_usage_chunk(),
        idle: relayed.idle,
        grace: ctx.state.limits().stream_grace,
        drain: ctx.state.drain_signal(),
        tasks: ctx.state.tasks().clone(),
    };
    let ctx = ctx.clone();
    let started = ctx.started;
    let first_byte = started.elapsed();
    let status = relayed.status;
    let finish = Box::new(move |end: StreamEnd| {
        let upstream_failed = end.error.is_some() && !end.client_gone;
        let mut ending = Ending {
            status: UsageStatus::Completed,
            status_code: status.as_u16(),
            error: None,
            tokens: end.tokens,
            first_byte: Some(first_byte),
            notes: serde_json::Map::new(),
        };
        ending.note_clamped(end.clamped.clone());
        if end.client_gone {
            ending.client_gone();
            // The upstream's own numbers only when its usage block arrived and the stream
            // ran to its end; otherwise what was relayed is estimated.
            if !end.completed || !end.usage_seen {
                ending.estimate(&end, ctx.request_bytes);
            }
        } else if let Some(error) = &end.error {
            ending.status = UsageStatus::Failed;
            ending.error = Some(error.clone());
        }
        if let Some(row) = rows.last_mut() {
            row.finished_at = Some(now_utc());
            row.latency_ms = Some(millis(started.elapsed()));
            if upstream_failed {
                row.status = CandidateStatus::Failed;
                row.error_type = Some("stream_error".to_owned());
                row.error_message.clone_from(&end.error);
            } else {
                row.status = CandidateStatus::Success;
            }
        }
        ctx.record(Some(&served), &ending, rows);
    });
    let body = relay::spawn(settings, relayed.first, relayed.rest, finish);
    let mut response = upstream_response(
        status,
        relayed
            .content_type
            .or(Some(HeaderValue::from_static("text/event-stream"))),
        body,
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
