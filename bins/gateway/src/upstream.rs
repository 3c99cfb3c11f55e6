//! One upstream attempt: URL and header conventions of each format, the endpoint's timeout,
//! and the classification of what came back (behaviour.md 4 step 4).

use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use bytes::Bytes;
use tokio::time::Instant;
use tollgate_entities::{ApiFormat, provider_api_keys, provider_endpoints};

use crate::secret_box::SecretBox;

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

/// What one attempt produced.
pub(crate) enum Outcome {
    /// 2xx with the whole body read.
    Whole {
        status: StatusCode,
        content_type: Option<HeaderValue>,
        body: Bytes,
    },
    /// 2xx to a streaming request: the body is still to be relayed.
    Stream {
        status: StatusCode,
        content_type: Option<HeaderValue>,
        response: reqwest::Response,
    },
    /// A 4xx other than 401/403/429: the client's fault, returned as is, no fallback.
    ClientError {
        status: StatusCode,
        content_type: Option<HeaderValue>,
        body: Bytes,
    },
    /// Connect error, timeout, 401/403/429 or 5xx: try the next candidate.
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
}

/// Whether a status means "this candidate failed, try the next".
fn is_retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 401 | 403 | 429) || status.is_server_error()
}

fn failed_status_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 | 403 => "auth_error",
        429 => "rate_limited",
        _ => "server_error",
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
    /// wait for the response headers and, for whole responses, the body.
    pub(crate) async fn run(self) -> Outcome {
        let seconds = u64::try_from(self.endpoint.timeout.max(1)).unwrap_or(1);
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let headers = match self.headers() {
            Ok(headers) => headers,
            Err(message) => {
                return Outcome::Failed {
                    status: None,
                    error_type: "request_error",
                    message,
                };
            }
        };
        let request = self
            .http
            .post(upstream_url(self.format, &self.endpoint.base_url))
            .headers(headers)
            .body(self.body);
        let timed_out = || Outcome::Failed {
            status: None,
            error_type: "timeout",
            message: format!("upstream did not answer within {seconds} s"),
        };
        let response = match tokio::time::timeout_at(deadline, request.send()).await {
            Err(_) => return timed_out(),
            Ok(Err(error)) => return transport_failure(&error),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
        if is_retryable(status) {
            return Outcome::Failed {
                status: Some(status.as_u16()),
                error_type: failed_status_type(status),
                message: format!("upstream answered {status}"),
            };
        }
        if status.is_success() && self.stream {
            return Outcome::Stream {
                status,
                content_type,
                response,
            };
        }
        let body = match tokio::time::timeout_at(deadline, response.bytes()).await {
            Err(_) => return timed_out(),
            Ok(Err(error)) => return transport_failure(&error),
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
