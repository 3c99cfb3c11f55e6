//! One upstream attempt: URL and header conventions of each format, the endpoint's timeout,
//! the size cap of whole answers, a stream's first event, and the classification of what
//! came back (behaviour.md 4 step 4 and 8).

use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::time::Instant;
use tollgate_entities::{ApiFormat, provider_api_keys, provider_endpoints};

use tollgate_catalogue::SecretBox;

/// `anthropic-version` sent when the client sent none.
const DEFAULT_ANTHROPIC_VERSION: &str = "2023-06-01";

/// Client headers passed on to Claude endpoints besides the body.
const CLAUDE_PASSTHROUGH: [&str; 2] = ["anthropic-version", "anthropic-beta"];

/// The upstream URL: OpenAI `base_url` ends with the version and gets `/chat/completions`;
/// Claude `base_url` is the host and gets `/v1/messages`.
pub(crate) fn upstream_url(format: ApiFormat, base_url: &str) -> String {
    let base = base_url.trim_end_matches('/');
    match format {
        ApiFormat::OpenAi => format!("{base}/chat/completions"),
        ApiFormat::Claude => format!("{base}/v1/messages"),
    }
}

/// The byte stream of an upstream body.
pub(crate) type ByteStream = BoxStream<'static, Result<Bytes, reqwest::Error>>;

/// What one attempt produced.
pub(crate) enum Outcome {
    /// 2xx with the whole body read.
    Whole {
        status: StatusCode,
        content_type: Option<HeaderValue>,
        body: Bytes,
    },
    /// 2xx to a streaming request whose first event arrived and is valid for the format: the
    /// rest of the body is still to be relayed.
    Stream {
        status: StatusCode,
        content_type: Option<HeaderValue>,
        /// The bytes read so far (at least one complete event).
        first: Bytes,
        /// The rest of the body.
        rest: ByteStream,
    },
    /// A 4xx other than 401/403/429: the client's fault, returned as is, no fallback.
    ClientError {
        status: StatusCode,
        content_type: Option<HeaderValue>,
        body: Bytes,
    },
    /// Connect error, timeout, redirect, 401/403/429, 5xx, an answer too large, or a stream
    /// that failed before its first event: try the next candidate.
    Failed {
        status: Option<u16>,
        error_type: &'static str,
        message: String,
    },
}

impl Outcome {
    /// The bounded `outcome` label of `gateway_upstream_attempts_total`.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Self::Whole { .. } | Self::Stream { .. } => "success",
            Self::ClientError { .. } => "client_error",
            Self::Failed { error_type, .. } => error_type,
        }
    }

    fn failed(status: Option<u16>, error_type: &'static str, message: String) -> Self {
        Self::Failed {
            status,
            error_type,
            message,
        }
    }
}

/// The failure class of a status that means "this candidate failed, try the next": 3xx
/// (redirects are never followed, so credentials go only to the configured endpoint),
/// 401/403/429, 5xx, and anything outside 200..=599.
fn failed_status_type(status: StatusCode) -> Option<&'static str> {
    match status.as_u16() {
        300..=399 => Some("redirect"),
        401 | 403 => Some("auth_error"),
        429 => Some("rate_limited"),
        500..=599 => Some("server_error"),
        200..=499 => None,
        _ => Some("invalid_status"),
    }
}

/// Everything an attempt needs.
pub(crate) struct Attempt<'a> {
    pub(crate) http: &'a reqwest::Client,
    pub(crate) format: ApiFormat,
    pub(crate) endpoint: &'a provider_endpoints::Model,
    pub(crate) key: &'a provider_api_keys::Model,
    pub(crate) secrets: &'a SecretBox,
    pub(crate) client_headers: &'a HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) stream: bool,
    /// Largest whole (non-streamed) answer read; larger is a failed attempt.
    pub(crate) max_response_bytes: usize,
}

