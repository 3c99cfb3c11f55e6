//! Test data and the independent oracle: deterministic usage and candidate rows covering
//! every case of behaviour.md sections 6 and 9, and a row-by-row computation of what the
//! aggregator must store (days, and local hours from the zone's wall clock), written
//! without SQL.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use jiff::tz::TimeZone;
use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, IntoActiveModel};
use time::{Date, Duration, OffsetDateTime};
use tollgate_entities::{
    CandidateStatus, UsageStatus, api_keys, request_candidates, stats_daily, stats_daily_api_key,
    stats_daily_model, stats_daily_provider, stats_hourly, stats_hourly_api_key,
    stats_hourly_model, stats_hourly_provider, stats_hourly_user, stats_user_daily, usage, users,
};
use tollgate_stats::{
    Aggregator, BOUNDS_MS, BusinessCalendar, BusinessDay, DayStats, FixedClock, ModelStats,
    Percentiles, ResponseTimeHistogram, UserStats,
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

/// Where most tests start: an aggregator in a calendar with a clock of its own, and the
/// random traffic of [`Data::with_traffic`] on some days, inserted.
pub(crate) struct Seeded {
    pub(crate) stats: Aggregator,
    /// The aggregator's clock, set to the `now` it was seeded with.
    pub(crate) clock: Arc<FixedClock>,
    /// The generator, after the traffic was drawn.
    pub(crate) rng: Rng,
    /// The business days of the dates given.
    pub(crate) days: Vec<BusinessDay>,
    pub(crate) data: Data,
}

/// An aggregator over `db` in `calendar` whose clock reads `now`, and `rows` random usage
/// rows (from `Rng(seed)`) of `users` on each of `dates`, inserted.
pub(crate) async fn seeded(
    db: &DatabaseConnection,
    calendar: &BusinessCalendar,
    now: OffsetDateTime,
    seed: u64,
    users: Vec<users::Model>,
    dates: &[Date],
    rows: usize,
) -> Seeded {
    let clock = Arc::new(FixedClock::new(now));
    let stats = Aggregator::new(db.clone(), calendar.clone()).with_clock(clock.clone());
    let mut rng = Rng(seed);
    let days = days(calendar, dates);
    let data = Data::with_traffic(&mut rng, users, &days, rows);
    data.insert(db).await;
    Seeded {
        stats,
        clock,
        rng,
        days,
        data,
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

// Hourly and dimension rollups (behaviour.md 9): local hours computed from the zone's wall
// clock with jiff, traffic spread over them, and the expected rows of every hourly and daily
// table, all without the crate's hour buckets.

fn to_jiff(instant: OffsetDateTime) -> jiff::Timestamp {
    jiff::Timestamp::from_nanosecond(instant.unix_timestamp_nanos()).unwrap()
}

fn from_jiff(timestamp: jiff::Timestamp) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(timestamp.as_nanosecond()).unwrap()
}

/// The zone `name` as jiff knows it.
pub(crate) fn zone(name: &str) -> TimeZone {
    TimeZone::get(name).unwrap()
}

/// The UTC instant at which the local hour of `zone` containing `instant` starts: the
/// instant less the minutes, seconds and fraction the local wall clock shows.
pub(crate) fn local_hour_start(zone: &TimeZone, instant: OffsetDateTime) -> OffsetDateTime {
    let local = to_jiff(instant).to_zoned_datetime(zone.clone());
    let start = instant
        - Duration::minutes(local.minute().into())
        - Duration::seconds(local.second().into())
        - Duration::nanoseconds(local.subsec_nanosecond().into());
    let check = to_jiff(start).to_zoned_datetime(zone.clone());
    assert!(
        (
            check.hour(),
            check.minute(),
            check.second(),
            check.subsec_nanosecond()
        ) == (local.hour(), 0, 0, 0),
        "{instant}: the local hour of {local} does not start at {start} ({check})"
    );
    start
}

/// The local day `date` of `zone` as the UTC range from its midnight to the next.
pub(crate) fn local_day(zone: &TimeZone, date: Date) -> (OffsetDateTime, OffsetDateTime) {
    let midnight = |date: Date| {
        let civil = jiff::civil::date(
            i16::try_from(date.year()).unwrap(),
            i8::try_from(u8::from(date.month())).unwrap(),
            i8::try_from(date.day()).unwrap(),
        );
        from_jiff(civil.to_zoned_datetime(zone.clone()).unwrap().timestamp())
    };
    (midnight(date), midnight(date.next_day().unwrap()))
}

/// The starts of the local hours of `zone` in `[start, end)`, read off a 15-minute grid.
pub(crate) fn local_hours(
    zone: &TimeZone,
    start: OffsetDateTime,
    end: OffsetDateTime,
) -> Vec<OffsetDateTime> {
    let mut hours = BTreeSet::new();
    let mut at = start;
    while at < end {
        hours.insert(local_hour_start(zone, at));
        at += Duration::minutes(15);
    }
    hours.into_iter().collect()
}

/// An active client key per user, with distinct hashes.
pub(crate) fn api_keys_for(users: &[users::Model]) -> Vec<api_keys::Model> {
    users
        .iter()
        .enumerate()
        .map(|(i, user)| fixtures::api_key(&user.id, &format!("{i:064x}")))
        .collect()
}

/// Response times worth having: zero, bucket bounds and one past them, the last bound and
/// past it, a stream of an hour.
const EDGE_RESPONSE_TIMES: [i32; 8] = [0, 1, 2, 1_000, 1_001, 630_957, 630_958, 3_600_000];

/// A response time spread log-uniformly over 1 ms to 5 min, or one of the edge values.
fn response_time(rng: &mut Rng) -> i32 {
    if rng.below(10) == 0 {
        *rng.pick(&EDGE_RESPONSE_TIMES)
    } else {
        let exponent = rng.below(5_500) as f64 / 1_000.0;
        10_f64.powf(exponent).round() as i32
    }
}

/// Unit prices and costs of one of six shapes: priced by tokens, by request only, by one
/// token kind, or not at all (zero prices with a null or a zero per-request price).
fn price(rng: &mut Rng, row: &mut usage::Model) {
    let unit = 1.0 + (rng.below(5) as f64) * 0.37;
    let (input, output, per_request) = match rng.below(6) {
        0 => (unit, unit * 4.0, None),
        1 => (0.0, 0.0, Some(0.002)),
        2 => (0.0, 0.0, Some(0.0)),
        3 => (0.0, 0.0, None),
        4 => (0.0, unit * 4.0, None),
        _ => (unit, 0.0, Some(0.0)),
    };
    row.input_price_per_1m = input;
    row.output_price_per_1m = output;
    row.cache_creation_price_per_1m = input * 1.25;
    row.cache_read_price_per_1m = input * 0.1;
    row.price_per_request = per_request;
    row.input_cost_usd = f64::from(row.input_tokens) / 1e6 * input;
    row.output_cost_usd = f64::from(row.output_tokens) / 1e6 * output;
    row.cache_creation_cost_usd = f64::from(row.cache_creation_input_tokens) / 1e6 * input * 1.25;
    row.cache_read_cost_usd = f64::from(row.cache_read_input_tokens) / 1e6 * input * 0.1;
    row.cache_cost_usd = row.cache_creation_cost_usd + row.cache_read_cost_usd;
    row.request_cost_usd = if is_error(row) {
        0.0
    } else {
        per_request.unwrap_or(0.0)
    };
    row.total_cost_usd =
        row.input_cost_usd + row.output_cost_usd + row.cache_cost_usd + row.request_cost_usd;
    row.actual_total_cost_usd = row.total_cost_usd * 0.8;
}

/// Providers of the hourly traffic.
pub(crate) const PROVIDERS: [&str; 5] = ["openai", "anthropic", "relay", "azure", "bedrock"];

/// One usage row of the hourly traffic at `created_at`: [`usage_row`]'s models and statuses,
/// with a user (or none), a client key (or none), one of [`PROVIDERS`], one of the price
/// shapes, and spread-out response times.
pub(crate) fn hourly_row(
    rng: &mut Rng,
    users: &[users::Model],
    keys: &[api_keys::Model],
    created_at: OffsetDateTime,
) -> usage::Model {
    let user = if users.is_empty() || rng.below(8) == 0 {
        None
    } else {
        Some(rng.pick(users))
    };
    let mut row = usage_row(rng, user, created_at);
    row.api_key_id = if keys.is_empty() || rng.below(5) == 0 {
        None
    } else {
        Some(rng.pick(keys).id.clone())
    };
    row.provider = (*rng.pick(&PROVIDERS)).to_owned();
    price(rng, &mut row);
    if row.response_time_ms.is_some() {
        row.response_time_ms = Some(response_time(rng));
    }
    row
}

/// Traffic for the local day `[start, end)` of `zone`: in every local hour, rows at its
/// start, 1 µs after it, 1 µs before its end, at half past (a UTC hour boundary in a
/// half-hour zone) and `per_hour` random ones, with the candidates of [`candidates_for`];
/// rows 1 µs before the day, 1 µs before its end and at its end; no row at all in the hours
/// of index `empty`. Plus a request whose two executed attempts straddle the start of hour
/// `straddle` (a fallback of the day, of neither hour) and one whose attempts straddle the
/// day's start.
#[expect(
    clippy::too_many_arguments,
    reason = "a test helper spelling out its scenario"
)]
pub(crate) fn hourly_traffic(
    rng: &mut Rng,
    zone: &TimeZone,
    (start, end): (OffsetDateTime, OffsetDateTime),
    users: &[users::Model],
    keys: &[api_keys::Model],
    per_hour: usize,
    empty: &[usize],
    straddle: usize,
) -> Data {
    let micro = Duration::microseconds(1);
    let hours = local_hours(zone, start, end);
    let mut instants = vec![start - micro, end - micro, end];
    for (index, &hour) in hours.iter().enumerate() {
        let next = hours.get(index + 1).copied().unwrap_or(end);
        instants.extend([
            hour,
            hour + micro,
            next - micro,
            hour + Duration::minutes(30),
        ]);
        let span = (next - hour).whole_microseconds() as u64;
        instants
            .extend((0..per_hour).map(|_| hour + Duration::microseconds(rng.below(span) as i64)));
    }
    let quiet: BTreeSet<OffsetDateTime> = empty.iter().map(|&index| hours[index]).collect();
    instants.retain(|at| !quiet.contains(&local_hour_start(zone, *at)));
    let mut data = Data::default();
    for created_at in instants {
        let row = hourly_row(rng, users, keys, created_at);
        data.candidates
            .extend(candidates_for(rng, &row.request_id, created_at));
        data.usage.push(row);
    }
    let two_ms = Duration::milliseconds(2);
    for boundary in [hours[straddle], start] {
        let row = hourly_row(rng, users, keys, boundary - two_ms);
        data.candidates.extend([
            candidate(
                &row.request_id,
                0,
                0,
                CandidateStatus::Failed,
                boundary - two_ms,
            ),
            candidate(
                &row.request_id,
                1,
                0,
                CandidateStatus::Success,
                boundary + two_ms,
            ),
        ]);
        data.usage.push(row);
    }
    data
}

