//! Tiered pricing: the typed, validated shape of `tiered_pricing` columns.

use sea_orm::FromJsonQueryResult;
use serde::{Deserialize, Serialize};

use crate::EntityError;

/// One price tier. Prices are USD per million tokens.
///
/// The cache prices are `Option`: `None` (absent or an explicit JSON `null`) means "derive
/// from the input price", while `Some(0.0)` is a real price of zero.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceTier {
    /// Upper bound of input context (inclusive) this tier applies to; `None` on the last tier.
    #[serde(default)]
    pub up_to: Option<i64>,
    /// Input tokens.
    pub input_price_per_1m: f64,
    /// Output tokens.
    pub output_price_per_1m: f64,
    /// Cache creation tokens; absent means input price × 1.25.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_price_per_1m: Option<f64>,
    /// Cache read tokens; absent means input price × 0.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_price_per_1m: Option<f64>,
}

impl PriceTier {
    /// The highest price per million tokens a tier may hold. Bounded prices keep every cost
    /// finite: even 2^31 tokens at this price, times the largest rate multiplier, is far
    /// below `f64::MAX`, so a zero multiplier can never meet an infinite cost (NaN).
    pub const MAX_PRICE_PER_1M: f64 = 100_000.0;

    /// The cache creation price, derived from the input price when absent.
    pub fn cache_creation_price(&self) -> f64 {
        self.cache_creation_price_per_1m
            .unwrap_or(self.input_price_per_1m * 1.25)
    }

    /// The cache read price, derived from the input price when absent.
    pub fn cache_read_price(&self) -> f64 {
        self.cache_read_price_per_1m
            .unwrap_or(self.input_price_per_1m * 0.1)
    }
}

/// A tiered pricing document: `{"tiers": [...]}`. Fixed pricing is one tier with
/// `up_to: null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, FromJsonQueryResult)]
pub struct TieredPricing {
    /// The tiers, in increasing `up_to` order.
    pub tiers: Vec<PriceTier>,
}

impl TieredPricing {
    /// One tier without bound: the usual fixed-price model.
    pub fn fixed(input_price_per_1m: f64, output_price_per_1m: f64) -> Self {
        Self {
            tiers: vec![PriceTier {
                up_to: None,
                input_price_per_1m,
                output_price_per_1m,
                cache_creation_price_per_1m: None,
                cache_read_price_per_1m: None,
            }],
        }
    }

