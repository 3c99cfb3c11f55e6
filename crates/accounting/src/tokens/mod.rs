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
mod tests;
