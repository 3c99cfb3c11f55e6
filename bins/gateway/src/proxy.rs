//! The client API's request flow (behaviour.md 4): authenticate, read `model` and `stream`,
//! plan, try candidates with fallback, relay the answer whole or streamed, and queue one
//! usage record with a `request_candidates` row per candidate considered.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use tollgate_entities::{
    ApiFormat, BillingType, CandidateStatus, CostRequest, EffectivePricing, TokenCounts,
    UsageStatus, compute_cost, new_id, now_utc, request_candidates, usage,
};
use tollgate_resolver::{Candidate, ResolverError};

use crate::app::AppState;
use crate::auth::{ClientIdentity, authenticate};
use crate::error::{ApiError, ErrorKind};
use crate::relay::{Relay, StreamEnd};
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

async fn serve(
    state: AppState,
    format: ApiFormat,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let request_id = new_id();
    let mut response = match proxy(&state, format, &headers, body, started, &request_id).await {
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
}

/// How the request ended, for its usage row.
struct Ending {
    status: UsageStatus,
    status_code: u16,
    error: Option<String>,
    tokens: TokenCounts,
    first_byte: Option<Duration>,
}

fn millis(duration: Duration) -> i32 {
    i32::try_from(duration.as_millis()).unwrap_or(i32::MAX)
}

fn clamp(tokens: i64) -> i32 {
    i32::try_from(tokens.max(0)).unwrap_or(i32::MAX)
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
        let tokens = ending.tokens;
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
            input_tokens: clamp(tokens.input),
            output_tokens: clamp(tokens.output),
            total_tokens: clamp(
                tokens.input + tokens.output + tokens.cache_creation + tokens.cache_read,
            ),
            cache_creation_input_tokens: clamp(tokens.cache_creation),
            cache_read_input_tokens: clamp(tokens.cache_read),
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
            rate_multiplier: served.map_or(1.0, |s| s.rate_multiplier),
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
            request_metadata: None,
            created_at: self.created_at,
        }
    }

    fn record(
        &self,
        served: Option<&Served>,
        ending: &Ending,
        candidates: Vec<request_candidates::Model>,
    ) {
        let usage = self.usage_row(served, ending);
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
        let outcome = Attempt {
            http: state.http(),
            format,
            endpoint,
            key,
            secrets: state.secrets(),
            client_headers: headers,
            body,
            stream: request.stream,
        }
        .run()
        .await;
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
                let ending = Ending {
                    status: UsageStatus::Completed,
                    status_code: status.as_u16(),
                    error: None,
                    tokens: tokens::from_body(format, &body)
                        .map(|reading| reading.tokens)
                        .unwrap_or_default(),
                    first_byte: Some(started.elapsed()),
                };
                ctx.record(Some(&served), &ending, rows);
                let mut response = upstream_response(status, content_type, Body::from(body));
                routing_headers(&mut response, Some(&served), attempts);
                observe_overhead(started, upstream_time);
                return Ok(response);
            }
            Outcome::Stream {
                status,
                content_type,
                response: upstream,
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
                let mut response = stream_response(
                    &ctx,
                    &request,
                    served.clone(),
                    rows,
                    status,
                    content_type,
                    upstream,
                );
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
                state.resolver().key_health().record_failure(&key.id);
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
    }
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
    status: StatusCode,
    content_type: Option<HeaderValue>,
    upstream: reqwest::Response,
) -> Response {
    let ctx = ctx.clone();
    let started = ctx.started;
    let format = ctx.format;
    let finish = Box::new(move |end: StreamEnd| {
        let (usage_status, code, candidate_status) = match (&end.error, end.client_gone) {
            (None, _) => (
                UsageStatus::Completed,
                status.as_u16(),
                CandidateStatus::Success,
            ),
            (Some(_), true) => (UsageStatus::Failed, 499, CandidateStatus::Success),
            (Some(_), false) => (
                UsageStatus::Failed,
                status.as_u16(),
                CandidateStatus::Failed,
            ),
        };
        if let Some(row) = rows.last_mut() {
            row.status = candidate_status;
            row.finished_at = Some(now_utc());
            row.latency_ms = Some(millis(started.elapsed()));
            if candidate_status == CandidateStatus::Failed {
                row.error_type = Some("stream_error".to_owned());
                row.error_message.clone_from(&end.error);
            }
        }
        let ending = Ending {
            status: usage_status,
            status_code: code,
            error: end.error,
            tokens: end.tokens,
            first_byte: end.first_byte,
        };
        ctx.record(Some(&served), &ending, rows);
    });
    let relay = Relay::new(
        upstream.bytes_stream().boxed(),
        format,
        request.strip_usage_chunk(),
        started,
        finish,
    );
    let mut response = upstream_response(
        status,
        content_type.or(Some(HeaderValue::from_static("text/event-stream"))),
        Body::from_stream(relay),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
