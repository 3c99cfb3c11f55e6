//! Test data and the independent oracle: deterministic usage and candidate rows covering
//! every case of behaviour.md section 6, and a row-by-row computation of what the
//! aggregator must store, written without SQL.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, IntoActiveModel};
use time::{Date, Duration, OffsetDateTime};
use tollgate_entities::{
    CandidateStatus, UsageStatus, request_candidates, stats_daily, stats_daily_model,
    stats_user_daily, usage, users,
};
use tollgate_stats::{
    BusinessCalendar, BusinessDay, DayStats, ModelStats, Percentiles, ResponseTimeHistogram,
    UserStats,
};
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

    /// `users` with [`traffic_for_day`] of `rows` random rows on each of `days`, spread
    /// over all of them.
    pub(crate) fn with_traffic(
        rng: &mut Rng,
        users: Vec<users::Model>,
        days: &[BusinessDay],
        rows: usize,
    ) -> Data {
        let mut data = Data {
            users,
            ..Data::default()
        };
        for day in days {
            let traffic = traffic_for_day(rng, day, &data.users, rows);
            data.extend(traffic);
        }
        data
    }

    pub(crate) fn extend(&mut self, other: Data) {
        self.users.extend(other.users);
        self.usage.extend(other.usage);
        self.candidates.extend(other.candidates);
    }
}

pub(crate) async fn insert_usage(db: &DatabaseConnection, rows: &[usage::Model]) {
    insert_all::<usage::ActiveModel>(db, rows).await;
}

pub(crate) async fn insert_candidates(db: &DatabaseConnection, rows: &[request_candidates::Model]) {
    insert_all::<request_candidates::ActiveModel>(db, rows).await;
}

/// Inserts `rows` in multi-row statements of 200.
async fn insert_all<A>(db: &DatabaseConnection, rows: &[<A::Entity as EntityTrait>::Model])
where
    A: ActiveModelTrait + Send,
    <A::Entity as EntityTrait>::Model: IntoActiveModel<A>,
{
    for chunk in rows.chunks(200) {
        let models = chunk
            .iter()
            .cloned()
            .map(IntoActiveModel::into_active_model);
        A::Entity::insert_many(models)
            .exec_without_returning(db)
            .await
            .unwrap();
    }
}

