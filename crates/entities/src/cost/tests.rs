//! Tests of the cost maths: tier choice, cache prices, multipliers, clamping, and properties
//! over arbitrary inputs.

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