/// The histogram bucket of `ms`: the first bound it does not exceed, or the overflow bucket.
pub(crate) fn bucket(ms: i64) -> usize {
    BOUNDS_MS
        .iter()
        .position(|&bound| ms <= i64::from(bound))
        .unwrap_or(BOUNDS_MS.len())
}

/// The stored form of a histogram of `times`: counts per bucket up to the last non-empty
/// one, null without times.
pub(crate) fn histogram_of(times: &[i32]) -> Option<Vec<u64>> {
    let mut counts = vec![0_u64; BOUNDS_MS.len() + 1];
    for &ms in times {
        counts[bucket(i64::from(ms))] += 1;
    }
    while counts.last() == Some(&0) {
        counts.pop();
    }
    (!counts.is_empty()).then_some(counts)
}

/// The nearest-rank `percent` percentile of `times` (not empty).
pub(crate) fn nearest_rank(times: &[i64], percent: usize) -> i64 {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    let rank = (percent * sorted.len())
        .div_ceil(100)
        .clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The numbers of one row of any hourly or daily table; the columns a table lacks are 0.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Numbers {
    pub(crate) total_requests: i64,
    pub(crate) success_requests: i64,
    pub(crate) error_requests: i64,
    pub(crate) input_tokens: i64,
    pub(crate) output_tokens: i64,
    pub(crate) cache_creation_tokens: i64,
    pub(crate) cache_read_tokens: i64,
    pub(crate) total_cost: f64,
    pub(crate) actual_total_cost: f64,
    pub(crate) input_cost: f64,
    pub(crate) output_cost: f64,
    pub(crate) cache_creation_cost: f64,
    pub(crate) cache_read_cost: f64,
    pub(crate) avg_response_time_ms: f64,
    pub(crate) fallback_count: i64,
    pub(crate) unique_models: i64,
    pub(crate) unique_providers: i64,
    pub(crate) unpriced_requests: i64,
    pub(crate) response_time_histogram: Option<Vec<u64>>,
}

impl Numbers {
    /// How many response times the histogram holds.
    pub(crate) fn timed(&self) -> u64 {
        self.response_time_histogram
            .as_ref()
            .map_or(0, |counts| counts.iter().sum())
    }
}

impl Sums {
    /// The additive numbers of these rows (no distinct counts or fallbacks).
    fn numbers(&self) -> Numbers {
        Numbers {
            total_requests: self.requests,
            success_requests: self.requests - self.errors,
            error_requests: self.errors,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            cache_creation_tokens: self.cache_creation_tokens,
            cache_read_tokens: self.cache_read_tokens,
            total_cost: self.total_cost,
            actual_total_cost: self.actual_total_cost,
            input_cost: self.input_cost,
            output_cost: self.output_cost,
            cache_creation_cost: self.cache_creation_cost,
            cache_read_cost: self.cache_read_cost,
            avg_response_time_ms: self.mean_response_time(),
            unpriced_requests: self.unpriced,
            response_time_histogram: histogram_of(&self.response_times),
            ..Numbers::default()
        }
    }
}

/// Which columns a table has besides requests, tokens, `total_cost`, unpriced and histogram.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Columns {
    /// `success_requests`, `error_requests`.
    outcome: bool,
    /// `actual_total_cost`.
    actual: bool,
    /// The four costs per token kind.
    kinds: bool,
    /// `avg_response_time_ms`.
    avg: bool,
    /// `fallback_count`, `unique_models`, `unique_providers` (not additive).
    distinct: bool,
}

