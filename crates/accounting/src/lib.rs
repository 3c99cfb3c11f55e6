//! `tollgate-accounting`: what a request leaves in the ledger (behaviour.md sections 4, 5, 7).
//!
//! - Token readings: [`usage_from_body`] reads an upstream answer's usage block and
//!   [`StreamUsage`] follows a stream's events; both read leniently and clamp what they must,
//!   noting every clamped value.
//! - The usage writer: [`spawn_writer`] starts the task that writes [`UsageRecord`]s (a
//!   `usage` row with its `request_candidates` rows) in batches; [`UsageSender`] queues them
//!   without waiting, [`WriterHandle`] drains the queue at shutdown. Rows the database refuses
//!   as data go to the dead-letter store and can be replayed ([`UsageSender::replay`]).
//! - The quota ledger: [`SpendLedger`] keeps each user's recent spend on this replica, and
//!   [`within_quota`] decides whether a user may spend more.
//!
//! The crate takes sea-orm without a database driver; the binary chooses it.

mod quota;
mod tokens;
mod writer;

pub use quota::{SpendLedger, within as within_quota};
pub use tokens::{StreamUsage, UsageReading, from_body as usage_from_body};
pub use writer::{
    REPLAY_LIMIT, ReplayError, ReplayReport, UsageRecord, UsageSender, WriterConfig, WriterHandle,
    WriterHealth, WriterStats, spawn as spawn_writer,
};
