//! Field rules of the admin API and the catalogue file, written once: each check names the
//! field and the offending value; the admin API answers 422, the catalogue an error naming the
//! entry.
//!
//! The bounds keep everything an admin writes storable on both databases and every cost
//! finite: PostgreSQL refuses NUL in text and `jsonb`, `varchar(n)` refuses longer values,
//! and an unbounded price times a zero rate multiplier is NaN (behaviour.md sections 5, 7).

use std::collections::BTreeMap;

use http::{HeaderName, HeaderValue};
use tollgate_entities::{
    AllowedModels, ApiFormat, Capabilities, EntityError, ModelAlias, ModelAliases, TieredPricing,
};

/// A value that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Path of the field inside the document or entry checked, e.g. `tiers[1].up_to`.
    pub field: String,
    /// What is wrong, naming the value.
    pub reason: String,
}

impl Invalid {
    /// A broken rule of `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A closed range a number must lie in; a float must also be finite.
#[derive(Debug, Clone, Copy)]
pub struct Bounds<T> {
    min: T,
    max: T,
}

/// `price_per_request` and `default_price_per_request`: USD per successful request.
pub const PRICE_PER_REQUEST: Bounds<f64> = Bounds {
    min: 0.0,
    max: 1_000.0,
};
/// An upstream key's `rate_multiplier` from list to actual cost (0 means free).
pub const RATE_MULTIPLIER: Bounds<f64> = Bounds {
    min: 0.0,
    max: 100.0,
};
/// A user's `quota_usd`, and the `used_usd` an admin may set.
pub const USER_USD: Bounds<f64> = Bounds { min: 0.0, max: 1e9 };
/// A provider's `provider_priority` and an upstream key's `internal_priority`.
pub const PRIORITY: Bounds<i32> = Bounds {
    min: -1_000_000,
    max: 1_000_000,
};
/// An endpoint's `timeout`, in seconds.
pub const TIMEOUT_SECS: Bounds<i32> = Bounds { min: 1, max: 3_600 };
/// An endpoint's `max_retries`.
pub const MAX_RETRIES: Bounds<i32> = Bounds { min: 0, max: 10 };

impl Bounds<f64> {
    /// `value` when finite and in range (`-0.0` becomes `0.0`).
    pub fn check(self, field: &str, value: f64) -> Result<f64, Invalid> {
        if value.is_finite() && (self.min..=self.max).contains(&value) {
            Ok(if value == 0.0 { 0.0 } else { value })
        } else {
            Err(Invalid::new(
                field,
                format!(
                    "{value:?} is not a finite number in {}..={}",
                    self.min, self.max
                ),
            ))
        }
    }

    /// [`Bounds::check`] on a value that may be absent.
    pub fn check_optional(self, field: &str, value: Option<f64>) -> Result<Option<f64>, Invalid> {
        value.map(|value| self.check(field, value)).transpose()
    }
}

impl Bounds<i32> {
    /// `value` when in range.
    pub fn check(self, field: &str, value: i32) -> Result<i32, Invalid> {
        if (self.min..=self.max).contains(&value) {
            Ok(value)
        } else {
            Err(Invalid::new(
                field,
                format!("{value} is out of range {}..={}", self.min, self.max),
            ))
        }
    }
}

/// Longest id: a UUID's text form (`tollgate_entities::new_id`), the width of every id column.
pub const MAX_ID_BYTES: usize = 36;

/// Whether `value` can be a row id: 1 to 36 ASCII letters, digits, `-` or `_`. Ids are UUIDs;
/// the charset is wider so hand-made ids keep working, and narrow enough that nothing that
/// reaches a query can be refused by the database (NUL, invalid text, overlong values).
pub fn is_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_ID_BYTES
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A reference to a row in a body, e.g. `global_model_id`.
pub fn id(field: &str, value: &str) -> Result<String, Invalid> {
    if is_id(value) {
        Ok(value.to_owned())
    } else {
        Err(Invalid::new(
            field,
            format!(
                "`{}` is not an id (1 to {MAX_ID_BYTES} letters, digits, `-` or `_`)",
                shown(value)
            ),
        ))
    }
}

/// `value` as it may appear in a message: control characters escaped, cut after 64
/// characters.
pub fn shown(value: &str) -> String {
    const LONGEST: usize = 64;
    let mut text: String = value
        .chars()
        .take(LONGEST)
        .flat_map(char::escape_debug)
        .collect();
    if value.chars().nth(LONGEST).is_some() {
        text.push('…');
    }
    text
}

/// A required name: trimmed, 1 to `max` bytes, no control characters.
pub fn name(field: &str, value: &str, max: usize) -> Result<String, Invalid> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(Invalid::new(field, "must not be empty"));
    }
    if trimmed.len() > max {
        return Err(Invalid::new(
            field,
            format!("`{}` must be at most {max} bytes", shown(trimmed)),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Invalid::new(
            field,
            format!("`{}` must not contain control characters", shown(trimmed)),
        ));
    }
    Ok(trimmed.to_owned())
}