/// The business days of `dates` in `calendar`.
pub(crate) fn days(calendar: &BusinessCalendar, dates: &[Date]) -> Vec<BusinessDay> {
    dates
        .iter()
        .map(|date| calendar.day(*date).unwrap())
        .collect()
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
        candidate_index,
        retry_index,
        skip_reason: (status == CandidateStatus::Skipped).then(|| "circuit_open".to_owned()),
        latency_ms: Some(10),
        ..fixtures::candidate_row(request_id, status, created_at)
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

/// The attempt shapes of a request: `(candidate_index, retry_index, status, milliseconds
/// after the request)` for each candidate row.
const ATTEMPTS: [&[(i32, i32, CandidateStatus, i64)]; 9] = {
    use CandidateStatus::{Available, Failed, Pending, Skipped, Streaming, Success};
    [
        // Fallback to a second provider: two executed attempts.
        &[(0, 0, Failed, 0), (1, 0, Success, 5)],
        // A retry on the same key: two executed attempts.
        &[(0, 0, Failed, 0), (0, 1, Success, 3)],
        // Only skipped candidates (and one never tried): no fallback.
        &[(0, 0, Skipped, 0), (1, 0, Skipped, 0), (2, 0, Available, 0)],
        // Skipped then one success: one executed attempt.
        &[(0, 0, Skipped, 0), (1, 0, Success, 1)],
        // Failed then still running: one executed attempt.
        &[(0, 0, Failed, 0), (1, 0, Streaming, 2)],
        // Three executed attempts.
        &[(0, 0, Failed, 0), (0, 1, Failed, 1), (1, 0, Success, 2)],
        &[(0, 0, Pending, 0)],
        // First candidate skipped, the next two executed: a fallback without a (0, 0) attempt.
        &[(0, 0, Skipped, 0), (1, 0, Failed, 1), (2, 0, Success, 2)],
        &[(0, 0, Success, 0)],
    ]
};

/// Candidates for a request: one of the [`ATTEMPTS`] shapes, at `created_at` (+ a few ms).
pub(crate) fn candidates_for(
    rng: &mut Rng,
    request_id: &str,
    created_at: OffsetDateTime,
) -> Vec<request_candidates::Model> {
    rng.pick(&ATTEMPTS)
        .iter()
        .map(|&(candidate_index, retry_index, status, ms)| {
            let at = created_at + Duration::milliseconds(ms);
            candidate(request_id, candidate_index, retry_index, status, at)
        })
        .collect()
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

/// What every rollup adds up over its rows, row by row.
#[derive(Default)]
struct Sums {
    requests: i64,
    errors: i64,
    input_tokens: i64,
    output_tokens: i64,
    cache_creation_tokens: i64,
    cache_read_tokens: i64,
    total_cost: f64,
    actual_total_cost: f64,
    input_cost: f64,
    output_cost: f64,
    cache_creation_cost: f64,
    cache_read_cost: f64,
    response_times: Vec<i32>,
    unpriced: i64,
}

impl Sums {
    fn add(&mut self, row: &usage::Model) {
        self.requests += 1;
        self.errors += i64::from(is_error(row));
        self.input_tokens += i64::from(row.input_tokens);
        self.output_tokens += i64::from(row.output_tokens);
        self.cache_creation_tokens += i64::from(row.cache_creation_input_tokens);
        self.cache_read_tokens += i64::from(row.cache_read_input_tokens);
        self.total_cost += row.total_cost_usd;
        self.actual_total_cost += row.actual_total_cost_usd;
        self.input_cost += row.input_cost_usd;
        self.output_cost += row.output_cost_usd;
        self.cache_creation_cost += row.cache_creation_cost_usd;
        self.cache_read_cost += row.cache_read_cost_usd;
        self.response_times.extend(row.response_time_ms);
        let unpriced = !is_error(row)
            && row.input_price_per_1m == 0.0
            && row.output_price_per_1m == 0.0
            && row.price_per_request.unwrap_or(0.0) == 0.0;
        self.unpriced += i64::from(unpriced);
    }

    /// The histogram of the response times, counted one by one.
    fn histogram(&self) -> ResponseTimeHistogram {
        let mut histogram = ResponseTimeHistogram::new();
        for time in &self.response_times {
            histogram.record(i64::from(*time));
        }
        histogram
    }

    /// The mean of the non-null response times, 0 without any.
    fn mean_response_time(&self) -> f64 {
        let times = &self.response_times;
        if times.is_empty() {
            0.0
        } else {
            times.iter().map(|v| i64::from(*v)).sum::<i64>() as f64 / times.len() as f64
        }
    }
}

/// The rows of `rows` summed per group, the groups in order of their key.
fn sums_by<'a, K: Ord>(
    rows: &[&'a usage::Model],
    key: impl Fn(&'a usage::Model) -> Option<K>,
) -> BTreeMap<K, Sums> {
    let mut groups: BTreeMap<K, Sums> = BTreeMap::new();
    for row in rows {
        if let Some(key) = key(row) {
            groups.entry(key).or_default().add(row);
        }
    }
    groups
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
    let day = sums_by(&rows, |_| Some(())).remove(&()).unwrap_or_default();
    let distinct = |field: fn(&usage::Model) -> &String| {
        rows.iter()
            .map(|row| field(row))
            .collect::<BTreeSet<_>>()
            .len() as i64
    };
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
    let stats = DayStats {
        total_requests: day.requests,
        success_requests: day.requests - day.errors,
        error_requests: day.errors,
        input_tokens: day.input_tokens,
        output_tokens: day.output_tokens,
        cache_creation_tokens: day.cache_creation_tokens,
        cache_read_tokens: day.cache_read_tokens,
        total_cost: day.total_cost,
        actual_total_cost: day.actual_total_cost,
        input_cost: day.input_cost,
        output_cost: day.output_cost,
        cache_creation_cost: day.cache_creation_cost,
        cache_read_cost: day.cache_read_cost,
        avg_response_time_ms: day.mean_response_time(),
        fallback_count: executed.values().filter(|n| **n > 1).count() as i64,
        unique_models: distinct(|row| &row.model),
        unique_providers: distinct(|row| &row.provider),
        unpriced_requests: day.unpriced,
        percentiles: Percentiles::of(&day.histogram()),
        response_time_histogram: day.histogram(),
    };
    let models = sums_by(&rows, |row| {
        Some(
            row.global_model
                .clone()
                .unwrap_or_else(|| row.model.clone()),
        )
    })
    .into_iter()
    .map(|(model, sums)| ModelStats {
        avg_response_time_ms: sums.mean_response_time(),
        model,
        total_requests: sums.requests,
        input_tokens: sums.input_tokens,
        output_tokens: sums.output_tokens,
        cache_creation_tokens: sums.cache_creation_tokens,
        cache_read_tokens: sums.cache_read_tokens,
        total_cost: sums.total_cost,
        unpriced_requests: sums.unpriced,
        percentiles: Percentiles::of(&sums.histogram()),
        response_time_histogram: sums.histogram(),
    })
    .collect();
    let users = sums_by(&rows, |row| row.user_id.clone())
        .into_iter()
        .map(|(user_id, sums)| UserStats {
            user_id,
            total_requests: sums.requests,
            success_requests: sums.requests - sums.errors,
            error_requests: sums.errors,
            input_tokens: sums.input_tokens,
            output_tokens: sums.output_tokens,
            cache_creation_tokens: sums.cache_creation_tokens,
            cache_read_tokens: sums.cache_read_tokens,
            total_cost: sums.total_cost,
            unpriced_requests: sums.unpriced,
            percentiles: Percentiles::of(&sums.histogram()),
            response_time_histogram: sums.histogram(),
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

/// Asserts that `$actual` and `$expected` agree on every named field: the `exact` ones
/// (counts) equal, the `close` ones (money, means) within [`close`]'s tolerance. A failure
/// names `$what` and the field.
macro_rules! assert_fields {
    ($actual:expr, $expected:expr, $what:expr;
     exact: $($exact:ident),+;
     close: $($close:ident),+ $(,)?) => {{
        let (actual, expected, what) = (&$actual, &$expected, &$what);
        $(assert_eq!(actual.$exact, expected.$exact, "{what}: {}", stringify!($exact));)+
        $(crate::support::close(
            actual.$close,
            expected.$close,
            &format!("{what}: {}", stringify!($close)),
        );)+
    }};
}
pub(crate) use assert_fields;

pub(crate) fn assert_day_stats(actual: &DayStats, expected: &DayStats, what: &str) {
    assert_fields!(actual, expected, what;
        exact: total_requests, success_requests, error_requests, input_tokens, output_tokens,
            cache_creation_tokens, cache_read_tokens, fallback_count, unique_models,
            unique_providers, unpriced_requests, response_time_histogram;
        close: total_cost, actual_total_cost, input_cost, output_cost, cache_creation_cost,
            cache_read_cost, avg_response_time_ms);
}

pub(crate) fn assert_models(actual: &[ModelStats], expected: &[ModelStats], what: &str) {
    let names = |rows: &[ModelStats]| rows.iter().map(|m| m.model.clone()).collect::<Vec<_>>();
    assert_eq!(names(actual), names(expected), "{what}: models");
    for (a, e) in actual.iter().zip(expected) {
        assert_fields!(a, e, format!("{what}: model {}", e.model);
            exact: total_requests, input_tokens, output_tokens, cache_creation_tokens,
                cache_read_tokens, unpriced_requests, response_time_histogram;
            close: total_cost, avg_response_time_ms);
    }
}

pub(crate) fn assert_users(actual: &[UserStats], expected: &[UserStats], what: &str) {
    let ids = |rows: &[UserStats]| rows.iter().map(|u| u.user_id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(actual), ids(expected), "{what}: users");
    for (a, e) in actual.iter().zip(expected) {
        assert_fields!(a, e, format!("{what}: user {}", e.user_id);
            exact: total_requests, success_requests, error_requests, input_tokens,
                output_tokens, cache_creation_tokens, cache_read_tokens, unpriced_requests,
                response_time_histogram;
            close: total_cost);
    }
}

/// The stored rows of `day`, read back through the entities.
pub(crate) struct Stored {
    pub(crate) daily: Vec<stats_daily::Model>,
    pub(crate) models: Vec<stats_daily_model::Model>,
    pub(crate) users: Vec<stats_user_daily::Model>,
}

/// Every row of entity `E`, read back in full.
async fn all<E: EntityTrait>(db: &DatabaseConnection) -> Vec<E::Model> {
    E::find().all(db).await.unwrap()
}

/// The rows of entity `E` whose date is `day`, compared in Rust rather than in SQL.
async fn on_day<E: EntityTrait>(
    db: &DatabaseConnection,
    day: &BusinessDay,
    date: fn(&E::Model) -> OffsetDateTime,
) -> Vec<E::Model> {
    let mut rows = all::<E>(db).await;
    rows.retain(|row| date(row) == day.start());
    rows
}

pub(crate) async fn stored(db: &DatabaseConnection, day: &BusinessDay) -> Stored {
    let daily = on_day::<stats_daily::Entity>(db, day, |row| row.date).await;
    let mut models = on_day::<stats_daily_model::Entity>(db, day, |row| row.date).await;
    models.sort_by(|a, b| a.model.cmp(&b.model));
    let mut users = on_day::<stats_user_daily::Entity>(db, day, |row| row.date).await;
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
        all::<stats_daily::Entity>(db).await.len(),
        all::<stats_daily_model::Entity>(db).await.len(),
        all::<stats_user_daily::Entity>(db).await.len(),
    )
}
