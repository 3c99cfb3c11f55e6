//! One error-code scheme for every HTTP answer: [`ErrorCode`] lists the stable codes with
//! their statuses; [`ApiError`] renders one in the shape of the client endpoint called
//! (OpenAI or Anthropic), `admin::AdminError` in the admin API's shape. Library errors reach
//! both through [`Failure`], whose conversions log internals once and keep them out of the
//! message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tollgate_entities::ApiFormat;
use tollgate_resolver::ResolverError;
use tollgate_stats::StatsError;

/// Every stable error code of the client API (`/v1/*`) and the admin and dashboard APIs
/// (`/api/*`), each with its one HTTP status. Clients match on [`ErrorCode::as_str`]; the
/// strings never change meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorCode {
    /// 401 on `/v1`: missing, unknown, inactive or expired client key.
    InvalidApiKey,
    /// 401 on `/api`: no or an invalid admin key.
    Unauthorized,
    /// 403: a valid key without the right to do this.
    Forbidden,
    /// 400: malformed body or parameters.
    InvalidRequest,
    /// 422: a field has the wrong type, an unknown name or a value out of range.
    InvalidField,
    /// 413: body over the limit.
    RequestTooLarge,
    /// 402: the client key's user has spent their `quota_usd`.
    InsufficientQuota,
    /// 404: no row with that id.
    NotFound,
    /// 404: the model name resolves to no global model.
    ModelNotFound,
    /// 409: the change conflicts with what is stored.
    Conflict,
    /// 503: the model exists but no candidate can serve it.
    NoAvailableProvider,
    /// 502: every upstream attempt failed.
    UpstreamError,
    /// 503: a dependency (the database, the catalogue, the statistics) is unavailable.
    ServiceUnavailable,
    /// 500: a bug or an unexpected failure; details are logged, not sent.
    InternalError,
}

impl ErrorCode {
    /// The HTTP status of the code.
    pub(crate) fn status(self) -> StatusCode {
        match self {
            Self::InvalidApiKey | Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::InvalidField => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RequestTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::InsufficientQuota => StatusCode::PAYMENT_REQUIRED,
            Self::NotFound | Self::ModelNotFound => StatusCode::NOT_FOUND,
            Self::Conflict => StatusCode::CONFLICT,
            Self::NoAvailableProvider | Self::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::UpstreamError => StatusCode::BAD_GATEWAY,
            Self::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code: OpenAI's `error.code` on `/v1`, `error.code` on `/api`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::InvalidApiKey => "invalid_api_key",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::InvalidRequest => "invalid_request",
            Self::InvalidField => "invalid_field",
            Self::RequestTooLarge => "request_too_large",
            Self::InsufficientQuota => "insufficient_quota",
            Self::NotFound => "not_found",
            Self::ModelNotFound => "model_not_found",
            Self::Conflict => "conflict",
            Self::NoAvailableProvider => "no_available_provider",
            Self::UpstreamError => "upstream_error",
            Self::ServiceUnavailable => "service_unavailable",
            Self::InternalError => "internal_error",
        }
    }

    /// OpenAI `error.type`.
    fn openai_type(self) -> &'static str {
        match self {
            Self::InvalidApiKey | Self::Unauthorized | Self::Forbidden => "authentication_error",
            Self::InsufficientQuota => "insufficient_quota",
            Self::NoAvailableProvider | Self::ServiceUnavailable => "service_unavailable",
            Self::UpstreamError => "upstream_error",
            Self::InternalError => "internal_error",
            _ => "invalid_request_error",
        }
    }

    /// Anthropic `error.type`.
    fn anthropic_type(self) -> &'static str {
        match self {
            Self::InvalidApiKey | Self::Unauthorized | Self::Forbidden => "authentication_error",
            Self::RequestTooLarge => "request_too_large",
            Self::InsufficientQuota => "billing_error",
            Self::NotFound | Self::ModelNotFound => "not_found_error",
            Self::NoAvailableProvider | Self::ServiceUnavailable => "overloaded_error",
            Self::UpstreamError | Self::InternalError => "api_error",
            _ => "invalid_request_error",
        }
    }
}

/// What a library error means for the caller: a code and a message safe to show. The
/// conversions log what the message leaves out, once, here.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<ResolverError> for Failure {
    fn from(error: ResolverError) -> Self {
        match error {
            ResolverError::InvalidName { name, reason } => Self::new(
                ErrorCode::InvalidRequest,
                format!("invalid model name `{name}`: {reason}"),
            ),
            other => {
                tracing::error!(error = %other, "routing plan failed");
                Self::new(ErrorCode::ServiceUnavailable, "catalogue unavailable")
            }
        }
    }
}