impl Attempt<'_> {
    fn headers(&self) -> Result<HeaderMap, String> {
        let mut headers = HeaderMap::new();
        if let Some(extra) = &self.endpoint.headers {
            for (name, value) in &extra.0 {
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| format!("endpoint header name `{name}` is invalid"))?;
                let value = HeaderValue::from_str(value)
                    .map_err(|_| format!("endpoint header `{name}` has an invalid value"))?;
                headers.insert(name, value);
            }
        }
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.stream {
            headers.insert(
                header::ACCEPT,
                HeaderValue::from_static("text/event-stream"),
            );
        }
        let secret = |value: String| {
            HeaderValue::from_str(&value)
                .map(|mut v| {
                    v.set_sensitive(true);
                    v
                })
                .map_err(|_| "upstream key holds characters not allowed in a header".to_owned())
        };
        let api_key = self.secrets.open(&self.key.api_key).ok_or_else(|| {
            "upstream key cannot be decrypted with the configured TOLLGATE_ENCRYPTION_KEY"
                .to_owned()
        })?;
        match self.format {
            ApiFormat::OpenAi => {
                headers.insert(header::AUTHORIZATION, secret(format!("Bearer {api_key}"))?);
            }
            ApiFormat::Claude => {
                headers.insert("x-api-key", secret(api_key)?);
                for name in CLAUDE_PASSTHROUGH {
                    if let Some(value) = self.client_headers.get(name) {
                        headers.insert(name, value.clone());
                    }
                }
                headers
                    .entry("anthropic-version")
                    .or_insert(HeaderValue::from_static(DEFAULT_ANTHROPIC_VERSION));
            }
        }
        Ok(headers)
    }

    /// Sends the request and classifies the answer. The endpoint's `timeout` bounds the
    /// wait for the response headers, the whole body of an answer that is not streamed, and
    /// the wait for a stream's first event (behaviour.md 8).
    pub(crate) async fn run(self) -> Outcome {
        let seconds = u64::try_from(self.endpoint.timeout.max(1)).unwrap_or(1);
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let headers = match self.headers() {
            Ok(headers) => headers,
            Err(message) => return Outcome::failed(None, "request_error", message),
        };
        let request = self
            .http
            .post(upstream_url(self.format, &self.endpoint.base_url))
            .headers(headers)
            .body(self.body);
        let timed_out = |what: &str| {
            Outcome::failed(
                None,
                "timeout",
                format!("upstream did not send {what} within {seconds} s"),
            )
        };
        let response = match tokio::time::timeout_at(deadline, request.send()).await {
            Err(_) => return timed_out("response headers"),
            Ok(Err(error)) => return transport_failure(&error),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
        if let Some(error_type) = failed_status_type(status) {
            return Outcome::failed(
                Some(status.as_u16()),
                error_type,
                format!("upstream answered {status}"),
            );
        }
        if status.is_success() && self.stream {
            let body = response.bytes_stream().boxed();
            return match tokio::time::timeout_at(deadline, first_event(body, self.format)).await {
                Err(_) => timed_out("a first stream event"),
                Ok(Err(failure)) => failure,
                Ok(Ok((first, rest))) => Outcome::Stream {
                    status,
                    content_type,
                    first,
                    rest,
                },
            };
        }
        let limit = self.max_response_bytes;
        let body = match tokio::time::timeout_at(deadline, read_capped(response, limit)).await {
            Err(_) => return timed_out("the whole answer"),
            Ok(Err(failure)) => return failure,
            Ok(Ok(body)) => body,
        };
        if status.is_success() {
            Outcome::Whole {
                status,
                content_type,
                body,
            }
        } else {
            Outcome::ClientError {
                status,
                content_type,
                body,
            }
        }
    }
}

/// Most bytes read while waiting for a stream's first complete event.
const MAX_FIRST_EVENT: usize = 256 * 1024;

