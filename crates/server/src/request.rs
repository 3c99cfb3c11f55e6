//! The client's request body: top-level fields kept raw and forwarded untouched, plus the
//! few the gateway reads (`model`, `stream`, OpenAI's `stream_options`).
//!
//! The model name is validated here by the rules of behaviour.md 1.1 step 1, before anything
//! reads or records it (behaviour.md 7), so no usage row ever carries an empty, over-long or
//! control-character name.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::ser::{SerializeMap, Serializer};
use serde_json::value::RawValue;
use tollgate_entities::ApiFormat;
use tollgate_resolver::{ResolverError, normalize_model_name};

use crate::error::{ApiError, ErrorCode};

/// The client's body: top-level fields kept raw (forwarded untouched), plus what the gateway
/// reads.
pub(crate) struct ClientRequest {
    pub(crate) fields: BTreeMap<String, Box<RawValue>>,
    /// The model name, normalised (surrounding whitespace trimmed) and valid by
    /// behaviour.md 1.1 step 1: not empty, at most 200 bytes, no control characters.
    pub(crate) model: String,
    pub(crate) stream: bool,
    /// The `stream_options` to send for an OpenAI stream (with `include_usage: true`), and
    /// whether the client asked for usage itself.
    pub(crate) openai_stream_options: Option<(serde_json::Value, bool)>,
}

