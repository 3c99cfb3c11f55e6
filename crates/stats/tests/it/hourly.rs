//! Hourly and dimension rollups (behaviour.md 9, issue 13): every stored hourly row and the
//! per-provider and per-key days equal an independent computation in UTC, across both DST
//! changes of Europe/Berlin and in Asia/Kolkata; days are the sums of their stored hours;
//! percentiles from merged histograms; re-runs and two aggregators at once; late rows; and
//! slice rows whose traffic disappeared.

use std::collections::BTreeMap;
use std::sync::Arc;

use sea_orm::{
    ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, EntityTrait,
    QueryFilter,
};
use time::macros::{date, datetime};
use time::{Date, Duration, OffsetDateTime};
use tollgate_entities::{UsageStatus, usage};
use tollgate_stats::{
    Aggregator, BusinessCalendar, BusinessDay, BusinessHour, FixedClock, HoursReport,
    ResponseTimeHistogram,
};
use tollgate_testkit::{TestDb, db_test, fixtures};

use crate::support::{self, Data, Numbers, Rng, Table, Tables};

/// Both of Europe/Berlin's DST changes of 2026: a 23-hour and a 25-hour day.
const BERLIN_DST_DAYS: [Date; 2] = [date!(2026 - 03 - 29), date!(2026 - 10 - 25)];

/// Index of the local hour that gets no traffic in every scenario day.
const QUIET_HOUR: usize = 4;
/// Index of the local hour whose start a request's two executed attempts straddle.
const STRADDLED_HOUR: usize = 7;

/// One database with hourly traffic on some local days of a zone, and an aggregator on it
/// whose clock stands an hour after the last day.
struct Scenario {
    zone: jiff::tz::TimeZone,
    calendar: BusinessCalendar,
    days: Vec<BusinessDay>,
    /// Each day as the UTC range between its local midnights, computed with jiff.
    ranges: Vec<(OffsetDateTime, OffsetDateTime)>,
    data: Data,
    keys: Vec<String>,
    clock: Arc<FixedClock>,
    stats: Aggregator,
}

impl Scenario {
    async fn new(
        conn: &DatabaseConnection,
        zone_name: &str,
        dates: &[Date],
        seed: u64,
        per_hour: usize,
    ) -> Self {
        let zone = support::zone(zone_name);
        let calendar = BusinessCalendar::new(zone_name).unwrap();
        let mut rng = Rng(seed);
        // Five active users and two inactive ones; the last has no traffic.
        let users = support::users("hourly", 5, 2);
        let keys = support::api_keys_for(&users[..4]);
        let mut data = Data {
            users: users.clone(),
            ..Data::default()
        };
        let mut days = Vec::new();
        let mut ranges = Vec::new();
        for &date in dates {
            let day = calendar.day(date).unwrap();
            let range = support::local_day(&zone, date);
            assert_eq!(
                (day.start(), day.end()),
                range,
                "{zone_name} {date}: the business day runs from local midnight to local midnight"
            );
            data.extend(support::hourly_traffic(
                &mut rng,
                &zone,
                range,
                &users[..6],
                &keys,
                per_hour,
                &[QUIET_HOUR],
                STRADDLED_HOUR,
            ));
            days.push(day);
            ranges.push(range);
        }
        for user in &data.users {
            fixtures::insert(conn, user.clone()).await;
        }
        for key in &keys {
            fixtures::insert(conn, key.clone()).await;
        }
        support::insert_usage(conn, &data.usage).await;
        support::insert_candidates(conn, &data.candidates).await;
        let last = ranges.iter().map(|range| range.1).max().unwrap();
        let clock = Arc::new(FixedClock::new(last + Duration::hours(1)));
        let stats = Aggregator::new(conn.clone(), calendar.clone()).with_clock(clock.clone());
        Scenario {
            zone,
            calendar,
            days,
            ranges,
            data,
            keys: keys.into_iter().map(|key| key.id).collect(),
            clock,
            stats,
        }
    }

    /// Aggregates every day of the scenario.
    async fn aggregate(&self) {
        for day in &self.days {
            self.stats.aggregate_day(day).await.unwrap();
        }
    }

    /// What the tables must hold once every day is aggregated.
    fn oracle(&self) -> Tables {
        support::hourly_oracle(&self.data, &self.zone, &self.ranges)
    }

