//! A mock LLM provider on a local port, speaking the OpenAI and Anthropic formats (whole
//! responses and streams, with usage blocks). `--demo` routes to it, and the end-to-end
//! tests control it: latency, status codes, stream pacing, usage numbers, and a record of
//! the requests it received.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures_util::StreamExt;
use tokio::sync::oneshot;

/// Token counts the mock reports, in the provider's own terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MockUsage {
    /// Uncached input tokens (OpenAI reports `prompt_tokens` = input + cache read).
    pub input: i64,
    /// Output tokens.
    pub output: i64,
    /// Cache creation tokens (Anthropic only).
    pub cache_creation: i64,
    /// Cache read tokens (OpenAI: `prompt_tokens_details.cached_tokens`).
    pub cache_read: i64,
}

impl Default for MockUsage {
    fn default() -> Self {
        Self {
            input: 12,
            output: 8,
            cache_creation: 0,
            cache_read: 0,
        }
    }
}

/// How the mock answers. Change it while the mock runs with [`MockUpstream::set`].
#[derive(Debug, Clone)]
pub struct MockBehaviour {
    /// HTTP status; non-2xx answers carry an error body in the format's shape.
    pub status: u16,
    /// Delay before the response headers.
    pub latency: Duration,
    /// Delay between stream events.
    pub chunk_delay: Duration,
    /// Content pieces in a stream.
    pub chunks: usize,
    /// Usage reported.
    pub usage: MockUsage,
    /// Whether to send a usage block at all.
    pub send_usage: bool,
    /// Whether to keep a record of requests (turn off for load tests).
    pub record: bool,
}

impl Default for MockBehaviour {
    fn default() -> Self {
        Self {
            status: 200,
            latency: Duration::ZERO,
            chunk_delay: Duration::ZERO,
            chunks: 3,
            usage: MockUsage::default(),
            send_usage: true,
            record: true,
        }
    }
}

/// A request the mock received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// Path, e.g. `/v1/chat/completions`.
    pub path: String,
    /// Headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// The JSON body (`Null` when it was not JSON).
    pub body: serde_json::Value,
}

impl RecordedRequest {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Shared {
    behaviour: Mutex<MockBehaviour>,
    requests: Mutex<Vec<RecordedRequest>>,
    count: AtomicU64,
}

/// A running mock provider. Stops when dropped.
pub struct MockUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
}

impl std::fmt::Debug for MockUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockUpstream")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Most requests kept by the record; older ones are discarded.
const RECORD_LIMIT: usize = 10_000;

impl MockUpstream {
    /// Starts a mock on a free port of 127.0.0.1.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts a mock on `addr`.
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/v1/chat/completions", post(openai))
            .route("/v1/messages", post(claude))
            .with_state(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move {
            let server = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stopped.await;
            });
            if let Err(error) = server.await {
                tracing::error!(%error, "mock upstream stopped");
            }
        });
        Ok(Self {
            addr,
            shared,
            stop: Some(stop),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `base_url` for an `OPENAI` endpoint (ends with the version).
    pub fn openai_base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// `base_url` for a `CLAUDE` endpoint (the host).
    pub fn claude_base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes how the mock answers from the next request on.
    pub fn set(&self, change: impl FnOnce(&mut MockBehaviour)) {
        let mut behaviour = self
            .shared
            .behaviour
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        change(&mut behaviour);
    }

    /// The requests received so far (the latest 10 000 when recording).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many requests arrived, recorded or not.
    pub fn request_count(&self) -> u64 {
        self.shared.count.load(Ordering::Relaxed)
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    OpenAi,
    Claude,
}

async fn openai(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    answer(
        &shared,
        Format::OpenAi,
        "/v1/chat/completions",
        &headers,
        &body,
    )
    .await
}

async fn claude(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    answer(&shared, Format::Claude, "/v1/messages", &headers, &body).await
}

async fn answer(
    shared: &Shared,
    format: Format,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    shared.count.fetch_add(1, Ordering::Relaxed);
    let behaviour = shared
        .behaviour
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let request: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    if behaviour.record {
        let mut requests = shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if requests.len() >= RECORD_LIMIT {
            requests.remove(0);
        }
        requests.push(RecordedRequest {
            path: path.to_owned(),
            headers: headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        v.to_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect(),
            body: request.clone(),
        });
    }
    if !behaviour.latency.is_zero() {
        tokio::time::sleep(behaviour.latency).await;
    }
    let status = StatusCode::from_u16(behaviour.status).unwrap_or(StatusCode::OK);
    if !status.is_success() {
        let error = match format {
            Format::OpenAi => serde_json::json!({"error": {"message": "mock upstream error",
                "type": "mock_error", "code": status.as_u16()}}),
            Format::Claude => serde_json::json!({"type": "error", "error": {"type": "mock_error",
                "message": "mock upstream error"}}),
        };
        return (status, axum::Json(error)).into_response();
    }
    let model = request
        .get("model")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("mock-model")
        .to_owned();
    let stream = request
        .get("stream")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    if stream {
        let include_usage = match format {
            Format::OpenAi => request
                .pointer("/stream_options/include_usage")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false),
            Format::Claude => true,
        };
        let events = match format {
            Format::OpenAi => openai_events(&model, &behaviour, include_usage),
            Format::Claude => claude_events(&model, &behaviour),
        };
        let delay = behaviour.chunk_delay;
        let stream = futures_util::stream::iter(events).then(move |event| async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Ok::<_, Infallible>(Bytes::from(event))
        });
        return Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/event-stream")
            .header(header::CACHE_CONTROL, "no-cache")
            .body(Body::from_stream(stream))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    }
    let body = match format {
        Format::OpenAi => openai_body(&model, &behaviour),
        Format::Claude => claude_body(&model, &behaviour),
    };
    (StatusCode::OK, axum::Json(body)).into_response()
}