pub(crate) fn parse_request(format: ApiFormat, body: &[u8]) -> Result<ClientRequest, ApiError> {
    let invalid = |message: String| ApiError::new(ErrorCode::InvalidRequest, format, message);
    let fields: BTreeMap<String, Box<RawValue>> =
        serde_json::from_slice(body).map_err(|error| {
            if error.is_data() {
                invalid("request body must be a JSON object".to_owned())
            } else {
                invalid(format!("invalid JSON body: {error}"))
            }
        })?;
    let raw_model = match fields.get("model") {
        None => return Err(invalid("missing field `model`".to_owned())),
        Some(raw) => serde_json::from_str::<String>(raw.get()).map_err(|_| {
            invalid(format!(
                "field `model` must be a string, got `{}`",
                short(raw.get())
            ))
        })?,
    };
    let model = normalize_model_name(&raw_model)
        .map_err(|error| invalid(invalid_name(&raw_model, &error)))?
        .to_owned();
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

/// The message for a model name that breaks a rule of behaviour.md 1.1 step 1: the rule,
/// then the name with control characters escaped, cut to 40 characters.
fn invalid_name(raw: &str, error: &ResolverError) -> String {
    let reason = match error {
        ResolverError::InvalidName { reason, .. } => reason,
        _ => "model name is invalid",
    };
    let more = if raw.chars().nth(40).is_some() {
        "…"
    } else {
        ""
    };
    format!("{reason}: `{}{more}`", short(raw))
}

/// `raw` cut to its first 40 characters (never inside one), control characters escaped, for
/// quoting client input in an error message.
pub(crate) fn short(raw: &str) -> String {
    let mut out = String::new();
    for c in raw.chars().take(40) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
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
    use proptest::prelude::{Just, Strategy, any, prop, prop_assert, prop_assert_eq, prop_oneof};
    use tollgate_entities::ApiFormat;

    use super::{parse_request, short};

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

    #[test]
    fn model_names_follow_the_resolution_rules() {
        let ok = parse_request(ApiFormat::OpenAi, br#"{"model":"  gpt-4o\t"}"#).unwrap();
        assert_eq!(ok.model, "gpt-4o");
        let cases: [(&[u8], &str); 4] = [
            (
                br#"{"model":"gpt\u00004"}"#,
                r"model name contains control characters: `gpt\u{0}4`",
            ),
            (
                br#"{"model":"a\nb"}"#,
                r"model name contains control characters: `a\nb`",
            ),
            (br#"{"model":"   "}"#, "model name is empty: `   `"),
            (br#"{"model":""}"#, "model name is empty: ``"),
        ];
        for (body, expected) in cases {
            let error = parse_request(ApiFormat::Claude, body).err().unwrap();
            assert_eq!(error.status().as_u16(), 400);
            assert_eq!(error.to_string(), expected);
        }
        let long = format!(r#"{{"model":"{}"}}"#, "x".repeat(201));
        let error = parse_request(ApiFormat::OpenAi, long.as_bytes())
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.starts_with("model name is longer than 200 bytes: "),
            "{error}"
        );
        assert!(error.ends_with("xx…`"), "{error}");
        assert!(error.chars().count() < 100, "{error}");
    }

    #[test]
    fn short_escapes_control_characters_and_cuts_at_characters() {
        assert_eq!(short("{\n\"a\":\u{0}1}"), "{\\n\"a\":\\u{0}1}");
        assert_eq!(short(&"é".repeat(50)), "é".repeat(40));
        assert_eq!(short("\u{85}x"), "\\u{85}x");
        let error = parse_request(ApiFormat::OpenAi, b"{\"model\": {\n\"a\": 1}}")
            .err()
            .unwrap()
            .to_string();
        assert!(!error.chars().any(char::is_control), "{error}");
    }

    /// Model names worth trying: valid, padded, empty, control characters, NUL, long,
    /// multi-byte.
    fn any_name() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::string::string_regex("[a-z0-9./:-]{1,30}").unwrap(),
            prop::string::string_regex("[ \t]{0,3}[a-zA-Z0-9 é€😀-]{0,70}[ \t\n]{0,3}").unwrap(),
            prop::string::string_regex("[a-z\x00-\x1f\x7f\u{80}-\u{9f}]{0,10}").unwrap(),
            (1_usize..80).prop_map(|n| "€".repeat(n)),
            (190_usize..210).prop_map(|n| "m".repeat(n)),
            any::<String>(),
        ]
    }

    fn any_json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            any::<String>().prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(3, 24, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::Array),
                prop::collection::btree_map(any::<String>(), inner, 0..5)
                    .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
            ]
        })
    }

    /// A value for `model`: usually a string, sometimes another type.
    fn any_model() -> impl Strategy<Value = serde_json::Value> {
        prop_oneof![
            4 => any_name().prop_map(serde_json::Value::String),
            1 => any_json(),
        ]
    }

    /// A value for `stream` or `stream_options`: the usual ones and junk.
    fn any_flag() -> impl Strategy<Value = serde_json::Value> {
        prop_oneof![
            Just(serde_json::Value::Bool(true)),
            Just(serde_json::Value::Bool(false)),
            Just(serde_json::Value::Null),
            Just(serde_json::json!({"include_usage": true})),
            Just(serde_json::json!({"include_usage": false, "x": 1})),
            any_json(),
        ]
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..300)) {
            for format in [ApiFormat::OpenAi, ApiFormat::Claude] {
                match parse_request(format, &body) {
                    Ok(request) => {
                        prop_assert!(tollgate_resolver::normalize_model_name(&request.model).is_ok());
                        prop_assert!(request.upstream_body("m").is_ok());
                    }
                    Err(error) => {
                        let message = error.to_string();
                        prop_assert!(!message.chars().any(char::is_control), "{}", message);
                    }
                }
            }
        }

        #[test]
        fn ok_exactly_when_the_request_is_valid_and_the_body_is_the_clients(
            others in prop::collection::btree_map(any::<String>(), any_json(), 0..5),
            model in prop::option::of(any_model()),
            stream in prop::option::of(any_flag()),
            stream_options in prop::option::of(any_flag()),
            claude in any::<bool>(),
            rewritten in any_name(),
        ) {
            let format = if claude { ApiFormat::Claude } else { ApiFormat::OpenAi };
            let mut client: serde_json::Map<String, serde_json::Value> = others.into_iter().collect();
            for (name, value) in [("model", model), ("stream", stream), ("stream_options", stream_options)] {
                match value {
                    Some(value) => client.insert(name.to_owned(), value),
                    None => client.remove(name),
                };
            }
            let body = serde_json::to_vec(&client).unwrap();
            // Compare with the body as parsed, not as generated: serde_json may read a float
            // back one ulp off, the same way on both sides.
            let client: serde_json::Map<String, serde_json::Value> =
                serde_json::from_slice(&body).unwrap();
            let result = parse_request(format, &body);

            let valid_model = client
                .get("model")
                .and_then(serde_json::Value::as_str)
                .and_then(|name| tollgate_resolver::normalize_model_name(name).ok());
            let streaming = match client.get("stream") {
                None | Some(serde_json::Value::Null) => Some(false),
                Some(serde_json::Value::Bool(flag)) => Some(*flag),
                Some(_) => None,
            };
            let options_ok = !(format == ApiFormat::OpenAi && streaming == Some(true))
                || matches!(
                    client.get("stream_options"),
                    None | Some(serde_json::Value::Null | serde_json::Value::Object(_))
                );
            let expect_ok = valid_model.is_some() && streaming.is_some() && options_ok;
            prop_assert_eq!(result.is_ok(), expect_ok, "{:?}", client);
            let request = match result {
                Ok(request) => request,
                Err(error) => {
                    let message = error.to_string();
                    prop_assert_eq!(error.status().as_u16(), 400);
                    prop_assert!(!message.chars().any(char::is_control), "{}", message);
                    return Ok(());
                }
            };
            prop_assert_eq!(Some(request.model.as_str()), valid_model);
            prop_assert_eq!(Some(request.stream), streaming);

            let upstream: serde_json::Value =
                serde_json::from_slice(&request.upstream_body(&rewritten).unwrap()).unwrap();
            let upstream = upstream.as_object().unwrap();
            prop_assert_eq!(upstream.get("model"), Some(&serde_json::Value::String(rewritten)));
            let openai_stream = format == ApiFormat::OpenAi && request.stream;
            for (name, value) in &client {
                if name == "model" || (name == "stream_options" && openai_stream) {
                    continue;
                }
                prop_assert_eq!(upstream.get(name), Some(value), "{}", name);
            }
            let mut expected_keys: Vec<&String> = client.keys().collect();
            let stream_options_key = "stream_options".to_owned();
            if openai_stream && !client.contains_key("stream_options") {
                expected_keys.push(&stream_options_key);
            }
            expected_keys.sort();
            let mut upstream_keys: Vec<&String> = upstream.keys().collect();
            upstream_keys.sort();
            prop_assert_eq!(upstream_keys, expected_keys);
            if openai_stream {
                let options = upstream["stream_options"].as_object().unwrap();
                prop_assert_eq!(options.get("include_usage"), Some(&serde_json::Value::Bool(true)));
                if let Some(serde_json::Value::Object(asked)) = client.get("stream_options") {
                    for (name, value) in asked {
                        if name != "include_usage" {
                            prop_assert_eq!(options.get(name), Some(value));
                        }
                    }
                    let asked_usage = asked.get("include_usage") == Some(&serde_json::Value::Bool(true));
                    prop_assert_eq!(request.strip_usage_chunk(), !asked_usage);
                } else {
                    prop_assert!(request.strip_usage_chunk());
                }
            } else {
                prop_assert!(!request.strip_usage_chunk());
            }
        }
    }
}
