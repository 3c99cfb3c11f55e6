//! Extractors of the admin API: the admin caller, path ids that are checked before any
//! query (a segment that cannot be an id is a 404), and JSON bodies whose errors name the
//! offending field (malformed JSON 400; wrong type, unknown field, bad value 422).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use sea_orm::{EntityTrait, PrimaryKeyTrait, Select};
use serde::de::DeserializeOwned;
use tollgate_entities::{ApiFormat, UserRole};

use super::error::AdminError;
use crate::app::AppState;
use crate::auth::{ClientIdentity, authenticate};
use tollgate_catalogue::rules as validate;

/// A caller authenticated by a client key (`Authorization: Bearer`), any role.
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub(crate) ClientIdentity);

impl Caller {
    /// Whether the caller's user is an admin.
    pub(crate) fn is_admin(&self) -> bool {
        self.0.role == UserRole::Admin
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AdminError> {
        match authenticate(
            state.conn(),
            state.cache(),
            ApiFormat::OpenAi,
            &parts.headers,
        )
        .await
        {
            Ok(identity) => Ok(Self(identity)),
            Err(error) if error.status() == axum::http::StatusCode::UNAUTHORIZED => {
                Err(AdminError::unauthorized(error.to_string()))
            }
            Err(error) => Err(AdminError::unavailable(error.to_string())),
        }
    }
}

/// A caller whose user is an admin; anyone else gets 403.
#[derive(Debug, Clone)]
pub(crate) struct Admin(pub(crate) ClientIdentity);

impl FromRequestParts<AppState> for Admin {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AdminError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if !caller.is_admin() {
            return Err(AdminError::forbidden("this key's user is not an admin"));
        }
        Ok(Self(caller.0))
    }
}

/// The id of a route with one path parameter (`/api/admin/providers/{id}`). A segment that
/// cannot be an id (NUL or other control characters, over 36 bytes, characters outside
/// letters, digits, `-` and `_`, a percent-encoding that is not UTF-8) is a 404 in the admin
/// error shape, before any query sees it.
#[derive(Debug, Clone)]
pub(crate) struct AdminId(pub(crate) String);

impl<S: Send + Sync> FromRequestParts<S> for AdminId {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AdminError> {
        let [id] = path_ids(parts, state).await?;
        Ok(Self(id))
    }
}

/// The two ids of a route with two path parameters
/// (`/api/admin/providers/{pid}/models/{mid}`), in path order, checked like [`AdminId`].
#[derive(Debug, Clone)]
pub(crate) struct AdminIds(pub(crate) String, pub(crate) String);

impl<S: Send + Sync> FromRequestParts<S> for AdminIds {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AdminError> {
        let [first, second] = path_ids(parts, state).await?;
        Ok(Self(first, second))
    }
}

/// The route's `N` path parameters, each a valid id.
async fn path_ids<S: Send + Sync, const N: usize>(
    parts: &mut Parts,
    state: &S,
) -> Result<[String; N], AdminError> {
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|rejection| match rejection {
            axum::extract::rejection::RawPathParamsRejection::InvalidUtf8InPathParam(_) => {
                AdminError::invalid_id("(not UTF-8)")
            }
            other => AdminError::internal("path parameters", &other.body_text()),
        })?;
    let mut ids = Vec::with_capacity(N);
    for (_, value) in &params {
        if !validate::is_id(value) {
            return Err(AdminError::invalid_id(&validate::shown(value)));
        }
        ids.push(value.to_owned());
    }
    <[String; N]>::try_from(ids).map_err(|ids| {
        AdminError::internal(
            "path parameters",
            &format!("the route has {} ids, the handler expects {N}", ids.len()),
        )
    })
}

/// Query parameters of type `T`; a missing, unknown or malformed parameter is a 400 naming
/// it, in the admin error shape.
#[derive(Debug)]
pub(crate) struct AdminQuery<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for AdminQuery<T> {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AdminError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|rejection| AdminError::bad_request(rejection.body_text()))
    }
}

/// A JSON body of type `T`. Serde's path to the failing field becomes the error's `field`.
#[derive(Debug)]
pub(crate) struct AdminJson<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AdminJson<T> {
    type Rejection = AdminError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AdminError> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    AdminError::too_large("request body is over the size limit")
                } else {
                    AdminError::bad_request(format!("cannot read request body: {rejection}"))
                }
            })?;
        parse_json(&bytes).map(Self)
    }
}

/// Parses `bytes` as `T`: syntax errors are 400, type and value errors 422 naming the field.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AdminError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let field = if path == "." { String::new() } else { path };
        let inner = error.into_inner();
        if inner.is_syntax() && inner.to_string().starts_with("number out of range") {
            // Valid JSON (`1e400`), but no finite number: the field's value is out of range.
            AdminError::invalid_field(field, format!("{inner} (not a finite number)"))
        } else if inner.is_syntax() || inner.is_eof() {
            AdminError::bad_request(format!("malformed JSON: {inner}"))
        } else {
            AdminError::invalid_field(field, inner.to_string())
        }
    })?;
    deserializer
        .end()
        .map_err(|error| AdminError::bad_request(format!("malformed JSON: {error}")))?;
    Ok(value)
}

/// Every row `select` finds, as the response body of a listing.
pub(super) async fn all_rows<E: EntityTrait>(
    state: &AppState,
    select: Select<E>,
) -> Result<Json<Vec<E::Model>>, AdminError> {
    Ok(Json(select.all(state.conn()).await?))
}

/// The row `id` of entity `E`, or a 404 naming `what` and the id.
pub(super) async fn find_or_404<E>(
    state: &AppState,
    what: &str,
    id: &str,
) -> Result<E::Model, AdminError>
where
    E: EntityTrait,
    <E::PrimaryKey as PrimaryKeyTrait>::ValueType: From<String>,
{
    E::find_by_id(id.to_owned())
        .one(state.conn())
        .await?
        .ok_or_else(|| AdminError::not_found(what, id))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[expect(dead_code, reason = "parsed only")]
        name: String,
        #[serde(default)]
        #[expect(dead_code, reason = "parsed only")]
        quota: Option<f64>,
    }

    #[test]
    fn syntax_errors_are_400_and_type_errors_422_with_the_field() {
        assert_eq!(
            parse_json::<Body>(b"{not json")
                .unwrap_err()
                .status()
                .as_u16(),
            400
        );
        let wrong = parse_json::<Body>(br#"{"name": 3}"#).unwrap_err();
        assert_eq!(wrong.status().as_u16(), 422);
        assert!(wrong.to_string().contains("name"), "{wrong}");
        let unknown = parse_json::<Body>(br#"{"name": "a", "extra": 1}"#).unwrap_err();
        assert_eq!(unknown.status().as_u16(), 422);
        assert!(unknown.to_string().contains("extra"), "{unknown}");
        assert_eq!(
            parse_json::<Body>(br#"{"name": "a"} trailing"#)
                .unwrap_err()
                .status()
                .as_u16(),
            400
        );
    }

    #[test]
    fn numbers_beyond_f64_are_422_naming_the_field() {
        for body in [
            &br#"{"name": "a", "quota": 1e400}"#[..],
            br#"{"name": "a", "quota": -1e400}"#,
        ] {
            let error = parse_json::<Body>(body).unwrap_err();
            assert_eq!(error.status().as_u16(), 422, "{error}");
            assert!(error.to_string().contains("quota"), "{error}");
        }
    }
}
