//! `ApiError`: the one error type of the HTTP layer, rendered in the shape of the endpoint
//! that was called (OpenAI or Anthropic), with a stable code and a safe message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tollgate_entities::ApiFormat;

/// What went wrong, as a stable machine-readable kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// Missing, unknown, inactive or expired client key.
    Authentication,
    /// Malformed body or parameters.
    InvalidRequest,
    /// Body over the limit.
    PayloadTooLarge,
    /// The client key's user has spent their `quota_usd`.
    QuotaExceeded,
    /// The model name resolves to no global model.
    ModelNotFound,
    /// The model exists but no candidate can serve it.
    NoCandidate,
    /// Every upstream attempt failed.
    Upstream,
    /// A dependency (the database) is unavailable.
    Unavailable,
    /// A bug or an unexpected failure; details are logged, not sent.
    Internal,
}

impl ErrorKind {
    fn status(self) -> StatusCode {
        match self {
            Self::Authentication => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::QuotaExceeded => StatusCode::PAYMENT_REQUIRED,
            Self::ModelNotFound => StatusCode::NOT_FOUND,
            Self::NoCandidate | Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Upstream => StatusCode::BAD_GATEWAY,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// OpenAI `error.type`.
    fn openai_type(self) -> &'static str {
        match self {
            Self::Authentication => "authentication_error",
            Self::InvalidRequest | Self::PayloadTooLarge | Self::ModelNotFound => {
                "invalid_request_error"
            }
            Self::QuotaExceeded => "insufficient_quota",
            Self::NoCandidate | Self::Unavailable => "service_unavailable",
            Self::Upstream => "upstream_error",
            Self::Internal => "internal_error",
        }
    }

    /// OpenAI `error.code`: the stable code clients match on.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Self::Authentication => "invalid_api_key",
            Self::InvalidRequest => "invalid_request",
            Self::PayloadTooLarge => "request_too_large",
            Self::QuotaExceeded => "insufficient_quota",
            Self::ModelNotFound => "model_not_found",
            Self::NoCandidate => "no_available_provider",
            Self::Upstream => "upstream_error",
            Self::Unavailable => "service_unavailable",
            Self::Internal => "internal_error",
        }
    }

    /// Anthropic `error.type`.
    fn anthropic_type(self) -> &'static str {
        match self {
            Self::Authentication => "authentication_error",
            Self::InvalidRequest => "invalid_request_error",
            Self::PayloadTooLarge => "request_too_large",
            Self::QuotaExceeded => "billing_error",
            Self::ModelNotFound => "not_found_error",
            Self::NoCandidate | Self::Unavailable => "overloaded_error",
            Self::Upstream | Self::Internal => "api_error",
        }
    }
}

/// An error answered to a client: kind, safe message and the format to render it in.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub(crate) struct ApiError {
    kind: ErrorKind,
    message: String,
    format: ApiFormat,
}

impl ApiError {
    /// An error of `kind` with a message safe to show to the client.
    pub(crate) fn new(kind: ErrorKind, format: ApiFormat, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            format,
        }
    }

    /// A 500 whose details are logged here and never sent.
    pub(crate) fn internal(format: ApiFormat, what: &str, error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, what, "internal error");
        Self::new(ErrorKind::Internal, format, "internal error")
    }

    /// The HTTP status.
    pub(crate) fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// The error body in the endpoint's shape.
    pub(crate) fn body(&self) -> serde_json::Value {
        match self.format {
            ApiFormat::OpenAi => serde_json::json!({
                "error": {
                    "message": self.message,
                    "type": self.kind.openai_type(),
                    "code": self.kind.code(),
                }
            }),
            ApiFormat::Claude => serde_json::json!({
                "type": "error",
                "error": {
                    "type": self.kind.anthropic_type(),
                    "message": self.message,
                }
            }),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), axum::Json(self.body())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::{ApiError, ErrorKind};
    use tollgate_entities::ApiFormat;

    #[test]
    fn shapes_follow_the_endpoint_format() {
        let openai = ApiError::new(
            ErrorKind::ModelNotFound,
            ApiFormat::OpenAi,
            "model `x` not found",
        );
        assert_eq!(openai.status().as_u16(), 404);
        assert_eq!(openai.body()["error"]["code"], "model_not_found");
        assert_eq!(openai.body()["error"]["message"], "model `x` not found");
        let claude = ApiError::new(
            ErrorKind::Authentication,
            ApiFormat::Claude,
            "invalid client key",
        );
        assert_eq!(claude.body()["type"], "error");
        assert_eq!(claude.body()["error"]["type"], "authentication_error");
    }
}