    /// The local hour starts of day `index`.
    fn hours(&self, index: usize) -> Vec<OffsetDateTime> {
        let (start, end) = self.ranges[index];
        support::local_hours(&self.zone, start, end)
    }

    /// The crate's bucket for the hour starting at `start` of day `index`.
    fn business_hour(&self, index: usize, start: OffsetDateTime) -> BusinessHour {
        let hour = self
            .calendar
            .hours_of(&self.days[index])
            .into_iter()
            .find(|hour| hour.start() == start)
            .unwrap_or_else(|| panic!("no business hour starts at {start}"));
        assert_eq!(
            hour.end(),
            start + Duration::HOUR,
            "the business hour at {start} lasts an hour"
        );
        hour
    }

    /// Deletes the usage rows `doomed` picks, from the database and from the oracle's data;
    /// returns how many.
    async fn delete_usage(
        &mut self,
        conn: &DatabaseConnection,
        doomed: impl Fn(&usage::Model) -> bool,
    ) -> usize {
        let ids: Vec<String> = self
            .data
            .usage
            .iter()
            .filter(|row| doomed(row))
            .map(|row| row.id.clone())
            .collect();
        for chunk in ids.chunks(500) {
            usage::Entity::delete_many()
                .filter(usage::Column::Id.is_in(chunk.to_vec()))
                .exec(conn)
                .await
                .unwrap();
        }
        self.data.usage.retain(|row| !doomed(row));
        ids.len()
    }
}

fn model_key(row: &usage::Model) -> String {
    row.global_model
        .clone()
        .unwrap_or_else(|| row.model.clone())
}

/// The keys of `table`'s rows at `time`.
fn keys_at(tables: &Tables, table: Table, time: OffsetDateTime) -> Vec<String> {
    tables
        .rows(table)
        .keys()
        .filter(|(at, _)| *at == time)
        .map(|(_, key)| key.clone())
        .collect()
}

/// Test 1: one zone's days, aggregated, equal the oracle row by row in all ten tables,
/// with `hours` local hours per day starting at `minute` past a UTC hour.
async fn check_against_the_oracle(db: &TestDb, zone: &str, days: &[(Date, usize)], minute: u8) {
    let dates: Vec<Date> = days.iter().map(|(date, _)| *date).collect();
    let scenario = Scenario::new(&db.conn, zone, &dates, 13, 6).await;
    let what = format!("{zone} ({:?})", db.db_backend());
    for (day, &(date, hours)) in scenario.days.iter().zip(days) {
        let aggregate = scenario.stats.aggregate_day(day).await.unwrap();
        assert_eq!(
            aggregate.hours.len(),
            hours,
            "{what} {date}: hours returned by aggregate_day"
        );
    }
    let expected = scenario.oracle();
    let stored = support::stored_tables(&db.conn).await;

    let mut all_hours = 0;
    for (index, &(date, hours)) in days.iter().enumerate() {
        let (start, end) = scenario.ranges[index];
        let local = scenario.hours(index);
        assert_eq!(local.len(), hours, "{what} {date}: local hours of the day");
        assert!(
            local
                .iter()
                .all(|hour| hour.minute() == minute && hour.second() == 0),
            "{what} {date}: local hours start at {minute} past a UTC hour: {local:?}"
        );
        let stored_hours: Vec<OffsetDateTime> = stored
            .rows(Table::Hourly)
            .keys()
            .map(|(hour, _)| *hour)
            .filter(|hour| start <= *hour && *hour < end)
            .collect();
        assert_eq!(
            stored_hours, local,
            "{what} {date}: one stats_hourly row per local hour"
        );
        all_hours += hours;
        let quiet = local[QUIET_HOUR];
        assert_eq!(
            stored.rows(Table::Hourly)[&(quiet, String::new())],
            Numbers::default(),
            "{what} {date}: the hour without traffic is a zero stats_hourly row"
        );
        for table in [Table::HourlyModel, Table::HourlyProvider, Table::HourlyUser] {
            assert_eq!(
                keys_at(&stored, table, quiet),
                Vec::<String>::new(),
                "{what} {date}: {table} rows for the hour without traffic"
            );
        }

        // The data exercises what the rollups must get right.
        let day = &expected.rows(Table::Daily)[&(start, String::new())];
        let hour_fallbacks: i64 = expected
            .rows(Table::Hourly)
            .iter()
            .filter(|((hour, _), _)| start <= *hour && *hour < end)
            .map(|(_, numbers)| numbers.fallback_count)
            .sum();
        assert!(
            hour_fallbacks > 0 && day.fallback_count > hour_fallbacks,
            "{what} {date}: fallbacks inside hours ({hour_fallbacks}) and one straddling an \
             hour (day: {})",
            day.fallback_count
        );
        assert!(
            day.error_requests > 0
                && day.unpriced_requests > 0
                && day.unpriced_requests < day.success_requests,
            "{what} {date}: errors, unpriced and priced rows: {day:?}"
        );
        assert!(
            day.timed() < u64::try_from(day.total_requests).unwrap(),
            "{what} {date}: rows without a response time"
        );
        let rows: Vec<&usage::Model> = scenario
            .data
            .usage
            .iter()
            .filter(|row| start <= row.created_at && row.created_at < end)
            .collect();
        assert!(
            rows.iter().any(|row| row.global_model.is_none())
                && rows.iter().any(|row| row.global_model.is_some()),
            "{what} {date}: rows with and without a global model"
        );
        assert!(
            keys_at(&expected, Table::DailyProvider, start).len() >= 4
                && keys_at(&expected, Table::DailyApiKey, start).len() == 4
                && keys_at(&expected, Table::UserDaily, start).len() == 6,
            "{what} {date}: several providers, client keys and users"
        );
    }
    assert_eq!(
        stored.rows(Table::Hourly).len(),
        all_hours,
        "{what}: stats_hourly rows outside the aggregated days"
    );
    support::assert_tables(&stored, &expected, &Table::ALL, &what);
}

