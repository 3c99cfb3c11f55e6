//! Command line and environment (flags override the environment), validated once into the
//! server's [`Config`] of rich types and the [`LogFormat`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tollgate_resolver::ResolutionOrder;

use tollgate_accounting::WriterConfig;
use tollgate_catalogue::{Secret, redact_url};
use tollgate_server::{
    Config, DEFAULT_BODY_LIMIT, DEFAULT_DATABASE_URL, Limits, ServerLimits, default_max_connections,
};

/// Raw options as typed by the operator; [`Cli::into_config`] validates them. `Debug`
/// leaves out the values that may hold secrets (URLs, keys).
#[derive(Clone, clap::Parser)]
#[command(
    name = "tollgate-gateway",
    version,
    about = "OpenAI- and Anthropic-format LLM gateway with model routing and usage accounting"
)]
pub(crate) struct Cli {
    /// Database URL: `sqlite://FILE?mode=rwc` or `postgres://…`.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub database_url: String,
    /// Redis URL for the shared cache tier and the invalidation bus; unset means in-process
    /// cache only.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Address to listen on.
    #[arg(long, env = "TOLLGATE_LISTEN", default_value = "127.0.0.1:8084")]
    pub listen: String,
    /// Bootstrap admin client key; when unset and no admin user exists, one is generated and
    /// printed once.
    #[arg(long, env = "TOLLGATE_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    /// IANA time zone of the statistics business day.
    #[arg(long, env = "TOLLGATE_TIMEZONE", default_value = "UTC")]
    pub timezone: String,
    /// Life of cached catalogue entries, in seconds.
    #[arg(long, env = "TOLLGATE_CACHE_TTL_SECS", default_value = "300")]
    pub cache_ttl_secs: String,
    /// Life of cached "not found" entries, in seconds.
    #[arg(long, env = "TOLLGATE_NEGATIVE_TTL_SECS", default_value = "300")]
    pub negative_ttl_secs: String,
    /// `provider_name_first` or `direct_first`.
    #[arg(
        long,
        env = "TOLLGATE_RESOLUTION_ORDER",
        default_value = "provider_name_first"
    )]
    pub resolution_order: String,
    /// Passphrase (16 characters or more) that encrypts upstream credentials at rest.
    #[arg(long, env = "TOLLGATE_ENCRYPTION_KEY", hide_env_values = true)]
    pub encryption_key: Option<String>,
    /// `text` or `json`.
    #[arg(long, env = "TOLLGATE_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
    /// A catalogue file (JSON or TOML) applied at start as an upsert keyed by names.
    #[arg(long, env = "TOLLGATE_CATALOG")]
    pub catalog: Option<PathBuf>,
    /// Start a built-in mock upstream and a demo catalogue, and print copy-paste requests.
    #[arg(long)]
    pub demo: bool,
    /// Do not close statistics hours and days in this process (run `tollgate-aggregator
    /// daemon` instead).
    #[arg(long, env = "TOLLGATE_NO_AGGREGATION")]
    pub no_aggregation: bool,
    /// Change no schema: check that the database has everything this version needs and stop,
    /// naming what is missing, when it does not.
    #[arg(long, env = "TOLLGATE_NO_MIGRATE")]
    pub no_migrate: bool,
    /// Largest request body in bytes.
    #[arg(long, env = "TOLLGATE_BODY_LIMIT_BYTES", default_value_t = DEFAULT_BODY_LIMIT)]
    pub body_limit_bytes: usize,
    /// Most usage records waiting for the database before new ones are dropped (and counted).
    #[arg(long, env = "TOLLGATE_USAGE_QUEUE", default_value = "100000")]
    pub usage_queue: String,
    /// Bound of a shutdown, in seconds: requests and streams in flight get 80 % of it, then
    /// open streams end with an error event, and the usage queue is drained in the rest.
    #[arg(long, env = "TOLLGATE_SHUTDOWN_TIMEOUT_SECS", default_value = "30")]
    pub shutdown_timeout_secs: String,
    /// Largest whole (non-streamed) upstream answer in bytes; larger is a failed attempt.
    #[arg(long, env = "TOLLGATE_MAX_RESPONSE_BYTES", default_value = "33554432")]
    pub max_response_bytes: String,
    /// Seconds a client has to send complete request headers (and longest pause in a body).
    #[arg(long, env = "TOLLGATE_HEADER_TIMEOUT_SECS", default_value = "10")]
    pub header_timeout_secs: String,
    /// Seconds a keep-alive connection may stay idle.
    #[arg(long, env = "TOLLGATE_IDLE_TIMEOUT_SECS", default_value = "60")]
    pub idle_timeout_secs: String,
    /// Most client connections open at once; default: derived from the open-file limit.
    #[arg(long, env = "TOLLGATE_MAX_CONNECTIONS")]
    pub max_connections: Option<String>,
    /// Seconds a stream keeps reading the upstream after its client left, for the usage block.
    #[arg(long, env = "TOLLGATE_STREAM_GRACE_SECS", default_value = "5")]
    pub stream_grace_secs: String,
    /// Directory of `usage-dead-letters.ndjson`, where usage records go when even the
    /// dead-letter table refuses them; default: the SQLite file's directory, else the
    /// working directory.
    #[arg(long, env = "TOLLGATE_DEAD_LETTER_DIR")]
    pub dead_letter_dir: Option<PathBuf>,
    /// Seconds without a usage write (with records waiting) before `/ready` answers 503.
    #[arg(long, env = "TOLLGATE_WRITER_STALL_SECS", default_value = "60")]
    pub writer_stall_secs: String,
}

