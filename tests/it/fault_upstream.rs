//! A scripted raw-TCP HTTP/1.1 upstream for fault tests: each connection's request is
//! recorded, then the current script runs byte by byte (stalls, resets, truncated chunked
//! streams, redirects, oversized and malformed answers), in the OpenAI or Anthropic format.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tollgate_entities::ApiFormat;

/// One step of a connection's script, run after its request was read.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// The status line and headers, then the blank line. No header is added: a body is
    /// framed by the script's own `content-length` or `transfer-encoding: chunked`.
    Head {
        status: u16,
        headers: Vec<(String, String)>,
    },
    /// Raw bytes, as they are.
    Send(Vec<u8>),
    /// One chunk of a chunked body (framing added).
    Chunk(Vec<u8>),
    /// The last chunk of a chunked body (`0\r\n\r\n`).
    EndChunks,
    /// `bytes` spaces (leading whitespace keeps a JSON answer valid), raw or as chunks, in
    /// pieces so no large buffer is built.
    Fill { bytes: usize, chunked: bool },
    /// Waits before the next step.
    Sleep(Duration),
    /// Sends nothing more and keeps the socket open until the peer closes it.
    StallForever,
    /// Closes with `SO_LINGER` 0: the peer sees a reset.
    Reset,
    /// Closes normally (a FIN), whatever the body framing promised.
    Close,
}

/// A request the upstream received.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    /// The request target, e.g. `/v1/chat/completions`.
    pub(crate) path: String,
    /// Headers with lower-case names.
    pub(crate) headers: Vec<(String, String)>,
    /// The body.
    pub(crate) body: Vec<u8>,
}

impl Recorded {
    /// Whether any header value contains `needle`.
    pub(crate) fn mentions(&self, needle: &str) -> bool {
        self.headers.iter().any(|(_, v)| v.contains(needle))
            || String::from_utf8_lossy(&self.body).contains(needle)
    }
}

#[derive(Default)]
struct Shared {
    script: Mutex<Vec<Step>>,
    requests: Mutex<Vec<Recorded>>,
    /// Connections whose peer closed while the script stalled.
    hangups: AtomicUsize,
}

/// A running scripted upstream on 127.0.0.1. Stops (and closes every connection) when
/// dropped.
pub(crate) struct FaultUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl FaultUpstream {
    /// Starts on a free port with `script` for every connection until [`FaultUpstream::set`].
    pub(crate) async fn start(script: Vec<Step>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            script: Mutex::new(script),
            ..Shared::default()
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Self {
            addr,
            shared,
            accept,
        }
    }

    /// Replaces the script of the connections that send their request from now on.
    pub(crate) fn set(&self, script: Vec<Step>) {
        *self
            .shared
            .script
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = script;
    }

