//! Token readings against hand-written usage blocks and hostile values (proptest).

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
    let reading =
        openai(r#"{"usage":{"prompt_tokens":10,"prompt_tokens_details":{"cached_tokens":40}}}"#);
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
    assert!(usage.observe(br#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#));
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
