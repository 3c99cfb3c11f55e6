//! Server-sent-event relay (behaviour.md 8): one task per stream reads the upstream and
//! passes events to the client as they arrive, reads the usage blocks on the way, strips
//! OpenAI's extra usage chunk when the gateway asked for it on the client's behalf, bounds
//! every upstream silence by the endpoint's timeout, ends a failed stream with the format's
//! error event, keeps reading for a grace period after the client leaves (so hanging up
//! early does not hide the usage block), and reports how the stream ended exactly once.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;
use tollgate_entities::{ApiFormat, TokenCounts};

use crate::drain::DrainSignal;
use crate::sse::{event_boundary, event_data};
use crate::upstream::ByteStream;
use tollgate_accounting::StreamUsage;

/// Most bytes of an unfinished event kept for usage parsing when nothing is stripped; a
/// stream that never ends an event stops being parsed rather than growing memory.
const MAX_PENDING_EVENT: usize = 1024 * 1024;

/// Chunks waiting for a slow client before the relay stops reading the upstream.
const CLIENT_QUEUE: usize = 16;

/// How long the relay tries to hand the final error event to the client.
const ERROR_EVENT_WAIT: Duration = Duration::from_secs(1);

/// How a relayed stream ended.
#[derive(Debug, Clone, Default)]
pub(crate) struct StreamEnd {
    /// Usage seen in the stream (clamped to the columns' range).
    pub(crate) tokens: TokenCounts,
    /// Notes on usage values that had to be clamped.
    pub(crate) clamped: Vec<String>,
    /// Whether the upstream sent a usage block at all.
    pub(crate) usage_seen: bool,
    /// Characters of answer text relayed (OpenAI `content`, Anthropic `text` deltas): the
    /// base of the output estimate when a client leaves before the usage block.
    pub(crate) text_chars: u64,
    /// The upstream stream reached its end.
    pub(crate) completed: bool,
    /// The stream failed (upstream error, silence, or shutdown).
    pub(crate) error: Option<String>,
    /// The client went away before the end.
    pub(crate) client_gone: bool,
}

/// Called once when the stream ends.
pub(crate) type Finish = Box<dyn FnOnce(StreamEnd) + Send>;

/// How a stream is relayed.
pub(crate) struct RelaySettings {
    /// The client's format (error events are written in it).
    pub(crate) format: ApiFormat,
    /// Leave out OpenAI's extra usage chunk.
    pub(crate) strip_usage_chunk: bool,
    /// Longest upstream silence (the endpoint's timeout), and longest wait for a client
    /// that does not read.
    pub(crate) idle: Duration,
    /// How long to keep reading the upstream after the client left.
    pub(crate) grace: Duration,
    /// Cuts the stream at shutdown.
    pub(crate) drain: DrainSignal,
    /// Where the relay task is spawned (a shutdown waits for it).
    pub(crate) tasks: TaskTracker,
}

/// Starts the relay task over an upstream whose first bytes were already read, and returns
/// the client's response body.
pub(crate) fn spawn(
    settings: RelaySettings,
    first: Bytes,
    rest: ByteStream,
    finish: Finish,
) -> Body {
    let (tx, rx) = mpsc::channel::<Bytes>(CLIENT_QUEUE);
    let tasks = settings.tasks.clone();
    let relay = Relay {
        pending: BytesMut::new(),
        usage: StreamUsage::new(settings.format),
        text_chars: 0,
        settings,
    };
    tasks.spawn(relay.run(first, rest, tx, finish));
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(chunk), rx))
    }))
}

struct Relay {
    settings: RelaySettings,
    pending: BytesMut,
    usage: StreamUsage,
    text_chars: u64,
}

/// The client side of the relay: gone once a send fails or times out.
struct Client {
    tx: Option<mpsc::Sender<Bytes>>,
    gone_at: Option<Instant>,
}

impl Client {
    async fn deliver(&mut self, chunk: Bytes, wait: Duration) {
        if chunk.is_empty() {
            return;
        }
        if let Some(tx) = &self.tx {
            match tokio::time::timeout(wait, tx.send(chunk)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => self.leave(),
            }
        }
    }

    fn leave(&mut self) {
        if self.tx.take().is_some() {
            self.gone_at = Some(Instant::now());
        }
    }

    /// Resolves when the client's body was dropped (never, once it is known gone).
    async fn closed(&self) {
        match &self.tx {
            Some(tx) => tx.closed().await,
            None => std::future::pending().await,
        }
    }
}