impl From<StatsError> for Failure {
    fn from(error: StatsError) -> Self {
        tracing::error!(%error, "statistics query failed");
        Self::new(
            ErrorCode::ServiceUnavailable,
            "statistics are unavailable right now",
        )
    }
}

/// An error answered to a client: kind, safe message and the format to render it in.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub(crate) struct ApiError {
    code: ErrorCode,
    message: String,
    format: ApiFormat,
}

impl ApiError {
    /// An error of `code` with a message safe to show to the client.
    pub(crate) fn new(code: ErrorCode, format: ApiFormat, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            format,
        }
    }

    /// A library failure, rendered for `format`.
    pub(crate) fn from_failure(format: ApiFormat, failure: impl Into<Failure>) -> Self {
        let Failure { code, message } = failure.into();
        Self::new(code, format, message)
    }

    /// A 500 whose details are logged here and never sent.
    pub(crate) fn internal(format: ApiFormat, what: &str, error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, what, "internal error");
        Self::new(ErrorCode::InternalError, format, "internal error")
    }

    /// The HTTP status.
    pub(crate) fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// The error body in the endpoint's shape.
    pub(crate) fn body(&self) -> serde_json::Value {
        match self.format {
            ApiFormat::OpenAi => serde_json::json!({
                "error": {
                    "message": self.message,
                    "type": self.code.openai_type(),
                    "code": self.code.as_str(),
                }
            }),
            ApiFormat::Claude => serde_json::json!({
                "type": "error",
                "error": {
                    "type": self.code.anthropic_type(),
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
    use super::{ApiError, ErrorCode, Failure};
    use tollgate_entities::ApiFormat;
    use tollgate_resolver::ResolverError;

    const ALL: [ErrorCode; 14] = [
        ErrorCode::InvalidApiKey,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::InvalidRequest,
        ErrorCode::InvalidField,
        ErrorCode::RequestTooLarge,
        ErrorCode::InsufficientQuota,
        ErrorCode::NotFound,
        ErrorCode::ModelNotFound,
        ErrorCode::Conflict,
        ErrorCode::NoAvailableProvider,
        ErrorCode::UpstreamError,
        ErrorCode::ServiceUnavailable,
        ErrorCode::InternalError,
    ];

    #[test]
    fn codes_are_distinct_and_statuses_match_their_class() {
        let mut seen = std::collections::BTreeSet::new();
        for code in ALL {
            assert!(seen.insert(code.as_str()), "{} twice", code.as_str());
            let status = code.status();
            let server_side = matches!(
                code,
                ErrorCode::NoAvailableProvider
                    | ErrorCode::UpstreamError
                    | ErrorCode::ServiceUnavailable
                    | ErrorCode::InternalError
            );
            assert_eq!(status.is_server_error(), server_side, "{code:?}");
            assert_eq!(status.is_client_error(), !server_side, "{code:?}");
        }
    }

    #[test]
    fn resolver_errors_keep_internals_out_of_the_message() {
        let invalid = Failure::from(ResolverError::InvalidName {
            name: "a\u{7f}".to_owned(),
            reason: "contains a control character",
        });
        assert_eq!(invalid.code, ErrorCode::InvalidRequest);
        assert!(
            invalid.message.starts_with("invalid model name"),
            "{}",
            invalid.message
        );
        let down = Failure::from(ResolverError::catalogue(std::io::Error::other(
            "password authentication failed for user secret",
        )));
        assert_eq!(down.code, ErrorCode::ServiceUnavailable);
        assert_eq!(down.message, "catalogue unavailable");
    }

    #[test]
    fn shapes_follow_the_endpoint_format() {
        let openai = ApiError::new(
            ErrorCode::ModelNotFound,
            ApiFormat::OpenAi,
            "model `x` not found",
        );
        assert_eq!(openai.status().as_u16(), 404);
        assert_eq!(openai.body()["error"]["code"], "model_not_found");
        assert_eq!(openai.body()["error"]["message"], "model `x` not found");
        let claude = ApiError::new(
            ErrorCode::InvalidApiKey,
            ApiFormat::Claude,
            "invalid client key",
        );
        assert_eq!(claude.body()["type"], "error");
        assert_eq!(claude.body()["error"]["type"], "authentication_error");
    }
}
