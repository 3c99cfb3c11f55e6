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
    ApiFormat, CandidateStatus, TokenCounts, UsageStatus, new_id, now_utc, provider_api_keys,
    provider_endpoints, request_candidates,
};
use tollgate_resolver::Candidate;

use crate::app::AppState;
use crate::auth::authenticate;
use crate::error::{ApiError, ErrorCode};
use crate::ledger::{Attempts, Ending, RequestContext, Served, check_quota, failed_ending, millis};
use crate::relay::{self, RelaySettings, StreamEnd};
use crate::request::{ClientRequest, parse_request, short};
use crate::upstream::{Attempt, Outcome};
use tollgate_accounting::usage_from_body;

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

/// Steps 1 to 5 of behaviour.md 4: admit the request, plan its candidates, try them in
/// order, and settle the first answer (or the failure when none answers).
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
    let request = read_request(state, format, body)?;
    let mut ctx = RequestContext {
        state: state.clone(),
        format,
        request_id: request_id.to_owned(),
        identity,
        model: request.client.model.clone(),
        global_model: None,
        is_stream: request.client.stream,
        created_at,
        started,
        request_bytes: request.bytes,
        client_gone,
    };
    if let Err(error) = check_quota(state, format, &ctx.identity) {
        ctx.record(None, &failed_ending(&error), Vec::new());
        return Err(error);
    }
    let (resolved, plan) = match state
        .resolver()
        .plan(&request.client.model, format, Some(&ctx.identity.key_id))
        .await
    {
        Ok(Some(found)) => found,
        Ok(None) => {
            let error = ApiError::new(
                ErrorCode::ModelNotFound,
                format,
                format!("model `{}` not found", short(request.client.model.trim())),
            );
            ctx.record(None, &failed_ending(&error), Vec::new());
            return Err(error);
        }
        Err(error) => return Err(ApiError::from_failure(format, error)),
    };
    let global = &resolved.global_model;
    ctx.global_model = Some(global.name.clone());
    let mut ledger = Attempts::default();
    for (index, candidate) in plan.candidates().enumerate() {
        let (Some(endpoint), Some(key), None) =
            (candidate.endpoint, candidate.key, candidate.skip_reason)
        else {
            ledger
                .rows
                .push(ctx.candidate_row(index, &candidate, CandidateStatus::Skipped));
            continue;
        };
        let mut row = ctx.candidate_row(index, &candidate, CandidateStatus::Pending);
        let outcome = ledger
            .attempt(
                &mut row,
                attempt(&ctx, &request.client, headers, &candidate, endpoint, key)?,
            )
            .await;
        metrics::counter!(
            "gateway_upstream_attempts_total",
            "provider" => candidate.provider.name.clone(),
            "outcome" => outcome.label(),
        )
        .increment(1);
        let served = Served::of(&candidate, global);
        match answered(
            &ctx,
            &request.client,
            &mut ledger,
            row,
            served,
            endpoint,
            key,
            outcome,
        ) {
            Step::Answer(response) => return Ok(response),
            Step::Next => {}
            Step::Stop => break,
        }
    }
    Ok(exhausted(&ctx, ledger, &global.name))
}

/// A client request as read: the parsed body and its size.
struct ReadRequest {
    client: ClientRequest,
    bytes: usize,
}

/// Step 2: the body within its limit, parsed (`model`, `stream`; the rest kept raw).
fn read_request(
    state: &AppState,
    format: ApiFormat,
    body: Result<Bytes, BytesRejection>,
) -> Result<ReadRequest, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                ErrorCode::RequestTooLarge,
                format,
                format!(
                    "request body is larger than the limit of {} bytes",
                    state.body_limit()
                ),
            )
        } else {
            ApiError::new(
                ErrorCode::InvalidRequest,
                format,
                format!("cannot read request body: {}", rejection.body_text()),
            )
        }
    })?;
    Ok(ReadRequest {
        client: parse_request(format, &body)?,
        bytes: body.len(),
    })
}

/// Step 4: one upstream attempt at `candidate`, given up when the shutdown cuts.
fn attempt<'a>(
    ctx: &'a RequestContext,
    request: &ClientRequest,
    headers: &'a HeaderMap,
    candidate: &Candidate<'a>,
    endpoint: &'a provider_endpoints::Model,
    key: &'a provider_api_keys::Model,
) -> Result<impl Future<Output = Outcome> + 'a, ApiError> {
    let state = &ctx.state;
    let body = request
        .upstream_body(candidate.upstream_model_name)
        .map_err(|error| ApiError::internal(ctx.format, "serialising the upstream body", &error))?;
    let attempt = Attempt {
        http: state.http(),
        format: ctx.format,
        endpoint,
        key,
        secrets: state.secrets(),
        client_headers: headers,
        body,
        stream: request.stream,
        max_response_bytes: state.limits().max_response_bytes,
    };
    let mut drain = state.drain_signal();
    Ok(async move {
        tokio::select! {
            biased;
            () = drain.cut() => Outcome::Failed {
                status: None,
                error_type: SHUTDOWN,
                message: "the gateway is shutting down".to_owned(),
            },
            outcome = attempt.run() => outcome,
        }
    })
}