impl Relay {
    async fn run(
        mut self,
        first: Bytes,
        mut upstream: ByteStream,
        tx: mpsc::Sender<Bytes>,
        finish: Finish,
    ) {
        let idle = self.settings.idle;
        let grace = self.settings.grace;
        let mut drain = self.settings.drain.clone();
        let mut client = Client {
            tx: Some(tx),
            gone_at: None,
        };
        let mut error: Option<String> = None;
        let mut completed = false;
        let out = self.process(first);
        client.deliver(out, idle).await;
        loop {
            let wait = match client.gone_at {
                None => idle,
                Some(gone_at) => grace.saturating_sub(gone_at.elapsed()),
            };
            let next = tokio::select! {
                biased;
                () = drain.cut() => {
                    if client.gone_at.is_none() {
                        error = Some("the gateway is shutting down".to_owned());
                    }
                    break;
                }
                () = client.closed() => {
                    client.leave();
                    continue;
                }
                next = tokio::time::timeout(wait, upstream.next()) => next,
            };
            match next {
                Err(_) if client.gone_at.is_some() => break,
                Err(_) => {
                    error = Some(format!(
                        "upstream sent nothing for {} s",
                        idle.as_secs_f64()
                    ));
                    break;
                }
                Ok(None) => {
                    completed = true;
                    if self.settings.strip_usage_chunk {
                        let rest = self.pending.split().freeze();
                        client.deliver(rest, idle).await;
                    }
                    break;
                }
                Ok(Some(Err(failure))) => {
                    let kind = if failure.is_timeout() {
                        "timeout"
                    } else {
                        "read error"
                    };
                    error = Some(format!("upstream stream failed: {kind}"));
                    break;
                }
                Ok(Some(Ok(chunk))) => {
                    let out = self.process(chunk);
                    client.deliver(out, idle).await;
                }
            }
        }
        if let Some(message) = &error {
            tracing::warn!(error = %message, "stream ended early");
            let event = self.error_event(message);
            client.deliver(event, ERROR_EVENT_WAIT).await;
        }
        // Recorded before the client's body ends, so a client that has read the whole
        // answer finds its usage already queued.
        let client_gone = client.gone_at.is_some();
        finish(StreamEnd {
            tokens: self.usage.tokens(),
            clamped: self.usage.clamped().to_vec(),
            usage_seen: self.usage.seen(),
            text_chars: self.text_chars,
            completed,
            error,
            client_gone,
        });
        drop(client);
    }

    /// The format's error event, preceded by an event boundary when the client was left in
    /// the middle of an event.
    fn error_event(&self, message: &str) -> Bytes {
        let mut out = String::new();
        if !self.settings.strip_usage_chunk && !self.pending.is_empty() {
            out.push_str("\n\n");
        }
        match self.settings.format {
            ApiFormat::OpenAi => {
                let body = serde_json::json!({"error": {"message": message,
                    "type": "upstream_error", "code": "stream_error"}});
                out.push_str(&format!("data: {body}\n\n"));
            }
            ApiFormat::Claude => {
                let body = serde_json::json!({"type": "error",
                    "error": {"type": "api_error", "message": message}});
                out.push_str(&format!("event: error\ndata: {body}\n\n"));
            }
        }
        Bytes::from(out)
    }

    /// Feeds a chunk; returns what to send to the client now.
    fn process(&mut self, chunk: Bytes) -> Bytes {
        if !self.settings.strip_usage_chunk {
            // Pass the chunk through untouched; parse a copy of complete events for usage.
            if self.pending.len() + chunk.len() <= MAX_PENDING_EVENT {
                self.pending.extend_from_slice(&chunk);
                while let Some((event_end, next)) = event_boundary(&self.pending) {
                    let event = self.pending.split_to(next);
                    self.observe(&event[..event_end]);
                }
            } else {
                self.pending.clear();
            }
            return chunk;
        }
        // Event by event, so the usage chunk can be left out.
        self.pending.extend_from_slice(&chunk);
        let mut out = BytesMut::new();
        while let Some((event_end, next)) = event_boundary(&self.pending) {
            let event = self.pending.split_to(next);
            if !self.observe(&event[..event_end]) {
                out.extend_from_slice(&event);
            }
        }
        out.freeze()
    }

    /// Reads one event; `true` when it is OpenAI's extra usage chunk.
    fn observe(&mut self, event: &[u8]) -> bool {
        let Some(data) = event_data(event) else {
            return false;
        };
        if data == b"[DONE]" {
            return false;
        }
        self.text_chars += text_chars(&data);
        self.usage.observe(&data)
    }
}

