//! Token counts from upstream usage blocks: OpenAI (`prompt_tokens`, with cached prompt
//! tokens counted as cache reads) and Anthropic (`input_tokens` plus cache creation and
//! read), in whole responses and in stream events.

use serde::Deserialize;
use tollgate_entities::{ApiFormat, TokenCounts};

#[derive(Debug, Default, Deserialize)]
struct OpenAiUsage {
    #[serde(default)]
    prompt_tokens: Option<i64>,
    #[serde(default)]
    completion_tokens: Option<i64>,
    #[serde(default)]
    prompt_tokens_details: Option<OpenAiPromptDetails>,
}

#[derive(Debug, Default, Deserialize)]
struct OpenAiPromptDetails {
    #[serde(default)]
    cached_tokens: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
struct ClaudeUsage {
    #[serde(default)]
    input_tokens: Option<i64>,
    #[serde(default)]
    output_tokens: Option<i64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<i64>,
    #[serde(default)]
    cache_read_input_tokens: Option<i64>,
}

impl OpenAiUsage {
    fn apply(&self, tokens: &mut TokenCounts) {
        let cached = self
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens)
            .unwrap_or(0)
            .max(0);
        if let Some(prompt) = self.prompt_tokens {
            tokens.input = (prompt - cached).max(0);
            tokens.cache_read = cached;
        }
        if let Some(completion) = self.completion_tokens {
            tokens.output = completion.max(0);
        }
    }
}

impl ClaudeUsage {
    /// Later events carry cumulative values, so each field present overwrites.
    fn apply(&self, tokens: &mut TokenCounts) {
        let fields = [
            (self.input_tokens, &mut tokens.input),
            (self.output_tokens, &mut tokens.output),
            (self.cache_creation_input_tokens, &mut tokens.cache_creation),
            (self.cache_read_input_tokens, &mut tokens.cache_read),
        ];
        for (value, slot) in fields {
            if let Some(value) = value {
                *slot = value.max(0);
            }
        }
    }
}

#[derive(Debug, Deserialize)]
struct WithUsage<U> {
    #[serde(default = "Option::default")]
    usage: Option<U>,
}

/// Token counts read from an upstream usage block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct UsageReading {
    /// The counts.
    pub(crate) tokens: TokenCounts,
    /// Notes on values that had to be clamped.
    pub(crate) clamped: Vec<String>,
}

/// Token counts of a whole (non-streamed) response body; `None` without a usage block.
pub(crate) fn from_body(format: ApiFormat, body: &[u8]) -> Option<UsageReading> {
    from_body_counts(format, body).map(|tokens| UsageReading {
        tokens,
        clamped: Vec::new(),
    })
}

fn from_body_counts(format: ApiFormat, body: &[u8]) -> Option<TokenCounts> {
    let mut tokens = TokenCounts::default();
    match format {
        ApiFormat::OpenAi => serde_json::from_slice::<WithUsage<OpenAiUsage>>(body)
            .ok()?
            .usage?
            .apply(&mut tokens),
        ApiFormat::Claude => serde_json::from_slice::<WithUsage<ClaudeUsage>>(body)
            .ok()?
            .usage?
            .apply(&mut tokens),
    }
    Some(tokens)
}

#[derive(Debug, Deserialize)]
struct OpenAiChunk {
    #[serde(default)]
    choices: Option<Vec<serde::de::IgnoredAny>>,
    #[serde(default)]
    usage: Option<OpenAiUsage>,
}

#[derive(Debug, Deserialize)]
struct ClaudeEvent {
    #[serde(default)]
    message: Option<WithUsage<ClaudeUsage>>,
    #[serde(default)]
    usage: Option<ClaudeUsage>,
}

/// Accumulates usage over the `data:` payloads of a stream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamUsage {
    format: ApiFormat,
    tokens: TokenCounts,
    seen: bool,
}

impl StreamUsage {
    /// Nothing seen yet.
    pub(crate) fn new(format: ApiFormat) -> Self {
        Self {
            format,
            tokens: TokenCounts::default(),
            seen: false,
        }
    }

    /// Notes on values that had to be clamped.
    pub(crate) fn clamped(&self) -> &[String] {
        &[]
    }

    /// Whether a usage block was seen.
    pub(crate) fn seen(&self) -> bool {
        self.seen
    }

    /// The counts so far (zero when the stream carried no usage).
    pub(crate) fn tokens(&self) -> TokenCounts {
        self.tokens
    }

    /// Reads one event's `data:` payload. Returns `true` when it is OpenAI's extra usage
    /// chunk (no choices, a usage block): the one `stream_options.include_usage` adds.
    pub(crate) fn observe(&mut self, data: &[u8]) -> bool {
        // Cheap pre-check: most events are content deltas without a usage block.
        if !contains(data, b"usage") {
            return false;
        }
        match self.format {
            ApiFormat::OpenAi => {
                let Ok(chunk) = serde_json::from_slice::<OpenAiChunk>(data) else {
                    return false;
                };
                let Some(usage) = chunk.usage else {
                    return false;
                };
                usage.apply(&mut self.tokens);
                self.seen = true;
                chunk.choices.is_none_or(|c| c.is_empty())
            }
            ApiFormat::Claude => {
                let Ok(event) = serde_json::from_slice::<ClaudeEvent>(data) else {
                    return false;
                };
                if let Some(usage) = event.message.and_then(|m| m.usage) {
                    usage.apply(&mut self.tokens);
                    self.seen = true;
                }
                if let Some(usage) = event.usage {
                    usage.apply(&mut self.tokens);
                    self.seen = true;
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
    use super::{StreamUsage, from_body};
    use tollgate_entities::{ApiFormat, TokenCounts};

    #[test]
    fn openai_cached_prompt_tokens_are_cache_reads() {
        let body = br#"{"usage":{"prompt_tokens":100,"completion_tokens":7,"prompt_tokens_details":{"cached_tokens":40}}}"#;
        assert_eq!(
            from_body(ApiFormat::OpenAi, body).map(|r| r.tokens),
            Some(TokenCounts {
                input: 60,
                output: 7,
                cache_creation: 0,
                cache_read: 40
            })
        );
        assert_eq!(from_body(ApiFormat::OpenAi, br#"{"choices":[]}"#), None);
    }

    #[test]
    fn claude_usage_has_four_kinds() {
        let body = br#"{"usage":{"input_tokens":10,"output_tokens":5,"cache_creation_input_tokens":3,"cache_read_input_tokens":2}}"#;
        assert_eq!(
            from_body(ApiFormat::Claude, body).map(|r| r.tokens),
            Some(TokenCounts {
                input: 10,
                output: 5,
                cache_creation: 3,
                cache_read: 2
            })
        );
    }

    #[test]
    fn openai_usage_chunk_is_recognised() {
        let mut usage = StreamUsage::new(ApiFormat::OpenAi);
        assert!(!usage.observe(br#"{"choices":[{"delta":{"content":"hi"}}],"usage":null}"#));
        assert!(
            usage.observe(br#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#)
        );
        assert_eq!(usage.tokens().input, 3);
    }

    #[test]
    fn claude_stream_usage_accumulates() {
        let mut usage = StreamUsage::new(ApiFormat::Claude);
        usage.observe(br#"{"type":"message_start","message":{"usage":{"input_tokens":9,"cache_read_input_tokens":4,"output_tokens":1}}}"#);
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
    }
}
