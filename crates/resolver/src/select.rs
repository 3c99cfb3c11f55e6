//! Provider-scoped upstream names (behaviour.md 1.3): which alias of a model to send.

use tollgate_entities::{ApiFormat, models};

/// FNV-1a (64 bit) finished with MurmurHash3's `fmix64`: a stable hash whose values never
/// change between builds or releases, so a client keeps landing on the same upstream name and
/// key across restarts. The finaliser matters: plain FNV-1a barely separates names that
/// differ only in their last character, which skews the spread over aliases.
pub(crate) fn stable_hash(parts: &[&str]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for (index, part) in parts.iter().enumerate() {
        if index > 0 {
            hash ^= u64::from(b':');
            hash = hash.wrapping_mul(PRIME);
        }
        for byte in part.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

/// The upstream model name to send for `model`:
/// 1. no aliases ⇒ `provider_model_name`;
/// 2. aliases with a non-blank name, whose `api_formats` is absent, empty or contains
///    `api_format`, priority clamped to ≥ 1;
/// 3. none left ⇒ `provider_model_name`; otherwise the lowest-priority group: one entry ⇒ it;
///    several ⇒ the one minimising `stable_hash(affinity_key:name)`; no affinity key ⇒ the
///    lexicographically smallest name.
pub fn select_provider_model_name<'a>(
    model: &'a models::Model,
    affinity_key: Option<&str>,
    api_format: ApiFormat,
) -> &'a str {
    let Some(aliases) = model.provider_model_aliases.as_ref() else {
        return &model.provider_model_name;
    };
    let format = api_format.as_str();
    let eligible = aliases.0.iter().filter(|alias| {
        !alias.name.trim().is_empty()
            && alias
                .api_formats
                .as_ref()
                .is_none_or(|formats| formats.is_empty() || formats.iter().any(|f| f == format))
    });
    let Some(best_priority) = eligible.clone().map(|a| a.effective_priority()).min() else {
        return &model.provider_model_name;
    };
    let group = eligible.filter(|alias| alias.effective_priority() == best_priority);
    let chosen = match affinity_key {
        Some(key) => group.min_by(|a, b| {
            stable_hash(&[key, &a.name])
                .cmp(&stable_hash(&[key, &b.name]))
                .then_with(|| a.name.cmp(&b.name))
        }),
        None => group.min_by(|a, b| a.name.cmp(&b.name)),
    };
    chosen.map_or(&model.provider_model_name, |alias| alias.name.as_str())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use tollgate_entities::{ModelAlias, ModelAliases};

    use super::*;

    fn model(aliases: Option<Vec<ModelAlias>>) -> models::Model {
        models::Model {
            provider_model_aliases: aliases.map(ModelAliases),
            ..tollgate_testkit::fixtures::model("p", "g", "base-name")
        }
    }

    fn alias(name: &str, priority: Option<i64>, formats: Option<&[&str]>) -> ModelAlias {
        ModelAlias {
            name: name.into(),
            priority,
            api_formats: formats.map(|f| f.iter().map(|s| (*s).to_owned()).collect()),
        }
    }

    /// The name chosen for an OpenAI-format request.
    fn openai_pick<'a>(m: &'a models::Model, affinity: Option<&str>) -> &'a str {
        select_provider_model_name(m, affinity, ApiFormat::OpenAi)
    }

    #[test]
    fn no_aliases_gives_the_provider_model_name() {
        assert_eq!(openai_pick(&model(None), Some("k")), "base-name");
        assert_eq!(openai_pick(&model(Some(vec![])), Some("k")), "base-name");
    }

    #[test]
    fn blank_names_are_ignored() {
        let m = model(Some(vec![alias("  ", Some(1), None)]));
        assert_eq!(openai_pick(&m, None), "base-name");
    }

    #[test]
    fn lowest_priority_wins_and_low_values_clamp_to_one() {
        let m = model(Some(vec![
            alias("b", Some(3), None),
            alias("a", Some(2), None),
        ]));
        assert_eq!(openai_pick(&m, Some("k")), "a");
        // Priority 0 and -4 both count as 1 and tie with an absent priority.
        let m = model(Some(vec![
            alias("z", Some(0), None),
            alias("y", Some(2), None),
        ]));
        assert_eq!(openai_pick(&m, None), "z");
        let m = model(Some(vec![
            alias("z", Some(-4), None),
            alias("x", None, None),
            alias("w", Some(2), None),
        ]));
        assert_eq!(openai_pick(&m, None), "x");
    }

    #[test]
    fn api_formats_filter_entries() {
        let m = model(Some(vec![
            alias("claude-only", Some(1), Some(&["CLAUDE"])),
            alias("any-format", Some(5), Some(&[])),
        ]));
        assert_eq!(
            select_provider_model_name(&m, None, ApiFormat::Claude),
            "claude-only"
        );
        assert_eq!(openai_pick(&m, None), "any-format");
        let m = model(Some(vec![alias("claude-only", Some(1), Some(&["CLAUDE"]))]));
        assert_eq!(openai_pick(&m, None), "base-name");
    }

    #[test]
    fn no_affinity_key_gives_the_smallest_name() {
        let m = model(Some(vec![
            alias("m2", None, None),
            alias("m1", None, None),
            alias("m3", None, None),
        ]));
        assert_eq!(openai_pick(&m, None), "m1");
    }

    #[test]
    fn affinity_keys_spread_evenly_and_stick() {
        let names = ["n-a", "n-b", "n-c", "n-d"];
        let m = model(Some(
            names.iter().map(|n| alias(n, Some(1), None)).collect(),
        ));
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for i in 0..1_000 {
            let key = format!("client-key-{i}");
            let first = openai_pick(&m, Some(&key));
            for _ in 0..3 {
                assert_eq!(openai_pick(&m, Some(&key)), first);
            }
            *counts.entry(first).or_default() += 1;
        }
        let fair = 1_000 / names.len();
        for name in names {
            let got = counts.get(name).copied().unwrap_or(0);
            assert!(got > 0, "{name} never chosen: {counts:?}");
            assert!(
                got <= 2 * fair,
                "{name} got {got} of 1000 (fair share {fair}): {counts:?}"
            );
        }
    }

    #[test]
    fn stable_hash_is_fixed_across_builds() {
        // Pinned values: changing the hash would move every client to another upstream name.
        assert_eq!(stable_hash(&[]), 0xefd0_1f60_ba99_2926);
        assert_eq!(stable_hash(&["a"]), 0x82a2_a958_a9be_ce5b);
        assert_ne!(stable_hash(&["ab", "c"]), stable_hash(&["a", "bc"]));
    }
}
