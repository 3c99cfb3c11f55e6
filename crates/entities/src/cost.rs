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
    /// The largest count an `integer` column of `usage` holds: `i32::MAX`.
    pub const MAX: i64 = i32::MAX as i64;

    /// Every count clamped to the `usage` columns' range, `0..=TokenCounts::MAX`.
    #[must_use]
    pub fn clamped(self) -> Self {
        let clamp = |count: i64| count.clamp(0, Self::MAX);
        Self {
            input: clamp(self.input),
            output: clamp(self.output),
            cache_creation: clamp(self.cache_creation),
            cache_read: clamp(self.cache_read),
        }
    }

    /// Whether every count already lies in `0..=TokenCounts::MAX`.
    pub fn is_clamped(&self) -> bool {
        *self == self.clamped()
    }

    /// The sum of the four kinds of the clamped counts (at most four times `i32::MAX`,
    /// so it cannot overflow).
    pub fn total(&self) -> i64 {
        let c = self.clamped();
        c.input + c.output + c.cache_creation + c.cache_read
    }

    /// [`Self::total`] saturated at `i32::MAX`: the value of `usage.total_tokens`.
    pub fn total_i32(&self) -> i32 {
        to_column(self.total())
    }

    /// The clamped counts as the `usage` columns store them: `input_tokens`,
    /// `output_tokens`, `cache_creation_input_tokens`, `cache_read_input_tokens`.
    pub fn columns(&self) -> [i32; 4] {
        let c = self.clamped();
        [
            to_column(c.input),
            to_column(c.output),
            to_column(c.cache_creation),
            to_column(c.cache_read),
        ]
    }

    /// The input context that selects the price tier: input + cache read, and for the Claude
    /// format cache creation too (Claude reports cache tokens outside `input_tokens`).
    /// Saturating, so absurd counts cannot overflow.
    pub fn input_context(&self, api_format: ApiFormat) -> i64 {
        let base = self.input.saturating_add(self.cache_read);
        match api_format {
            ApiFormat::Claude => base.saturating_add(self.cache_creation),
            ApiFormat::OpenAi => base,
        }
    }
}

/// A count as an `integer` column stores it: below 0 is 0, above `i32::MAX` is `i32::MAX`.
fn to_column(count: i64) -> i32 {
    i32::try_from(count.clamp(0, TokenCounts::MAX)).unwrap_or(i32::MAX)
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
    /// Tokens the upstream reported; clamped to `0..=i32::MAX` before use.
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
    /// Sum of the actual costs.
    pub actual_total_cost: f64,
    /// The multiplier applied, clamped like every amount (recorded even for free-tier
    /// providers, whose actual costs are zero whatever it is).
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

/// The largest amount (USD, unit price or multiplier) any part of a [`CostBreakdown`] holds.
pub const MAX_AMOUNT: f64 = 1e15;

/// An amount forced into `0.0..=MAX_AMOUNT`: NaN, infinities and negatives are 0, anything
/// above [`MAX_AMOUNT`] is [`MAX_AMOUNT`].
pub fn clamp_amount(amount: f64) -> f64 {
    if amount.is_finite() && amount > 0.0 {
        amount.min(MAX_AMOUNT)
    } else {
        0.0
    }
}

fn token_cost(tokens: i64, price_per_1m: f64) -> f64 {
    #[expect(
        clippy::cast_precision_loss,
        reason = "clamped token counts are below 2^31, exact in an f64"
    )]
    let tokens = tokens as f64;
    clamp_amount(tokens / PER_MILLION * price_per_1m)
}