/// A model name clients will send: the resolver's own rules (trimmed, ≤ 200 bytes, no
/// control characters) plus the column's limit.
pub fn model_name(field: &str, value: &str, max: usize) -> Result<String, Invalid> {
    let normalized = tollgate_resolver::normalize_model_name(value)
        .map_err(|error| Invalid::new(field, error.to_string()))?;
    name(field, normalized, max)
}

/// An upstream secret: 1 to 4096 bytes without control characters (it becomes a header).
/// The message never shows the value.
pub fn secret<'a>(field: &str, value: &'a str) -> Result<&'a str, Invalid> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.len() > 4_096 || trimmed.chars().any(char::is_control) {
        return Err(Invalid::new(field, "must be 1 to 4096 printable bytes"));
    }
    Ok(trimmed)
}

/// A client key's stored hash: 64 hex digits, trimmed and lowercased.
pub fn key_hash(field: &str, value: &str) -> Result<String, Invalid> {
    let hash = value.trim().to_ascii_lowercase();
    if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hash)
    } else {
        Err(Invalid::new(
            field,
            format!("`{}` is not a hex SHA-256 (64 hex digits)", shown(&hash)),
        ))
    }
}

/// Validated tiered pricing: the error names the tier, the field and the value.
pub fn pricing(field: &str, value: &TieredPricing) -> Result<(), Invalid> {
    value.validate().map_err(|error| match error {
        EntityError::InvalidPricing {
            tier,
            field: inner,
            reason,
        } => Invalid::new(
            if inner == "tiers" {
                format!("{field}.tiers")
            } else {
                format!("{field}.tiers[{tier}].{inner}")
            },
            format!("invalid tiered pricing: tier {tier} field `{inner}`: {reason}"),
        ),
        other => Invalid::new(field, other.to_string()),
    })
}

/// The longest `base_url` (the column is `varchar(500)`).
const MAX_URL_BYTES: usize = 500;

/// An absolute `http` or `https` URL of at most 500 bytes, without control characters; a
/// trailing `/` is dropped.
pub fn base_url(field: &str, value: &str) -> Result<String, Invalid> {
    let trimmed = value.trim();
    let refused = |why: &str| Invalid::new(field, format!("`{}` {why}", shown(trimmed)));
    if trimmed.len() > MAX_URL_BYTES {
        return Err(refused("must be at most 500 bytes"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(refused("must not contain control characters"));
    }
    match url::Url::parse(trimmed) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(trimmed.trim_end_matches('/').to_owned())
        }
        _ => Err(refused("is not an http(s) URL")),
    }
}

/// A plausible e-mail address.
pub fn email(field: &str, value: &str) -> Result<String, Invalid> {
    let trimmed = name(field, value, 255)?;
    match trimmed.split_once('@') {
        Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !trimmed.contains(' ') =>
        {
            Ok(trimmed)
        }
        _ => Err(Invalid::new(
            field,
            format!("`{}` is not an e-mail address", shown(&trimmed)),
        )),
    }
}

/// Extra upstream headers: every name a valid HTTP header name and every value a valid header
/// value, so the endpoint can be called at all.
pub fn headers(field: &str, value: &BTreeMap<String, String>) -> Result<(), Invalid> {
    for (name, header) in value {
        if HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(Invalid::new(
                format!("{field}.{name}"),
                format!("`{}` is not an HTTP header name", shown(name)),
            ));
        }
        if HeaderValue::from_str(header).is_err() {
            return Err(Invalid::new(
                format!("{field}.{name}"),
                format!("`{}` is not an HTTP header value", shown(header)),
            ));
        }
    }
    Ok(())
}

/// Free-form JSON (a `config` object): no NUL in any key or string, which PostgreSQL's
/// `jsonb` refuses. The error names the path of the first offender.
pub fn json<T: serde::Serialize>(field: &str, value: &T) -> Result<(), Invalid> {
    let value = serde_json::to_value(value)
        .map_err(|error| Invalid::new(field, format!("cannot be stored as JSON: {error}")))?;
    json_value(field, &value)
}

fn json_value(at: &str, value: &serde_json::Value) -> Result<(), Invalid> {
    let nul = |at: &str, text: &str| {
        Invalid::new(
            at,
            format!("`{}` must not contain a NUL character", shown(text)),
        )
    };
    match value {
        serde_json::Value::String(text) if text.contains('\0') => Err(nul(at, text)),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(index, item)| json_value(&format!("{at}[{index}]"), item)),
        serde_json::Value::Object(map) => map.iter().try_for_each(|(key, item)| {
            if key.contains('\0') {
                return Err(nul(at, key));
            }
            json_value(&format!("{at}.{key}"), item)
        }),
        _ => Ok(()),
    }
}

/// Capability names: each a name of at most 100 bytes.
pub fn capabilities(field: &str, values: &[String]) -> Result<Capabilities, Invalid> {
    each(field, values, |at, value| name(at, value, 100)).map(Capabilities)
}

/// Model names an upstream key may serve: each a model name.
pub fn allowed_models(field: &str, values: &[String]) -> Result<AllowedModels, Invalid> {
    each(field, values, |at, value| model_name(at, value, 200)).map(AllowedModels)
}