db_test!(async fn hours_match_the_oracle_in_utc(db) {
    check_against_the_oracle(db, "UTC", &[(date!(2026 - 06 - 01), 24)], 0).await;
});

db_test!(async fn hours_match_the_oracle_across_both_berlin_dst_changes(db) {
    let days = [(date!(2026 - 03 - 29), 23), (date!(2026 - 10 - 25), 25)];
    check_against_the_oracle(db, "Europe/Berlin", &days, 0).await;
});

db_test!(async fn hours_match_the_oracle_in_kolkata(db) {
    check_against_the_oracle(db, "Asia/Kolkata", &[(date!(2026 - 06 - 01), 24)], 30).await;
});

/// The sum of stored hour rows: counts, tokens, money and histograms added, the mean
/// response time weighted by each row's count of response times.
fn sum_of(rows: &[&Numbers]) -> Numbers {
    let mut sum = Numbers::default();
    let mut counts: Vec<u64> = Vec::new();
    let (mut weighted, mut timed) = (0.0, 0_u64);
    for row in rows {
        sum.total_requests += row.total_requests;
        sum.success_requests += row.success_requests;
        sum.error_requests += row.error_requests;
        sum.input_tokens += row.input_tokens;
        sum.output_tokens += row.output_tokens;
        sum.cache_creation_tokens += row.cache_creation_tokens;
        sum.cache_read_tokens += row.cache_read_tokens;
        sum.total_cost += row.total_cost;
        sum.actual_total_cost += row.actual_total_cost;
        sum.input_cost += row.input_cost;
        sum.output_cost += row.output_cost;
        sum.cache_creation_cost += row.cache_creation_cost;
        sum.cache_read_cost += row.cache_read_cost;
        sum.unpriced_requests += row.unpriced_requests;
        for (bucket, count) in row.response_time_histogram.iter().flatten().enumerate() {
            if counts.len() <= bucket {
                counts.resize(bucket + 1, 0);
            }
            counts[bucket] += count;
        }
        weighted += row.avg_response_time_ms * row.timed() as f64;
        timed += row.timed();
    }
    sum.avg_response_time_ms = if timed == 0 {
        0.0
    } else {
        weighted / timed as f64
    };
    sum.response_time_histogram = (!counts.is_empty()).then_some(counts);
    sum
}