/// Computes the cost of one request per behaviour.md section 5.
///
/// Every output is finite and `>= 0`, whatever the inputs:
/// - token counts are clamped to `0..=i32::MAX` first ([`TokenCounts::clamped`]), so the
///   cost is that of the counts the `usage` row stores;
/// - every unit price, the per-request price and the rate multiplier go through
///   [`clamp_amount`] (NaN, infinite or negative is 0, above [`MAX_AMOUNT`] is
///   [`MAX_AMOUNT`]), and the breakdown reports those clamped values;
/// - every per-kind cost (list and actual) is clamped the same way;
/// - `cache_cost`, `total_cost` and `actual_total_cost` are the sums of their clamped parts
///   (so at most a few times [`MAX_AMOUNT`]) and always add up.
pub fn compute_cost(request: &CostRequest<'_>) -> CostBreakdown {
    let tokens = request.tokens.clamped();
    let context = tokens.input_context(request.api_format);
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
    let input_price = clamp_amount(tier.input_price_per_1m);
    let output_price = clamp_amount(tier.output_price_per_1m);
    // Derived from the clamped input price, so a NaN input price cannot leak through.
    let creation_price = clamp_amount(
        tier.cache_creation_price_per_1m
            .unwrap_or(input_price * 1.25),
    );
    let read_price = clamp_amount(tier.cache_read_price_per_1m.unwrap_or(input_price * 0.1));
    let price_per_request = request.pricing.price_per_request.map(clamp_amount);

    let input_cost = token_cost(tokens.input, input_price);
    let output_cost = token_cost(tokens.output, output_price);
    let cache_creation_cost = token_cost(tokens.cache_creation, creation_price);
    let cache_read_cost = token_cost(tokens.cache_read, read_price);
    let cache_cost = cache_creation_cost + cache_read_cost;
    let request_cost = if request.succeeded {
        price_per_request.unwrap_or(0.0)
    } else {
        0.0
    };
    let total_cost = input_cost + output_cost + cache_cost + request_cost;

    let rate_multiplier = clamp_amount(request.rate_multiplier);
    let multiplier = match request.billing_type {
        BillingType::FreeTier => 0.0,
        BillingType::PayAsYouGo | BillingType::MonthlyQuota => rate_multiplier,
    };
    let actual = |cost: f64| clamp_amount(cost * multiplier);
    let actual_input_cost = actual(input_cost);
    let actual_output_cost = actual(output_cost);
    let actual_cache_creation_cost = actual(cache_creation_cost);
    let actual_cache_read_cost = actual(cache_read_cost);
    let actual_request_cost = actual(request_cost);
    let actual_total_cost = actual_input_cost
        + actual_output_cost
        + actual_cache_creation_cost
        + actual_cache_read_cost
        + actual_request_cost;
    CostBreakdown {
        input_cost,
        output_cost,
        cache_creation_cost,
        cache_read_cost,
        cache_cost,
        request_cost,
        total_cost,
        actual_input_cost,
        actual_output_cost,
        actual_cache_creation_cost,
        actual_cache_read_cost,
        actual_request_cost,
        actual_total_cost,
        rate_multiplier,
        input_price_per_1m: input_price,
        output_price_per_1m: output_price,
        cache_creation_price_per_1m: creation_price,
        cache_read_price_per_1m: read_price,
        price_per_request,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::{Just, Strategy, any, prop, prop_assert, prop_assert_eq, prop_oneof};

    use super::{
        CostBreakdown, CostRequest, EffectivePricing, MAX_AMOUNT, TokenCounts, clamp_amount,
        compute_cost,
    };
    use crate::{ApiFormat, BillingType, PriceTier, TieredPricing};

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

    #[test]
    fn token_counts_clamp_to_the_integer_column() {
        let tokens = TokenCounts {
            input: -5,
            output: i64::MAX,
            cache_creation: i64::MIN,
            cache_read: 7,
        };
        assert!(!tokens.is_clamped());
        let clamped = tokens.clamped();
        assert!(clamped.is_clamped());
        assert_eq!(
            clamped,
            TokenCounts {
                input: 0,
                output: TokenCounts::MAX,
                cache_creation: 0,
                cache_read: 7,
            }
        );
        assert_eq!(tokens.columns(), [0, i32::MAX, 0, 7]);
        assert_eq!(tokens.total(), TokenCounts::MAX + 7);
        assert_eq!(tokens.total_i32(), i32::MAX);
        assert_eq!(TokenCounts::default().total_i32(), 0);
        let extreme = TokenCounts {
            input: i64::MAX,
            output: 0,
            cache_creation: i64::MAX,
            cache_read: i64::MAX,
        };
        assert_eq!(extreme.input_context(ApiFormat::Claude), i64::MAX);
    }

    #[test]
    fn cost_uses_the_clamped_token_counts() {
        let pricing = two_tiers();
        let huge = compute_cost(&request(&pricing, input(i64::MAX)));
        let stored = compute_cost(&request(&pricing, input(TokenCounts::MAX)));
        assert_eq!(huge, stored);
        let negative = compute_cost(&request(&pricing, input(-1_000)));
        assert_eq!(negative.input_cost, 0.0);
    }

    #[test]
    fn amounts_clamp_to_zero_or_the_maximum() {
        assert_eq!(clamp_amount(f64::NAN), 0.0);
        assert_eq!(clamp_amount(f64::INFINITY), 0.0);
        assert_eq!(clamp_amount(f64::NEG_INFINITY), 0.0);
        assert_eq!(clamp_amount(-1.0), 0.0);
        assert_eq!(clamp_amount(-0.0), 0.0);
        assert_eq!(clamp_amount(2.5), 2.5);
        assert_eq!(clamp_amount(1e300), MAX_AMOUNT);
    }

    #[test]
    fn huge_price_with_zero_multiplier_is_free_not_nan() {
        // The reported case: an allowed but huge price and a zero multiplier gave NaN.
        let pricing = EffectivePricing {
            tiered: TieredPricing::fixed(f64::MAX, f64::MAX),
            price_per_request: Some(f64::MAX),
        };
        let mut req = request(&pricing, input(TokenCounts::MAX));
        req.rate_multiplier = 0.0;
        let cost = compute_cost(&req);
        assert_all_finite(&cost);
        assert_eq!(cost.input_cost, MAX_AMOUNT);
        assert_eq!(cost.input_price_per_1m, MAX_AMOUNT);
        assert_eq!(cost.price_per_request, Some(MAX_AMOUNT));
        assert_eq!(cost.actual_total_cost, 0.0);
    }

    #[test]
    fn non_finite_and_negative_inputs_cost_nothing() {
        let pricing = EffectivePricing {
            tiered: TieredPricing {
                tiers: vec![PriceTier {
                    up_to: None,
                    input_price_per_1m: f64::NAN,
                    output_price_per_1m: -3.0,
                    cache_creation_price_per_1m: Some(f64::INFINITY),
                    cache_read_price_per_1m: None,
                }],
            },
            price_per_request: Some(f64::NEG_INFINITY),
        };
        let tokens = TokenCounts {
            input: 1_000,
            output: 1_000,
            cache_creation: 1_000,
            cache_read: 1_000,
        };
        let mut req = request(&pricing, tokens);
        req.rate_multiplier = f64::NAN;
        let cost = compute_cost(&req);
        assert_all_finite(&cost);
        assert_eq!(cost.total_cost, 0.0);
        assert_eq!(cost.cache_read_price_per_1m, 0.0);
        assert_eq!(cost.price_per_request, Some(0.0));
        assert_eq!(cost.rate_multiplier, 0.0);
    }

    fn amounts(cost: &CostBreakdown) -> [f64; 18] {
        [
            cost.input_cost,
            cost.output_cost,
            cost.cache_creation_cost,
            cost.cache_read_cost,
            cost.cache_cost,
            cost.request_cost,
            cost.total_cost,
            cost.actual_input_cost,
            cost.actual_output_cost,
            cost.actual_cache_creation_cost,
            cost.actual_cache_read_cost,
            cost.actual_request_cost,
            cost.actual_total_cost,
            cost.rate_multiplier,
            cost.input_price_per_1m,
            cost.output_price_per_1m,
            cost.cache_creation_price_per_1m,
            cost.cache_read_price_per_1m,
        ]
    }

    fn assert_all_finite(cost: &CostBreakdown) {
        for amount in amounts(cost).into_iter().chain(cost.price_per_request) {
            assert!(amount.is_finite() && amount >= 0.0, "{amount} in {cost:?}");
        }
    }

    /// Any f64 worth trying: specials, huge and tiny values of both signs, ordinary prices.
    fn any_amount() -> impl Strategy<Value = f64> {
        prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(f64::MAX),
            Just(f64::MIN),
            Just(f64::MIN_POSITIVE),
            Just(0.0),
            Just(-0.0),
            Just(MAX_AMOUNT),
            0.0..100.0_f64,
            any::<f64>(),
        ]
    }

    fn any_count() -> impl Strategy<Value = i64> {
        prop_oneof![
            Just(0_i64),
            Just(i64::MAX),
            Just(i64::MIN),
            Just(TokenCounts::MAX),
            Just(TokenCounts::MAX + 1),
            0..1_000_000_i64,
            any::<i64>(),
        ]
    }

    fn any_tier() -> impl Strategy<Value = PriceTier> {
        (
            prop::option::of(any::<i64>()),
            any_amount(),
            any_amount(),
            prop::option::of(any_amount()),
            prop::option::of(any_amount()),
        )
            .prop_map(|(up_to, input, output, creation, read)| PriceTier {
                up_to,
                input_price_per_1m: input,
                output_price_per_1m: output,
                cache_creation_price_per_1m: creation,
                cache_read_price_per_1m: read,
            })
    }

    proptest::proptest! {
        #[test]
        fn every_cost_is_finite_non_negative_and_adds_up(
            tiers in prop::collection::vec(any_tier(), 0..4),
            price_per_request in prop::option::of(any_amount()),
            counts in [any_count(), any_count(), any_count(), any_count()],
            rate_multiplier in any_amount(),
            claude in any::<bool>(),
            billing in prop_oneof![
                Just(BillingType::PayAsYouGo),
                Just(BillingType::MonthlyQuota),
                Just(BillingType::FreeTier),
            ],
            succeeded in any::<bool>(),
        ) {
            let pricing = EffectivePricing {
                tiered: TieredPricing { tiers },
                price_per_request,
            };
            let [input, output, cache_creation, cache_read] = counts;
            let cost = compute_cost(&CostRequest {
                pricing: &pricing,
                api_format: if claude { ApiFormat::Claude } else { ApiFormat::OpenAi },
                tokens: TokenCounts { input, output, cache_creation, cache_read },
                rate_multiplier,
                billing_type: billing,
                succeeded,
            });
            for amount in amounts(&cost).into_iter().chain(cost.price_per_request) {
                prop_assert!(amount.is_finite() && amount >= 0.0, "{} in {:?}", amount, cost);
            }
            for part in [
                cost.input_cost,
                cost.output_cost,
                cost.cache_creation_cost,
                cost.cache_read_cost,
                cost.request_cost,
                cost.actual_input_cost,
                cost.actual_output_cost,
                cost.actual_cache_creation_cost,
                cost.actual_cache_read_cost,
                cost.actual_request_cost,
            ] {
                prop_assert!(part <= MAX_AMOUNT);
            }
            prop_assert_eq!(cost.cache_cost, cost.cache_creation_cost + cost.cache_read_cost);
            prop_assert_eq!(
                cost.total_cost,
                cost.input_cost + cost.output_cost + cost.cache_cost + cost.request_cost
            );
            prop_assert_eq!(
                cost.actual_total_cost,
                cost.actual_input_cost
                    + cost.actual_output_cost
                    + cost.actual_cache_creation_cost
                    + cost.actual_cache_read_cost
                    + cost.actual_request_cost
            );
            if billing == BillingType::FreeTier {
                prop_assert_eq!(cost.actual_total_cost, 0.0);
            }
            if !succeeded {
                prop_assert_eq!(cost.request_cost, 0.0);
            }
        }
    }
}
