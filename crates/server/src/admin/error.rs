//! `AdminError`: the error of the admin and dashboard APIs, rendered as
//! `{"error": {"code", "message", "field"}}` with a stable code; internals are logged, never
//! sent.

#[cfg(test)]
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sea_orm::{DbErr, SqlErr};

use crate::error::{ErrorCode, Failure};

/// An admin API failure with a stable code (which fixes the status, see [`ErrorCode`]) and a
/// message safe to show.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub(crate) struct AdminError {
    code: ErrorCode,
    message: String,
    field: Option<String>,
}

impl AdminError {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
        }
    }

    /// 401: no or an invalid admin key.
    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    /// 403: a valid key without the right to do this.
    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    /// 404 for `what` with `id`.
    pub(crate) fn not_found(what: &str, id: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} `{id}` not found"))
    }

    /// 404 for a path segment that cannot be an id at all (NUL, control characters, too
    /// long, not UTF-8): it names no row, and is never handed to the database.
    pub(crate) fn invalid_id(shown: &str) -> Self {
        Self::new(
            ErrorCode::NotFound,
            format!("`{shown}` not found: it is not a valid id"),
        )
    }

    /// 409: the change conflicts with what is stored (a duplicate name).
    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    /// 400: the body is not JSON, or a query parameter is malformed.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    /// 413: the body is over the limit.
    pub(crate) fn too_large(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::RequestTooLarge, message)
    }

    /// 422: a field has the wrong type, an unknown name or a value out of range.
    pub(crate) fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        Self {
            code: ErrorCode::InvalidField,
            message: if field.is_empty() || message.starts_with(&field) {
                message
            } else {
                format!("{field}: {message}")
            },
            field: (!field.is_empty()).then_some(field),
        }
    }

    /// 503: a dependency could not answer.
    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ServiceUnavailable, message)
    }

    /// 500 whose details are logged here and never sent.
    pub(crate) fn internal(what: &str, error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, what, "admin api internal error");
        Self::new(ErrorCode::InternalError, "internal error")
    }

    /// The HTTP status.
    #[cfg(test)]
    pub(crate) fn status(&self) -> StatusCode {
        self.code.status()
    }
}

impl<E: Into<Failure>> From<E> for AdminError {
    fn from(error: E) -> Self {
        let Failure { code, message } = error.into();
        Self::new(code, message)
    }
}

impl From<tollgate_catalogue::Invalid> for AdminError {
    fn from(error: tollgate_catalogue::Invalid) -> Self {
        Self::invalid_field(error.field, error.reason)
    }
}

impl From<tollgate_catalogue::CatalogError> for AdminError {
    /// A broken rule is 422 naming the field, a taken name 409; a document that cannot be read
    /// is 400.
    fn from(error: tollgate_catalogue::CatalogError) -> Self {
        use tollgate_catalogue::CatalogError;
        match error {
            CatalogError::Invalid { at, reason } => Self::invalid_field(at, reason),
            CatalogError::Conflict(message) => Self::conflict(message),
            CatalogError::Database(error) => Self::from(error),
            other => Self::bad_request(other.to_string()),
        }
    }
}

impl From<DbErr> for AdminError {
    /// Constraint violations are the client's conflict (409); a value the database refuses
    /// as data (too long, NUL, out of range, NULL) is the client's too (422); a lost
    /// connection is 503; anything else is logged as a 500.
    fn from(error: DbErr) -> Self {
        match error.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => {
                Self::conflict("a row with the same unique name already exists")
            }
            Some(SqlErr::ForeignKeyConstraintViolation(_)) => {
                Self::conflict("the change refers to, or is referred to by, another row")
            }
            _ if is_data_error(&error) => {
                // Validation should have refused the value first: log it so the gap is found.
                tracing::warn!(%error, "database refused a value the admin api accepted");
                Self::invalid_field("", DATA_ERROR_MESSAGE)
            }
            _ => match error {
                DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => {
                    tracing::error!(%error, "database unavailable");
                    Self::unavailable("database unavailable")
                }
                other => Self::internal("database", &other),
            },
        }
    }
}

/// The message of a 422 the database, not validation, produced.
pub(crate) const DATA_ERROR_MESSAGE: &str = "a value does not fit its column";

/// Whether the database refused a value as data rather than failed: PostgreSQL's class 22
/// (data exception) and NOT NULL or CHECK violations; SQLite's NOT NULL, CHECK, too big and
/// type mismatch codes.
fn is_data_error(error: &DbErr) -> bool {
    let (DbErr::Exec(sea_orm::RuntimeErr::SqlxError(inner))
    | DbErr::Query(sea_orm::RuntimeErr::SqlxError(inner))) = error
    else {
        return false;
    };
    let sea_orm::sqlx::Error::Database(database) = &**inner else {
        return false;
    };
    let Some(code) = database.code() else {
        return false;
    };
    let code = code.as_ref();
    // PostgreSQL SQLSTATEs have five characters, SQLite's (extended) codes at most four.
    let postgres =
        code.len() == 5 && (code.starts_with("22") || code == "23502" || code == "23514");
    // SQLITE_TOOBIG, SQLITE_MISMATCH, SQLITE_CONSTRAINT_CHECK, SQLITE_CONSTRAINT_NOTNULL.
    let sqlite = matches!(code, "18" | "20" | "275" | "1299");
    postgres || sqlite
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": {
                "code": self.code.as_str(),
                "message": self.message,
                "field": self.field,
            }
        });
        (self.code.status(), axum::Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use tollgate_catalogue::rules::pricing;
    use tollgate_entities::{PriceTier, TieredPricing};

    use super::AdminError;

    #[test]
    fn pricing_errors_name_tier_and_field() {
        let bad = TieredPricing {
            tiers: vec![
                PriceTier {
                    up_to: Some(10),
                    input_price_per_1m: 1.0,
                    output_price_per_1m: 1.0,
                    cache_creation_price_per_1m: None,
                    cache_read_price_per_1m: None,
                },
                PriceTier {
                    up_to: None,
                    input_price_per_1m: 1.0,
                    output_price_per_1m: -2.0,
                    cache_creation_price_per_1m: None,
                    cache_read_price_per_1m: None,
                },
            ],
        };
        let error = AdminError::from(pricing("default_tiered_pricing", &bad).unwrap_err());
        assert_eq!(error.status().as_u16(), 422);
        let text = error.to_string();
        assert!(
            text.contains("tier 1") && text.contains("output_price_per_1m"),
            "{text}"
        );
    }
}