/// Characters of answer text in one event: the string value of its first `"content":` (an
/// OpenAI delta) or `"text":` (an Anthropic text delta), read without parsing the JSON. An
/// escape sequence counts as one character.
fn text_chars(data: &[u8]) -> u64 {
    let start = [&b"\"content\":\""[..], &b"\"text\":\""[..]]
        .iter()
        .find_map(|needle| find(data, needle).map(|at| at + needle.len()));
    let Some(start) = start else {
        return 0;
    };
    let mut count = 0;
    let mut bytes = data[start..].iter();
    while let Some(byte) = bytes.next() {
        match byte {
            b'"' => break,
            b'\\' => {
                bytes.next();
                count += 1;
            }
            // Continuation bytes of a multi-byte character are not characters.
            byte if byte & 0xC0 == 0x80 => {}
            _ => count += 1,
        }
    }
    count
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use futures_util::StreamExt;
    use tollgate_entities::ApiFormat;

    use super::{RelaySettings, StreamEnd, spawn, text_chars};
    use crate::drain::Drain;

    #[test]
    fn text_is_counted_without_parsing() {
        assert_eq!(
            text_chars(br#"{"choices":[{"delta":{"content":"h\"i \u00e9"}}]}"#),
            9
        );
        assert_eq!(
            text_chars("{\"delta\":{\"type\":\"text_delta\",\"text\":\"h\u{e9}\"}}".as_bytes()),
            2
        );
        assert_eq!(text_chars(br#"{"usage":{"output_tokens":3}}"#), 0);
    }

    fn settings(format: ApiFormat, strip: bool, drain: &Drain) -> RelaySettings {
        RelaySettings {
            format,
            strip_usage_chunk: strip,
            idle: Duration::from_millis(200),
            grace: Duration::from_millis(300),
            drain: drain.signal(),
            tasks: tokio_util::task::TaskTracker::new(),
        }
    }

    #[tokio::test]
    async fn strips_the_usage_chunk_split_across_reads() {
        let parts: Vec<Result<Bytes, reqwest::Error>> = vec![Ok(Bytes::from_static(
            b"ces\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n",
        ))];
        let (tx, rx) = std::sync::mpsc::channel();
        let drain = Drain::default();
        let body = spawn(
            settings(ApiFormat::OpenAi, true, &drain),
            Bytes::from_static(b"data: {\"choices\":[{\"delta\":{}}]}\n\ndata: {\"choi"),
            futures_util::stream::iter(parts).boxed(),
            Box::new(move |end| tx.send(end).unwrap()),
        );
        let out = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(!text.contains("usage"), "{text}");
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
        let end: StreamEnd = rx.recv().unwrap();
        assert_eq!(end.tokens.input, 5);
        assert_eq!(end.tokens.output, 2);
        assert!(end.error.is_none() && !end.client_gone && end.completed);
    }

    #[tokio::test]
    async fn a_silent_upstream_ends_with_the_formats_error_event() {
        for (format, expected) in [
            (ApiFormat::OpenAi, "data: {\"error\":"),
            (
                ApiFormat::Claude,
                "event: error\ndata: {\"error\":{\"message\"",
            ),
        ] {
            let (tx, rx) = std::sync::mpsc::channel();
            let drain = Drain::default();
            let body = spawn(
                settings(format, false, &drain),
                // Half an event: the error event must start on a boundary of its own.
                Bytes::from_static(b"data: {\"choices\":[]}\n\ndata: {\"cho"),
                futures_util::stream::pending().boxed(),
                Box::new(move |end| tx.send(end).unwrap()),
            );
            let out = axum::body::to_bytes(body, usize::MAX).await.unwrap();
            let text = String::from_utf8(out.to_vec()).unwrap();
            assert!(text.contains(&format!("\n\n{expected}")), "{text}");
            assert!(text.ends_with("\n\n"), "{text}");
            let end: StreamEnd = rx.recv().unwrap();
            assert!(end.error.unwrap().contains("nothing"));
            assert!(!end.client_gone && !end.completed);
        }
    }

    #[tokio::test]
    async fn a_client_that_leaves_still_gets_the_usage_block_read() {
        let (tx, rx) = std::sync::mpsc::channel();
        let drain = Drain::default();
        let (up_tx, up_rx) =
            tokio::sync::mpsc::unbounded_channel::<Result<Bytes, reqwest::Error>>();
        let upstream = futures_util::stream::unfold(up_rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        let body = spawn(
            settings(ApiFormat::OpenAi, false, &drain),
            Bytes::from_static(b"data: {\"choices\":[{\"delta\":{\"content\":\"hello\"}}]}\n\n"),
            upstream.boxed(),
            Box::new(move |end| tx.send(end).unwrap()),
        );
        drop(body);
        tokio::time::sleep(Duration::from_millis(50)).await;
        up_tx
            .send(Ok(Bytes::from_static(
                b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":9}}\n\n",
            )))
            .unwrap();
        drop(up_tx);
        let end: StreamEnd = tokio::task::spawn_blocking(move || rx.recv().unwrap())
            .await
            .unwrap();
        assert!(end.client_gone && end.completed && end.usage_seen);
        assert_eq!((end.tokens.input, end.tokens.output), (7, 9));
        assert_eq!(end.text_chars, 5);
    }

    #[tokio::test]
    async fn the_drain_cut_ends_an_open_stream() {
        let (tx, rx) = std::sync::mpsc::channel();
        let drain = Drain::default();
        let mut relay_settings = settings(ApiFormat::Claude, false, &drain);
        relay_settings.idle = Duration::from_secs(60);
        let body = spawn(
            relay_settings,
            Bytes::from_static(b"event: ping\ndata: {\"type\":\"ping\"}\n\n"),
            futures_util::stream::pending().boxed(),
            Box::new(move |end| tx.send(end).unwrap()),
        );
        drain.cut();
        let out = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        assert!(String::from_utf8_lossy(&out).contains("event: error"));
        let end: StreamEnd = rx.recv().unwrap();
        assert!(end.error.unwrap().contains("shutting down"));
    }
}
