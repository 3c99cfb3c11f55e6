//! Fitting client- and upstream-supplied values to their columns before a row is written.
//!
//! Behaviour.md section 7. PostgreSQL rejects a NUL character in `varchar`/`text` and a
//! `\u0000` escape in `jsonb`, and `varchar(N)` counts characters; a rejected row would lose
//! a request from the ledger. So text is cleaned and cut here, never by the database: NUL
//! characters are dropped, a `varchar(N)` value keeps its first `N` characters (always at a
//! character boundary, as Rust strings are UTF-8), and unbounded text is capped at
//! [`MAX_TEXT_CHARS`] to bound the size of a row.

use sea_orm::ColumnTrait;
use sea_orm::sea_query::{ColumnType, StringLen};

use crate::JsonObject;

/// The most characters kept of a value in a column without a declared length (`text`, JSON
/// strings): 64 Ki characters.
pub const MAX_TEXT_CHARS: usize = 64 * 1024;

/// `value` without NUL characters, cut to its first `max_chars` characters.
pub fn fit_text(value: &str, max_chars: usize) -> String {
    value
        .chars()
        .filter(|c| *c != '\0')
        .take(max_chars)
        .collect()
}

/// Whether [`fit_text`] would change `value`. Cheap for short values: a string of at most
/// `max_chars` bytes has at most `max_chars` characters.
fn needs_fit(value: &str, max_chars: usize) -> bool {
    value.contains('\0') || (value.len() > max_chars && value.chars().count() > max_chars)
}

/// `value` with every string and object key run through [`fit_text`] with
/// [`MAX_TEXT_CHARS`], at any depth, so `jsonb` accepts it. A key that collides with another
/// once cleaned replaces it (the later one wins, as in a JSON object with duplicate keys).
/// Numbers, booleans and nulls are kept.
pub fn fit_json(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::String(text) => serde_json::Value::String(fit_owned(text)),
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(fit_json).collect())
        }
        serde_json::Value::Object(map) => serde_json::Value::Object(fit_map(map)),
        other @ (serde_json::Value::Null
        | serde_json::Value::Bool(_)
        | serde_json::Value::Number(_)) => other,
    }
}

fn fit_owned(text: String) -> String {
    if needs_fit(&text, MAX_TEXT_CHARS) {
        fit_text(&text, MAX_TEXT_CHARS)
    } else {
        text
    }
}

fn fit_map(
    map: serde_json::Map<String, serde_json::Value>,
) -> serde_json::Map<String, serde_json::Value> {
    map.into_iter()
        .map(|(key, value)| (fit_owned(key), fit_json(value)))
        .collect()
}

/// The most characters a column holds: `N` for `varchar(N)` / `char(N)`, and
/// [`MAX_TEXT_CHARS`] for `text` and every other type.
pub(crate) fn column_max_chars(column_type: &ColumnType) -> usize {
    let declared = match column_type {
        ColumnType::String(StringLen::N(n)) | ColumnType::Char(Some(n)) => {
            usize::try_from(*n).unwrap_or(MAX_TEXT_CHARS)
        }
        _ => MAX_TEXT_CHARS,
    };
    declared.min(MAX_TEXT_CHARS)
}

/// Fits `value` to `column`'s declared length (see [`column_max_chars`]).
pub(crate) fn fit_column(value: &mut String, column: impl ColumnTrait) {
    let max_chars = column_max_chars(column.def().get_column_type());
    if needs_fit(value, max_chars) {
        *value = fit_text(value, max_chars);
    }
}

/// [`fit_column`] for a nullable column; `None` stays `None`.
pub(crate) fn fit_optional_column(value: &mut Option<String>, column: impl ColumnTrait) {
    if let Some(value) = value {
        fit_column(value, column);
    }
}

/// [`fit_json`] for a nullable JSON object column.
pub(crate) fn fit_json_column(value: &mut Option<JsonObject>) {
    if let Some(JsonObject(map)) = value {
        *map = fit_map(std::mem::take(map));
    }
}