impl Columns {
    /// These columns without the non-additive ones (what a sum of hours can be checked on).
    pub(crate) fn additive(self) -> Self {
        Self {
            distinct: false,
            ..self
        }
    }
}

/// The hourly and daily tables of behaviour.md 9.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Table {
    Hourly,
    HourlyModel,
    HourlyProvider,
    HourlyUser,
    HourlyApiKey,
    Daily,
    DailyModel,
    UserDaily,
    DailyProvider,
    DailyApiKey,
}

impl Table {
    pub(crate) const ALL: [Table; 10] = [
        Table::Hourly,
        Table::HourlyModel,
        Table::HourlyProvider,
        Table::HourlyUser,
        Table::HourlyApiKey,
        Table::Daily,
        Table::DailyModel,
        Table::UserDaily,
        Table::DailyProvider,
        Table::DailyApiKey,
    ];

    pub(crate) const HOURLY: [Table; 5] = [
        Table::Hourly,
        Table::HourlyModel,
        Table::HourlyProvider,
        Table::HourlyUser,
        Table::HourlyApiKey,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Table::Hourly => "stats_hourly",
            Table::HourlyModel => "stats_hourly_model",
            Table::HourlyProvider => "stats_hourly_provider",
            Table::HourlyUser => "stats_hourly_user",
            Table::HourlyApiKey => "stats_hourly_api_key",
            Table::Daily => "stats_daily",
            Table::DailyModel => "stats_daily_model",
            Table::UserDaily => "stats_user_daily",
            Table::DailyProvider => "stats_daily_provider",
            Table::DailyApiKey => "stats_daily_api_key",
        }
    }

    pub(crate) fn columns(self) -> Columns {
        let slice = Columns {
            outcome: true,
            actual: true,
            kinds: false,
            avg: true,
            distinct: false,
        };
        match self {
            Table::Hourly | Table::Daily => Columns {
                outcome: true,
                actual: true,
                kinds: true,
                avg: true,
                distinct: true,
            },
            Table::DailyModel => Columns {
                outcome: false,
                actual: false,
                ..slice
            },
            Table::UserDaily => Columns {
                actual: false,
                avg: false,
                ..slice
            },
            Table::HourlyModel
            | Table::HourlyProvider
            | Table::HourlyUser
            | Table::HourlyApiKey
            | Table::DailyProvider
            | Table::DailyApiKey => slice,
        }
    }

    /// The daily table whose rows are the sums of this hourly table's rows.
    pub(crate) fn day_table(self) -> Option<Table> {
        match self {
            Table::Hourly => Some(Table::Daily),
            Table::HourlyModel => Some(Table::DailyModel),
            Table::HourlyProvider => Some(Table::DailyProvider),
            Table::HourlyUser => Some(Table::UserDaily),
            Table::HourlyApiKey => Some(Table::DailyApiKey),
            _ => None,
        }
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Rows of one table by `(hour or date, key)`; the key is empty for `stats_hourly` and
/// `stats_daily`.
pub(crate) type Rows = BTreeMap<(OffsetDateTime, String), Numbers>;

/// Rows of every hourly and daily table.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Tables(pub(crate) BTreeMap<Table, Rows>);

impl Tables {
    /// The rows of `table` (none when it has none).
    pub(crate) fn rows(&self, table: Table) -> &Rows {
        static NONE: Rows = BTreeMap::new();
        self.0.get(&table).unwrap_or(&NONE)
    }

    fn insert(&mut self, table: Table, time: OffsetDateTime, key: String, numbers: Numbers) {
        let previous = self
            .0
            .entry(table)
            .or_default()
            .insert((time, key.clone()), numbers);
        assert!(
            previous.is_none(),
            "{table}: two rows for ({time}, {key:?})"
        );
    }

    /// Only the hourly tables' rows of the hours `hours`.
    pub(crate) fn hours_only(&self, hours: &[OffsetDateTime]) -> Tables {
        let mut only = Tables::default();
        for table in Table::HOURLY {
            for ((hour, key), numbers) in self.rows(table) {
                if hours.contains(hour) {
                    only.insert(table, *hour, key.clone(), numbers.clone());
                }
            }
        }
        only
    }
}

/// Requests with more than one executed (`success` or `failed`) row among `candidates`.
fn fallbacks<'a>(candidates: impl Iterator<Item = &'a request_candidates::Model>) -> i64 {
    let mut executed: BTreeMap<&str, usize> = BTreeMap::new();
    for candidate in candidates {
        if matches!(
            candidate.status,
            CandidateStatus::Success | CandidateStatus::Failed
        ) {
            *executed.entry(&candidate.request_id).or_default() += 1;
        }
    }
    executed.values().filter(|&&rows| rows > 1).count() as i64
}

