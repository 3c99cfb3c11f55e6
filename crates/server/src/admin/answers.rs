//! The dashboard's answer cache: rendered answers reused for a few seconds per caller key,
//! never shared between callers.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;

use super::error::AdminError;

/// How long a dashboard answer is reused for the same caller and query.
const ANSWER_TTL: Duration = Duration::from_secs(5);
/// Most answers kept.
const ANSWER_CAPACITY: u64 = 10_000;

/// Per-caller cache of rendered dashboard answers.
#[derive(Clone)]
pub(crate) struct DashboardCache {
    answers: moka::future::Cache<String, Arc<serde_json::Value>>,
}

impl std::fmt::Debug for DashboardCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DashboardCache").finish_non_exhaustive()
    }
}

impl Default for DashboardCache {
    fn default() -> Self {
        Self {
            answers: moka::future::Cache::builder()
                .max_capacity(ANSWER_CAPACITY)
                .time_to_live(ANSWER_TTL)
                .build(),
        }
    }
}

impl DashboardCache {
    /// The answer for `key`, computing it with `compute` on a miss, as the response body.
    /// Errors are not cached.
    pub(crate) async fn answer<F, Fut>(
        &self,
        key: String,
        compute: F,
    ) -> Result<Json<Arc<serde_json::Value>>, AdminError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<serde_json::Value, AdminError>>,
    {
        self.answers
            .try_get_with(key, async move { compute().await.map(Arc::new) })
            .await
            .map(Json)
            .map_err(|error: Arc<AdminError>| (*error).clone())
    }
}
