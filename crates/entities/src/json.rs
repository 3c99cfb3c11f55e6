//! Typed JSON columns: every JSON value business logic reads has a Rust type here.

use std::collections::BTreeMap;

use sea_orm::FromJsonQueryResult;
use serde::{Deserialize, Deserializer, Serialize};

/// A free-form JSON object (`providers.config`, `models.config`, `usage.request_metadata`,
/// `request_candidates.extra_data`): stored and returned, never interpreted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, FromJsonQueryResult)]
#[serde(transparent)]
pub struct JsonObject(pub serde_json::Map<String, serde_json::Value>);

/// `provider_endpoints.headers`: extra headers sent upstream with every request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, FromJsonQueryResult)]
#[serde(transparent)]
pub struct Headers(pub BTreeMap<String, String>);

/// `global_models.supported_capabilities`: a list of capability names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, FromJsonQueryResult)]
#[serde(transparent)]
pub struct Capabilities(pub Vec<String>);

/// `response_time_histogram` of every hourly and daily statistics row: counts of
/// `response_time_ms` per bucket of the fixed bounds in `tollgate_stats::BOUNDS_MS`.
///
/// Stored sparse, as an object from bucket index to count (`{"35": 1, "38": 2}`): an hour's
/// per-user row holds a handful of requests, and the dense list (about 40 numbers) made
/// those rows several times larger and slower to write and read. The dense list of earlier
/// rows (`[0, 0, 1]`) is read as well. In memory it is the dense list of counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, FromJsonQueryResult)]
pub struct HistogramCounts(pub Vec<u64>);

/// Bucket indexes above this are refused when reading (the histogram has fewer than 100
/// buckets), so a hostile stored value cannot make a reader allocate without bound.
const MAX_HISTOGRAM_BUCKET: usize = 4_095;

impl Serialize for HistogramCounts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;

        let used = self.0.iter().filter(|&&count| count > 0).count();
        let mut map = serializer.serialize_map(Some(used))?;
        for (bucket, count) in self.0.iter().enumerate() {
            if *count > 0 {
                map.serialize_entry(&bucket.to_string(), count)?;
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for HistogramCounts {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Dense(Vec<u64>),
            Sparse(BTreeMap<String, u64>),
        }

        match Stored::deserialize(deserializer)? {
            Stored::Dense(counts) => Ok(Self(counts)),
            Stored::Sparse(entries) => {
                let mut counts = Vec::new();
                for (bucket, count) in entries {
                    let index = bucket
                        .parse::<usize>()
                        .ok()
                        .filter(|&index| index <= MAX_HISTOGRAM_BUCKET)
                        .ok_or_else(|| {
                            serde::de::Error::custom(format!(
                                "histogram bucket `{bucket}` is not an index from 0 to \
                                 {MAX_HISTOGRAM_BUCKET}"
                            ))
                        })?;
                    if counts.len() <= index {
                        counts.resize(index + 1, 0);
                    }
                    counts[index] = count;
                }
                Ok(Self(counts))
            }
        }
    }
}

/// `provider_api_keys.allowed_models`: model names a key may serve (`NULL` means all).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, FromJsonQueryResult)]
#[serde(transparent)]
pub struct AllowedModels(pub Vec<String>);

impl AllowedModels {
    /// Whether the key may serve `name`.
    pub fn allows(&self, name: &str) -> bool {
        self.0.iter().any(|allowed| allowed == name)
    }
}

/// `global_models.config`: the known keys typed, anything else kept in `extra`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, FromJsonQueryResult)]
pub struct GlobalModelConfig {
    /// Whether the model can stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streaming: Option<bool>,
    /// Whether the model accepts images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vision: Option<bool>,
    /// Whether the model supports tool calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_calling: Option<bool>,
    /// Whether the model supports extended thinking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_thinking: Option<bool>,
    /// Whether the model generates images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_generation: Option<bool>,
    /// Context window in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_limit: Option<i64>,
    /// Maximum output tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_limit: Option<i64>,
    /// Human description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Model family (for example `claude-sonnet`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Keys this version does not interpret, kept so nothing stored is lost.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// One entry of `models.provider_model_aliases`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelAlias {
    /// The upstream model name this alias stands for.
    pub name: String,
    /// Lower is preferred; absent means 1 and values below 1 count as 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// API formats this alias applies to; absent or empty means all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_formats: Option<Vec<String>>,
}

