//! The client's request body: top-level fields kept raw and forwarded untouched, plus the
//! few the gateway reads (`model`, `stream`, OpenAI's `stream_options`).

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::ser::{SerializeMap, Serializer};
use serde_json::value::RawValue;
use tollgate_entities::ApiFormat;

use crate::error::{ApiError, ErrorKind};

/// The client's body: top-level fields kept raw (forwarded untouched), plus what the gateway
/// reads.
pub(crate) struct ClientRequest {
    pub(crate) fields: BTreeMap<String, Box<RawValue>>,
    pub(crate) model: String,
    pub(crate) stream: bool,
    /// The `stream_options` to send for an OpenAI stream (with `include_usage: true`), and
    /// whether the client asked for usage itself.
    pub(crate) openai_stream_options: Option<(serde_json::Value, bool)>,
}

pub(crate) fn parse_request(format: ApiFormat, body: &[u8]) -> Result<ClientRequest, ApiError> {
    let invalid = |message: String| ApiError::new(ErrorKind::InvalidRequest, format, message);
    let fields: BTreeMap<String, Box<RawValue>> =
        serde_json::from_slice(body).map_err(|error| {
            if error.is_data() {
                invalid("request body must be a JSON object".to_owned())
            } else {
                invalid(format!("invalid JSON body: {error}"))
            }
        })?;
    let model = match fields.get("model") {
        None => return Err(invalid("missing field `model`".to_owned())),
        Some(raw) => serde_json::from_str::<String>(raw.get()).map_err(|_| {
            invalid(format!(
                "field `model` must be a string, got `{}`",
                short(raw.get())
            ))
        })?,
    };
    let stream = match fields.get("stream") {
        None => false,
        Some(raw) => serde_json::from_str::<Option<bool>>(raw.get())
            .map_err(|_| {
                invalid(format!(
                    "field `stream` must be a boolean, got `{}`",
                    short(raw.get())
                ))
            })?
            .unwrap_or(false),
    };
    let openai_stream_options = if stream && format == ApiFormat::OpenAi {
        let mut options = match fields.get("stream_options") {
            None => serde_json::Map::new(),
            Some(raw) => match serde_json::from_str::<Option<serde_json::Value>>(raw.get()) {
                Ok(Some(serde_json::Value::Object(map))) => map,
                Ok(None) => serde_json::Map::new(),
                Ok(Some(_)) | Err(_) => {
                    return Err(invalid(format!(
                        "field `stream_options` must be an object, got `{}`",
                        short(raw.get())
                    )));
                }
            },
        };
        let asked = options
            .get("include_usage")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        options.insert("include_usage".to_owned(), serde_json::Value::Bool(true));
        Some((serde_json::Value::Object(options), asked))
    } else {
        None
    };
    Ok(ClientRequest {
        fields,
        model,
        stream,
        openai_stream_options,
    })
}

pub(crate) fn short(raw: &str) -> String {
    raw.chars().take(40).collect()
}

impl ClientRequest {
    /// The body sent upstream: the client's fields with `model` rewritten (and, for OpenAI
    /// streams, `stream_options.include_usage` set).
    pub(crate) fn upstream_body(&self, upstream_model: &str) -> Result<Bytes, serde_json::Error> {
        let mut out = Vec::with_capacity(256);
        let mut serializer = serde_json::Serializer::new(&mut out);
        let mut map = serializer.serialize_map(None)?;
        for (name, value) in &self.fields {
            match name.as_str() {
                "model" => map.serialize_entry(name, upstream_model)?,
                "stream_options" if self.openai_stream_options.is_some() => {}
                _ => map.serialize_entry(name, value)?,
            }
        }
        if let Some((options, _)) = &self.openai_stream_options {
            map.serialize_entry("stream_options", options)?;
        }
        map.end()?;
        Ok(Bytes::from(out))
    }

    pub(crate) fn strip_usage_chunk(&self) -> bool {
        self.openai_stream_options
            .as_ref()
            .is_some_and(|(_, asked)| !asked)
    }
}

#[cfg(test)]
mod tests {
    use tollgate_entities::ApiFormat;

    use super::parse_request;

    #[test]
    fn model_is_rewritten_and_the_rest_kept() {
        let request = parse_request(
            ApiFormat::OpenAi,
            br#"{"model":"a","messages":[{"role":"user","content":"hi"}],"temperature":0.5}"#,
        )
        .unwrap();
        let body: serde_json::Value =
            serde_json::from_slice(&request.upstream_body("b").unwrap()).unwrap();
        assert_eq!(body["model"], "b");
        assert_eq!(body["temperature"], 0.5);
        assert_eq!(body["messages"][0]["content"], "hi");
        assert!(body.get("stream_options").is_none());
    }

    #[test]
    fn openai_streams_ask_for_usage() {
        let request = parse_request(
            ApiFormat::OpenAi,
            br#"{"model":"a","stream":true,"stream_options":{"x":1}}"#,
        )
        .unwrap();
        assert!(request.strip_usage_chunk());
        let body: serde_json::Value =
            serde_json::from_slice(&request.upstream_body("b").unwrap()).unwrap();
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(body["stream_options"]["x"], 1);
        let asked = parse_request(
            ApiFormat::OpenAi,
            br#"{"model":"a","stream":true,"stream_options":{"include_usage":true}}"#,
        )
        .unwrap();
        assert!(!asked.strip_usage_chunk());
    }

    #[test]
    fn bad_bodies_name_the_problem() {
        let error = parse_request(ApiFormat::OpenAi, b"{\"model\": ")
            .err()
            .unwrap();
        assert!(
            error.to_string().starts_with("invalid JSON body"),
            "{error}"
        );
        let error = parse_request(ApiFormat::Claude, b"{\"stream\":true}")
            .err()
            .unwrap();
        assert!(error.to_string().contains("`model`"), "{error}");
        let error = parse_request(ApiFormat::OpenAi, b"[1]").err().unwrap();
        assert!(error.to_string().contains("JSON object"), "{error}");
        let error = parse_request(ApiFormat::OpenAi, br#"{"model":1}"#)
            .err()
            .unwrap();
        assert!(
            error.to_string().contains("`model` must be a string"),
            "{error}"
        );
    }
}
