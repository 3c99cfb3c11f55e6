//! Field rules of the admin API: each check returns a 422 naming the field and the value.

use tollgate_entities::{EntityError, TieredPricing};

use super::AdminError;

/// A required name: trimmed, 1 to `max` bytes, no control characters.
pub(crate) fn name(field: &str, value: &str, max: usize) -> Result<String, AdminError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(AdminError::invalid_field(field, "must not be empty"));
    }
    if trimmed.len() > max {
        return Err(AdminError::invalid_field(
            field,
            format!("must be at most {max} bytes"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(AdminError::invalid_field(
            field,
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_owned())
}

/// A model name clients will send: the resolver's own rules (trimmed, ≤ 200 bytes, no
/// control characters) plus the column's limit.
pub(crate) fn model_name(field: &str, value: &str, max: usize) -> Result<String, AdminError> {
    let normalized = tollgate_resolver::normalize_model_name(value)
        .map_err(|error| AdminError::invalid_field(field, error.to_string()))?;
    name(field, normalized, max)
}

/// An integer in `[min, max]`.
pub(crate) fn range(field: &str, value: i32, min: i32, max: i32) -> Result<i32, AdminError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(AdminError::invalid_field(
            field,
            format!("{value} is out of range {min}..={max}"),
        ))
    }
}

/// A finite amount ≥ 0.
pub(crate) fn non_negative(field: &str, value: f64) -> Result<f64, AdminError> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(AdminError::invalid_field(
            field,
            format!("{value} must be a finite number >= 0"),
        ))
    }
}

/// Validated tiered pricing; the error names the tier and field.
pub(crate) fn pricing(field: &str, value: &TieredPricing) -> Result<(), AdminError> {
    value.validate().map_err(|error| match error {
        EntityError::InvalidPricing {
            tier,
            field: inner,
            reason,
        } => AdminError::invalid_field(
            format!("{field}.tiers[{tier}].{inner}"),
            format!("invalid tiered pricing: tier {tier} field `{inner}`: {reason}"),
        ),
        other => AdminError::invalid_field(field, other.to_string()),
    })
}

/// An absolute `http` or `https` URL.
pub(crate) fn base_url(field: &str, value: &str) -> Result<String, AdminError> {
    let trimmed = value.trim();
    match reqwest::Url::parse(trimmed) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(trimmed.trim_end_matches('/').to_owned())
        }
        _ => Err(AdminError::invalid_field(
            field,
            format!("`{trimmed}` is not an http(s) URL"),
        )),
    }
}

/// A plausible e-mail address.
pub(crate) fn email(field: &str, value: &str) -> Result<String, AdminError> {
    let trimmed = name(field, value, 255)?;
    match trimmed.split_once('@') {
        Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !trimmed.contains(' ') =>
        {
            Ok(trimmed)
        }
        _ => Err(AdminError::invalid_field(
            field,
            format!("`{trimmed}` is not an e-mail address"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_entities::PriceTier;

    #[test]
    fn pricing_errors_name_tier_and_field() {
        let bad = TieredPricing {
            tiers: vec![
                PriceTier {
                    up_to: Some(10),
                    input_price_per_1m: 1.0,
                    output_price_per_1m: 1.0,
                    cache_creation_price_per_1m: None,
                    cache_read_price_per_1m: None,
                },
                PriceTier {
                    up_to: None,
                    input_price_per_1m: 1.0,
                    output_price_per_1m: -2.0,
                    cache_creation_price_per_1m: None,
                    cache_read_price_per_1m: None,
                },
            ],
        };
        let error = pricing("default_tiered_pricing", &bad).unwrap_err();
        assert_eq!(error.status().as_u16(), 422);
        let text = error.to_string();
        assert!(
            text.contains("tier 1") && text.contains("output_price_per_1m"),
            "{text}"
        );
    }

    #[test]
    fn urls_names_and_ranges() {
        assert_eq!(
            base_url("u", "https://api.example.com/v1/").unwrap(),
            "https://api.example.com/v1"
        );
        assert!(base_url("u", "ftp://x").is_err());
        assert!(base_url("u", "not a url").is_err());
        assert!(name("n", "  ", 10).is_err());
        assert!(name("n", "abcdefghijk", 10).is_err());
        assert_eq!(name("n", " ok ", 10).unwrap(), "ok");
        assert!(range("t", 0, 1, 10).is_err());
        assert!(non_negative("m", f64::NAN).is_err());
        assert!(email("e", "a@b").is_ok());
        assert!(email("e", "ab").is_err());
    }
}
