//! The dead-letter store: the `usage_dead_letters` table, and an append-only NDJSON file for
//! when the table refuses too. A replay first imports the file into the table.

use std::path::{Path, PathBuf};

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, IntoActiveModel, QueryTrait,
};
use tollgate_entities::{new_id, now_utc, usage_dead_letters};

use super::record::UsageRecord;

/// The fallback file's name inside the dead-letter directory.
pub(crate) const FILE_NAME: &str = "usage-dead-letters.ndjson";

/// Longest `request_id` the table holds (`varchar(100)`).
const REQUEST_ID_CHARS: usize = 100;

/// Dead-letter rows per `INSERT`.
const ROWS_PER_INSERT: usize = 100;

/// The dead-letter row of `record`, refused with `error`, exactly as the writer held it.
pub(crate) fn dead_letter(record: &UsageRecord, error: &str) -> usage_dead_letters::Model {
    let payload = serde_json::to_value(record).unwrap_or_else(|failure| {
        // A usage record is plain data; this cannot happen short of a bug, and the error
        // text then still names the request.
        tracing::error!(%failure, request_id = %record.usage.request_id, "usage record does not serialize");
        serde_json::json!({ "unserializable": failure.to_string() })
    });
    usage_dead_letters::Model {
        id: new_id(),
        request_id: record.usage.request_id.clone(),
        payload,
        error: error.to_owned(),
        replayed_at: None,
        created_at: now_utc(),
    }
}

/// `row` as the table can hold it: the request id cut to its column at a character
/// boundary, and NUL characters (which PostgreSQL text and `jsonb` refuse) replaced by
/// U+FFFD. The file keeps the exact row.
pub(crate) fn storable(mut row: usage_dead_letters::Model) -> usage_dead_letters::Model {
    row.request_id = without_nul(&row.request_id)
        .chars()
        .take(REQUEST_ID_CHARS)
        .collect();
    row.error = without_nul(&row.error);
    replace_nul(&mut row.payload);
    row
}

fn without_nul(text: &str) -> String {
    text.replace('\0', "\u{fffd}")
}

fn replace_nul(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(text) if text.contains('\0') => *text = without_nul(text),
        serde_json::Value::Array(items) => items.iter_mut().for_each(replace_nul),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(replace_nul),
        _ => {}
    }
}

/// Inserts `rows` into `usage_dead_letters`, skipping ids already there (an import that is
/// repeated after a failure adds nothing twice).
pub(crate) async fn insert_rows<C: ConnectionTrait>(
    conn: &C,
    rows: Vec<usage_dead_letters::Model>,
) -> Result<(), DbErr> {
    let backend = conn.get_database_backend();
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let models = chunk
            .iter()
            .map(|row| storable(row.clone()).into_active_model());
        let mut insert = usage_dead_letters::Entity::insert_many(models).into_query();
        insert.on_conflict(
            OnConflict::column(usage_dead_letters::Column::Id)
                .do_nothing()
                .to_owned(),
        );
        conn.execute_raw(backend.build(&insert)).await?;
    }
    Ok(())
}

/// The NDJSON fallback file. Appends and imports take one lock, so an import never misses a
/// line appended while it runs.
#[derive(Debug)]
pub(crate) struct DeadLetterFile {
    path: PathBuf,
    lock: tokio::sync::Mutex<()>,
}

/// What an import read from the file.
#[derive(Debug, Default)]
pub(crate) struct Imported {
    /// Lines now in the table.
    pub rows: u64,
    /// Lines that are not dead-letter rows, each named by its line number and why; they stay
    /// in the renamed file.
    pub unreadable: Vec<String>,
}

/// Why the file could not be imported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The file could not be read or renamed.
    #[error("dead-letter file `{path}`: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The table refused the rows; the file is left as it is.
    #[error("importing the dead-letter file: {0}")]
    Database(#[from] DbErr),
}

impl DeadLetterFile {
    /// The file `usage-dead-letters.ndjson` in `dir`.
    pub(crate) fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            path: dir.into().join(FILE_NAME),
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line per row and syncs the file (creating it and its directory first).
    pub(crate) async fn append(&self, rows: &[usage_dead_letters::Model]) -> std::io::Result<()> {
        let mut text = String::new();
        for row in rows {
            text.push_str(&serde_json::to_string(row)?);
            text.push('\n');
        }
        let _guard = self.lock.lock().await;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            file.write_all(text.as_bytes())?;
            file.sync_data()
        })
        .await
        .map_err(std::io::Error::other)?
    }

    /// Moves the file's rows into the table, then renames the file to
    /// `usage-dead-letters.ndjson.imported-<UTC timestamp>` so nothing is imported twice.
    /// No file: nothing to import.
    pub(crate) async fn import(&self, conn: &DatabaseConnection) -> Result<Imported, ImportError> {
        let _guard = self.lock.lock().await;
        let path = self.path.clone();
        let read = tokio::task::spawn_blocking(move || std::fs::read(path))
            .await
            .map_err(std::io::Error::other)
            .and_then(|read| read);
        let bytes = match read {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Imported::default());
            }
            Err(source) => {
                return Err(ImportError::File {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let text = String::from_utf8_lossy(&bytes);
        let mut imported = Imported::default();
        let mut rows = Vec::new();
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<usage_dead_letters::Model>(line) {
                Ok(row) => rows.push(row),
                Err(error) => imported
                    .unreadable
                    .push(format!("{FILE_NAME} line {}: {error}", index + 1)),
            }
        }
        imported.rows = rows.len() as u64;
        insert_rows(conn, rows).await?;
        let stamp = now_utc()
            .format(time::macros::format_description!(
                "[year][month][day]T[hour][minute][second].[subsecond digits:6]Z"
            ))
            .unwrap_or_else(|_| new_id());
        let target = self
            .path
            .with_file_name(format!("{FILE_NAME}.imported-{stamp}"));
        let from = self.path.clone();
        tokio::task::spawn_blocking(move || std::fs::rename(from, target))
            .await
            .map_err(std::io::Error::other)
            .and_then(|renamed| renamed)
            .map_err(|source| ImportError::File {
                path: self.path.clone(),
                source,
            })?;
        for line in &imported.unreadable {
            tracing::warn!(line = %line, "dead-letter file line not imported; it stays in the renamed file");
        }
        Ok(imported)
    }
}

#[cfg(test)]
mod tests {
    use super::{dead_letter, storable};
    use crate::writer::UsageRecord;

    #[test]
    fn storable_rows_lose_nul_bytes_and_fit_the_request_id_column() {
        let mut usage =
            tollgate_testkit::fixtures::usage_row("m\0odel", tollgate_entities::now_utc());
        usage.request_id = format!("é{}\0", "r".repeat(150));
        let record = UsageRecord {
            usage,
            candidates: Vec::new(),
        };
        let row = dead_letter(&record, "bad\0 value");
        assert!(row.payload.to_string().contains("\\u0000"));
        let stored = storable(row.clone());
        assert_eq!(stored.request_id.chars().count(), 100);
        assert!(stored.request_id.starts_with("ér"));
        assert_eq!(stored.error, "bad\u{fffd} value");
        assert!(!stored.payload.to_string().contains("\\u0000"));
        assert_eq!(stored.payload["usage"]["model"], "m\u{fffd}odel");
        assert_eq!(stored.id, row.id);
    }
}
