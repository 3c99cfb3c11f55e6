//! Token counts from upstream usage blocks, read leniently and clamped (behaviour.md 7).
//!
//! OpenAI reports `prompt_tokens` (cached prompt tokens included; they count as cache reads)
//! and `completion_tokens`; Anthropic reports `input_tokens`, `output_tokens` and cache
//! creation and read, in whole responses and in stream events.
//!
//! Upstream numbers are untrusted. Each count is read from its raw JSON text, so no value
//! can make the block unreadable: integers are taken as they are, non-integers are truncated
//! toward zero, numeric strings are read the same way, negatives become 0 and anything above
//! `i32::MAX` (the `usage` column's range) becomes `i32::MAX`; `null` or an absent field is 0
//! (or "unchanged" in a stream), and any other type is 0. Every value that had to change
//! leaves a short note for the usage row's `request_metadata`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;
use tollgate_entities::{ApiFormat, TokenCounts};

/// The most notes one reading keeps; later ones are dropped.
const MAX_NOTES: usize = 8;

/// The most characters of an offending value quoted in a note.
const NOTE_VALUE_CHARS: usize = 24;

/// Token counts read from a usage block, and what had to be changed to get them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageReading {
    /// Every count within `0..=i32::MAX`.
    pub tokens: TokenCounts,
    /// One short note per value that had to be changed (at most eight), such as
    /// `output_tokens: -5 -> 0`.
    pub clamped: Vec<String>,
}

/// The notes of one reading, capped at [`MAX_NOTES`].
#[derive(Debug, Clone, Default)]
struct Notes(Vec<String>);

impl Notes {
    fn push(&mut self, note: impl FnOnce() -> String) {
        if self.0.len() < MAX_NOTES {
            self.0.push(note());
        }
    }
}

/// A raw value shortened for a note: at most [`NOTE_VALUE_CHARS`] characters, control
/// characters escaped.
fn shown(raw: &str) -> String {
    let mut out = String::new();
    for (index, c) in raw.chars().enumerate() {
        if index == NOTE_VALUE_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A parsed number clamped to `0..=TokenCounts::MAX`, and whether it was already an
/// integer in that range.
fn parse_number(text: &str) -> Option<(i64, bool)> {
    if let Ok(value) = text.parse::<i64>() {
        let count = value.clamp(0, TokenCounts::MAX);
        return Some((count, count == value));
    }
    // An integer too long for i64: its sign decides.
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        let count = if text.starts_with('-') {
            0
        } else {
            TokenCounts::MAX
        };
        return Some((count, false));
    }
    // Rust's parser turns an out-of-range literal such as `1e400` into an infinity.
    let value: f64 = text.parse().ok()?;
    Some(clamp_float(value))
}

fn clamp_float(value: f64) -> (i64, bool) {
    #[expect(clippy::cast_precision_loss, reason = "i32::MAX is exact in an f64")]
    let max = TokenCounts::MAX as f64;
    let whole = value.trunc();
    if value.is_nan() || whole <= 0.0 {
        // -0.0 and 0.0 are exact; NaN, negatives and -0.5 are not.
        (0, value == 0.0)
    } else if whole >= max {
        (TokenCounts::MAX, value == max)
    } else {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "whole is an integer strictly between 0 and i32::MAX"
        )]
        let count = whole as i64;
        (count, whole == value)
    }
}

/// Reads one count field. `None` for `null` (the field says nothing); otherwise a count
/// within `0..=TokenCounts::MAX`, with a note when the value had to change.
fn read_count(field: &str, raw: &RawValue, notes: &mut Notes) -> Option<i64> {
    let text = raw.get().trim();
    match text.as_bytes().first() {
        None | Some(b'n') => None,
        Some(b'"') => {
            let number = serde_json::from_str::<String>(text)
                .ok()
                .and_then(|s| parse_number(s.trim()));
            let count = number.map_or(0, |(count, _)| count);
            notes.push(|| format!("{field}: {} (string) -> {count}", shown(text)));
            Some(count)
        }
        Some(b'-' | b'0'..=b'9') => {
            let (count, exact) = parse_number(text).unwrap_or((0, false));
            if !exact {
                notes.push(|| format!("{field}: {} -> {count}", shown(text)));
            }
            Some(count)
        }
        Some(first) => {
            let kind = match first {
                b't' | b'f' => "boolean",
                b'{' => "object",
                b'[' => "array",
                _ => "unreadable value",
            };
            notes.push(|| format!("{field}: {kind} -> 0"));
            Some(0)
        }
    }
}