    /// The requests received so far.
    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many requests arrived.
    pub(crate) fn request_count(&self) -> usize {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// How many stalled connections the peer closed.
    pub(crate) fn hangups(&self) -> usize {
        self.shared.hangups.load(Ordering::SeqCst)
    }

    /// `base_url` of an endpoint of `format` (OpenAI: with the version; Claude: the host).
    pub(crate) fn base_url(&self, format: ApiFormat) -> String {
        match format {
            ApiFormat::OpenAi => format!("http://{}/v1", self.addr),
            ApiFormat::Claude => format!("http://{}", self.addr),
        }
    }

    /// `http://addr` (for a `Location` header).
    pub(crate) fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for FaultUpstream {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection task.
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((tcp, _)) = accepted {
                    let _ = tcp.set_nodelay(true);
                    connections.spawn(serve(tcp, shared.clone()));
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Reads one request (head and `content-length` body), records it, runs the script.
async fn serve(mut tcp: TcpStream, shared: Arc<Shared>) {
    let Some(request) = read_request(&mut tcp).await else {
        return;
    };
    shared
        .requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(request);
    let script = shared
        .script
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    for step in script {
        let written = match step {
            Step::Head { status, headers } => {
                let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
                for (name, value) in headers {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
                head.push_str("\r\n");
                tcp.write_all(head.as_bytes()).await
            }
            Step::Send(bytes) => tcp.write_all(&bytes).await,
            Step::Chunk(bytes) => tcp.write_all(&chunk(&bytes)).await,
            Step::EndChunks => tcp.write_all(b"0\r\n\r\n").await,
            Step::Fill { bytes, chunked } => fill(&mut tcp, bytes, chunked).await,
            Step::Sleep(duration) => {
                tokio::time::sleep(duration).await;
                Ok(())
            }
            Step::StallForever => {
                // Whatever the peer sends is ignored; the end of its side is a hang-up.
                let mut sink = [0_u8; 1024];
                while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
                shared.hangups.fetch_add(1, Ordering::SeqCst);
                return;
            }
            Step::Reset => {
                let _ = tcp.set_zero_linger();
                drop(tcp);
                return;
            }
            Step::Close => break,
        };
        if written.is_err() {
            return;
        }
        let _ = tcp.flush().await;
    }
    let _ = tcp.shutdown().await;
}

async fn fill(tcp: &mut TcpStream, bytes: usize, chunked: bool) -> std::io::Result<()> {
    const PIECE: usize = 64 * 1024;
    let spaces = vec![b' '; PIECE];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(PIECE);
        if chunked {
            tcp.write_all(&chunk(&spaces[..n])).await?;
        } else {
            tcp.write_all(&spaces[..n]).await?;
        }
        left -= n;
    }
    Ok(())
}

fn chunk(bytes: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", bytes.len()).into_bytes();
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
    out
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        _ => "Scripted",
    }
}

/// Reads a request head and its `content-length` body; `None` when the peer left first.
async fn read_request(tcp: &mut TcpStream) -> Option<Recorded> {
    let mut buffer = Vec::new();
    let mut piece = [0_u8; 8192];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = tcp.read(&mut piece).await.ok()?;
        if n == 0 || buffer.len() > 1024 * 1024 {
            return None;
        }
        buffer.extend_from_slice(&piece[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let n = tcp.read(&mut piece).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&piece[..n]);
    }
    Some(Recorded {
        path,
        headers,
        body,
    })
}

// ---- Script builders ----

fn header(name: &str, value: &str) -> (String, String) {
    (name.to_owned(), value.to_owned())
}

/// The head of a `200` event stream, chunked, on a connection that is not reused.
pub(crate) fn stream_head() -> Step {
    Step::Head {
        status: 200,
        headers: vec![
            header("content-type", "text/event-stream"),
            header("transfer-encoding", "chunked"),
            header("connection", "close"),
        ],
    }
}

/// A whole answer of `status` with a `content-length` body.
pub(crate) fn raw_answer(status: u16, content_type: &str, body: &[u8]) -> Vec<Step> {
    vec![
        Step::Head {
            status,
            headers: vec![
                header("content-type", content_type),
                header("content-length", &body.len().to_string()),
                header("connection", "close"),
            ],
        },
        Step::Send(body.to_vec()),
    ]
}

/// A `200` JSON answer in `format` carrying `usage` (any JSON value) and `text`.
pub(crate) fn answer(format: ApiFormat, text: &str, usage: serde_json::Value) -> Vec<Step> {
    raw_answer(
        200,
        "application/json",
        answer_body(format, text, usage).to_string().as_bytes(),
    )
}

/// The JSON body of a whole answer in `format`.
pub(crate) fn answer_body(
    format: ApiFormat,
    text: &str,
    usage: serde_json::Value,
) -> serde_json::Value {
    match format {
        ApiFormat::OpenAi => serde_json::json!({
            "id": "chatcmpl-fault", "object": "chat.completion", "created": 1_700_000_000,
            "model": "fault-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                "finish_reason": "stop"}],
            "usage": usage,
        }),
        ApiFormat::Claude => serde_json::json!({
            "id": "msg_fault", "type": "message", "role": "assistant", "model": "fault-model",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": usage,
        }),
    }
}

/// A well-formed usage block of `format`.
pub(crate) fn usage_block(format: ApiFormat, input: i64, output: i64) -> serde_json::Value {
    match format {
        ApiFormat::OpenAi => serde_json::json!({"prompt_tokens": input,
            "completion_tokens": output, "total_tokens": input + output}),
        ApiFormat::Claude => serde_json::json!({"input_tokens": input, "output_tokens": output}),
    }
}

/// An answer of `bytes` bytes in total: leading spaces, then a valid JSON answer, so only a
/// size cap can refuse it. `chunked`: no `content-length`, chunked framing.
pub(crate) fn huge_answer(format: ApiFormat, bytes: usize, chunked: bool) -> Vec<Step> {
    let body = answer_body(format, "FAULT huge", usage_block(format, 5, 5)).to_string();
    let padding = bytes.saturating_sub(body.len());
    let mut headers = vec![
        header("content-type", "application/json"),
        header("connection", "close"),
    ];
    let last = if chunked {
        headers.push(header("transfer-encoding", "chunked"));
        vec![Step::Chunk(body.into_bytes()), Step::EndChunks]
    } else {
        headers.push(header("content-length", &bytes.max(body.len()).to_string()));
        vec![Step::Send(body.into_bytes())]
    };
    let mut steps = vec![
        Step::Head {
            status: 200,
            headers,
        },
        Step::Fill {
            bytes: padding,
            chunked,
        },
    ];
    steps.extend(last);
    steps
}

/// A redirect of `status` to `location`, with a small body.
pub(crate) fn redirect(status: u16, location: &str) -> Vec<Step> {
    vec![
        Step::Head {
            status,
            headers: vec![
                header("location", location),
                header("content-type", "text/plain"),
                header("content-length", "5"),
                header("connection", "close"),
            ],
        },
        Step::Send(b"moved".to_vec()),
    ]
}

/// One server-sent event (`event:` line when `name` is given) as a chunk.
pub(crate) fn sse(name: Option<&str>, data: &str) -> Step {
    let mut event = String::new();
    if let Some(name) = name {
        event.push_str(&format!("event: {name}\n"));
    }
    event.push_str(&format!("data: {data}\n\n"));
    Step::Chunk(event.into_bytes())
}

/// The opening events of a stream: OpenAI's role chunk; Anthropic's `message_start` (with
/// `usage` as `message.usage`, left out when `Null`) and `content_block_start`.
pub(crate) fn stream_start(format: ApiFormat, usage: serde_json::Value) -> Vec<Step> {
    match format {
        ApiFormat::OpenAi => vec![sse(
            None,
            &openai_chunk(
                serde_json::json!({"role": "assistant", "content": ""}),
                None,
            ),
        )],
        ApiFormat::Claude => {
            let mut message = serde_json::json!({"id": "msg_fault", "type": "message",
                "role": "assistant", "model": "fault-model", "content": [],
                "stop_reason": null, "stop_sequence": null});
            if !usage.is_null() {
                message["usage"] = usage;
            }
            vec![
                sse(
                    Some("message_start"),
                    &serde_json::json!({"type": "message_start", "message": message}).to_string(),
                ),
                sse(
                    Some("content_block_start"),
                    &serde_json::json!({"type": "content_block_start", "index": 0,
                        "content_block": {"type": "text", "text": ""}})
                    .to_string(),
                ),
            ]
        }
    }
}

fn openai_chunk(delta: serde_json::Value, finish: Option<&str>) -> String {
    serde_json::json!({"id": "chatcmpl-fault", "object": "chat.completion.chunk",
        "created": 1_700_000_000, "model": "fault-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    .to_string()
}

/// One piece of answer text.
pub(crate) fn text_event(format: ApiFormat, text: &str) -> Step {
    match format {
        ApiFormat::OpenAi => sse(
            None,
            &openai_chunk(serde_json::json!({"content": text}), None),
        ),
        ApiFormat::Claude => sse(
            Some("content_block_delta"),
            &serde_json::json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": text}})
            .to_string(),
        ),
    }
}

/// The closing events: OpenAI's finish chunk, its usage chunk (when `usage` is not `Null`)
/// and `[DONE]`; Anthropic's `content_block_stop`, `message_delta` (with `usage` when not
/// `Null`) and `message_stop`; then the last chunk.
pub(crate) fn stream_finish(format: ApiFormat, usage: serde_json::Value) -> Vec<Step> {
    let mut steps = Vec::new();
    match format {
        ApiFormat::OpenAi => {
            steps.push(sse(
                None,
                &openai_chunk(serde_json::json!({}), Some("stop")),
            ));
            if !usage.is_null() {
                steps.push(sse(
                    None,
                    &serde_json::json!({"id": "chatcmpl-fault",
                        "object": "chat.completion.chunk", "created": 1_700_000_000,
                        "model": "fault-model", "choices": [], "usage": usage})
                    .to_string(),
                ));
            }
            steps.push(sse(None, "[DONE]"));
        }
        ApiFormat::Claude => {
            steps.push(sse(
                Some("content_block_stop"),
                r#"{"type":"content_block_stop","index":0}"#,
            ));
            let mut delta = serde_json::json!({"type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": null}});
            if !usage.is_null() {
                delta["usage"] = usage;
            }
            steps.push(sse(Some("message_delta"), &delta.to_string()));
            steps.push(sse(Some("message_stop"), r#"{"type":"message_stop"}"#));
        }
    }
    steps.push(Step::EndChunks);
    steps
}

/// A whole stream: head, opening events, `text`, closing events. Anthropic carries
/// `usage` in `message_start` and `message_delta`; OpenAI in its usage chunk.
pub(crate) fn whole_stream(format: ApiFormat, text: &str, usage: serde_json::Value) -> Vec<Step> {
    let mut steps = vec![stream_head()];
    steps.extend(stream_start(format, usage.clone()));
    steps.push(text_event(format, text));
    steps.extend(stream_finish(format, usage));
    steps
}

/// The format's error object as a stream event.
pub(crate) fn error_event(format: ApiFormat) -> Step {
    match format {
        ApiFormat::OpenAi => sse(
            None,
            r#"{"error":{"message":"FAULT overloaded","type":"server_error","code":null}}"#,
        ),
        ApiFormat::Claude => sse(
            Some("error"),
            r#"{"type":"error","error":{"type":"overloaded_error","message":"FAULT overloaded"}}"#,
        ),
    }
}