/// A `double precision` amount made finite and `>= 0`: NaN, infinities and negatives
/// become 0. Finite values are kept (no upper cap, so stored totals still add up).
pub(crate) fn fit_amount(value: &mut f64) {
    if !value.is_finite() || *value < 0.0 {
        *value = 0.0;
    }
}

/// [`fit_amount`] for a nullable amount; `None` stays `None`.
pub(crate) fn fit_optional_amount(value: &mut Option<f64>) {
    if let Some(value) = value {
        fit_amount(value);
    }
}

/// A count column that can never be negative (tokens): below 0 becomes 0.
pub(crate) fn fit_count(value: &mut i32) {
    *value = (*value).max(0);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::{any, prop, prop_assert, prop_assert_eq};
    use sea_orm::sea_query::{ColumnType, StringLen};
    use sea_orm::{ColumnTrait, IdenStatic, Iterable, ModelTrait, Value};

    use super::{MAX_TEXT_CHARS, column_max_chars, fit_json, fit_text};
    use crate::{CandidateStatus, JsonObject, fixtures, now_utc, request_candidates, usage};

    #[test]
    fn text_loses_nul_and_is_cut_at_a_character() {
        assert_eq!(fit_text("gpt\u{0}-4o", 200), "gpt-4o");
        assert_eq!(fit_text("€€€", 2), "€€");
        assert_eq!(fit_text("\u{0}\u{0}ab", 1), "a");
        assert_eq!(fit_text("", 0), "");
        assert_eq!(fit_text("abc", 0), "");
    }

    #[test]
    fn json_loses_nul_in_strings_and_keys_at_any_depth() {
        let dirty = serde_json::json!({
            "a\u{0}b": ["x\u{0}", {"k\u{0}": "v\u{0}", "n": 1.5}],
            "ok": true,
            "none": null,
        });
        let clean = fit_json(dirty);
        assert_eq!(
            clean,
            serde_json::json!({
                "ab": ["x", {"k": "v", "n": 1.5}],
                "ok": true,
                "none": null,
            })
        );
        assert!(!serde_json::to_string(&clean).unwrap().contains("\\u0000"));
        let long = fit_json(serde_json::Value::String("é".repeat(MAX_TEXT_CHARS + 5)));
        assert_eq!(long.as_str().unwrap().chars().count(), MAX_TEXT_CHARS);
    }

    #[test]
    fn column_lengths_come_from_the_column_type() {
        assert_eq!(column_max_chars(&ColumnType::String(StringLen::N(36))), 36);
        assert_eq!(column_max_chars(&ColumnType::Char(Some(2))), 2);
        assert_eq!(column_max_chars(&ColumnType::Text), MAX_TEXT_CHARS);
        assert_eq!(
            column_max_chars(&ColumnType::String(StringLen::None)),
            MAX_TEXT_CHARS
        );
        assert_eq!(
            column_max_chars(&usage::Column::Model.def().get_column_type().clone()),
            200
        );
    }

    fn usage_row() -> usage::Model {
        fixtures::usage_row("m", now_utc())
    }

    fn candidate_row() -> request_candidates::Model {
        fixtures::candidate_row("r", CandidateStatus::Failed, now_utc())
    }

    /// A dirty value for a column of at most `max_chars` characters: a NUL, then more
    /// multi-byte characters than fit.
    fn dirty_text(max_chars: usize) -> String {
        format!("\u{0}{}", "é".repeat(max_chars + 3))
    }

    /// Fills every text column of `row` with a value too long and holding NUL, every
    /// double column with NaN, and every JSON column with NUL-holding keys and strings;
    /// `fit` must then make each column fit. Columns are found by iterating the entity's
    /// `Column` enum, so a column added later without a matching line in `fit_columns`
    /// fails this test. Returns the text columns that cannot hold arbitrary text (enums).
    fn assert_every_column_fits<M>(mut row: M, fit: fn(&mut M)) -> Vec<String>
    where
        M: ModelTrait,
        <M::Entity as sea_orm::EntityTrait>::Column: Iterable,
    {
        let mut not_text = Vec::new();
        let dirty_json = serde_json::json!({"k\u{0}": ["v\u{0}"]});
        for column in <M::Entity as sea_orm::EntityTrait>::Column::iter() {
            let column_type = column.def().get_column_type().clone();
            let name = column.as_str().to_owned();
            match column_type {
                ColumnType::String(_) | ColumnType::Text | ColumnType::Char(_) => {
                    let value = Value::String(Some(dirty_text(column_max_chars(&column_type))));
                    if row.try_set(column, value).is_err() {
                        not_text.push(name);
                    }
                }
                ColumnType::Double | ColumnType::Float => {
                    row.set(column, Value::Double(Some(f64::NAN)));
                }
                ColumnType::Json | ColumnType::JsonBinary => {
                    row.set(column, Value::Json(Some(Box::new(dirty_json.clone()))));
                }
                _ => {}
            }
        }
        fit(&mut row);
        for column in <M::Entity as sea_orm::EntityTrait>::Column::iter() {
            let column_type = column.def().get_column_type().clone();
            let name = column.as_str();
            match row.get(column) {
                Value::String(Some(text)) => {
                    assert!(!text.contains('\0'), "{name} keeps a NUL");
                    assert!(
                        text.chars().count() <= column_max_chars(&column_type),
                        "{name} is too long: {} characters",
                        text.chars().count()
                    );
                }
                Value::Double(Some(amount)) => {
                    assert!(amount.is_finite() && amount >= 0.0, "{name} is {amount}");
                }
                Value::Json(Some(json)) => {
                    let text = serde_json::to_string(&json).unwrap();
                    assert!(!text.contains("\\u0000"), "{name} keeps a NUL: {text}");
                }
                _ => {}
            }
        }
        not_text
    }

    #[test]
    fn every_usage_column_fits() {
        let not_text = assert_every_column_fits(usage_row(), usage::Model::fit_columns);
        assert_eq!(not_text, ["status"]);
        let mut row = usage_row();
        row.price_per_request = None;
        row.input_tokens = -3;
        row.fit_columns();
        assert_eq!(row.price_per_request, None);
        assert_eq!(row.input_tokens, 0);
        row.price_per_request = Some(f64::NEG_INFINITY);
        row.fit_columns();
        assert_eq!(row.price_per_request, Some(0.0));
    }

    #[test]
    fn every_request_candidate_column_fits() {
        let not_text =
            assert_every_column_fits(candidate_row(), request_candidates::Model::fit_columns);
        assert_eq!(not_text, ["status"]);
    }

    #[test]
    fn fitting_leaves_a_clean_row_alone() {
        let mut row = usage_row();
        row.request_metadata = Some(JsonObject(
            serde_json::json!({"a": 1}).as_object().unwrap().clone(),
        ));
        let before = row.clone();
        row.fit_columns();
        assert_eq!(row, before);
        let mut candidate = candidate_row();
        candidate.error_message = Some("upstream answered 500".to_owned());
        let before = candidate.clone();
        candidate.fit_columns();
        assert_eq!(candidate, before);
    }

    proptest::proptest! {
        #[test]
        fn fit_text_keeps_a_clean_prefix(
            value in prop::string::string_regex("(\u{0}|a|é|€|😀|\n| )*").unwrap(),
            junk in any::<String>(),
            max_chars in 0_usize..40,
        ) {
            for input in [value, junk] {
                let fitted = fit_text(&input, max_chars);
                prop_assert!(!fitted.contains('\0'));
                prop_assert!(fitted.chars().count() <= max_chars);
                let without_nul: String = input.chars().filter(|c| *c != '\0').collect();
                prop_assert!(without_nul.starts_with(&fitted));
                let expected = without_nul.chars().count().min(max_chars);
                prop_assert_eq!(fitted.chars().count(), expected);
            }
        }
    }
}
