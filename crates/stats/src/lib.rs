//! Usage statistics: daily, per-model, per-user and summary rollups, live today, combined
//! view and backfill (issue 5 fills this crate).