/// `raw` read as a JSON object of type `T`; `None` for anything else (serde would also
/// read a struct from an array, positionally, which no usage block means).
fn object<'a, T: Deserialize<'a>>(raw: &'a RawValue) -> Option<T> {
    if !raw.get().trim_start().starts_with('{') {
        return None;
    }
    serde_json::from_str(raw.get()).ok()
}

/// The fields of a usage block, raw. A map rather than a struct, so a duplicated key
/// (the last one wins) does not make the whole block unreadable.
type Fields<'a> = BTreeMap<String, &'a RawValue>;

/// `raw` as a JSON object's fields; `None` (with a note) for anything else.
fn fields<'a>(name: &str, raw: &'a RawValue, notes: &mut Notes) -> Option<Fields<'a>> {
    let fields = if raw.get().trim_start().starts_with('{') {
        serde_json::from_str::<Fields<'a>>(raw.get()).ok()
    } else {
        None
    };
    if fields.is_none() {
        notes.push(|| format!("{name}: {} is not an object -> 0", shown(raw.get())));
    }
    fields
}

/// Reads the count `name` of `fields`; `None` when it is absent or `null`.
fn count_of(fields: &Fields<'_>, name: &str, notes: &mut Notes) -> Option<i64> {
    fields
        .get(name)
        .and_then(|raw| read_count(name, raw, notes))
}

/// Applies an OpenAI usage block: input = prompt − cached (at least 0), cached prompt
/// tokens are cache reads. Fields absent or `null` leave their counts unchanged.
fn apply_openai(raw: &RawValue, tokens: &mut TokenCounts, notes: &mut Notes) {
    let Some(usage) = fields("usage", raw, notes) else {
        return;
    };
    if let Some(prompt) = count_of(&usage, "prompt_tokens", notes) {
        let cached = present(usage.get("prompt_tokens_details").copied())
            .and_then(|raw| fields("prompt_tokens_details", raw, notes))
            .and_then(|details| count_of(&details, "cached_tokens", notes))
            .unwrap_or(0);
        if cached > prompt {
            notes.push(|| format!("input_tokens: prompt {prompt} - cached {cached} -> 0"));
        }
        tokens.input = (prompt - cached).max(0);
        tokens.cache_read = cached;
    }
    if let Some(completion) = count_of(&usage, "completion_tokens", notes) {
        tokens.output = completion;
    }
}

/// Applies an Anthropic usage block. Later stream events carry cumulative values, so each
/// field present overwrites; fields absent or `null` leave their counts unchanged.
fn apply_claude(raw: &RawValue, tokens: &mut TokenCounts, notes: &mut Notes) {
    let Some(usage) = fields("usage", raw, notes) else {
        return;
    };
    let slots = [
        ("input_tokens", &mut tokens.input),
        ("output_tokens", &mut tokens.output),
        ("cache_creation_input_tokens", &mut tokens.cache_creation),
        ("cache_read_input_tokens", &mut tokens.cache_read),
    ];
    for (name, slot) in slots {
        if let Some(count) = count_of(&usage, name, notes) {
            *slot = count;
        }
    }
}

fn apply(format: ApiFormat, raw: &RawValue, tokens: &mut TokenCounts, notes: &mut Notes) {
    match format {
        ApiFormat::OpenAi => apply_openai(raw, tokens, notes),
        ApiFormat::Claude => apply_claude(raw, tokens, notes),
    }
}

/// The top-level fields the usage parser looks at; every other field is skipped unread.
#[derive(Debug, Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    usage: Option<&'a RawValue>,
    /// OpenAI stream chunks: the usage chunk has no (or empty) choices.
    #[serde(borrow, default)]
    choices: Option<&'a RawValue>,
    /// Anthropic `message_start` events carry the usage inside the message.
    #[serde(borrow, default)]
    message: Option<&'a RawValue>,
}

/// The envelope of a JSON object payload; `None` for anything else.
fn envelope(data: &[u8]) -> Option<Envelope<'_>> {
    let text = std::str::from_utf8(data).ok()?;
    if !text.trim_start().starts_with('{') {
        return None;
    }
    serde_json::from_str(text).ok()
}