impl std::fmt::Debug for Cli {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cli")
            .field("database_url", &redact_url(&self.database_url))
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("listen", &self.listen)
            .field("admin_key", &self.admin_key.as_ref().map(|_| "***"))
            .field("timezone", &self.timezone)
            .field(
                "encryption_key",
                &self.encryption_key.as_ref().map(|_| "***"),
            )
            .field("catalog", &self.catalog)
            .field("demo", &self.demo)
            .finish_non_exhaustive()
    }
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// A bad option: names the option (flag and environment variable) and the value.
#[derive(Debug, thiserror::Error)]
#[error("invalid {option}: {reason}")]
pub(crate) struct ConfigError {
    /// The option, e.g. `DATABASE_URL (--database-url)`.
    pub option: &'static str,
    /// What is wrong, with the offending value.
    pub reason: String,
}

fn invalid(option: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        option,
        reason: reason.into(),
    }
}

fn positive(option: &'static str, raw: &str) -> Result<usize, ConfigError> {
    raw.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| invalid(option, format!("`{raw}` is not a positive whole number")))
}

fn positive_seconds(option: &'static str, raw: &str) -> Result<Duration, ConfigError> {
    positive(option, raw)
        .map(|n| Duration::from_secs(n as u64))
        .map_err(|_| {
            invalid(
                option,
                format!("`{raw}` is not a positive whole number of seconds"),
            )
        })
}

fn seconds(option: &'static str, raw: &str) -> Result<Duration, ConfigError> {
    raw.trim()
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| invalid(option, format!("`{raw}` is not a whole number of seconds")))
}

