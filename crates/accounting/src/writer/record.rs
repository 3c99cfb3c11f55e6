//! What the writer writes: one request's `usage` row with its `request_candidates` rows.

use serde::{Deserialize, Serialize};
use tollgate_entities::{request_candidates, usage};

/// One request's rows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UsageRecord {
    /// The `usage` row.
    pub usage: usage::Model,
    /// Its `request_candidates` rows.
    pub candidates: Vec<request_candidates::Model>,
}