/// A usage block that is present and not `null`.
fn present(raw: Option<&RawValue>) -> Option<&RawValue> {
    raw.filter(|raw| raw.get().trim() != "null")
}

/// Token counts of a whole (non-streamed) response body; `None` when the body is not a JSON
/// object or has no usage block (absent or `null`).
pub fn from_body(format: ApiFormat, body: &[u8]) -> Option<UsageReading> {
    let usage = present(envelope(body)?.usage)?;
    let mut tokens = TokenCounts::default();
    let mut notes = Notes::default();
    apply(format, usage, &mut tokens, &mut notes);
    Some(UsageReading {
        tokens: tokens.clamped(),
        clamped: notes.0,
    })
}

/// Accumulates usage over the `data:` payloads of a stream.
#[derive(Debug, Clone)]
pub struct StreamUsage {
    format: ApiFormat,
    tokens: TokenCounts,
    notes: Notes,
    seen: bool,
}

impl StreamUsage {
    /// Nothing seen yet.
    pub fn new(format: ApiFormat) -> Self {
        Self {
            format,
            tokens: TokenCounts::default(),
            notes: Notes::default(),
            seen: false,
        }
    }

    /// The counts so far, each within `0..=i32::MAX` (zero when the stream carried no usage).
    pub fn tokens(&self) -> TokenCounts {
        self.tokens.clamped()
    }

    /// One note per value that had to be changed so far (at most eight).
    pub fn clamped(&self) -> &[String] {
        &self.notes.0
    }

    /// Whether a usage block (present and not `null`) was seen in the stream.
    pub fn seen(&self) -> bool {
        self.seen
    }