impl Cli {
    /// Validates every option into the server's [`Config`] and the log format.
    pub(crate) fn into_config(self) -> Result<(Config, LogFormat), ConfigError> {
        const DB: &str = "DATABASE_URL (--database-url)";
        const REDIS: &str = "REDIS_URL (--redis-url)";
        let database_url = self.database_url.trim().to_owned();
        let is_sqlite = database_url.starts_with("sqlite:");
        let is_postgres =
            database_url.starts_with("postgres://") || database_url.starts_with("postgresql://");
        if !is_sqlite && !is_postgres {
            return Err(invalid(
                DB,
                format!(
                    "`{}` is not a sqlite: or postgres:// URL",
                    redact_url(&database_url)
                ),
            ));
        }
        if is_postgres && !has_host(&database_url) {
            return Err(invalid(
                DB,
                format!("`{}` has no host", redact_url(&database_url)),
            ));
        }
        let redis_url = match self.redis_url.map(|u| u.trim().to_owned()) {
            None => None,
            Some(url) if url.is_empty() => None,
            Some(url) => {
                if !(url.starts_with("redis://") || url.starts_with("rediss://")) || !has_host(&url)
                {
                    return Err(invalid(
                        REDIS,
                        format!(
                            "`{}` is not a redis:// or rediss:// URL with a host",
                            redact_url(&url)
                        ),
                    ));
                }
                Some(Secret::new(url))
            }
        };
        let listen = self.listen.trim().parse::<SocketAddr>().map_err(|_| {
            invalid(
                "TOLLGATE_LISTEN (--listen)",
                format!("`{}` is not an ip:port address", self.listen),
            )
        })?;
        let timezone = self.timezone.trim().to_owned();
        if jiff::tz::TimeZone::get(&timezone).is_err() {
            return Err(invalid(
                "TOLLGATE_TIMEZONE (--timezone)",
                format!("unknown time zone `{timezone}`"),
            ));
        }
        let ttl = seconds(
            "TOLLGATE_CACHE_TTL_SECS (--cache-ttl-secs)",
            &self.cache_ttl_secs,
        )?;
        let negative_ttl = seconds(
            "TOLLGATE_NEGATIVE_TTL_SECS (--negative-ttl-secs)",
            &self.negative_ttl_secs,
        )?;
        let resolution_order = self
            .resolution_order
            .trim()
            .parse::<ResolutionOrder>()
            .map_err(|reason| invalid("TOLLGATE_RESOLUTION_ORDER (--resolution-order)", reason))?;
        let encryption_key = match self.encryption_key.map(|k| k.trim().to_owned()) {
            None => None,
            Some(key) if key.is_empty() => None,
            Some(key) if key.len() < 16 => {
                return Err(invalid(
                    "TOLLGATE_ENCRYPTION_KEY (--encryption-key)",
                    "the key must be at least 16 characters long",
                ));
            }
            Some(key) => Some(Secret::new(key)),
        };
        let log_format = match self.log_format.trim() {
            "text" | "" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(invalid(
                    "TOLLGATE_LOG_FORMAT (--log-format)",
                    format!("`{other}` is neither text nor json"),
                ));
            }
        };
        if self.body_limit_bytes == 0 {
            return Err(invalid(
                "TOLLGATE_BODY_LIMIT_BYTES (--body-limit-bytes)",
                "`0` must be at least 1",
            ));
        }
        let queue = self
            .usage_queue
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|q| *q > 0)
            .ok_or_else(|| {
                invalid(
                    "TOLLGATE_USAGE_QUEUE (--usage-queue)",
                    format!("`{}` is not a positive whole number", self.usage_queue),
                )
            })?;
        let shutdown_timeout = seconds(
            "TOLLGATE_SHUTDOWN_TIMEOUT_SECS (--shutdown-timeout-secs)",
            &self.shutdown_timeout_secs,
        )?;
        let header_timeout = positive_seconds(
            "TOLLGATE_HEADER_TIMEOUT_SECS (--header-timeout-secs)",
            &self.header_timeout_secs,
        )?;
        let limits = Limits {
            max_response_bytes: positive(
                "TOLLGATE_MAX_RESPONSE_BYTES (--max-response-bytes)",
                &self.max_response_bytes,
            )?,
            stream_grace: seconds(
                "TOLLGATE_STREAM_GRACE_SECS (--stream-grace-secs)",
                &self.stream_grace_secs,
            )?,
            request_body_timeout: header_timeout,
        };
        let server = ServerLimits {
            header_timeout,
            idle_timeout: positive_seconds(
                "TOLLGATE_IDLE_TIMEOUT_SECS (--idle-timeout-secs)",
                &self.idle_timeout_secs,
            )?,
            max_connections: match &self.max_connections {
                Some(raw) => positive("TOLLGATE_MAX_CONNECTIONS (--max-connections)", raw)?,
                None => default_max_connections(),
            },
        };
        let dead_letter_dir = self
            .dead_letter_dir
            .unwrap_or_else(|| sqlite_dir(&database_url));
        let cache = tollgate_cache::Config {
            ttl,
            negative_ttl,
            ..tollgate_cache::Config::default()
        };
        let config = Config {
            database_url: Secret::new(database_url),
            redis_url,
            listen,
            admin_key: self
                .admin_key
                .filter(|k| !k.trim().is_empty())
                .map(|k| Secret::new(k.trim())),
            timezone,
            encryption_key,
            cache,
            resolution_order,
            catalog: self.catalog,
            demo: self.demo,
            aggregation: !self.no_aggregation,
            migrate: !self.no_migrate,
            body_limit: self.body_limit_bytes,
            writer: WriterConfig {
                queue_capacity: queue,
                dead_letter_dir,
                stall_after: positive_seconds(
                    "TOLLGATE_WRITER_STALL_SECS (--writer-stall-secs)",
                    &self.writer_stall_secs,
                )?,
                ..WriterConfig::default()
            },
            shutdown_timeout,
            limits,
            server,
        };
        Ok((config, log_format))
    }
}

