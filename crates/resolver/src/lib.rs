//! Model resolution, provider-scoped upstream names and routing plans, cached through
//! `tollgate-cache` (issue 4 fills this crate).
