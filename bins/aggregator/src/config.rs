//! Turns raw flags into validated settings once; a bad value becomes one line that names
//! the option, and exit code 2.

use tollgate_stats::{BusinessCalendar, PruneOptions};

use crate::cli::{Cli, Command};

/// A usage error: printed as `error: <message>` and exits with code 2.
#[derive(Debug)]
pub(crate) struct UsageError(pub(crate) String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Validated settings.
#[derive(Debug)]
pub(crate) struct Settings {
    /// The database URL, checked for a supported scheme.
    pub(crate) database_url: String,
    /// The business calendar.
    pub(crate) calendar: BusinessCalendar,
    /// The validated command.
    pub(crate) job: Job,
}

/// A command with its arguments parsed into rich types.
#[derive(Debug)]
pub(crate) enum Job {
    /// `daily`.
    Daily { date: Option<time::Date> },
    /// `hourly`.
    Hourly { hours: u32 },
    /// `backfill`.
    Backfill { days: u32 },
    /// `summary`.
    Summary,
    /// `today`.
    Today { json: bool },
    /// `show`.
    Show { days: u32, json: bool },
    /// `prune`.
    Prune { options: PruneOptions, json: bool },
    /// `daemon`.
    Daemon {
        at: time::Time,
        refresh_today: Option<std::time::Duration>,
        catch_up_days: u32,
        keep_days: Option<u32>,
    },
}

impl Settings {
    /// Validates `cli`.
    pub(crate) fn from_cli(cli: &Cli) -> Result<Self, UsageError> {
        let calendar = BusinessCalendar::new(&cli.timezone).map_err(|_| {
            UsageError(format!(
                "--timezone (TOLLGATE_TIMEZONE): unknown IANA time zone `{}`",
                cli.timezone
            ))
        })?;
        let url = cli.database_url.trim();
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        if !matches!(scheme, "sqlite" | "postgres" | "postgresql") || url.len() <= scheme.len() + 1
        {
            return Err(UsageError(format!(
                "--database-url (DATABASE_URL): unsupported URL scheme `{scheme}` \
                 (expected sqlite://… or postgres://…)"
            )));
        }
        let job = match &cli.command {
            Command::Daily { date } => Job::Daily {
                date: date.as_deref().map(parse_date).transpose()?,
            },
            Command::Backfill { days } => Job::Backfill { days: *days },
            Command::Hourly { hours } => Job::Hourly { hours: *hours },
            Command::Summary => Job::Summary,
            Command::Today { json } => Job::Today { json: *json },
            Command::Show { days, json } => Job::Show {
                days: *days,
                json: *json,
            },
            Command::Prune {
                keep_days,
                batch_rows,
                json,
            } => Job::Prune {
                options: PruneOptions::keep_days(*keep_days).with_batch_rows(*batch_rows),
                json: *json,
            },
            Command::Daemon {
                at,
                refresh_today,
                catch_up_days,
                keep_days,
            } => Job::Daemon {
                at: parse_time(at)?,
                refresh_today: refresh_today.map(std::time::Duration::from_secs),
                catch_up_days: *catch_up_days,
                keep_days: *keep_days,
            },
        };
        Ok(Self {
            database_url: url.to_owned(),
            calendar,
            job,
        })
    }
}

fn parse_date(raw: &str) -> Result<time::Date, UsageError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(raw.trim(), format).map_err(|_| {
        UsageError(format!(
            "--date: invalid date `{raw}` (expected YYYY-MM-DD)"
        ))
    })
}

fn parse_time(raw: &str) -> Result<time::Time, UsageError> {
    let format = time::macros::format_description!("[hour]:[minute]");
    time::Time::parse(raw.trim(), format)
        .map_err(|_| UsageError(format!("--at: invalid time `{raw}` (expected HH:MM)")))
}

#[cfg(test)]
mod tests {
    use super::{parse_date, parse_time};

    #[test]
    fn dates_and_times_parse_strictly() {
        assert!(parse_date("2025-03-09").is_ok());
        for bad in ["2025-13-01", "2025-02-30", "yesterday", "2025/03/09", ""] {
            let error = parse_date(bad).unwrap_err().0;
            assert!(error.starts_with("--date:"), "{error}");
        }
        assert!(parse_time("00:05").is_ok());
        assert!(parse_time("24:00").is_err());
    }
}
