//! Test data and the independent oracle: deterministic usage and candidate rows covering
//! every case of behaviour.md section 6, and a row-by-row computation of what the
//! aggregator must store, written without SQL.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::{DatabaseConnection, EntityTrait, QueryOrder};
use time::{Duration, OffsetDateTime};
use tollgate_entities::{
    CandidateStatus, UsageStatus, new_id, request_candidates, stats_daily, stats_daily_model,
    stats_user_daily, usage, users,
};
use tollgate_stats::{BusinessDay, DayStats, ModelStats, UserStats};
use tollgate_testkit::fixtures;

/// A tiny deterministic generator (SplitMix64).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[usize::try_from(self.below(items.len() as u64)).unwrap()]
    }
}

/// Everything a test inserted.
#[derive(Default, Clone)]
pub(crate) struct Data {
    pub(crate) users: Vec<users::Model>,
    pub(crate) usage: Vec<usage::Model>,
    pub(crate) candidates: Vec<request_candidates::Model>,
}

impl Data {
    /// Inserts everything in batches.
    pub(crate) async fn insert(&self, db: &DatabaseConnection) {
        for user in &self.users {
            fixtures::insert(db, user.clone()).await;
        }
        insert_usage(db, &self.usage).await;
        insert_candidates(db, &self.candidates).await;
    }

    pub(crate) fn extend(&mut self, other: Data) {
        self.users.extend(other.users);
        self.usage.extend(other.usage);
        self.candidates.extend(other.candidates);
    }
}

pub(crate) async fn insert_usage(db: &DatabaseConnection, rows: &[usage::Model]) {
    use sea_orm::IntoActiveModel;
    for chunk in rows.chunks(200) {
        let models = chunk.iter().cloned().map(|row| row.into_active_model());
        usage::Entity::insert_many(models)
            .exec_without_returning(db)
            .await
            .unwrap();
    }
}

pub(crate) async fn insert_candidates(db: &DatabaseConnection, rows: &[request_candidates::Model]) {
    use sea_orm::IntoActiveModel;
    for chunk in rows.chunks(200) {
        let models = chunk.iter().cloned().map(|row| row.into_active_model());
        request_candidates::Entity::insert_many(models)
            .exec_without_returning(db)
            .await
            .unwrap();
    }
}

/// Users: `active` active ones, `inactive` inactive ones (all may have traffic).
pub(crate) fn users(prefix: &str, active: usize, inactive: usize) -> Vec<users::Model> {
    (0..active + inactive)
        .map(|i| {
            let mut user = fixtures::user(&format!("{prefix}{i}"));
            user.is_active = i < active;
            user
        })
        .collect()
}

pub(crate) fn candidate(
    request_id: &str,
    candidate_index: i32,
    retry_index: i32,
    status: CandidateStatus,
    created_at: OffsetDateTime,
) -> request_candidates::Model {
    request_candidates::Model {
        id: new_id(),
        request_id: request_id.to_owned(),
        user_id: None,
        api_key_id: None,
        candidate_index,
        retry_index,
        provider_id: None,
        endpoint_id: None,
        key_id: None,
        status,
        skip_reason: (status == CandidateStatus::Skipped).then(|| "circuit_open".to_owned()),
        is_cached: false,
        status_code: None,
        error_type: None,
        error_message: None,
        latency_ms: Some(10),
        extra_data: None,
        created_at,
        started_at: None,
        finished_at: None,
    }
}

