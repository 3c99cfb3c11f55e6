//! `usage`: one row per client request.

use sea_orm::entity::prelude::*;

use crate::sanitize::{
    fit_amount, fit_column, fit_count, fit_json_column, fit_optional_amount, fit_optional_column,
};
use crate::{JsonObject, UsageStatus};

crate::table::table! {
    /// A row of `usage`.
    ///
    /// `usage` has no navigable relations: its foreign keys are `SET NULL` references kept for
    /// integrity, and statistics read it with grouped queries rather than joins.
    "usage" {
        #[sea_orm(column_type = "String(StringLen::N(36))", nullable)]
        pub user_id: Option<String>,
        #[sea_orm(column_type = "String(StringLen::N(36))", nullable)]
        pub api_key_id: Option<String>,
        #[sea_orm(unique, column_type = "String(StringLen::N(100))")]
        pub request_id: String,
        /// Provider name that answered (or was last tried).
        #[sea_orm(column_type = "String(StringLen::N(100))")]
        pub provider: String,
        /// The name the client asked for.
        #[sea_orm(column_type = "String(StringLen::N(200))")]
        pub model: String,
        /// The canonical global model name, when resolution succeeded.
        #[sea_orm(column_type = "String(StringLen::N(100))", nullable)]
        pub global_model: Option<String>,
        /// The upstream model name sent.
        #[sea_orm(column_type = "String(StringLen::N(200))", nullable)]
        pub target_model: Option<String>,
        #[sea_orm(column_type = "String(StringLen::N(36))", nullable)]
        pub provider_id: Option<String>,
        #[sea_orm(column_type = "String(StringLen::N(36))", nullable)]
        pub provider_endpoint_id: Option<String>,
        #[sea_orm(column_type = "String(StringLen::N(36))", nullable)]
        pub provider_api_key_id: Option<String>,
        pub input_tokens: i32,
        pub output_tokens: i32,
        pub total_tokens: i32,
        pub cache_creation_input_tokens: i32,
        pub cache_read_input_tokens: i32,
        pub input_cost_usd: f64,
        pub output_cost_usd: f64,
        pub cache_creation_cost_usd: f64,
        pub cache_read_cost_usd: f64,
        pub cache_cost_usd: f64,
        pub request_cost_usd: f64,
        pub total_cost_usd: f64,
        pub actual_input_cost_usd: f64,
        pub actual_output_cost_usd: f64,
        pub actual_cache_creation_cost_usd: f64,
        pub actual_cache_read_cost_usd: f64,
        pub actual_request_cost_usd: f64,
        pub actual_total_cost_usd: f64,
        pub rate_multiplier: f64,
        pub input_price_per_1m: f64,
        pub output_price_per_1m: f64,
        pub cache_creation_price_per_1m: f64,
        pub cache_read_price_per_1m: f64,
        pub price_per_request: Option<f64>,
        #[sea_orm(column_type = "String(StringLen::N(50))")]
        pub request_type: String,
        #[sea_orm(column_type = "String(StringLen::N(20))")]
        pub api_format: String,
        pub is_stream: bool,
        pub status_code: Option<i32>,
        #[sea_orm(column_type = "Text", nullable)]
        pub error_message: Option<String>,
        pub response_time_ms: Option<i32>,
        pub first_byte_time_ms: Option<i32>,
        pub status: UsageStatus,
        #[sea_orm(column_type = "JsonBinary", nullable)]
        pub request_metadata: Option<JsonObject>,
        /// Request start.
        #[serde(with = "time::serde::rfc3339")]
        pub created_at: TimeDateTimeWithTimeZone,
    }
}

impl Model {
    /// Makes every column fit before the row is written (behaviour.md 7): each text column
    /// loses NUL characters and keeps at most the characters its declared length allows
    /// ([`crate::MAX_TEXT_CHARS`] for `text`), the JSON column loses NUL characters, every
    /// amount becomes finite and `>= 0` (`price_per_request` stays `None` when it is), and
    /// token counts are at least 0.
    pub fn fit_columns(&mut self) {
        fit_column(&mut self.id, Column::Id);
        fit_optional_column(&mut self.user_id, Column::UserId);
        fit_optional_column(&mut self.api_key_id, Column::ApiKeyId);
        fit_column(&mut self.request_id, Column::RequestId);
        fit_column(&mut self.provider, Column::Provider);
        fit_column(&mut self.model, Column::Model);
        fit_optional_column(&mut self.global_model, Column::GlobalModel);
        fit_optional_column(&mut self.target_model, Column::TargetModel);
        fit_optional_column(&mut self.provider_id, Column::ProviderId);
        fit_optional_column(&mut self.provider_endpoint_id, Column::ProviderEndpointId);
        fit_optional_column(&mut self.provider_api_key_id, Column::ProviderApiKeyId);
        fit_column(&mut self.request_type, Column::RequestType);
        fit_column(&mut self.api_format, Column::ApiFormat);
        fit_optional_column(&mut self.error_message, Column::ErrorMessage);
        fit_json_column(&mut self.request_metadata);
        for count in [
            &mut self.input_tokens,
            &mut self.output_tokens,
            &mut self.total_tokens,
            &mut self.cache_creation_input_tokens,
            &mut self.cache_read_input_tokens,
        ] {
            fit_count(count);
        }
        for amount in [
            &mut self.input_cost_usd,
            &mut self.output_cost_usd,
            &mut self.cache_creation_cost_usd,
            &mut self.cache_read_cost_usd,
            &mut self.cache_cost_usd,
            &mut self.request_cost_usd,
            &mut self.total_cost_usd,
            &mut self.actual_input_cost_usd,
            &mut self.actual_output_cost_usd,
            &mut self.actual_cache_creation_cost_usd,
            &mut self.actual_cache_read_cost_usd,
            &mut self.actual_request_cost_usd,
            &mut self.actual_total_cost_usd,
            &mut self.rate_multiplier,
            &mut self.input_price_per_1m,
            &mut self.output_price_per_1m,
            &mut self.cache_creation_price_per_1m,
            &mut self.cache_read_price_per_1m,
        ] {
            fit_amount(amount);
        }
        fit_optional_amount(&mut self.price_per_request);
    }
}