/// Reads a stream until its first complete event carrying data and checks that the event is
/// valid for the format: its `data:` is JSON that is not an error object (or `[DONE]`).
/// Comment-only events (keep-alives) are skipped. Anything else is a failed attempt, so the
/// next candidate can still be tried: nothing has been sent to the client yet.
async fn first_event(
    mut body: ByteStream,
    format: ApiFormat,
) -> Result<(Bytes, ByteStream), Outcome> {
    let invalid = |message: String| Outcome::failed(None, "invalid_stream", message);
    let mut buffer = BytesMut::new();
    let mut scanned = 0;
    loop {
        while let Some((event_end, next)) = crate::sse::event_boundary(&buffer[scanned..]) {
            let event = &buffer[scanned..scanned + event_end];
            scanned += next;
            match crate::sse::event_data(event) {
                None => continue,
                Some(data) if data == b"[DONE]" => return Ok((buffer.freeze(), body)),
                Some(data) => {
                    return match serde_json::from_slice::<serde_json::Value>(&data) {
                        Ok(value) if is_error_event(format, &value) => Err(invalid(format!(
                            "upstream stream began with an error: {}",
                            crate::request::short(&String::from_utf8_lossy(&data))
                        ))),
                        Ok(serde_json::Value::Object(_)) => Ok((buffer.freeze(), body)),
                        Ok(_) | Err(_) => Err(invalid(format!(
                            "upstream stream began with an event that is not a JSON object: `{}`",
                            crate::request::short(&String::from_utf8_lossy(&data))
                        ))),
                    };
                }
            }
        }
        if buffer.len() > MAX_FIRST_EVENT {
            return Err(invalid(format!(
                "upstream stream sent {} bytes without a complete event",
                buffer.len()
            )));
        }
        match body.next().await {
            Some(Ok(chunk)) => buffer.extend_from_slice(&chunk),
            Some(Err(error)) => return Err(transport_failure(&error)),
            None => {
                return Err(invalid(
                    "upstream stream ended before its first event".to_owned(),
                ));
            }
        }
    }
}

/// Whether a stream event's JSON is the format's error object.
fn is_error_event(format: ApiFormat, value: &serde_json::Value) -> bool {
    match format {
        ApiFormat::OpenAi => value.get("error").is_some_and(|e| !e.is_null()),
        ApiFormat::Claude => value.get("type").and_then(serde_json::Value::as_str) == Some("error"),
    }
}

/// Reads a whole answer of at most `limit` bytes; a larger one is a failed attempt, never
/// buffered.
async fn read_capped(mut response: reqwest::Response, limit: usize) -> Result<Bytes, Outcome> {
    let status = response.status().as_u16();
    let too_large = |size: String| {
        Outcome::failed(
            Some(status),
            "response_too_large",
            format!("upstream answer of {size} bytes is over the limit of {limit} bytes"),
        )
    };
    if let Some(length) = response.content_length()
        && usize::try_from(length).map_or(true, |length| length > limit)
    {
        return Err(too_large(length.to_string()));
    }
    let mut body = BytesMut::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(too_large(format!("more than {limit}")));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body.freeze()),
            Err(error) => return Err(transport_failure(&error)),
        }
    }
}

fn transport_failure(error: &reqwest::Error) -> Outcome {
    let error_type = if error.is_connect() {
        "connect_error"
    } else if error.is_timeout() {
        "timeout"
    } else {
        "transport_error"
    };
    // The URL is the operator's base_url, not a secret, but keep messages short and uniform.
    let message = match std::error::Error::source(error) {
        Some(source) => format!("{error_type}: {source}"),
        None => error_type.to_owned(),
    };
    Outcome::Failed {
        status: None,
        error_type,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::upstream_url;
    use tollgate_entities::ApiFormat;

    #[test]
    fn urls_follow_each_formats_convention() {
        assert_eq!(
            upstream_url(ApiFormat::OpenAi, "https://api.openai.com/v1/"),
            "https://api.openai.com/v1/chat/completions"
        );
        assert_eq!(
            upstream_url(ApiFormat::Claude, "https://api.anthropic.com"),
            "https://api.anthropic.com/v1/messages"
        );
    }
}
