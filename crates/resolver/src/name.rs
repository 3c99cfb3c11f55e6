//! Client model names: normalisation and the limits that keep cache keys bounded.

use crate::ResolverError;

/// The longest model name accepted, in bytes, after trimming.
pub const MAX_NAME_BYTES: usize = 200;

/// Trims surrounding whitespace and checks the limits of behaviour.md 1.1 step 1: not empty,
/// at most [`MAX_NAME_BYTES`] bytes, no control characters. Matching after this is exact
/// and case-sensitive.
pub fn normalize_model_name(raw: &str) -> Result<&str, ResolverError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(ResolverError::InvalidName {
            name: raw.chars().take(40).collect(),
            reason: "model name is empty",
        });
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(ResolverError::InvalidName {
            name: name.chars().take(40).collect(),
            reason: "model name is longer than 200 bytes",
        });
    }
    if name.chars().any(char::is_control) {
        return Err(ResolverError::InvalidName {
            name: name.chars().filter(|c| !c.is_control()).take(40).collect(),
            reason: "model name contains control characters",
        });
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_surrounding_whitespace_only() {
        assert_eq!(normalize_model_name("  gpt-4o \t").unwrap(), "gpt-4o");
        assert_eq!(normalize_model_name("a b").unwrap(), "a b");
        assert_eq!(normalize_model_name("GPT-4o").unwrap(), "GPT-4o");
    }

    #[test]
    fn rejects_empty_and_whitespace_only() {
        assert!(normalize_model_name("").is_err());
        assert!(normalize_model_name(" \t\n ").is_err());
    }

    #[test]
    fn rejects_over_long_names_by_bytes() {
        assert!(normalize_model_name(&"a".repeat(200)).is_ok());
        assert!(normalize_model_name(&"a".repeat(201)).is_err());
        // 67 three-byte characters are 201 bytes.
        assert!(normalize_model_name(&"€".repeat(67)).is_err());
    }

    #[test]
    fn rejects_control_characters() {
        assert!(normalize_model_name("gpt\u{0}4").is_err());
        assert!(normalize_model_name("gpt\n4o").is_err());
        assert!(normalize_model_name("gpt\u{7f}").is_err());
    }

    #[test]
    fn error_names_the_problem() {
        let error = normalize_model_name(&"x".repeat(300))
            .unwrap_err()
            .to_string();
        assert!(error.contains("longer than 200 bytes"), "{error}");
    }
}