/// A column of [`Numbers`] by name.
type NamedColumn = (&'static str, fn(&Numbers) -> i64);

/// Test 2 on one scenario: every stored day row of the four tables with an hourly
/// counterpart is the sum of that counterpart's stored rows of the day's hours, key by key.
async fn check_days_are_sums(scenario: &Scenario, conn: &DatabaseConnection) {
    let what = format!(
        "{} ({:?})",
        scenario.calendar.zone_name(),
        conn.get_database_backend()
    );
    let stored = support::stored_tables(conn).await;
    for (day, &(start, end)) in scenario.days.iter().zip(&scenario.ranges) {
        for hourly in Table::HOURLY {
            let daily = hourly.day_table().unwrap();
            let mut hours: BTreeMap<String, Vec<Numbers>> = BTreeMap::new();
            for ((hour, key), numbers) in stored.rows(hourly) {
                if start <= *hour && *hour < end {
                    hours.entry(key.clone()).or_default().push(numbers.clone());
                }
            }
            let days: BTreeMap<String, Numbers> = stored
                .rows(daily)
                .iter()
                .filter(|((date, _), _)| *date == start)
                .map(|((_, key), numbers)| (key.clone(), numbers.clone()))
                .collect();
            assert_eq!(
                days.keys().collect::<Vec<_>>(),
                hours.keys().collect::<Vec<_>>(),
                "{what} {day}: {daily} has a row for exactly the keys {hourly} has in the day"
            );
            for (key, rows) in &hours {
                let sum = sum_of(&rows.iter().collect::<Vec<_>>());
                support::assert_numbers(
                    &days[key],
                    &sum,
                    daily.columns().additive(),
                    &format!("{what} {day}: {daily} {key:?} against the sum of {hourly}"),
                );
            }
        }
        // Distinct counts and fallbacks are the whole day's, not sums.
        let day_row = &stored.rows(Table::Daily)[&(start, String::new())];
        let hours: Vec<&Numbers> = stored
            .rows(Table::Hourly)
            .iter()
            .filter(|((hour, _), _)| start <= *hour && *hour < end)
            .map(|(_, numbers)| numbers)
            .collect();
        let most = |field: fn(&Numbers) -> i64| hours.iter().map(|n| field(n)).max().unwrap();
        let total = |field: fn(&Numbers) -> i64| hours.iter().map(|n| field(n)).sum::<i64>();
        let distinct: [NamedColumn; 2] = [
            ("unique_models", |numbers| numbers.unique_models),
            ("unique_providers", |numbers| numbers.unique_providers),
        ];
        for (column, field) in distinct {
            assert!(
                most(field) <= field(day_row) && field(day_row) < total(field),
                "{what} {day}: stats_daily {column} {} is the day's distinct count, not the \
                 sum {} of its hours",
                field(day_row),
                total(field)
            );
        }
        assert!(
            day_row.fallback_count > total(|numbers| numbers.fallback_count),
            "{what} {day}: stats_daily fallback_count {} counts the request whose attempts \
             straddle an hour, which no hour counts (hours: {})",
            day_row.fallback_count,
            total(|numbers| numbers.fallback_count)
        );
    }
}

db_test!(async fn days_are_the_sums_of_their_stored_hours(db) {
    let berlin = Scenario::new(&db.conn, "Europe/Berlin", &BERLIN_DST_DAYS, 17, 6).await;
    berlin.aggregate().await;
    check_days_are_sums(&berlin, &db.conn).await;

    let fresh = TestDb::new(db.backend()).await;
    let kolkata = Scenario::new(&fresh.conn, "Asia/Kolkata", &[date!(2026 - 06 - 01)], 19, 6).await;
    kolkata.aggregate().await;
    check_days_are_sums(&kolkata, &fresh.conn).await;
});

/// Stored histogram counts as the crate's histogram.
fn histogram(numbers: &Numbers) -> ResponseTimeHistogram {
    ResponseTimeHistogram::from_counts(numbers.response_time_histogram.as_deref())
}

/// The stored rows of `table` in `[start, end)` with key `key`, merged.
fn merged(
    tables: &Tables,
    table: Table,
    start: OffsetDateTime,
    end: OffsetDateTime,
    key: &str,
) -> ResponseTimeHistogram {
    let mut merged = ResponseTimeHistogram::new();
    for ((time, row_key), numbers) in tables.rows(table) {
        if start <= *time && *time < end && row_key == key {
            merged.merge(&histogram(numbers));
        }
    }
    merged
}

/// p50, p90 and p99 of `histogram` lie within one bucket of the bucket of the exact
/// nearest-rank percentiles of `times`.
fn assert_percentiles(histogram: &ResponseTimeHistogram, times: &[i64], what: &str) {
    assert_eq!(
        histogram.total(),
        times.len() as u64,
        "{what}: response times in the histogram"
    );
    for (percent, q) in [(50, 0.5), (90, 0.9), (99, 0.99)] {
        let exact = support::nearest_rank(times, percent);
        let want = support::bucket(exact);
        let got = histogram
            .quantile_bucket(q)
            .unwrap_or_else(|| panic!("{what}: no p{percent} from {} times", times.len()));
        assert!(
            got.abs_diff(want) <= 1,
            "{what}: p{percent} from the histogram is in bucket {got}, the exact p{percent} \
             {exact} ms in bucket {want}"
        );
    }
}

db_test!(async fn percentiles_from_merged_histograms_are_within_one_bucket(db) {
    let scenario = Scenario::new(&db.conn, "Europe/Berlin", &[date!(2026 - 10 - 25)], 23, 20).await;
    scenario.aggregate().await;
    let what = format!("Europe/Berlin 2026-10-25 ({:?})", db.db_backend());
    let stored = support::stored_tables(&db.conn).await;
    let (start, end) = scenario.ranges[0];
    let timed = |from: OffsetDateTime, to: OffsetDateTime, keep: &dyn Fn(&usage::Model) -> bool| {
        scenario
            .data
            .usage
            .iter()
            .filter(|row| from <= row.created_at && row.created_at < to && keep(row))
            .filter_map(|row| row.response_time_ms.map(i64::from))
            .collect::<Vec<_>>()
    };

    let everything = |_: &usage::Model| true;
    let day_times = timed(start, end, &everything);
    assert!(day_times.len() > 300, "{what}: enough response times ({})", day_times.len());
    let hours = merged(&stored, Table::Hourly, start, end, "");
    assert_percentiles(&hours, &day_times, &format!("{what}: day from stats_hourly"));
    let day = histogram(&stored.rows(Table::Daily)[&(start, String::new())]);
    assert_percentiles(&day, &day_times, &format!("{what}: stats_daily"));

    // The first six hours, across the repeated hour of the change.
    let local = scenario.hours(0);
    let (from, to) = (local[0], local[6]);
    let six = merged(&stored, Table::Hourly, from, to, "");
    assert_percentiles(&six, &timed(from, to, &everything), &format!("{what}: hours 0-5"));

    let expected = scenario.oracle();
    let models = expected.rows(Table::DailyModel);
    assert!(models.len() >= 4, "{what}: several models");
    for (_, model) in models.keys() {
        let times = timed(start, end, &|row| model_key(row) == *model);
        if times.is_empty() {
            continue;
        }
        let hours = merged(&stored, Table::HourlyModel, start, end, model);
        assert_percentiles(&hours, &times, &format!("{what}: model {model} from stats_hourly_model"));
        let day = histogram(&stored.rows(Table::DailyModel)[&(start, model.clone())]);
        assert_percentiles(&day, &times, &format!("{what}: model {model} from stats_daily_model"));
    }
});

db_test!(async fn a_second_run_and_two_aggregators_at_once_leave_identical_rows(db) {
    let scenario = Scenario::new(&db.conn, "Europe/Berlin", &BERLIN_DST_DAYS, 29, 4).await;
    let what = format!("{:?}", db.db_backend());
    scenario.aggregate().await;
    let first = support::stored_tables(&db.conn).await;
    support::assert_tables(&first, &scenario.oracle(), &Table::ALL, &format!("{what}: first run"));

    scenario.clock.set(datetime!(2026-10-27 09:00 UTC));
    scenario.aggregate().await;
    support::assert_identical(
        &support::stored_tables(&db.conn).await,
        &first,
        &format!("{what}: aggregate_day again"),
    );
    scenario.clock.set(datetime!(2026-10-27 10:00 UTC));
    scenario
        .stats
        .aggregate_hours(&scenario.calendar.hours_of(&scenario.days[1]))
        .await
        .unwrap();
    support::assert_identical(
        &support::stored_tables(&db.conn).await,
        &first,
        &format!("{what}: aggregate_hours over a day already aggregated"),
    );

    // Two aggregators, each with its own pool and clock, from empty tables.
    for table in Table::ALL {
        db.conn
            .execute_unprepared(&format!("DELETE FROM {table}"))
            .await
            .unwrap();
    }
    let mut handles = Vec::new();
    for worker in 0..2_i64 {
        let mut options = ConnectOptions::new(db.url().to_owned());
        options.max_connections(3).sqlx_logging(false);
        let conn = Database::connect(options).await.unwrap();
        let clock = Arc::new(FixedClock::new(
            datetime!(2026-10-28 00:00 UTC) + Duration::minutes(worker),
        ));
        let stats = Aggregator::new(conn, scenario.calendar.clone()).with_clock(clock);
        let days = scenario.days.clone();
        handles.push(tokio::spawn(async move {
            for _ in 0..3 {
                for day in &days {
                    stats.aggregate_day(day).await?;
                }
                let hours = stats.calendar().hours_of(&days[0]);
                stats.aggregate_hours(&hours[5..12]).await?;
            }
            Ok::<_, tollgate_stats::StatsError>(())
        }));
    }
    for (worker, handle) in handles.into_iter().enumerate() {
        handle
            .await
            .unwrap()
            .unwrap_or_else(|error| panic!("{what}: aggregator {worker} failed: {error}"));
    }
    support::assert_identical(
        &support::stored_tables(&db.conn).await,
        &first,
        &format!("{what}: two aggregators at once"),
    );
});

/// A database with a few rows in the Kolkata hour 16:00-17:00 (10:30-11:30 UTC) of
/// 2026-06-01 and in the hour after, that hour aggregated 2 minutes after it ended.
struct LateScenario {
    zone: jiff::tz::TimeZone,
    calendar: BusinessCalendar,
    day: BusinessDay,
    hour: BusinessHour,
    data: Data,
    clock: Arc<FixedClock>,
    stats: Aggregator,
}

impl LateScenario {
    async fn new(conn: &DatabaseConnection) -> Self {
        let zone = support::zone("Asia/Kolkata");
        let calendar = BusinessCalendar::new("Asia/Kolkata").unwrap();
        let day = calendar.day(date!(2026 - 06 - 01)).unwrap();
        let hour = calendar
            .hour_containing(datetime!(2026-06-01 10:45 UTC))
            .unwrap();
        assert_eq!(
            (hour.start(), hour.end()),
            (
                datetime!(2026-06-01 10:30 UTC),
                datetime!(2026-06-01 11:30 UTC)
            ),
            "the Kolkata hour 16:00-17:00"
        );
        assert_eq!(
            support::local_hour_start(&zone, datetime!(2026-06-01 10:45 UTC)),
            hour.start(),
            "the crate's hour is the local hour jiff gives"
        );
        let mut rng = Rng(31);
        let mut data = Data {
            users: support::users("late", 2, 0),
            ..Data::default()
        };
        for offset in [0, 7, 19, 33, 59] {
            let at = hour.start() + Duration::minutes(offset);
            let row = support::hourly_row(&mut rng, &data.users, &[], at);
            data.usage.push(row);
        }
        for offset in [1, 45] {
            let at = hour.end() + Duration::minutes(offset);
            let row = support::hourly_row(&mut rng, &data.users, &[], at);
            data.usage.push(row);
        }
        data.insert(conn).await;
        let clock = Arc::new(FixedClock::new(hour.end() + Duration::minutes(2)));
        let stats = Aggregator::new(conn.clone(), calendar.clone()).with_clock(clock.clone());
        let aggregated = stats.aggregate_hours(&[hour]).await.unwrap();
        assert_eq!(
            aggregated[0].stats.total_requests, 5,
            "the hour's rows when it was first aggregated"
        );
        LateScenario {
            zone,
            calendar,
            day,
            hour,
            data,
            clock,
            stats,
        }
    }

    /// A stream that started 5 minutes into the hour and lasted 50 minutes, written when it
    /// ended.
    async fn insert_late_row(&mut self, conn: &DatabaseConnection) {
        let mut rng = Rng(37);
        let started = self.hour.start() + Duration::minutes(5);
        let mut row = support::hourly_row(&mut rng, &self.data.users, &[], started);
        row.model = "late-model".to_owned();
        row.global_model = None;
        row.is_stream = true;
        row.status = UsageStatus::Completed;
        row.status_code = Some(200);
        row.error_message = None;
        row.response_time_ms = Some(3_000_000);
        support::insert_usage(conn, std::slice::from_ref(&row)).await;
        self.data.usage.push(row);
    }

    /// What the hourly tables must hold for `hours`, from the data as it is now.
    fn expected(&self, hours: &[OffsetDateTime]) -> Tables {
        support::hourly_oracle(
            &self.data,
            &self.zone,
            &[(self.day.start(), self.day.end())],
        )
        .hours_only(hours)
    }

    /// Inserts the late row, moves the clock `later` past the hour's end and closes the last
    /// three hours. Asserts that those start at `first` and the two hours after it, and that
    /// the late row's hour then counts `requests` (`why`); returns the report, the starts of
    /// the closed hours and the stored tables.
    async fn insert_late_row_and_close(
        &mut self,
        conn: &DatabaseConnection,
        later: Duration,
        first: OffsetDateTime,
        requests: i64,
        why: &str,
    ) -> (HoursReport, Vec<OffsetDateTime>, Tables) {
        self.insert_late_row(conn).await;
        let now = self.hour.end() + later;
        self.clock.set(now);
        let report = self.stats.close_hours(3).await.unwrap();
        let closed: Vec<OffsetDateTime> = report.hours.iter().map(BusinessHour::start).collect();
        assert_eq!(
            closed,
            [
                first,
                first + Duration::hours(1),
                first + Duration::hours(2)
            ],
            "{why}: close_hours(3) at {now}"
        );
        let stored = support::stored_tables(conn).await;
        assert_eq!(self.requests_of_the_hour(&stored), requests, "{why}");
        (report, closed, stored)
    }

    fn requests_of_the_hour(&self, tables: &Tables) -> i64 {
        tables.rows(Table::Hourly)[&(self.hour.start(), String::new())].total_requests
    }
}

db_test!(async fn a_late_row_counts_once_close_hours_covers_its_hour_again(db) {
    let what = format!("{:?}", db.db_backend());
    let mut late = LateScenario::new(&db.conn).await;
    // Two hours later (13:32 UTC) the last three closed hours, the three Kolkata hours
    // before, still include the late row's hour.
    let why = format!("{what}: the hour counts the row that arrived after it was first aggregated");
    let later = Duration::hours(2) + Duration::minutes(2);
    let (report, closed, stored) = late.insert_late_row_and_close(&db.conn, later, datetime!(2026-06-01 10:30 UTC), 6, &why).await;
    assert!(
        keys_at(&stored, Table::HourlyModel, late.hour.start()).contains(&"late-model".to_owned()),
        "{what}: the late row's model has its stats_hourly_model row"
    );
    support::assert_tables(&stored, &late.expected(&closed), &Table::ALL, &what);
    assert_eq!(report.requests, 6 + 2, "{what}: requests in the closed hours");
});

db_test!(async fn a_row_arriving_after_its_hour_left_the_window_waits_for_reaggregation(db) {
    let what = format!("{:?}", db.db_backend());
    let mut late = LateScenario::new(&db.conn).await;
    let before = late.expected(&[late.hour.start()]);
    // Three and a half hours later (15:02 UTC) the hour is no longer among the last three.
    let why = format!("{what}: a row that arrived after its hour left the window is not counted yet");
    let later = Duration::hours(3) + Duration::minutes(32);
    let (_, closed, stored) = late.insert_late_row_and_close(&db.conn, later, datetime!(2026-06-01 11:30 UTC), 5, &why).await;
    support::assert_tables(
        &stored.hours_only(&[late.hour.start()]),
        &before,
        &Table::HOURLY,
        &format!("{what}: the hour as first aggregated"),
    );
    support::assert_tables(
        &stored.hours_only(&closed),
        &late.expected(&closed),
        &Table::HOURLY,
        &format!("{what}: the closed hours"),
    );

    // Aggregating the hour again counts it; so does aggregating its day.
    late.stats.aggregate_hours(&[late.hour]).await.unwrap();
    let stored = support::stored_tables(&db.conn).await;
    assert_eq!(late.requests_of_the_hour(&stored), 6, "{what}: the hour aggregated again");
    support::assert_tables(
        &stored.hours_only(&[late.hour.start()]),
        &late.expected(&[late.hour.start()]),
        &Table::HOURLY,
        &format!("{what}: the hour aggregated again"),
    );
    late.clock.set(late.day.end() + Duration::hours(1));
    late.stats.aggregate_day(&late.day).await.unwrap();
    let expected = support::hourly_oracle(&late.data, &late.zone, &[(late.day.start(), late.day.end())]);
    assert_eq!(
        late.calendar.hours_of(&late.day).len(),
        24,
        "{what}: Kolkata days have 24 hours"
    );
    support::assert_tables(
        &support::stored_tables(&db.conn).await,
        &expected,
        &Table::ALL,
        &format!("{what}: the day aggregated"),
    );
});

db_test!(async fn slice_rows_whose_traffic_disappeared_are_removed(db) {
    let what = format!("{:?}", db.db_backend());
    let mut scenario = Scenario::new(&db.conn, "Europe/Berlin", &[date!(2026 - 10 - 25)], 41, 6).await;
    scenario.aggregate().await;
    let before = support::stored_tables(&db.conn).await;
    let local = scenario.hours(0);

    // One model's rows of one hour, one provider's and one client key's rows of the whole
    // day, and one user's rows of another hour disappear.
    let (hour, next) = (local[10], local[11]);
    let models = keys_at(&before, Table::HourlyModel, hour);
    let model = models[0].clone();
    assert!(
        before
            .rows(Table::HourlyModel)
            .keys()
            .any(|(at, key)| *at != hour && *key == model),
        "{what}: model {model} also has traffic in other hours"
    );
    let (user_hour, user_next) = (local[12], local[13]);
    let user = keys_at(&before, Table::HourlyUser, user_hour)[0].clone();
    let provider = "bedrock".to_owned();
    let key = scenario.keys[0].clone();
    assert!(
        before.rows(Table::DailyProvider).keys().any(|(_, name)| *name == provider)
            && before.rows(Table::DailyApiKey).keys().any(|(_, id)| *id == key),
        "{what}: provider {provider} and client key {key} had traffic"
    );
    let deleted = scenario
        .delete_usage(&db.conn, |row| {
            (hour <= row.created_at && row.created_at < next && model_key(row) == model)
                || row.provider == provider
                || row.api_key_id.as_deref() == Some(key.as_str())
                || (user_hour <= row.created_at
                    && row.created_at < user_next
                    && row.user_id.as_deref() == Some(user.as_str()))
        })
        .await;
    assert!(deleted > 0, "{what}: rows deleted");
    scenario.clock.set(scenario.ranges[0].1 + Duration::hours(5));
    scenario.aggregate().await;

    let after = support::stored_tables(&db.conn).await;
    assert!(
        !keys_at(&after, Table::HourlyModel, hour).contains(&model),
        "{what}: the stats_hourly_model row of {model} at {hour} is removed"
    );
    assert!(
        !keys_at(&after, Table::HourlyUser, user_hour).contains(&user),
        "{what}: the stats_hourly_user row of {user} at {user_hour} is removed"
    );
    assert!(
        !after.rows(Table::HourlyProvider).keys().any(|(_, name)| *name == provider)
            && !after.rows(Table::DailyProvider).keys().any(|(_, name)| *name == provider),
        "{what}: provider {provider}'s hourly and daily rows are removed"
    );
    assert!(
        !after.rows(Table::DailyApiKey).keys().any(|(_, id)| *id == key),
        "{what}: the stats_daily_api_key row of {key} is removed"
    );
    support::assert_tables(&after, &scenario.oracle(), &Table::ALL, &format!("{what}: day re-aggregated"));

    // The same through aggregate_hours: another model's rows of another hour disappear.
    let (hour, next) = (local[15], local[16]);
    let model = keys_at(&after, Table::HourlyModel, hour)[0].clone();
    scenario
        .delete_usage(&db.conn, |row| {
            hour <= row.created_at && row.created_at < next && model_key(row) == model
        })
        .await;
    scenario.clock.set(scenario.ranges[0].1 + Duration::hours(6));
    let business_hour = scenario.business_hour(0, hour);
    scenario.stats.aggregate_hours(&[business_hour]).await.unwrap();
    let hours_after = support::stored_tables(&db.conn).await;
    assert!(
        !keys_at(&hours_after, Table::HourlyModel, hour).contains(&model),
        "{what}: aggregate_hours removes the stats_hourly_model row of {model} at {hour}"
    );
    support::assert_tables(
        &hours_after,
        &scenario.oracle(),
        &Table::HOURLY,
        &format!("{what}: hour re-aggregated"),
    );
});