/// One usage row with the given shape and random tokens and costs.
pub(crate) fn usage_row(
    rng: &mut Rng,
    user: Option<&users::Model>,
    created_at: OffsetDateTime,
) -> usage::Model {
    let mut row = fixtures::usage_row("placeholder", created_at);
    let models = [
        "gpt-4o",
        "claude-sonnet",
        "alias-sonnet",
        "raw-model",
        "gemini",
    ];
    let model = *rng.pick(&models);
    row.model = model.to_owned();
    row.global_model = match model {
        "alias-sonnet" | "claude-sonnet" => Some("claude-sonnet".to_owned()),
        "gpt-4o" => Some("gpt-4o".to_owned()),
        "gemini" if rng.below(2) == 0 => Some("gemini-pro".to_owned()),
        _ => None,
    };
    row.provider = (*rng.pick(&["openai", "anthropic", "relay"])).to_owned();
    row.user_id = user.map(|u| u.id.clone());
    row.input_tokens = i32::try_from(rng.below(5_000)).unwrap();
    row.output_tokens = i32::try_from(rng.below(2_000)).unwrap();
    row.cache_creation_input_tokens = i32::try_from(rng.below(300)).unwrap();
    row.cache_read_input_tokens = i32::try_from(rng.below(900)).unwrap();
    row.total_tokens = row.input_tokens + row.output_tokens;
    let price = 1.0 + (rng.below(5) as f64) * 0.37;
    row.input_cost_usd = f64::from(row.input_tokens) / 1e6 * price;
    row.output_cost_usd = f64::from(row.output_tokens) / 1e6 * price * 4.0;
    row.cache_creation_cost_usd = f64::from(row.cache_creation_input_tokens) / 1e6 * price * 1.25;
    row.cache_read_cost_usd = f64::from(row.cache_read_input_tokens) / 1e6 * price * 0.1;
    row.cache_cost_usd = row.cache_creation_cost_usd + row.cache_read_cost_usd;
    row.total_cost_usd = row.input_cost_usd + row.output_cost_usd + row.cache_cost_usd;
    row.actual_total_cost_usd = row.total_cost_usd * 0.8;
    // Every status and the error cases of the definition.
    match rng.below(10) {
        0 => {
            row.status = UsageStatus::Pending;
            row.status_code = None;
            row.response_time_ms = None;
        }
        1 => {
            row.status = UsageStatus::Streaming;
            row.response_time_ms = None;
        }
        2 => {
            row.status = UsageStatus::Failed;
            row.status_code = Some(*rng.pick(&[500, 502, 503]));
            row.error_message = Some("upstream error".to_owned());
        }
        3 => {
            row.status = UsageStatus::Failed;
            row.status_code = Some(*rng.pick(&[400, 404, 429]));
        }
        4 => {
            // A 200 whose stream broke: an error by its message.
            row.error_message = Some("stream interrupted".to_owned());
        }
        5 => {
            row.status = UsageStatus::Failed;
            row.status_code = None;
            row.error_message = Some("connect timeout".to_owned());
            row.response_time_ms = None;
        }
        _ => {
            row.response_time_ms = Some(i32::try_from(50 + rng.below(5_000)).unwrap());
        }
    }
    row
}

/// Candidates for a request: one of the attempt shapes, at `created_at` (+ a few ms).
pub(crate) fn candidates_for(
    rng: &mut Rng,
    request_id: &str,
    created_at: OffsetDateTime,
) -> Vec<request_candidates::Model> {
    use CandidateStatus::{Available, Failed, Pending, Skipped, Streaming, Success};
    let at = |ms: i64| created_at + Duration::milliseconds(ms);
    match rng.below(9) {
        // Fallback to a second provider: two executed attempts.
        0 => vec![
            candidate(request_id, 0, 0, Failed, at(0)),
            candidate(request_id, 1, 0, Success, at(5)),
        ],
        // A retry on the same key: two executed attempts.
        1 => vec![
            candidate(request_id, 0, 0, Failed, at(0)),
            candidate(request_id, 0, 1, Success, at(3)),
        ],
        // Only skipped candidates (and one never tried): no fallback.
        2 => vec![
            candidate(request_id, 0, 0, Skipped, at(0)),
            candidate(request_id, 1, 0, Skipped, at(0)),
            candidate(request_id, 2, 0, Available, at(0)),
        ],
        // Skipped then one success: one executed attempt.
        3 => vec![
            candidate(request_id, 0, 0, Skipped, at(0)),
            candidate(request_id, 1, 0, Success, at(1)),
        ],
        // Failed then still running: one executed attempt.
        4 => vec![
            candidate(request_id, 0, 0, Failed, at(0)),
            candidate(request_id, 1, 0, Streaming, at(2)),
        ],
        // Three executed attempts.
        5 => vec![
            candidate(request_id, 0, 0, Failed, at(0)),
            candidate(request_id, 0, 1, Failed, at(1)),
            candidate(request_id, 1, 0, Success, at(2)),
        ],
        6 => vec![candidate(request_id, 0, 0, Pending, at(0))],
        // First candidate skipped, the next two executed: a fallback without a (0, 0) attempt.
        7 => vec![
            candidate(request_id, 0, 0, Skipped, at(0)),
            candidate(request_id, 1, 0, Failed, at(1)),
            candidate(request_id, 2, 0, Success, at(2)),
        ],
        _ => vec![candidate(request_id, 0, 0, Success, at(0))],
    }
}