impl ModelAlias {
    /// The effective priority: 1 when absent, and never below 1.
    pub fn effective_priority(&self) -> i64 {
        self.priority.unwrap_or(1).max(1)
    }
}

/// `models.provider_model_aliases`.
///
/// Reading is lenient, because Aether-shaped databases hold hand-edited JSON: a value that is
/// not a list reads as no aliases, and list entries that are not objects with a string `name`
/// are dropped. Writing always produces the canonical list shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, FromJsonQueryResult)]
#[serde(transparent)]
pub struct ModelAliases(pub Vec<ModelAlias>);

impl<'de> Deserialize<'de> for ModelAliases {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        let serde_json::Value::Array(items) = value else {
            return Ok(Self::default());
        };
        let aliases = items
            .into_iter()
            .filter_map(|item| {
                let serde_json::Value::Object(map) = item else {
                    return None;
                };
                let name = map.get("name")?.as_str()?.to_owned();
                let priority = map.get("priority").and_then(serde_json::Value::as_i64);
                let api_formats = map.get("api_formats").and_then(|v| {
                    v.as_array().map(|formats| {
                        formats
                            .iter()
                            .filter_map(|f| f.as_str().map(str::to_owned))
                            .collect()
                    })
                });
                Some(ModelAlias {
                    name,
                    priority,
                    api_formats,
                })
            })
            .collect();
        Ok(Self(aliases))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_that_are_not_a_list_read_as_empty() {
        let aliases: ModelAliases = serde_json::from_str(r#"{"name": "x"}"#).unwrap();
        assert!(aliases.0.is_empty());
        let aliases: ModelAliases = serde_json::from_str(r#""gpt""#).unwrap();
        assert!(aliases.0.is_empty());
    }

    #[test]
    fn malformed_alias_entries_are_dropped() {
        let aliases: ModelAliases = serde_json::from_str(
            r#"[{"name": "a", "priority": 2}, {"priority": 1}, 7, {"name": 3}, {"name": "b", "api_formats": ["OPENAI"]}]"#,
        )
        .unwrap();
        assert_eq!(
            aliases.0,
            vec![
                ModelAlias {
                    name: "a".into(),
                    priority: Some(2),
                    api_formats: None
                },
                ModelAlias {
                    name: "b".into(),
                    priority: None,
                    api_formats: Some(vec!["OPENAI".into()])
                },
            ]
        );
    }

    #[test]
    fn effective_priority_clamps_to_one() {
        let alias = |priority| ModelAlias {
            name: "a".into(),
            priority,
            api_formats: None,
        };
        assert_eq!(alias(None).effective_priority(), 1);
        assert_eq!(alias(Some(0)).effective_priority(), 1);
        assert_eq!(alias(Some(-5)).effective_priority(), 1);
        assert_eq!(alias(Some(3)).effective_priority(), 3);
    }

    #[test]
    fn global_model_config_keeps_unknown_keys() {
        let json = r#"{"streaming": true, "context_limit": 200000, "custom": {"x": 1}}"#;
        let config: GlobalModelConfig = serde_json::from_str(json).unwrap();
        assert_eq!(config.streaming, Some(true));
        assert_eq!(config.context_limit, Some(200_000));
        assert!(config.extra.contains_key("custom"));
        let back: serde_json::Value = serde_json::to_value(&config).unwrap();
        assert_eq!(
            back,
            serde_json::from_str::<serde_json::Value>(json).unwrap()
        );
    }
}