/// The directory of an SQLite URL's file (`.` for the working directory, and for other
/// databases).
fn sqlite_dir(url: &str) -> PathBuf {
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return PathBuf::from(".");
    };
    let path = rest.trim_start_matches("//");
    let path = path.split('?').next().unwrap_or("");
    match std::path::Path::new(path).parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn has_host(url: &str) -> bool {
    let Some(rest) = url.split_once("://").map(|(_, rest)| rest) else {
        return false;
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    !host.is_empty() && !host.starts_with(':')
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Cli;

    fn parse(args: &[&str]) -> Result<tollgate_server::Config, String> {
        let mut argv = vec!["tollgate-gateway"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .into_config()
            .map(|(config, _)| config)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_valid() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8084");
        assert!(config.redis_url.is_none());
        assert_eq!(config.body_limit, 10 * 1024 * 1024);
    }

    #[test]
    fn errors_name_the_option_and_value() {
        let error = parse(&["--database-url", "mysql://x"]).unwrap_err();
        assert!(
            error.contains("DATABASE_URL") && error.contains("mysql://x"),
            "{error}"
        );
        let error = parse(&["--timezone", "Mars/Olympus"]).unwrap_err();
        assert!(
            error.contains("TOLLGATE_TIMEZONE") && error.contains("Mars/Olympus"),
            "{error}"
        );
        let error = parse(&["--redis-url", "http://x"]).unwrap_err();
        assert!(error.contains("REDIS_URL"), "{error}");
        let error = parse(&["--listen", "nowhere"]).unwrap_err();
        assert!(error.contains("TOLLGATE_LISTEN"), "{error}");
        let error = parse(&["--cache-ttl-secs=-1"]).unwrap_err();
        assert!(error.contains("TOLLGATE_CACHE_TTL_SECS"), "{error}");
        assert!(!error.contains('\n'), "one line: {error}");
    }

    #[test]
    fn debug_hides_keys_and_passwords() {
        let cli = Cli::try_parse_from([
            "tollgate-gateway",
            "--admin-key",
            "tg-admin-secret",
            "--database-url",
            "postgres://u:hunter2@h/db",
        ])
        .unwrap();
        let shown = format!("{cli:?}");
        assert!(
            !shown.contains("tg-admin-secret") && !shown.contains("hunter2"),
            "{shown}"
        );
        let config = cli.into_config().unwrap();
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("tg-admin-secret") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn dead_letters_default_to_the_sqlite_files_directory() {
        let config =
            parse(&["--database-url", "sqlite:///var/lib/tollgate/t.db?mode=rwc"]).unwrap();
        assert_eq!(
            config.writer.dead_letter_dir,
            std::path::Path::new("/var/lib/tollgate")
        );
        let config = parse(&["--database-url", "sqlite://tollgate.db?mode=rwc"]).unwrap();
        assert_eq!(config.writer.dead_letter_dir, std::path::Path::new("."));
        let config = parse(&[
            "--database-url",
            "postgres://h/db",
            "--dead-letter-dir",
            "/tmp/x",
        ])
        .unwrap();
        assert_eq!(
            config.writer.dead_letter_dir,
            std::path::Path::new("/tmp/x")
        );
        let error = parse(&["--writer-stall-secs", "0"]).unwrap_err();
        assert!(error.contains("TOLLGATE_WRITER_STALL_SECS"), "{error}");
    }

    #[test]
    fn passwords_are_not_echoed() {
        let error = parse(&["--database-url", "mysql://u:hunter2@h/db"]).unwrap_err();
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn encryption_key_is_accepted_and_checked() {
        let config = parse(&["--encryption-key", "a long enough passphrase"]).unwrap();
        assert!(config.encryption_key.is_some());
        assert!(!format!("{config:?}").contains("a long enough passphrase"));
        let error = parse(&["--encryption-key", "short"]).unwrap_err();
        assert!(
            error.contains("TOLLGATE_ENCRYPTION_KEY") && error.contains("16"),
            "{error}"
        );
        assert!(parse(&[]).unwrap().encryption_key.is_none());
    }
}