/// The numbers of `rows` with the non-additive columns computed over them and `candidates`.
fn whole<'a>(
    rows: &[&usage::Model],
    candidates: impl Iterator<Item = &'a request_candidates::Model>,
) -> Numbers {
    let sums = sums_by(rows, |_| Some(())).remove(&()).unwrap_or_default();
    let distinct = |field: fn(&usage::Model) -> &str| {
        rows.iter()
            .map(|row| field(row))
            .collect::<BTreeSet<_>>()
            .len() as i64
    };
    Numbers {
        fallback_count: fallbacks(candidates),
        unique_models: distinct(|row| &row.model),
        unique_providers: distinct(|row| &row.provider),
        ..sums.numbers()
    }
}

/// Inserts one row of `table` per group of `rows` by `key`.
fn slices<'a>(
    tables: &mut Tables,
    table: Table,
    time: OffsetDateTime,
    rows: &[&'a usage::Model],
    key: impl Fn(&'a usage::Model) -> Option<String>,
) {
    for (key, sums) in sums_by(rows, key) {
        tables.insert(table, time, key, sums.numbers());
    }
}

fn model_key(row: &usage::Model) -> Option<String> {
    Some(
        row.global_model
            .clone()
            .unwrap_or_else(|| row.model.clone()),
    )
}

/// Every row the hourly and daily tables must hold once the local days `days` of `zone` are
/// aggregated, computed row by row: each usage and candidate row goes to the local hour its
/// `created_at` shows on the zone's wall clock; a day's rows come straight from its raw rows.
pub(crate) fn hourly_oracle(
    data: &Data,
    zone: &TimeZone,
    days: &[(OffsetDateTime, OffsetDateTime)],
) -> Tables {
    let mut tables = Tables::default();
    for &(start, end) in days {
        let hours = local_hours(zone, start, end);
        let rows: Vec<&usage::Model> = data
            .usage
            .iter()
            .filter(|row| in_range(row.created_at, start, end))
            .collect();
        let candidates: Vec<&request_candidates::Model> = data
            .candidates
            .iter()
            .filter(|candidate| in_range(candidate.created_at, start, end))
            .collect();
        for row in &rows {
            let hour = local_hour_start(zone, row.created_at);
            assert!(hours.contains(&hour), "{hour} is not an hour of {start}");
        }
        for &hour in &hours {
            let in_hour: Vec<&usage::Model> = rows
                .iter()
                .copied()
                .filter(|row| local_hour_start(zone, row.created_at) == hour)
                .collect();
            let hour_candidates = candidates
                .iter()
                .copied()
                .filter(|candidate| local_hour_start(zone, candidate.created_at) == hour);
            tables.insert(
                Table::Hourly,
                hour,
                String::new(),
                whole(&in_hour, hour_candidates),
            );
            slices(&mut tables, Table::HourlyModel, hour, &in_hour, model_key);
            slices(&mut tables, Table::HourlyProvider, hour, &in_hour, |row| {
                Some(row.provider.clone())
            });
            slices(&mut tables, Table::HourlyUser, hour, &in_hour, |row| {
                row.user_id.clone()
            });
            slices(&mut tables, Table::HourlyApiKey, hour, &in_hour, |row| {
                row.api_key_id.clone()
            });
        }
        tables.insert(
            Table::Daily,
            start,
            String::new(),
            whole(&rows, candidates.iter().copied()),
        );
        slices(&mut tables, Table::DailyModel, start, &rows, model_key);
        slices(&mut tables, Table::UserDaily, start, &rows, |row| {
            row.user_id.clone()
        });
        slices(&mut tables, Table::DailyProvider, start, &rows, |row| {
            Some(row.provider.clone())
        });
        slices(&mut tables, Table::DailyApiKey, start, &rows, |row| {
            row.api_key_id.clone()
        });
    }
    tables
}

/// The numbers of a stored row of a slice table (hourly model, provider, user; daily
/// provider, client key).
macro_rules! slice_numbers {
    ($row:expr) => {{
        let row = $row;
        Numbers {
            total_requests: row.total_requests.into(),
            success_requests: row.success_requests.into(),
            error_requests: row.error_requests.into(),
            input_tokens: row.input_tokens,
            output_tokens: row.output_tokens,
            cache_creation_tokens: row.cache_creation_tokens,
            cache_read_tokens: row.cache_read_tokens,
            total_cost: row.total_cost,
            actual_total_cost: row.actual_total_cost,
            avg_response_time_ms: row.avg_response_time_ms,
            unpriced_requests: row.unpriced_requests.into(),
            response_time_histogram: row.response_time_histogram.clone().map(|counts| counts.0),
            ..Numbers::default()
        }
    }};
}

/// The numbers of a stored `stats_hourly` or `stats_daily` row.
macro_rules! bucket_numbers {
    ($row:expr) => {{
        let row = $row;
        Numbers {
            input_cost: row.input_cost,
            output_cost: row.output_cost,
            cache_creation_cost: row.cache_creation_cost,
            cache_read_cost: row.cache_read_cost,
            fallback_count: row.fallback_count.into(),
            unique_models: row.unique_models.into(),
            unique_providers: row.unique_providers.into(),
            ..slice_numbers!(row)
        }
    }};
}

/// Every row of every hourly and daily table, read back through the entities.
pub(crate) async fn stored_tables(db: &DatabaseConnection) -> Tables {
    let mut tables = Tables::default();
    for row in all::<stats_hourly::Entity>(db).await {
        tables.insert(
            Table::Hourly,
            row.hour,
            String::new(),
            bucket_numbers!(&row),
        );
    }
    for row in all::<stats_daily::Entity>(db).await {
        tables.insert(Table::Daily, row.date, String::new(), bucket_numbers!(&row));
    }
    for row in all::<stats_hourly_model::Entity>(db).await {
        let numbers = slice_numbers!(&row);
        tables.insert(Table::HourlyModel, row.hour, row.model, numbers);
    }
    for row in all::<stats_hourly_provider::Entity>(db).await {
        let numbers = slice_numbers!(&row);
        tables.insert(Table::HourlyProvider, row.hour, row.provider, numbers);
    }
    for row in all::<stats_hourly_user::Entity>(db).await {
        let numbers = slice_numbers!(&row);
        tables.insert(Table::HourlyUser, row.hour, row.user_id, numbers);
    }
    for row in all::<stats_hourly_api_key::Entity>(db).await {
        let numbers = slice_numbers!(&row);
        tables.insert(Table::HourlyApiKey, row.hour, row.api_key_id, numbers);
    }
    for row in all::<stats_daily_provider::Entity>(db).await {
        let numbers = slice_numbers!(&row);
        tables.insert(Table::DailyProvider, row.date, row.provider, numbers);
    }
    for row in all::<stats_daily_api_key::Entity>(db).await {
        let numbers = slice_numbers!(&row);
        tables.insert(Table::DailyApiKey, row.date, row.api_key_id, numbers);
    }
    for row in all::<stats_daily_model::Entity>(db).await {
        let numbers = Numbers {
            total_requests: row.total_requests.into(),
            input_tokens: row.input_tokens,
            output_tokens: row.output_tokens,
            cache_creation_tokens: row.cache_creation_tokens,
            cache_read_tokens: row.cache_read_tokens,
            total_cost: row.total_cost,
            avg_response_time_ms: row.avg_response_time_ms,
            unpriced_requests: row.unpriced_requests.into(),
            response_time_histogram: row.response_time_histogram.map(|counts| counts.0),
            ..Numbers::default()
        };
        tables.insert(Table::DailyModel, row.date, row.model, numbers);
    }
    for row in all::<stats_user_daily::Entity>(db).await {
        let numbers = Numbers {
            total_requests: row.total_requests.into(),
            success_requests: row.success_requests.into(),
            error_requests: row.error_requests.into(),
            input_tokens: row.input_tokens,
            output_tokens: row.output_tokens,
            cache_creation_tokens: row.cache_creation_tokens,
            cache_read_tokens: row.cache_read_tokens,
            total_cost: row.total_cost,
            unpriced_requests: row.unpriced_requests.into(),
            response_time_histogram: row.response_time_histogram.map(|counts| counts.0),
            ..Numbers::default()
        };
        tables.insert(Table::UserDaily, row.date, row.user_id, numbers);
    }
    tables
}

/// `actual` is within 1e-9 of `expected`, relative to the larger of the two.
pub(crate) fn close_relative(actual: f64, expected: f64, what: &str) {
    let tolerance = 1e-9 * actual.abs().max(expected.abs());
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: got {actual}, expected {expected} (1e-9 relative)"
    );
}