/// Traffic for `day`: `rows` random rows plus rows on and around both boundaries, spread
/// over `users` (plus rows without a user).
pub(crate) fn traffic_for_day(
    rng: &mut Rng,
    day: &BusinessDay,
    users: &[users::Model],
    rows: usize,
) -> Data {
    let mut data = Data::default();
    let span = (day.end() - day.start()).whole_microseconds() as u64;
    let mut instants: Vec<OffsetDateTime> = (0..rows)
        .map(|_| day.start() + Duration::microseconds(rng.below(span) as i64))
        .collect();
    let micro = Duration::microseconds(1);
    instants.extend([
        day.start() - micro,
        day.start(),
        day.start() + micro,
        day.start() + Duration::milliseconds(500),
        day.end() - Duration::milliseconds(500),
        day.end() - micro,
        day.end(),
        day.end() + Duration::milliseconds(250),
    ]);
    for created_at in instants {
        let user = if users.is_empty() || rng.below(12) == 0 {
            None
        } else {
            Some(rng.pick(users))
        };
        let row = usage_row(rng, user, created_at);
        data.candidates
            .extend(candidates_for(rng, &row.request_id, created_at));
        data.usage.push(row);
    }
    data
}

fn in_range(instant: OffsetDateTime, start: OffsetDateTime, end: OffsetDateTime) -> bool {
    start <= instant && instant < end
}

fn is_error(row: &usage::Model) -> bool {
    row.status_code.is_some_and(|code| code >= 400) || row.error_message.is_some()
}

fn mean(values: &[i32]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().map(|v| i64::from(*v)).sum::<i64>() as f64 / values.len() as f64
    }
}

/// The expected rows of one day, computed row by row.
pub(crate) struct Expected {
    pub(crate) stats: DayStats,
    pub(crate) models: Vec<ModelStats>,
    pub(crate) users: Vec<UserStats>,
}

pub(crate) fn oracle(data: &Data, start: OffsetDateTime, end: OffsetDateTime) -> Expected {
    let rows: Vec<&usage::Model> = data
        .usage
        .iter()
        .filter(|row| in_range(row.created_at, start, end))
        .collect();
    let mut stats = DayStats::default();
    let mut times = Vec::new();
    for row in &rows {
        stats.total_requests += 1;
        if is_error(row) {
            stats.error_requests += 1;
        }
        stats.input_tokens += i64::from(row.input_tokens);
        stats.output_tokens += i64::from(row.output_tokens);
        stats.cache_creation_tokens += i64::from(row.cache_creation_input_tokens);
        stats.cache_read_tokens += i64::from(row.cache_read_input_tokens);
        stats.total_cost += row.total_cost_usd;
        stats.actual_total_cost += row.actual_total_cost_usd;
        stats.input_cost += row.input_cost_usd;
        stats.output_cost += row.output_cost_usd;
        stats.cache_creation_cost += row.cache_creation_cost_usd;
        stats.cache_read_cost += row.cache_read_cost_usd;
        times.extend(row.response_time_ms);
    }
    stats.success_requests = stats.total_requests - stats.error_requests;
    stats.avg_response_time_ms = mean(&times);
    stats.unique_models = rows.iter().map(|r| &r.model).collect::<BTreeSet<_>>().len() as i64;
    stats.unique_providers = rows
        .iter()
        .map(|r| &r.provider)
        .collect::<BTreeSet<_>>()
        .len() as i64;
    let mut executed: BTreeMap<&str, usize> = BTreeMap::new();
    for candidate in data
        .candidates
        .iter()
        .filter(|c| in_range(c.created_at, start, end))
    {
        if matches!(
            candidate.status,
            CandidateStatus::Success | CandidateStatus::Failed
        ) {
            *executed.entry(&candidate.request_id).or_default() += 1;
        }
    }
    stats.fallback_count = executed.values().filter(|n| **n > 1).count() as i64;

    let mut models: BTreeMap<String, (ModelStats, Vec<i32>)> = BTreeMap::new();
    for row in &rows {
        let key = row
            .global_model
            .clone()
            .unwrap_or_else(|| row.model.clone());
        let entry = models.entry(key.clone()).or_insert_with(|| {
            (
                ModelStats {
                    model: key,
                    ..ModelStats::default()
                },
                Vec::new(),
            )
        });
        entry.0.total_requests += 1;
        entry.0.input_tokens += i64::from(row.input_tokens);
        entry.0.output_tokens += i64::from(row.output_tokens);
        entry.0.cache_creation_tokens += i64::from(row.cache_creation_input_tokens);
        entry.0.cache_read_tokens += i64::from(row.cache_read_input_tokens);
        entry.0.total_cost += row.total_cost_usd;
        entry.1.extend(row.response_time_ms);
    }
    let models = models
        .into_values()
        .map(|(mut model, times)| {
            model.avg_response_time_ms = mean(&times);
            model
        })
        .collect();

    let mut users: BTreeMap<String, UserStats> = BTreeMap::new();
    for row in &rows {
        let Some(user_id) = &row.user_id else {
            continue;
        };
        let entry = users.entry(user_id.clone()).or_insert_with(|| UserStats {
            user_id: user_id.clone(),
            ..UserStats::default()
        });
        entry.total_requests += 1;
        if is_error(row) {
            entry.error_requests += 1;
        }
        entry.input_tokens += i64::from(row.input_tokens);
        entry.output_tokens += i64::from(row.output_tokens);
        entry.cache_creation_tokens += i64::from(row.cache_creation_input_tokens);
        entry.cache_read_tokens += i64::from(row.cache_read_input_tokens);
        entry.total_cost += row.total_cost_usd;
    }
    let users = users
        .into_values()
        .map(|mut user| {
            user.success_requests = user.total_requests - user.error_requests;
            user
        })
        .collect();
    Expected {
        stats,
        models,
        users,
    }
}

