//! Cost maths (behaviour.md section 5) as pure functions over typed inputs.

use serde::{Deserialize, Serialize};

use crate::{ApiFormat, BillingType, PriceTier, TieredPricing};

/// Token counts from an upstream usage block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCounts {
    /// Input (prompt) tokens, excluding cache tokens.
    pub input: i64,
    /// Output (completion) tokens.
    pub output: i64,
    /// Tokens written to the upstream's prompt cache.
    pub cache_creation: i64,
    /// Tokens read from the upstream's prompt cache.
    pub cache_read: i64,
}

impl TokenCounts {
    /// The input context that selects the price tier: input + cache read, and for the Claude
    /// format cache creation too (Claude reports cache tokens outside `input_tokens`).
    pub fn input_context(&self, api_format: ApiFormat) -> i64 {
        let base = self.input + self.cache_read;
        match api_format {
            ApiFormat::Claude => base + self.cache_creation,
            ApiFormat::OpenAi => base,
        }
    }
}

/// The prices that apply to one request: the model's own when set, else the global model's
/// defaults, chosen per field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EffectivePricing {
    /// Tiered token prices.
    pub tiered: TieredPricing,
    /// Fixed price per successful request.
    pub price_per_request: Option<f64>,
}

impl EffectivePricing {
    /// The model's pricing where it has one, the global model's defaults otherwise.
    pub fn resolve(
        model_tiered: Option<&TieredPricing>,
        model_price_per_request: Option<f64>,
        global_tiered: &TieredPricing,
        global_price_per_request: Option<f64>,
    ) -> Self {
        Self {
            tiered: model_tiered.unwrap_or(global_tiered).clone(),
            price_per_request: model_price_per_request.or(global_price_per_request),
        }
    }
}

/// Everything the cost of one request depends on.
#[derive(Debug, Clone, Copy)]
pub struct CostRequest<'a> {
    /// Prices in force for the resolved global model.
    pub pricing: &'a EffectivePricing,
    /// Format of the upstream call (selects how input context is counted).
    pub api_format: ApiFormat,
    /// Tokens the upstream reported.
    pub tokens: TokenCounts,
    /// The upstream key's multiplier from list to actual cost (0.0 means free).
    pub rate_multiplier: f64,
    /// The provider's billing type; `free_tier` zeroes every actual cost.
    pub billing_type: BillingType,
    /// Whether the request succeeded; a failed one is not charged the per-request price.
    pub succeeded: bool,
}

/// List and actual costs of one request, with the unit prices of the tier applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CostBreakdown {
    /// Input tokens at list price.
    pub input_cost: f64,
    /// Output tokens at list price.
    pub output_cost: f64,
    /// Cache creation tokens at list price.
    pub cache_creation_cost: f64,
    /// Cache read tokens at list price.
    pub cache_read_cost: f64,
    /// Creation + read.
    pub cache_cost: f64,
    /// Per-request price (0 for failed requests).
    pub request_cost: f64,
    /// Sum of the list costs.
    pub total_cost: f64,
    /// `input_cost` × multiplier.
    pub actual_input_cost: f64,
    /// `output_cost` × multiplier.
    pub actual_output_cost: f64,
    /// `cache_creation_cost` × multiplier.
    pub actual_cache_creation_cost: f64,
    /// `cache_read_cost` × multiplier.
    pub actual_cache_read_cost: f64,
    /// `request_cost` × multiplier.
    pub actual_request_cost: f64,
    /// `total_cost` × multiplier.
    pub actual_total_cost: f64,
    /// The multiplier applied (recorded as given, even for free-tier providers).
    pub rate_multiplier: f64,
    /// Input unit price of the tier applied.
    pub input_price_per_1m: f64,
    /// Output unit price of the tier applied.
    pub output_price_per_1m: f64,
    /// Cache creation unit price applied (derived when the tier has none).
    pub cache_creation_price_per_1m: f64,
    /// Cache read unit price applied (derived when the tier has none).
    pub cache_read_price_per_1m: f64,
    /// The configured per-request price, if any.
    pub price_per_request: Option<f64>,
}