/// Asserts that `actual` and `expected` agree on every column `columns` names: counts,
/// tokens, unpriced and the histogram exactly, money and means to 1e-9 relative.
pub(crate) fn assert_numbers(actual: &Numbers, expected: &Numbers, columns: Columns, what: &str) {
    let mut exact = vec![
        (
            "total_requests",
            actual.total_requests,
            expected.total_requests,
        ),
        ("input_tokens", actual.input_tokens, expected.input_tokens),
        (
            "output_tokens",
            actual.output_tokens,
            expected.output_tokens,
        ),
        (
            "cache_creation_tokens",
            actual.cache_creation_tokens,
            expected.cache_creation_tokens,
        ),
        (
            "cache_read_tokens",
            actual.cache_read_tokens,
            expected.cache_read_tokens,
        ),
        (
            "unpriced_requests",
            actual.unpriced_requests,
            expected.unpriced_requests,
        ),
    ];
    if columns.outcome {
        exact.push((
            "success_requests",
            actual.success_requests,
            expected.success_requests,
        ));
        exact.push((
            "error_requests",
            actual.error_requests,
            expected.error_requests,
        ));
    }
    if columns.distinct {
        exact.push((
            "fallback_count",
            actual.fallback_count,
            expected.fallback_count,
        ));
        exact.push((
            "unique_models",
            actual.unique_models,
            expected.unique_models,
        ));
        exact.push((
            "unique_providers",
            actual.unique_providers,
            expected.unique_providers,
        ));
    }
    for (column, got, want) in exact {
        assert_eq!(got, want, "{what}: {column}");
    }
    assert_eq!(
        actual.response_time_histogram, expected.response_time_histogram,
        "{what}: response_time_histogram"
    );
    let mut near = vec![("total_cost", actual.total_cost, expected.total_cost)];
    if columns.actual {
        near.push((
            "actual_total_cost",
            actual.actual_total_cost,
            expected.actual_total_cost,
        ));
    }
    if columns.kinds {
        near.extend([
            ("input_cost", actual.input_cost, expected.input_cost),
            ("output_cost", actual.output_cost, expected.output_cost),
            (
                "cache_creation_cost",
                actual.cache_creation_cost,
                expected.cache_creation_cost,
            ),
            (
                "cache_read_cost",
                actual.cache_read_cost,
                expected.cache_read_cost,
            ),
        ]);
    }
    if columns.avg {
        near.push((
            "avg_response_time_ms",
            actual.avg_response_time_ms,
            expected.avg_response_time_ms,
        ));
    }
    for (column, got, want) in near {
        close_relative(got, want, &format!("{what}: {column}"));
    }
}