pub(crate) fn close(actual: f64, expected: f64, what: &str) {
    let tolerance = 1e-9 * expected.abs().max(1.0);
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: got {actual}, expected {expected}"
    );
}

pub(crate) fn assert_day_stats(actual: &DayStats, expected: &DayStats, what: &str) {
    assert_eq!(
        actual.total_requests, expected.total_requests,
        "{what}: total_requests"
    );
    assert_eq!(
        actual.success_requests, expected.success_requests,
        "{what}: success_requests"
    );
    assert_eq!(
        actual.error_requests, expected.error_requests,
        "{what}: error_requests"
    );
    assert_eq!(
        actual.input_tokens, expected.input_tokens,
        "{what}: input_tokens"
    );
    assert_eq!(
        actual.output_tokens, expected.output_tokens,
        "{what}: output_tokens"
    );
    assert_eq!(
        actual.cache_creation_tokens, expected.cache_creation_tokens,
        "{what}: cache_creation_tokens"
    );
    assert_eq!(
        actual.cache_read_tokens, expected.cache_read_tokens,
        "{what}: cache_read_tokens"
    );
    close(
        actual.total_cost,
        expected.total_cost,
        &format!("{what}: total_cost"),
    );
    close(
        actual.actual_total_cost,
        expected.actual_total_cost,
        &format!("{what}: actual_total_cost"),
    );
    close(
        actual.input_cost,
        expected.input_cost,
        &format!("{what}: input_cost"),
    );
    close(
        actual.output_cost,
        expected.output_cost,
        &format!("{what}: output_cost"),
    );
    close(
        actual.cache_creation_cost,
        expected.cache_creation_cost,
        &format!("{what}: cache_creation_cost"),
    );
    close(
        actual.cache_read_cost,
        expected.cache_read_cost,
        &format!("{what}: cache_read_cost"),
    );
    close(
        actual.avg_response_time_ms,
        expected.avg_response_time_ms,
        &format!("{what}: avg_response_time_ms"),
    );
    assert_eq!(
        actual.fallback_count, expected.fallback_count,
        "{what}: fallback_count"
    );
    assert_eq!(
        actual.unique_models, expected.unique_models,
        "{what}: unique_models"
    );
    assert_eq!(
        actual.unique_providers, expected.unique_providers,
        "{what}: unique_providers"
    );
}