    /// Checks the rules of schema.md: at least one tier, `up_to` strictly increasing and
    /// positive, `null` only on the last tier (so at most one open tier), every price finite
    /// and within `0..=`[`PriceTier::MAX_PRICE_PER_1M`]. The error names the tier, the field
    /// and the offending value.
    pub fn validate(&self) -> Result<(), EntityError> {
        let invalid = |tier, field, reason: String| EntityError::InvalidPricing {
            tier,
            field,
            reason,
        };
        if self.tiers.is_empty() {
            return Err(invalid(
                0,
                "tiers",
                "at least one tier is required".to_owned(),
            ));
        }
        let last = self.tiers.len() - 1;
        let mut previous: Option<i64> = None;
        for (index, tier) in self.tiers.iter().enumerate() {
            match tier.up_to {
                None if index != last => {
                    return Err(invalid(
                        index,
                        "up_to",
                        "null is allowed only on the last tier".to_owned(),
                    ));
                }
                None => {}
                Some(bound) if bound <= 0 => {
                    return Err(invalid(index, "up_to", format!("{bound} must be positive")));
                }
                Some(bound) => {
                    if let Some(before) = previous
                        && bound <= before
                    {
                        return Err(invalid(
                            index,
                            "up_to",
                            format!(
                                "{bound} must be strictly increasing (the tier before ends at {before})"
                            ),
                        ));
                    }
                    previous = Some(bound);
                }
            }
            let prices = [
                ("input_price_per_1m", Some(tier.input_price_per_1m)),
                ("output_price_per_1m", Some(tier.output_price_per_1m)),
                (
                    "cache_creation_price_per_1m",
                    tier.cache_creation_price_per_1m,
                ),
                ("cache_read_price_per_1m", tier.cache_read_price_per_1m),
            ];
            for (field, price) in prices {
                if let Some(price) = price
                    && !(price.is_finite() && (0.0..=PriceTier::MAX_PRICE_PER_1M).contains(&price))
                {
                    return Err(invalid(
                        index,
                        field,
                        format!(
                            "{price:?} is not a finite number in 0..={}",
                            PriceTier::MAX_PRICE_PER_1M
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Parses and validates a JSON document.
    pub fn from_json(value: serde_json::Value) -> Result<Self, EntityError> {
        let pricing: Self =
            serde_json::from_value(value).map_err(|error| EntityError::InvalidPricing {
                tier: 0,
                field: "tiers",
                reason: error.to_string(),
            })?;
        pricing.validate()?;
        Ok(pricing)
    }

    /// The tier for an input context: the first whose `up_to` is null or >= the context;
    /// past every bound, the last tier. `None` only for an (invalid) empty document.
    pub fn tier_for(&self, input_context: i64) -> Option<&PriceTier> {
        self.tiers
            .iter()
            .find(|tier| tier.up_to.is_none_or(|bound| bound >= input_context))
            .or_else(|| self.tiers.last())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tier(up_to: Option<i64>, input: f64) -> PriceTier {
        PriceTier {
            up_to,
            input_price_per_1m: input,
            output_price_per_1m: 1.0,
            cache_creation_price_per_1m: None,
            cache_read_price_per_1m: None,
        }
    }

    fn field_of(pricing: &TieredPricing) -> (usize, &'static str) {
        match pricing.validate() {
            Err(EntityError::InvalidPricing { tier, field, .. }) => (tier, field),
            other => panic!("expected invalid pricing, got {other:?}"),
        }
    }

    #[test]
    fn valid_documents_pass() {
        assert!(TieredPricing::fixed(3.0, 15.0).validate().is_ok());
        let two = TieredPricing {
            tiers: vec![tier(Some(200_000), 3.0), tier(None, 6.0)],
        };
        assert!(two.validate().is_ok());
        let zero = TieredPricing {
            tiers: vec![tier(None, 0.0)],
        };
        assert!(zero.validate().is_ok());
    }

    #[test]
    fn empty_tiers_are_rejected() {
        assert_eq!(field_of(&TieredPricing { tiers: vec![] }), (0, "tiers"));
    }

    #[test]
    fn null_bound_before_the_last_tier_is_rejected() {
        let pricing = TieredPricing {
            tiers: vec![tier(None, 1.0), tier(None, 2.0)],
        };
        assert_eq!(field_of(&pricing), (0, "up_to"));
    }

    #[test]
    fn non_increasing_bounds_are_rejected() {
        let pricing = TieredPricing {
            tiers: vec![tier(Some(100), 1.0), tier(Some(100), 2.0), tier(None, 3.0)],
        };
        assert_eq!(field_of(&pricing), (1, "up_to"));
    }

    #[test]
    fn negative_and_nan_prices_are_rejected() {
        let pricing = TieredPricing {
            tiers: vec![tier(Some(10), 1.0), tier(None, -1.0)],
        };
        assert_eq!(field_of(&pricing), (1, "input_price_per_1m"));
        let mut nan = tier(None, 1.0);
        nan.cache_read_price_per_1m = Some(f64::NAN);
        assert_eq!(
            field_of(&TieredPricing { tiers: vec![nan] }),
            (0, "cache_read_price_per_1m")
        );
    }

    #[test]
    fn huge_and_infinite_prices_are_rejected_and_the_bound_is_allowed() {
        let at_bound = TieredPricing {
            tiers: vec![tier(None, PriceTier::MAX_PRICE_PER_1M)],
        };
        assert!(at_bound.validate().is_ok());
        let huge = TieredPricing {
            tiers: vec![tier(None, 1e300)],
        };
        assert_eq!(field_of(&huge), (0, "input_price_per_1m"));
        let mut output = tier(None, 1.0);
        output.output_price_per_1m = f64::INFINITY;
        assert_eq!(
            field_of(&TieredPricing {
                tiers: vec![output]
            }),
            (0, "output_price_per_1m")
        );
        let mut creation = tier(None, 1.0);
        creation.cache_creation_price_per_1m = Some(100_000.5);
        assert_eq!(
            field_of(&TieredPricing {
                tiers: vec![creation]
            }),
            (0, "cache_creation_price_per_1m")
        );
        let message = huge.validate().unwrap_err().to_string();
        assert!(
            message.contains("1e300") && message.contains("0..=100000"),
            "{message}"
        );
    }

    #[test]
    fn bounds_must_be_positive() {
        let pricing = TieredPricing {
            tiers: vec![tier(Some(0), 1.0), tier(None, 2.0)],
        };
        assert_eq!(field_of(&pricing), (0, "up_to"));
        let negative = TieredPricing {
            tiers: vec![tier(Some(-5), 1.0)],
        };
        let message = negative.validate().unwrap_err().to_string();
        assert!(message.contains("-5"), "{message}");
    }

    #[test]
    fn error_message_names_tier_and_field() {
        let pricing = TieredPricing {
            tiers: vec![tier(Some(10), 1.0), tier(None, -1.0)],
        };
        let message = pricing.validate().unwrap_err().to_string();
        assert!(message.contains("tier 1"), "{message}");
        assert!(message.contains("input_price_per_1m"), "{message}");
    }

    #[test]
    fn from_json_rejects_wrong_shapes() {
        assert!(TieredPricing::from_json(serde_json::json!({"tiers": "x"})).is_err());
        assert!(TieredPricing::from_json(serde_json::json!({"tiers": []})).is_err());
        let ok = TieredPricing::from_json(serde_json::json!({"tiers": [
            {"up_to": null, "input_price_per_1m": 1.0, "output_price_per_1m": 2.0,
             "cache_read_price_per_1m": null}
        ]}))
        .unwrap();
        assert_eq!(ok.tiers[0].cache_read_price_per_1m, None);
    }
}