/// Asserts that `tables` of `actual` hold exactly the rows of `expected` (no row missing,
/// none extra) with equal numbers; a failure names the table, the row and the column.
pub(crate) fn assert_tables(actual: &Tables, expected: &Tables, tables: &[Table], what: &str) {
    for &table in tables {
        let (got, want) = (actual.rows(table), expected.rows(table));
        let missing: Vec<_> = want.keys().filter(|key| !got.contains_key(key)).collect();
        let extra: Vec<_> = got.keys().filter(|key| !want.contains_key(key)).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{what}: {table}: rows missing {missing:?}, rows not expected {extra:?}"
        );
        for ((time, key), numbers) in want {
            assert_numbers(
                &got[&(*time, key.clone())],
                numbers,
                table.columns(),
                &format!("{what}: {table} at {time} {key:?}"),
            );
        }
    }
}

/// Asserts that two reads of the tables hold the same rows with bit-identical numbers.
pub(crate) fn assert_identical(actual: &Tables, expected: &Tables, what: &str) {
    for table in Table::ALL {
        let (got, want) = (actual.rows(table), expected.rows(table));
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{what}: {table}: row keys"
        );
        for (key, numbers) in want {
            assert_eq!(&got[key], numbers, "{what}: {table} at {key:?}");
        }
    }
}
