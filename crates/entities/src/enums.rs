//! String-valued enum columns, stored exactly as Aether spells them.

use sea_orm::sea_query::StringLen;
use sea_orm::{DeriveActiveEnum, EnumIter};
use serde::{Deserialize, Serialize};

/// `users.role`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(20))")]
#[serde(rename_all = "snake_case")]
pub enum UserRole {
    /// May use the admin and dashboard APIs.
    #[sea_orm(string_value = "admin")]
    Admin,
    /// May use the client API only.
    #[sea_orm(string_value = "user")]
    User,
}

/// `providers.billing_type`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(20))")]
#[serde(rename_all = "snake_case")]
pub enum BillingType {
    /// Billed per token at list price times the key's rate multiplier.
    #[sea_orm(string_value = "pay_as_you_go")]
    PayAsYouGo,
    /// A monthly allowance; costed like pay-as-you-go.
    #[sea_orm(string_value = "monthly_quota")]
    MonthlyQuota,
    /// Costs nothing: every `actual_*` cost is zero.
    #[sea_orm(string_value = "free_tier")]
    FreeTier,
}

/// `provider_endpoints.api_format` and `usage.api_format`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(20))")]
pub enum ApiFormat {
    /// OpenAI chat completions.
    #[sea_orm(string_value = "OPENAI")]
    #[serde(rename = "OPENAI")]
    OpenAi,
    /// Anthropic Messages.
    #[sea_orm(string_value = "CLAUDE")]
    #[serde(rename = "CLAUDE")]
    Claude,
}

impl ApiFormat {
    /// The stored spelling (`OPENAI`, `CLAUDE`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "OPENAI",
            Self::Claude => "CLAUDE",
        }
    }
}

impl std::fmt::Display for ApiFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ApiFormat {
    type Err = crate::EntityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "OPENAI" => Ok(Self::OpenAi),
            "CLAUDE" => Ok(Self::Claude),
            other => Err(crate::EntityError::UnknownVariant {
                kind: "api_format",
                value: other.to_owned(),
            }),
        }
    }
}

/// `usage.status`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(20))")]
#[serde(rename_all = "snake_case")]
pub enum UsageStatus {
    /// Accepted, no upstream answer yet.
    #[sea_orm(string_value = "pending")]
    Pending,
    /// A stream is being relayed.
    #[sea_orm(string_value = "streaming")]
    Streaming,
    /// Finished with an upstream answer.
    #[sea_orm(string_value = "completed")]
    Completed,
    /// Finished without a usable answer.
    #[sea_orm(string_value = "failed")]
    Failed,
}

/// `request_candidates.status`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(20))")]
#[serde(rename_all = "snake_case")]
pub enum CandidateStatus {
    /// Planned, not tried.
    #[sea_orm(string_value = "available")]
    Available,
    /// Not tried, for the reason in `skip_reason`.
    #[sea_orm(string_value = "skipped")]
    Skipped,
    /// Being tried.
    #[sea_orm(string_value = "pending")]
    Pending,
    /// Relaying a stream.
    #[sea_orm(string_value = "streaming")]
    Streaming,
    /// Answered.
    #[sea_orm(string_value = "success")]
    Success,
    /// Tried and failed.
    #[sea_orm(string_value = "failed")]
    Failed,
}