const REPLY: &str = "Hello from the tollgate mock upstream.";

fn words(chunks: usize) -> Vec<String> {
    let words: Vec<&str> = REPLY.split(' ').collect();
    let chunks = chunks.clamp(1, words.len());
    let per = words.len().div_ceil(chunks);
    words
        .chunks(per)
        .enumerate()
        .map(|(i, w)| {
            let text = w.join(" ");
            if i == 0 { text } else { format!(" {text}") }
        })
        .collect()
}

fn openai_usage(usage: MockUsage) -> serde_json::Value {
    let prompt = usage.input + usage.cache_read;
    serde_json::json!({
        "prompt_tokens": prompt,
        "completion_tokens": usage.output,
        "total_tokens": prompt + usage.output,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read},
    })
}

fn claude_usage(usage: MockUsage) -> serde_json::Value {
    serde_json::json!({
        "input_tokens": usage.input,
        "output_tokens": usage.output,
        "cache_creation_input_tokens": usage.cache_creation,
        "cache_read_input_tokens": usage.cache_read,
    })
}

fn openai_body(model: &str, behaviour: &MockBehaviour) -> serde_json::Value {
    let mut body = serde_json::json!({
        "id": "chatcmpl-mock",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": REPLY},
            "finish_reason": "stop"}],
    });
    if behaviour.send_usage {
        body["usage"] = openai_usage(behaviour.usage);
    }
    body
}

fn claude_body(model: &str, behaviour: &MockBehaviour) -> serde_json::Value {
    let mut body = serde_json::json!({
        "id": "msg_mock",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": REPLY}],
        "stop_reason": "end_turn",
        "stop_sequence": null,
    });
    if behaviour.send_usage {
        body["usage"] = claude_usage(behaviour.usage);
    }
    body
}

fn sse(data: &serde_json::Value) -> String {
    format!("data: {data}\n\n")
}

fn openai_events(model: &str, behaviour: &MockBehaviour, include_usage: bool) -> Vec<String> {
    let chunk = |delta: serde_json::Value, finish: Option<&str>| {
        let mut value = serde_json::json!({
            "id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        });
        if include_usage {
            value["usage"] = serde_json::Value::Null;
        }
        sse(&value)
    };
    let mut events = vec![chunk(
        serde_json::json!({"role": "assistant", "content": ""}),
        None,
    )];
    for piece in words(behaviour.chunks) {
        events.push(chunk(serde_json::json!({"content": piece}), None));
    }
    events.push(chunk(serde_json::json!({}), Some("stop")));
    if include_usage && behaviour.send_usage {
        events.push(sse(&serde_json::json!({
            "id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": model, "choices": [], "usage": openai_usage(behaviour.usage),
        })));
    }
    events.push("data: [DONE]\n\n".to_owned());
    events
}

fn claude_events(model: &str, behaviour: &MockBehaviour) -> Vec<String> {
    let event = |name: &str, data: serde_json::Value| format!("event: {name}\ndata: {data}\n\n");
    let usage = behaviour.usage;
    let mut start_usage = serde_json::json!({
        "input_tokens": usage.input,
        "cache_creation_input_tokens": usage.cache_creation,
        "cache_read_input_tokens": usage.cache_read,
        "output_tokens": 1,
    });
    if !behaviour.send_usage {
        start_usage = serde_json::Value::Null;
    }
    let mut message = serde_json::json!({"id": "msg_mock", "type": "message", "role": "assistant",
        "model": model, "content": [], "stop_reason": null, "stop_sequence": null});
    if behaviour.send_usage {
        message["usage"] = start_usage;
    }
    let mut events = vec![
        event(
            "message_start",
            serde_json::json!({"type": "message_start", "message": message}),
        ),
        event(
            "content_block_start",
            serde_json::json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "text", "text": ""}}),
        ),
    ];
    for piece in words(behaviour.chunks) {
        events.push(event(
            "content_block_delta",
            serde_json::json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": piece}}),
        ));
    }
    events.push(event(
        "content_block_stop",
        serde_json::json!({"type": "content_block_stop", "index": 0}),
    ));
    let mut delta = serde_json::json!({"type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": null}});
    if behaviour.send_usage {
        delta["usage"] = serde_json::json!({"output_tokens": usage.output});
    }
    events.push(event("message_delta", delta));
    events.push(event(
        "message_stop",
        serde_json::json!({"type": "message_stop"}),
    ));
    events
}