/// Every value of a list checked by `rule`, each named `field[index]`.
fn each(
    field: &str,
    values: &[String],
    rule: impl Fn(&str, &str) -> Result<String, Invalid>,
) -> Result<Vec<String>, Invalid> {
    values
        .iter()
        .enumerate()
        .map(|(index, value)| rule(&format!("{field}[{index}]"), value))
        .collect()
}

/// A model's upstream aliases: names like model names, formats `OPENAI` or `CLAUDE`.
pub fn aliases(field: &str, values: Vec<ModelAlias>) -> Result<ModelAliases, Invalid> {
    for (index, alias) in values.iter().enumerate() {
        name(&format!("{field}[{index}].name"), &alias.name, 200)?;
        for (f, format) in alias.api_formats.iter().flatten().enumerate() {
            if format.parse::<ApiFormat>().is_err() {
                return Err(Invalid::new(
                    format!("{field}[{index}].api_formats[{f}]"),
                    format!(
                        "unknown api format `{}` (expected OPENAI or CLAUDE)",
                        shown(format)
                    ),
                ));
            }
        }
    }
    Ok(ModelAliases(values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_names_and_ranges() {
        assert_eq!(
            base_url("u", "https://api.example.com/v1/").unwrap(),
            "https://api.example.com/v1"
        );
        assert!(base_url("u", "ftp://x").is_err());
        assert!(base_url("u", "not a url").is_err());
        assert!(base_url("u", "https://x.test/\0").is_err());
        assert!(base_url("u", &format!("https://x.test/{}", "a".repeat(500))).is_err());
        assert!(name("n", "  ", 10).is_err());
        assert!(name("n", "abcdefghijk", 10).is_err());
        assert!(name("n", "a\0b", 10).is_err());
        assert_eq!(name("n", " ok ", 10).unwrap(), "ok");
        assert!(TIMEOUT_SECS.check("t", 0).is_err());
        assert!(email("e", "a@b").is_ok());
        assert!(email("e", "ab").is_err());
    }

    #[test]
    fn amounts_are_finite_and_bounded() {
        for bad in [f64::NAN, f64::INFINITY, -0.5, 1e300, 1_000.5] {
            let error = PRICE_PER_REQUEST
                .check("price_per_request", bad)
                .unwrap_err();
            assert_eq!(error.field, "price_per_request");
            assert!(error.reason.contains("0..=1000"), "{}", error.reason);
        }
        assert_eq!(PRICE_PER_REQUEST.check("p", 1_000.0), Ok(1_000.0));
        assert!(RATE_MULTIPLIER.check("m", 100.5).is_err());
        assert_eq!(RATE_MULTIPLIER.check("m", 0.0), Ok(0.0));
        assert_eq!(RATE_MULTIPLIER.check("m", -0.0).map(f64::to_bits), Ok(0));
        assert!(USER_USD.check("quota_usd", 1e9 + 1.0).is_err());
        assert_eq!(USER_USD.check_optional("quota_usd", None), Ok(None));
        assert!(
            USER_USD
                .check("quota_usd", 1e300)
                .unwrap_err()
                .reason
                .contains("1e300")
        );
    }

    #[test]
    fn ids_are_short_plain_ascii() {
        assert!(is_id("0190f1a2-7b3c-7d4e-8f00-123456789abc"));
        assert!(is_id("no-such-id"));
        for bad in ["", "a\0b", "a b", "é", "a/b", "a\u{7}", &"a".repeat(37)] {
            assert!(!is_id(bad), "{bad:?}");
        }
        let error = id("global_model_id", "x\0y").unwrap_err();
        assert!(error.reason.contains("x\\0y"), "{}", error.reason);
    }

    #[test]
    fn json_refuses_nul_anywhere_and_names_the_path() {
        let value = serde_json::json!({"a": [1, {"b": "ok", "c": "bad\u{0}"}]});
        assert_eq!(json("config", &value).unwrap_err().field, "config.a[1].c");
        let key = serde_json::json!({"k\u{0}": 1});
        assert_eq!(json("config", &key).unwrap_err().field, "config");
        assert!(json("config", &serde_json::json!({"text": "line\nbreak"})).is_ok());
    }

    #[test]
    fn headers_must_be_sendable() {
        let mut good = BTreeMap::new();
        good.insert("x-org".to_owned(), "7".to_owned());
        assert!(headers("headers", &good).is_ok());
        let mut bad_name = BTreeMap::new();
        bad_name.insert("x org".to_owned(), "7".to_owned());
        assert_eq!(
            headers("headers", &bad_name).unwrap_err().field,
            "headers.x org"
        );
        let mut bad_value = BTreeMap::new();
        bad_value.insert("x-org".to_owned(), "a\r\nb".to_owned());
        assert!(headers("headers", &bad_value).is_err());
    }

    #[test]
    fn shown_escapes_and_cuts() {
        assert_eq!(shown("a\0b"), "a\\0b");
        assert_eq!(shown(&"x".repeat(100)).chars().count(), 65);
    }
}
