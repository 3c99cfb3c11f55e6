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
mod tests;
