//! End-to-end tests for tollgate live in `tests/it`; this library is intentionally empty.