pub(crate) fn assert_models(actual: &[ModelStats], expected: &[ModelStats], what: &str) {
    let names = |rows: &[ModelStats]| rows.iter().map(|m| m.model.clone()).collect::<Vec<_>>();
    assert_eq!(names(actual), names(expected), "{what}: models");
    for (a, e) in actual.iter().zip(expected) {
        let what = format!("{what}: model {}", e.model);
        assert_eq!(a.total_requests, e.total_requests, "{what}: total_requests");
        assert_eq!(a.input_tokens, e.input_tokens, "{what}: input_tokens");
        assert_eq!(a.output_tokens, e.output_tokens, "{what}: output_tokens");
        assert_eq!(
            a.cache_creation_tokens, e.cache_creation_tokens,
            "{what}: cache_creation_tokens"
        );
        assert_eq!(
            a.cache_read_tokens, e.cache_read_tokens,
            "{what}: cache_read_tokens"
        );
        close(a.total_cost, e.total_cost, &format!("{what}: total_cost"));
        close(
            a.avg_response_time_ms,
            e.avg_response_time_ms,
            &format!("{what}: avg"),
        );
    }
}

pub(crate) fn assert_users(actual: &[UserStats], expected: &[UserStats], what: &str) {
    let ids = |rows: &[UserStats]| rows.iter().map(|u| u.user_id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(actual), ids(expected), "{what}: users");
    for (a, e) in actual.iter().zip(expected) {
        let what = format!("{what}: user {}", e.user_id);
        assert_eq!(a.total_requests, e.total_requests, "{what}: total_requests");
        assert_eq!(
            a.success_requests, e.success_requests,
            "{what}: success_requests"
        );
        assert_eq!(a.error_requests, e.error_requests, "{what}: error_requests");
        assert_eq!(a.input_tokens, e.input_tokens, "{what}: input_tokens");
        assert_eq!(a.output_tokens, e.output_tokens, "{what}: output_tokens");
        assert_eq!(
            a.cache_creation_tokens, e.cache_creation_tokens,
            "{what}: cache_creation"
        );
        assert_eq!(
            a.cache_read_tokens, e.cache_read_tokens,
            "{what}: cache_read"
        );
        close(a.total_cost, e.total_cost, &format!("{what}: total_cost"));
    }
}

/// The stored rows of `day`, read back through the entities.
pub(crate) struct Stored {
    pub(crate) daily: Vec<stats_daily::Model>,
    pub(crate) models: Vec<stats_daily_model::Model>,
    pub(crate) users: Vec<stats_user_daily::Model>,
}

pub(crate) async fn stored(db: &DatabaseConnection, day: &BusinessDay) -> Stored {
    let daily = stats_daily::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .filter(|row| row.date == day.start())
        .collect();
    let mut models: Vec<_> = stats_daily_model::Entity::find()
        .order_by_asc(stats_daily_model::Column::Model)
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .filter(|row| row.date == day.start())
        .collect();
    models.sort_by(|a, b| a.model.cmp(&b.model));
    let mut users: Vec<_> = stats_user_daily::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .filter(|row| row.date == day.start())
        .collect();
    users.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    Stored {
        daily,
        models,
        users,
    }
}

/// Asserts that the stored rows of `day` equal the oracle over `data`.
pub(crate) async fn assert_stored_matches(db: &DatabaseConnection, data: &Data, day: &BusinessDay) {
    let expected = oracle(data, day.start(), day.end());
    let stored = stored(db, day).await;
    assert_eq!(stored.daily.len(), 1, "{day}: exactly one stats_daily row");
    let what = format!("{day} ({:?})", db.get_database_backend());
    assert_day_stats(&DayStats::from(&stored.daily[0]), &expected.stats, &what);
    let models: Vec<ModelStats> = stored.models.iter().map(ModelStats::from).collect();
    assert_models(&models, &expected.models, &what);
    let users: Vec<UserStats> = stored.users.iter().map(UserStats::from).collect();
    assert_users(&users, &expected.users, &what);
}

/// Row counts of the three day tables.
pub(crate) async fn table_counts(db: &DatabaseConnection) -> (usize, usize, usize) {
    (
        stats_daily::Entity::find().all(db).await.unwrap().len(),
        stats_daily_model::Entity::find()
            .all(db)
            .await
            .unwrap()
            .len(),
        stats_user_daily::Entity::find()
            .all(db)
            .await
            .unwrap()
            .len(),
    )
}