/// What the attempt loop does after one attempt.
enum Step {
    /// The request is answered (settled, or streaming with its row recorded at the end).
    Answer(Response),
    /// Try the next candidate.
    Next,
    /// Stop trying: the gateway is shutting down.
    Stop,
}

/// Step 4's decision on one attempt's outcome: an answer (whole, streamed, or the
/// upstream's own 4xx) ends the request; a failure falls back to the next candidate.
#[expect(
    clippy::too_many_arguments,
    reason = "one attempt's whole context, passed once from the loop"
)]
fn answered(
    ctx: &RequestContext,
    request: &ClientRequest,
    ledger: &mut Attempts,
    row: request_candidates::Model,
    served: Served,
    endpoint: &provider_endpoints::Model,
    key: &provider_api_keys::Model,
    outcome: Outcome,
) -> Step {
    let (state, started) = (&ctx.state, ctx.started);
    match outcome {
        Outcome::Whole {
            status,
            content_type,
            body,
        } => {
            state.resolver().key_health().record_success(&key.id);
            ledger.finish(row, CandidateStatus::Success, Some(status.as_u16()), None);
            let ending = Ending::answered(
                status,
                usage_from_body(ctx.format, &body),
                started.elapsed(),
                ctx.client_gone.load(Ordering::Relaxed),
            );
            let response = upstream_response(status, content_type, Body::from(body));
            Step::Answer(settle(ctx, ledger, Some(&served), &ending, response))
        }
        Outcome::Stream {
            status,
            content_type,
            first,
            rest,
        } => {
            state.resolver().key_health().record_success(&key.id);
            ledger.finish(row, CandidateStatus::Streaming, Some(status.as_u16()), None);
            observe_overhead(started, ledger.upstream_time);
            let relayed = Relayed {
                status,
                content_type,
                first,
                rest,
                idle: endpoint_timeout(endpoint),
            };
            // The usage row is recorded when the stream ends (`stream_response`).
            let rows = std::mem::take(&mut ledger.rows);
            let mut response = stream_response(ctx, request, served.clone(), rows, relayed);
            routing_headers(&mut response, Some(&served), ledger.count);
            Step::Answer(response)
        }
        Outcome::ClientError {
            status,
            content_type,
            body,
        } => {
            let message = format!("upstream answered {status}");
            let failure = ("client_error", message.clone());
            ledger.finish(
                row,
                CandidateStatus::Failed,
                Some(status.as_u16()),
                Some(failure),
            );
            let ending = Ending {
                status: UsageStatus::Failed,
                status_code: status.as_u16(),
                error: Some(message),
                tokens: TokenCounts::default(),
                first_byte: Some(started.elapsed()),
                notes: serde_json::Map::new(),
            };
            let response = upstream_response(status, content_type, Body::from(body));
            Step::Answer(settle(ctx, ledger, Some(&served), &ending, response))
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
                provider = %served.provider,
                error_type,
                status,
                "upstream attempt failed; trying the next candidate"
            );
            ledger.finish(
                row,
                CandidateStatus::Failed,
                status,
                Some((error_type, message.clone())),
            );
            ledger.last = Some((served, message));
            if shutting_down {
                Step::Stop
            } else {
                Step::Next
            }
        }
    }
}

/// Step 5: no candidate answered; the failure is settled like an answer.
fn exhausted(ctx: &RequestContext, mut ledger: Attempts, global_name: &str) -> Response {
    let error = match &ledger.last {
        None => ApiError::new(
            ErrorCode::NoAvailableProvider,
            ctx.format,
            format!("no usable upstream for model `{global_name}`"),
        ),
        Some((_, message)) => ApiError::new(
            ErrorCode::UpstreamError,
            ctx.format,
            format!(
                "all {} upstream attempts failed for model `{global_name}` (last: {message})",
                ledger.count
            ),
        ),
    };
    let served = ledger.last.as_ref().map(|(served, _)| served.clone());
    let ending = failed_ending(&error);
    settle(
        ctx,
        &mut ledger,
        served.as_ref(),
        &ending,
        error.into_response(),
    )
}

/// The one settle step of a request that ends now: its usage row is recorded with its
/// candidate rows, and the answer gets the routing headers.
fn settle(
    ctx: &RequestContext,
    ledger: &mut Attempts,
    served: Option<&Served>,
    ending: &Ending,
    mut response: Response,
) -> Response {
    ctx.record(served, ending, std::mem::take(&mut ledger.rows));
    routing_headers(&mut response, served, ledger.count);
    observe_overhead(ctx.started, ledger.upstream_time);
    response
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