const PER_MILLION: f64 = 1_000_000.0;

fn token_cost(tokens: i64, price_per_1m: f64) -> f64 {
    // Token counts stay far below 2^53, so the conversion is exact.
    #[expect(
        clippy::cast_precision_loss,
        reason = "token counts are far below 2^53"
    )]
    let tokens = tokens as f64;
    tokens / PER_MILLION * price_per_1m
}

/// Computes the cost of one request per behaviour.md section 5.
pub fn compute_cost(request: &CostRequest<'_>) -> CostBreakdown {
    let context = request.tokens.input_context(request.api_format);
    let zero_tier = PriceTier {
        up_to: None,
        input_price_per_1m: 0.0,
        output_price_per_1m: 0.0,
        cache_creation_price_per_1m: Some(0.0),
        cache_read_price_per_1m: Some(0.0),
    };
    let tier = request
        .pricing
        .tiered
        .tier_for(context)
        .unwrap_or(&zero_tier);
    let creation_price = tier.cache_creation_price();
    let read_price = tier.cache_read_price();

    let input_cost = token_cost(request.tokens.input, tier.input_price_per_1m);
    let output_cost = token_cost(request.tokens.output, tier.output_price_per_1m);
    let cache_creation_cost = token_cost(request.tokens.cache_creation, creation_price);
    let cache_read_cost = token_cost(request.tokens.cache_read, read_price);
    let cache_cost = cache_creation_cost + cache_read_cost;
    let request_cost = if request.succeeded {
        request.pricing.price_per_request.unwrap_or(0.0)
    } else {
        0.0
    };
    let total_cost = input_cost + output_cost + cache_cost + request_cost;

    let multiplier = match request.billing_type {
        BillingType::FreeTier => 0.0,
        BillingType::PayAsYouGo | BillingType::MonthlyQuota => request.rate_multiplier,
    };
    CostBreakdown {
        input_cost,
        output_cost,
        cache_creation_cost,
        cache_read_cost,
        cache_cost,
        request_cost,
        total_cost,
        actual_input_cost: input_cost * multiplier,
        actual_output_cost: output_cost * multiplier,
        actual_cache_creation_cost: cache_creation_cost * multiplier,
        actual_cache_read_cost: cache_read_cost * multiplier,
        actual_request_cost: request_cost * multiplier,
        actual_total_cost: total_cost * multiplier,
        rate_multiplier: request.rate_multiplier,
        input_price_per_1m: tier.input_price_per_1m,
        output_price_per_1m: tier.output_price_per_1m,
        cache_creation_price_per_1m: creation_price,
        cache_read_price_per_1m: read_price,
        price_per_request: request.pricing.price_per_request,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
    }

    fn two_tiers() -> EffectivePricing {
        EffectivePricing {
            tiered: TieredPricing {
                tiers: vec![
                    PriceTier {
                        up_to: Some(200_000),
                        input_price_per_1m: 3.0,
                        output_price_per_1m: 15.0,
                        cache_creation_price_per_1m: Some(3.75),
                        cache_read_price_per_1m: Some(0.3),
                    },
                    PriceTier {
                        up_to: Some(500_000),
                        input_price_per_1m: 6.0,
                        output_price_per_1m: 22.5,
                        cache_creation_price_per_1m: None,
                        cache_read_price_per_1m: None,
                    },
                    PriceTier {
                        up_to: None,
                        input_price_per_1m: 10.0,
                        output_price_per_1m: 30.0,
                        cache_creation_price_per_1m: None,
                        cache_read_price_per_1m: None,
                    },
                ],
            },
            price_per_request: Some(0.01),
        }
    }

    fn bounded_only() -> EffectivePricing {
        let mut pricing = two_tiers();
        pricing.tiered.tiers.pop();
        pricing
    }

    fn request(pricing: &EffectivePricing, tokens: TokenCounts) -> CostRequest<'_> {
        CostRequest {
            pricing,
            api_format: ApiFormat::OpenAi,
            tokens,
            rate_multiplier: 1.0,
            billing_type: BillingType::PayAsYouGo,
            succeeded: true,
        }
    }

    fn input(n: i64) -> TokenCounts {
        TokenCounts {
            input: n,
            output: 1_000,
            ..TokenCounts::default()
        }
    }

    #[test]
    fn context_exactly_at_bound_uses_that_tier() {
        let pricing = two_tiers();
        let cost = compute_cost(&request(&pricing, input(200_000)));
        assert_eq!(cost.input_price_per_1m, 3.0);
        assert!(close(cost.input_cost, 0.6));
        assert!(close(cost.output_cost, 0.015));
    }

    #[test]
    fn context_one_above_bound_uses_next_tier() {
        let pricing = two_tiers();
        let cost = compute_cost(&request(&pricing, input(200_001)));
        assert_eq!(cost.input_price_per_1m, 6.0);
        assert_eq!(cost.output_price_per_1m, 22.5);
    }

    #[test]
    fn context_past_every_bound_uses_last_tier() {
        let pricing = two_tiers();
        assert_eq!(
            compute_cost(&request(&pricing, input(9_000_000))).input_price_per_1m,
            10.0
        );
        // A document whose last tier is bounded still answers with its last tier.
        let bounded = bounded_only();
        assert_eq!(
            compute_cost(&request(&bounded, input(9_000_000))).input_price_per_1m,
            6.0
        );
    }

    #[test]
    fn cache_read_counts_towards_context() {
        let pricing = two_tiers();
        let tokens = TokenCounts {
            input: 150_000,
            cache_read: 50_001,
            ..TokenCounts::default()
        };
        assert_eq!(
            compute_cost(&request(&pricing, tokens)).input_price_per_1m,
            6.0
        );
    }

    #[test]
    fn claude_context_includes_cache_creation() {
        let pricing = two_tiers();
        let tokens = TokenCounts {
            input: 150_000,
            cache_creation: 50_001,
            ..TokenCounts::default()
        };
        let mut openai = request(&pricing, tokens);
        assert_eq!(compute_cost(&openai).input_price_per_1m, 3.0);
        openai.api_format = ApiFormat::Claude;
        assert_eq!(compute_cost(&openai).input_price_per_1m, 6.0);
    }

    #[test]
    fn absent_cache_prices_default_from_input_price() {
        let pricing = two_tiers();
        let tokens = TokenCounts {
            input: 300_000,
            cache_creation: 1_000_000,
            cache_read: 1_000_000,
            ..TokenCounts::default()
        };
        let cost = compute_cost(&request(&pricing, tokens));
        // Tier 3 (context 1.3 M): input 10.0, creation 12.5, read 1.0.
        assert!(close(cost.cache_creation_price_per_1m, 12.5));
        assert!(close(cost.cache_read_price_per_1m, 1.0));
        assert!(close(cost.cache_creation_cost, 12.5));
        assert!(close(cost.cache_read_cost, 1.0));
        assert!(close(cost.cache_cost, 13.5));
    }

    #[test]
    fn explicit_null_cache_price_is_treated_as_absent() {
        let json = serde_json::json!({"tiers": [{"up_to": null, "input_price_per_1m": 2.0,
            "output_price_per_1m": 4.0, "cache_creation_price_per_1m": null,
            "cache_read_price_per_1m": null}]});
        let explicit = TieredPricing::from_json(json).unwrap();
        let absent = TieredPricing::fixed(2.0, 4.0);
        let tokens = TokenCounts {
            input: 10,
            cache_creation: 1_000_000,
            cache_read: 1_000_000,
            output: 0,
        };
        let a = EffectivePricing {
            tiered: explicit,
            price_per_request: None,
        };
        let b = EffectivePricing {
            tiered: absent,
            price_per_request: None,
        };
        assert_eq!(
            compute_cost(&request(&a, tokens)),
            compute_cost(&request(&b, tokens))
        );
        assert!(close(
            compute_cost(&request(&a, tokens)).cache_creation_cost,
            2.5
        ));
        assert!(close(
            compute_cost(&request(&a, tokens)).cache_read_cost,
            0.2
        ));
    }

    #[test]
    fn explicit_zero_cache_price_is_kept() {
        let mut pricing = two_tiers();
        pricing.tiered.tiers[0].cache_read_price_per_1m = Some(0.0);
        let tokens = TokenCounts {
            input: 10,
            cache_read: 1_000,
            ..TokenCounts::default()
        };
        let cost = compute_cost(&request(&pricing, tokens));
        assert_eq!(cost.cache_read_price_per_1m, 0.0);
        assert_eq!(cost.cache_read_cost, 0.0);
    }

    #[test]
    fn zero_rate_multiplier_gives_zero_actual_cost() {
        let pricing = two_tiers();
        let mut req = request(&pricing, input(1_000));
        req.rate_multiplier = 0.0;
        let cost = compute_cost(&req);
        assert!(cost.total_cost > 0.0);
        assert_eq!(cost.actual_total_cost, 0.0);
        assert_eq!(cost.actual_input_cost, 0.0);
        assert_eq!(cost.actual_request_cost, 0.0);
        assert_eq!(cost.rate_multiplier, 0.0);
    }

    #[test]
    fn rate_multiplier_scales_every_actual_cost() {
        let pricing = two_tiers();
        let mut req = request(&pricing, input(1_000));
        req.rate_multiplier = 0.5;
        let cost = compute_cost(&req);
        assert!(close(cost.actual_total_cost, cost.total_cost * 0.5));
        assert!(close(cost.actual_output_cost, cost.output_cost * 0.5));
        assert!(close(cost.actual_request_cost, 0.005));
    }

    #[test]
    fn free_tier_provider_has_zero_actual_cost() {
        let pricing = two_tiers();
        let mut req = request(&pricing, input(1_000));
        req.billing_type = BillingType::FreeTier;
        req.rate_multiplier = 1.0;
        let cost = compute_cost(&req);
        assert!(cost.total_cost > 0.0);
        assert_eq!(cost.actual_total_cost, 0.0);
        assert_eq!(cost.actual_cache_cost_sum(), 0.0);
    }

    #[test]
    fn failed_request_drops_per_request_price() {
        let pricing = two_tiers();
        let mut req = request(&pricing, TokenCounts::default());
        assert!(close(compute_cost(&req).request_cost, 0.01));
        req.succeeded = false;
        let cost = compute_cost(&req);
        assert_eq!(cost.request_cost, 0.0);
        assert_eq!(cost.total_cost, 0.0);
        assert_eq!(cost.price_per_request, Some(0.01));
    }

    #[test]
    fn total_is_the_sum_of_kinds() {
        let pricing = two_tiers();
        let tokens = TokenCounts {
            input: 1_000,
            output: 2_000,
            cache_creation: 300,
            cache_read: 400,
        };
        let cost = compute_cost(&request(&pricing, tokens));
        let sum = cost.input_cost
            + cost.output_cost
            + cost.cache_creation_cost
            + cost.cache_read_cost
            + cost.request_cost;
        assert!(close(cost.total_cost, sum));
        assert!(close(cost.input_cost, 0.003));
        assert!(close(cost.output_cost, 0.03));
        assert!(close(cost.cache_creation_cost, 300.0 / 1e6 * 3.75));
        assert!(close(cost.cache_read_cost, 400.0 / 1e6 * 0.3));
    }

    #[test]
    fn model_pricing_overrides_global_per_field() {
        let global = TieredPricing::fixed(1.0, 2.0);
        let own = TieredPricing::fixed(5.0, 6.0);
        let p = EffectivePricing::resolve(None, None, &global, Some(0.2));
        assert_eq!(p.tiered, global);
        assert_eq!(p.price_per_request, Some(0.2));
        let p = EffectivePricing::resolve(Some(&own), Some(0.0), &global, Some(0.2));
        assert_eq!(p.tiered, own);
        assert_eq!(p.price_per_request, Some(0.0));
    }

    impl CostBreakdown {
        fn actual_cache_cost_sum(&self) -> f64 {
            self.actual_cache_creation_cost + self.actual_cache_read_cost
        }
    }
}