    /// Reads one event's `data:` payload. Returns `true` when it is OpenAI's extra usage
    /// chunk (no choices, a usage block): the one `stream_options.include_usage` adds.
    pub fn observe(&mut self, data: &[u8]) -> bool {
        // Cheap pre-check: most events are content deltas without a usage block.
        if !contains(data, b"usage") {
            return false;
        }
        let Some(event) = envelope(data) else {
            return false;
        };
        match self.format {
            ApiFormat::OpenAi => {
                let Some(usage) = present(event.usage) else {
                    return false;
                };
                self.seen = true;
                apply_openai(usage, &mut self.tokens, &mut self.notes);
                present(event.choices).is_none_or(|choices| {
                    serde_json::from_str::<Vec<serde::de::IgnoredAny>>(choices.get())
                        .is_ok_and(|choices| choices.is_empty())
                })
            }
            ApiFormat::Claude => {
                let in_message = present(event.message)
                    .and_then(object::<Envelope<'_>>)
                    .and_then(|message| present(message.usage));
                for usage in [in_message, present(event.usage)].into_iter().flatten() {
                    self.seen = true;
                    apply_claude(usage, &mut self.tokens, &mut self.notes);
                }
                false
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::{Just, Strategy, any, prop, prop_assert, prop_assert_eq, prop_oneof};
    use tollgate_entities::{ApiFormat, TokenCounts};

    use super::{MAX_NOTES, StreamUsage, UsageReading, from_body};

    fn openai(body: &str) -> UsageReading {
        from_body(ApiFormat::OpenAi, body.as_bytes()).unwrap()
    }

    fn claude(body: &str) -> UsageReading {
        from_body(ApiFormat::Claude, body.as_bytes()).unwrap()
    }

    #[test]
    fn openai_cached_prompt_tokens_are_cache_reads() {
        let body = r#"{"usage":{"prompt_tokens":100,"completion_tokens":7,"prompt_tokens_details":{"cached_tokens":40}}}"#;
        assert_eq!(
            openai(body),
            UsageReading {
                tokens: TokenCounts {
                    input: 60,
                    output: 7,
                    cache_creation: 0,
                    cache_read: 40
                },
                clamped: Vec::new(),
            }
        );
        assert_eq!(from_body(ApiFormat::OpenAi, br#"{"choices":[]}"#), None);
        assert_eq!(from_body(ApiFormat::OpenAi, br#"{"usage":null}"#), None);
        assert_eq!(from_body(ApiFormat::OpenAi, b"not json"), None);
        assert_eq!(from_body(ApiFormat::OpenAi, br#"[{"usage":{}}]"#), None);
    }

    #[test]
    fn claude_usage_has_four_kinds() {
        let body = r#"{"usage":{"input_tokens":10,"output_tokens":5,"cache_creation_input_tokens":3,"cache_read_input_tokens":2}}"#;
        assert_eq!(
            claude(body).tokens,
            TokenCounts {
                input: 10,
                output: 5,
                cache_creation: 3,
                cache_read: 2
            }
        );
    }

    #[test]
    fn untrusted_numbers_are_clamped_and_noted() {
        let reading = claude(
            r#"{"usage":{"input_tokens":1e12,"output_tokens":-5,"cache_creation_input_tokens":3.7,"cache_read_input_tokens":"12"}}"#,
        );
        assert_eq!(
            reading.tokens,
            TokenCounts {
                input: TokenCounts::MAX,
                output: 0,
                cache_creation: 3,
                cache_read: 12
            }
        );
        assert_eq!(
            reading.clamped,
            [
                "input_tokens: 1e12 -> 2147483647",
                "output_tokens: -5 -> 0",
                "cache_creation_input_tokens: 3.7 -> 3",
                r#"cache_read_input_tokens: "12" (string) -> 12"#,
            ]
        );
    }

    #[test]
    fn out_of_range_literals_do_not_lose_the_block() {
        // serde_json rejects 1e400 as a number; read raw, it is a huge count.
        let reading = openai(
            r#"{"id":1e400,"usage":{"prompt_tokens":1e400,"completion_tokens":-99999999999999999999999}}"#,
        );
        assert_eq!(reading.tokens.input, TokenCounts::MAX);
        assert_eq!(reading.tokens.output, 0);
        assert_eq!(reading.clamped.len(), 2);
        let reading = openai(r#"{"usage":{"prompt_tokens":123456789012345678901234567890}}"#);
        assert_eq!(reading.tokens.input, TokenCounts::MAX);
    }

    #[test]
    fn other_types_count_as_zero_and_null_says_nothing() {
        let reading = openai(
            r#"{"usage":{"prompt_tokens":true,"completion_tokens":{"a":1},"prompt_tokens_details":null}}"#,
        );
        assert_eq!(reading.tokens, TokenCounts::default());
        assert_eq!(
            reading.clamped,
            [
                "prompt_tokens: boolean -> 0",
                "completion_tokens: object -> 0"
            ]
        );
        let reading = openai(r#"{"usage":{"prompt_tokens":null,"completion_tokens":4}}"#);
        assert_eq!(reading.tokens.output, 4);
        assert!(reading.clamped.is_empty());
        let reading = openai(r#"{"usage":{"prompt_tokens":"lots","completion_tokens":12.0}}"#);
        assert_eq!(reading.tokens, TokenCounts::default().with_output(12));
        assert_eq!(reading.clamped, [r#"prompt_tokens: "lots" (string) -> 0"#]);
        let reading = openai(r#"{"usage":{"completion_tokens":1,"completion_tokens":2}}"#);
        assert_eq!(reading.tokens.output, 2);
        let reading = openai(r#"{"usage":{"prompt_tokens":5,"prompt_tokens_details":7}}"#);
        assert_eq!(reading.tokens.input, 5);
        assert_eq!(
            reading.clamped,
            ["prompt_tokens_details: 7 is not an object -> 0"]
        );
        let reading = openai(r#"{"usage":[1,2]}"#);
        assert_eq!(reading.tokens, TokenCounts::default());
        assert_eq!(reading.clamped, ["usage: [1,2] is not an object -> 0"]);
    }

    #[test]
    fn cached_above_prompt_floors_input_at_zero() {
        let reading = openai(
            r#"{"usage":{"prompt_tokens":10,"prompt_tokens_details":{"cached_tokens":40}}}"#,
        );
        assert_eq!(reading.tokens.input, 0);
        assert_eq!(reading.tokens.cache_read, 40);
        assert_eq!(
            reading.clamped,
            ["input_tokens: prompt 10 - cached 40 -> 0"]
        );
    }

    #[test]
    fn notes_are_short_escaped_and_capped() {
        let long = format!(r#""{}\u0000""#, "9".repeat(100));
        let reading = claude(&format!(
            r#"{{"usage":{{"input_tokens":{long},"output_tokens":{long}}}}}"#
        ));
        assert_eq!(reading.tokens.input, 0);
        for note in &reading.clamped {
            assert!(note.chars().count() < 80, "{note}");
            assert!(!note.chars().any(char::is_control), "{note}");
        }
        let mut usage = StreamUsage::new(ApiFormat::Claude);
        for _ in 0..5 {
            usage.observe(br#"{"usage":{"input_tokens":-1,"output_tokens":-1}}"#);
        }
        assert_eq!(usage.clamped().len(), MAX_NOTES);
    }

    #[test]
    fn openai_usage_chunk_is_recognised() {
        let mut usage = StreamUsage::new(ApiFormat::OpenAi);
        assert!(!usage.observe(br#"{"choices":[{"delta":{"content":"hi"}}],"usage":null}"#));
        assert!(!usage.seen());
        assert!(
            usage.observe(br#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#)
        );
        assert!(usage.seen());
        assert_eq!(usage.tokens().input, 3);
        assert!(usage.clamped().is_empty());
        let mut usage = StreamUsage::new(ApiFormat::OpenAi);
        assert!(usage.observe(br#"{"usage":{"prompt_tokens":-3}}"#));
        assert_eq!(usage.clamped(), ["prompt_tokens: -3 -> 0"]);
    }

    #[test]
    fn claude_stream_usage_accumulates() {
        let mut usage = StreamUsage::new(ApiFormat::Claude);
        usage.observe(br#"{"type":"message_start","message":{"usage":{"input_tokens":9,"cache_read_input_tokens":4,"output_tokens":1}}}"#);
        assert!(usage.seen());
        usage.observe(br#"{"type":"message_delta","usage":{"output_tokens":12}}"#);
        assert_eq!(
            usage.tokens(),
            TokenCounts {
                input: 9,
                output: 12,
                cache_creation: 0,
                cache_read: 4
            }
        );
        let mut usage = StreamUsage::new(ApiFormat::Claude);
        usage.observe(br#"{"type":"content_block_delta","delta":{"text":"usage"}}"#);
        assert!(!usage.seen());
    }

    trait WithOutput {
        fn with_output(self, output: i64) -> Self;
    }

    impl WithOutput for TokenCounts {
        fn with_output(mut self, output: i64) -> Self {
            self.output = output;
            self
        }
    }

    /// Raw JSON text of a value an upstream might put in a count field.
    fn count_value() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            (0_i64..=i64::from(i32::MAX)).prop_map(|n| n.to_string()),
            any::<f64>()
                .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
                .prop_map(|f| serde_json::to_string(&f).unwrap_or_default()),
            (any::<bool>(), 1_usize..60).prop_map(|(negative, digits)| {
                format!("{}{}", if negative { "-" } else { "" }, "9".repeat(digits))
            }),
            (any::<i32>(), -400_i32..400).prop_map(|(m, e)| format!("{m}e{e}")),
            (any::<i32>(), 0_u32..1000).prop_map(|(m, f)| format!("{m}.{f}")),
            any::<i64>().prop_map(|n| format!("\"{n}\"")),
            any::<f64>().prop_map(|f| format!("\"{f}\"")),
            any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap_or_default()),
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("false".to_owned()),
            Just("[]".to_owned()),
            Just(r#"{"nested":[1,{"x":-1e400}]}"#.to_owned()),
            Just("-0".to_owned()),
            Just("-0.0".to_owned()),
            Just("1E+400".to_owned()),
        ]
    }

    const FIELDS: [&str; 7] = [
        "prompt_tokens",
        "completion_tokens",
        "input_tokens",
        "output_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "junk",
    ];

    /// A usage block with any subset of the known fields (and some junk), each any value.
    fn usage_block() -> impl Strategy<Value = String> {
        (
            prop::collection::vec((prop::sample::select(FIELDS.to_vec()), count_value()), 0..8),
            prop::option::of(count_value()),
        )
            .prop_map(|(fields, cached)| {
                let mut parts: Vec<String> = fields
                    .into_iter()
                    .map(|(name, value)| format!("\"{name}\":{value}"))
                    .collect();
                if let Some(cached) = cached {
                    parts.push(format!(
                        "\"prompt_tokens_details\":{{\"cached_tokens\":{cached}}}"
                    ));
                }
                format!("{{{}}}", parts.join(","))
            })
    }

    /// Any JSON value, nested, with numbers of every size and sign.
    fn any_json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<u64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            any::<String>().prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
                prop::collection::vec(
                    (
                        prop_oneof![
                            prop::sample::select(FIELDS.to_vec()).prop_map(str::to_owned),
                            any::<String>()
                        ],
                        inner
                    ),
                    0..6
                )
                .prop_map(|entries| serde_json::Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    fn check(
        tokens: TokenCounts,
        notes: &[String],
    ) -> Result<(), proptest::test_runner::TestCaseError> {
        for count in [
            tokens.input,
            tokens.output,
            tokens.cache_creation,
            tokens.cache_read,
        ] {
            prop_assert!((0..=TokenCounts::MAX).contains(&count), "{:?}", tokens);
        }
        prop_assert!(notes.len() <= MAX_NOTES);
        for note in notes {
            prop_assert!(note.chars().count() < 100, "{}", note);
            prop_assert!(!note.chars().any(char::is_control), "{}", note);
        }
        Ok(())
    }

    fn observe_all(format: ApiFormat, events: &[String]) -> StreamUsage {
        let mut usage = StreamUsage::new(format);
        for event in events {
            usage.observe(event.as_bytes());
        }
        usage
    }

    proptest::proptest! {
        #[test]
        fn any_usage_block_reads_within_range(block in usage_block(), claude_format in any::<bool>()) {
            let format = if claude_format { ApiFormat::Claude } else { ApiFormat::OpenAi };
            let body = format!(r#"{{"id":"x","usage":{block}}}"#);
            let reading = from_body(format, body.as_bytes());
            prop_assert!(reading.is_some(), "{}", body);
            if let Some(reading) = reading {
                check(reading.tokens, &reading.clamped)?;
            }
            let events = [
                format!(r#"{{"choices":[],"usage":{block}}}"#),
                format!(r#"{{"type":"message_start","message":{{"usage":{block}}}}}"#),
                format!(r#"{{"type":"message_delta","usage":{block}}}"#),
            ];
            let usage = observe_all(format, &events);
            prop_assert!(usage.seen());
            check(usage.tokens(), usage.clamped())?;
        }

        #[test]
        fn plain_integers_are_read_exactly(
            counts in [any::<i64>(), any::<i64>(), any::<i64>(), any::<i64>()],
        ) {
            let [input, output, creation, read] = counts;
            let body = format!(
                r#"{{"usage":{{"input_tokens":{input},"output_tokens":{output},"cache_creation_input_tokens":{creation},"cache_read_input_tokens":{read}}}}}"#
            );
            let reading = from_body(ApiFormat::Claude, body.as_bytes()).unwrap_or_default();
            let expected = TokenCounts { input, output, cache_creation: creation, cache_read: read };
            prop_assert_eq!(reading.tokens, expected.clamped());
            let changed = counts.iter().filter(|c| !(0..=TokenCounts::MAX).contains(*c)).count();
            prop_assert_eq!(reading.clamped.len(), changed);
        }

        #[test]
        fn any_json_never_panics(usage in any_json(), events in prop::collection::vec(any_json(), 0..4)) {
            for format in [ApiFormat::OpenAi, ApiFormat::Claude] {
                let body = serde_json::json!({"usage": usage.clone(), "message": {"usage": usage.clone()}});
                let body = serde_json::to_vec(&body).unwrap_or_default();
                if let Some(reading) = from_body(format, &body) {
                    check(reading.tokens, &reading.clamped)?;
                }
                let events: Vec<String> = events
                    .iter()
                    .map(|event| serde_json::json!({"usage": event, "choices": event}).to_string())
                    .collect();
                let usage = observe_all(format, &events);
                check(usage.tokens(), usage.clamped())?;
            }
        }

        #[test]
        fn any_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..200)) {
            for format in [ApiFormat::OpenAi, ApiFormat::Claude] {
                if let Some(reading) = from_body(format, &body) {
                    check(reading.tokens, &reading.clamped)?;
                }
                let mut usage = StreamUsage::new(format);
                let mut data = b"usage".to_vec();
                data.extend_from_slice(&body);
                usage.observe(&body);
                usage.observe(&data);
                check(usage.tokens(), usage.clamped())?;
            }
        }
    }
}
