//! Server-sent-event relay: passes an upstream stream to the client as it arrives, reads
//! the usage blocks on the way, strips OpenAI's extra usage chunk when the gateway asked
//! for it on the client's behalf, and reports how the stream ended exactly once (also when
//! the client goes away).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use futures_util::stream::BoxStream;
use tollgate_entities::{ApiFormat, TokenCounts};

use crate::tokens::StreamUsage;

/// Most bytes of an unfinished event kept for usage parsing when nothing is stripped; a
/// stream that never ends an event stops being parsed rather than growing memory.
const MAX_PENDING_EVENT: usize = 1024 * 1024;

/// How a relayed stream ended.
#[derive(Debug, Clone)]
pub(crate) struct StreamEnd {
    /// Usage seen in the stream.
    pub(crate) tokens: TokenCounts,
    /// Time from the request's start to the first upstream byte.
    pub(crate) first_byte: Option<Duration>,
    /// The upstream failed mid-stream.
    pub(crate) error: Option<String>,
    /// The client went away before the end.
    pub(crate) client_gone: bool,
}

/// Called once when the stream ends.
pub(crate) type Finish = Box<dyn FnOnce(StreamEnd) + Send>;

/// The relay stream given to the response body.
pub(crate) struct Relay {
    upstream: BoxStream<'static, Result<Bytes, reqwest::Error>>,
    pending: BytesMut,
    strip_usage_chunk: bool,
    usage: StreamUsage,
    started: Instant,
    first_byte: Option<Duration>,
    finish: Option<Finish>,
}

impl Relay {
    /// Relays `upstream`; `started` is the request's start; `finish` gets the end.
    pub(crate) fn new(
        upstream: BoxStream<'static, Result<Bytes, reqwest::Error>>,
        format: ApiFormat,
        strip_usage_chunk: bool,
        started: Instant,
        finish: Finish,
    ) -> Self {
        Self {
            upstream,
            pending: BytesMut::new(),
            strip_usage_chunk,
            usage: StreamUsage::new(format),
            started,
            first_byte: None,
            finish: Some(finish),
        }
    }

    fn end(&mut self, error: Option<String>, client_gone: bool) {
        if let Some(finish) = self.finish.take() {
            finish(StreamEnd {
                tokens: self.usage.tokens(),
                first_byte: self.first_byte,
                error,
                client_gone,
            });
        }
    }

    /// Feeds a chunk; returns what to send to the client now.
    fn process(&mut self, chunk: Bytes) -> Bytes {
        if !self.strip_usage_chunk {
            // Pass the chunk through untouched; parse a copy of complete events for usage.
            if self.pending.len() + chunk.len() <= MAX_PENDING_EVENT {
                self.pending.extend_from_slice(&chunk);
                while let Some((event_end, next)) = event_boundary(&self.pending) {
                    let event = self.pending.split_to(next);
                    observe_event(&mut self.usage, &event[..event_end]);
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
            if !observe_event(&mut self.usage, &event[..event_end]) {
                out.extend_from_slice(&event);
            }
        }
        out.freeze()
    }
}

/// Reads an event's `data:` lines; `true` when it is OpenAI's extra usage chunk.
fn observe_event(usage: &mut StreamUsage, event: &[u8]) -> bool {
    let mut data: Vec<u8> = Vec::new();
    for line in event.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(value) = line.strip_prefix(b"data:") {
            let value = value.strip_prefix(b" ").unwrap_or(value);
            if !data.is_empty() {
                data.push(b'\n');
            }
            data.extend_from_slice(value);
        }
    }
    if data.is_empty() || data == b"[DONE]" {
        return false;
    }
    usage.observe(&data)
}

/// The end of the first complete event (before its blank line) and the start of the next.
fn event_boundary(buffer: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < buffer.len() {
        if buffer[i] == b'\n' {
            let mut j = i + 1;
            if buffer.get(j) == Some(&b'\r') {
                j += 1;
            }
            if buffer.get(j) == Some(&b'\n') {
                return Some((i, j + 1));
            }
        }
        i += 1;
    }
    None
}

impl Stream for Relay {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.finish.is_none() {
                return Poll::Ready(None);
            }
            match this.upstream.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    if this.first_byte.is_none() {
                        this.first_byte = Some(this.started.elapsed());
                    }
                    let out = this.process(chunk);
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(out)));
                    }
                }
                Poll::Ready(Some(Err(error))) => {
                    let kind = if error.is_timeout() {
                        "timeout"
                    } else {
                        "read error"
                    };
                    tracing::warn!(error = %kind, "upstream stream failed after the first byte");
                    this.end(Some(format!("upstream stream failed: {kind}")), false);
                    return Poll::Ready(Some(Err(std::io::Error::other("upstream stream failed"))));
                }
                Poll::Ready(None) => {
                    let rest = if this.strip_usage_chunk {
                        this.pending.split().freeze()
                    } else {
                        Bytes::new()
                    };
                    this.end(None, false);
                    return Poll::Ready((!rest.is_empty()).then_some(Ok(rest)));
                }
            }
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        // Still unfinished: the client disconnected (or the server is going away).
        self.end(Some("client disconnected".to_owned()), true);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use bytes::Bytes;
    use futures_util::StreamExt;
    use tollgate_entities::ApiFormat;

    use super::{Relay, event_boundary};

    #[test]
    fn boundaries_accept_lf_and_crlf() {
        assert_eq!(event_boundary(b"data: 1\n\ndata: 2"), Some((7, 9)));
        assert_eq!(event_boundary(b"data: 1\r\n\r\n"), Some((8, 11)));
        assert_eq!(event_boundary(b"data: 1\n"), None);
    }

    #[tokio::test]
    async fn strips_the_usage_chunk_split_across_reads() {
        let parts: Vec<Result<Bytes, reqwest::Error>> = vec![
            Ok(Bytes::from_static(b"data: {\"choices\":[{\"delta\":{}}]}\n\ndata: {\"choi")),
            Ok(Bytes::from_static(
                b"ces\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n",
            )),
        ];
        let (tx, rx) = std::sync::mpsc::channel();
        let relay = Relay::new(
            futures_util::stream::iter(parts).boxed(),
            ApiFormat::OpenAi,
            true,
            Instant::now(),
            Box::new(move |end| tx.send(end).unwrap()),
        );
        let out: Vec<u8> = relay.map(|chunk| chunk.unwrap().to_vec()).concat().await;
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("usage"), "{text}");
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
        let end = rx.recv().unwrap();
        assert_eq!(end.tokens.input, 5);
        assert_eq!(end.tokens.output, 2);
        assert!(end.error.is_none() && !end.client_gone);
    }
}
