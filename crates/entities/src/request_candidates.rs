//! `request_candidates`: one row per routing candidate and attempt.

use sea_orm::entity::prelude::*;

use crate::sanitize::{fit_column, fit_json_column, fit_optional_column};
use crate::{CandidateStatus, JsonObject, new_id};

crate::table::table! {
    /// A row of `request_candidates`.
    ///
    /// No navigable relations: rows are written once and read by grouped statistics queries.
    "request_candidates" {
        #[sea_orm(column_type = "String(StringLen::N(100))")]
        pub request_id: String,
        #[sea_orm(column_type = "String(StringLen::N(36))", nullable)]
        pub user_id: Option<String>,
        #[sea_orm(column_type = "String(StringLen::N(36))", nullable)]
        pub api_key_id: Option<String>,
        /// 0-based position in the plan.
        pub candidate_index: i32,
        /// 0-based retry of the same candidate.
        pub retry_index: i32,
        #[sea_orm(column_type = "String(StringLen::N(36))", nullable)]
        pub provider_id: Option<String>,
        #[sea_orm(column_type = "String(StringLen::N(36))", nullable)]
        pub endpoint_id: Option<String>,
        #[sea_orm(column_type = "String(StringLen::N(36))", nullable)]
        pub key_id: Option<String>,
        pub status: CandidateStatus,
        #[sea_orm(column_type = "String(StringLen::N(200))", nullable)]
        pub skip_reason: Option<String>,
        pub is_cached: bool,
        pub status_code: Option<i32>,
        #[sea_orm(column_type = "String(StringLen::N(50))", nullable)]
        pub error_type: Option<String>,
        #[sea_orm(column_type = "Text", nullable)]
        pub error_message: Option<String>,
        pub latency_ms: Option<i32>,
        #[sea_orm(column_type = "JsonBinary", nullable)]
        pub extra_data: Option<JsonObject>,
        #[serde(with = "time::serde::rfc3339")]
        pub created_at: TimeDateTimeWithTimeZone,
        #[serde(with = "time::serde::rfc3339::option")]
        pub started_at: Option<TimeDateTimeWithTimeZone>,
        #[serde(with = "time::serde::rfc3339::option")]
        pub finished_at: Option<TimeDateTimeWithTimeZone>,
    }
}

impl Model {
    /// The first attempt (candidate 0, retry 0) of `request_id` in `status` at `created_at`,
    /// with nothing else known: the base the router's rows and the fixtures fill in.
    pub fn first_attempt(
        request_id: &str,
        status: CandidateStatus,
        created_at: TimeDateTimeWithTimeZone,
    ) -> Self {
        Self {
            id: new_id(),
            request_id: request_id.to_owned(),
            user_id: None,
            api_key_id: None,
            candidate_index: 0,
            retry_index: 0,
            provider_id: None,
            endpoint_id: None,
            key_id: None,
            status,
            skip_reason: None,
            is_cached: false,
            status_code: None,
            error_type: None,
            error_message: None,
            latency_ms: None,
            extra_data: None,
            created_at,
            started_at: None,
            finished_at: None,
        }
    }

    /// Makes every column fit before the row is written (behaviour.md 7): each text column
    /// loses NUL characters and keeps at most the characters its declared length allows
    /// ([`crate::MAX_TEXT_CHARS`] for `text`), and the JSON column loses NUL characters.
    pub fn fit_columns(&mut self) {
        fit_column(&mut self.id, Column::Id);
        fit_column(&mut self.request_id, Column::RequestId);
        fit_optional_column(&mut self.user_id, Column::UserId);
        fit_optional_column(&mut self.api_key_id, Column::ApiKeyId);
        fit_optional_column(&mut self.provider_id, Column::ProviderId);
        fit_optional_column(&mut self.endpoint_id, Column::EndpointId);
        fit_optional_column(&mut self.key_id, Column::KeyId);
        fit_optional_column(&mut self.skip_reason, Column::SkipReason);
        fit_optional_column(&mut self.error_type, Column::ErrorType);
        fit_optional_column(&mut self.error_message, Column::ErrorMessage);
        fit_json_column(&mut self.extra_data);
    }
}
