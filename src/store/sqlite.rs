//! The embedded store: one SQLite file in WAL mode, created with its schema on first use.
//!
//! Durability: `synchronous=FULL` syncs the write-ahead log on every commit, so a
//! committed hit survives a killed process and a power cut. WAL lets reads go on while
//! the writer commits, and lets several processes share the file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{
    ACTIVE_WINDOW_SECS, Backend, Connection, Counts, Hit, MinuteHits, Recorded, StoreError, Totals,
    UnixTime, hits_by_minute,
};
use crate::visitor::VisitorId;

/// Tables, created when missing. Totals and per-minute counts are kept up to date in the
/// same transaction as each hit, so reading them never scans the hits.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS visitors (
    id         TEXT    PRIMARY KEY,
    hits       INTEGER NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS visitors_by_last_seen ON visitors (last_seen);

CREATE TABLE IF NOT EXISTS totals (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    hits     INTEGER NOT NULL,
    visitors INTEGER NOT NULL
);
INSERT OR IGNORE INTO totals (id, hits, visitors) VALUES (1, 0, 0);

CREATE TABLE IF NOT EXISTS hits_per_minute (
    minute INTEGER PRIMARY KEY,
    hits   INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS app_secrets (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
";

/// How long a connection waits for another writer (another instance) to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A SQLite database file.
#[derive(Debug)]
pub struct Sqlite {
    path: PathBuf,
    /// Whether this process has made sure of the schema (and WAL mode) already.
    prepared: AtomicBool,
}

impl Sqlite {
    /// Names the file; it is created on the first connection.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            prepared: AtomicBool::new(false),
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Backend for Sqlite {
    fn connect(&self) -> Result<Box<dyn Connection>, StoreError> {
        let conn = rusqlite::Connection::open(&self.path).map_err(sqlite_error)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sqlite_error)?;
        conn.execute_batch("PRAGMA synchronous = FULL;")
            .map_err(sqlite_error)?;
        // WAL mode is kept in the file; the schema only needs making once per process.
        if !self.prepared.load(Ordering::Acquire) {
            conn.execute_batch("PRAGMA journal_mode = WAL;")
                .and_then(|()| conn.execute_batch(SCHEMA))
                .map_err(sqlite_error)?;
            self.prepared.store(true, Ordering::Release);
        }
        Ok(Box::new(SqliteConnection { conn }))
    }

    fn describe(&self) -> String {
        format!("sqlite at {}", self.path.display())
    }
}

struct SqliteConnection {
    conn: rusqlite::Connection,
}

impl Connection for SqliteConnection {
    fn record(&mut self, hits: &[Hit]) -> Result<Recorded, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite_error)?;

        let mut visitor_hits = Vec::with_capacity(hits.len());
        let mut new_visitors = 0_i64;
        {
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO visitors (id, hits, first_seen, last_seen) VALUES (?1, 1, ?2, ?2)
                     ON CONFLICT (id) DO UPDATE
                     SET hits = hits + 1, last_seen = MAX(last_seen, excluded.last_seen)
                     RETURNING hits",
                )
                .map_err(sqlite_error)?;
            for hit in hits {
                let count: i64 = upsert
                    .query_row(params![hit.visitor.as_str(), hit.at], |row| row.get(0))
                    .map_err(sqlite_error)?;
                // Only a freshly inserted row starts at one.
                if count == 1 {
                    new_visitors += 1;
                }
                visitor_hits.push(count);
            }

            let mut per_minute = tx
                .prepare_cached(
                    "INSERT INTO hits_per_minute (minute, hits) VALUES (?1, ?2)
                     ON CONFLICT (minute) DO UPDATE SET hits = hits + excluded.hits",
                )
                .map_err(sqlite_error)?;
            for (minute, count) in hits_by_minute(hits) {
                per_minute
                    .execute(params![minute, count])
                    .map_err(sqlite_error)?;
            }
        }

        let (total_hits, total_visitors) = tx
            .query_row(
                "UPDATE totals SET hits = hits + ?1, visitors = visitors + ?2 WHERE id = 1
                 RETURNING hits, visitors",
                params![hits.len() as i64, new_visitors],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .map_err(sqlite_error)?;
        tx.commit().map_err(sqlite_error)?;

        Ok(Recorded {
            visitor_hits,
            hits: total_hits,
            visitors: total_visitors,
        })
    }

    fn active(&mut self, now: UnixTime) -> Result<i64, StoreError> {
        count_active(&self.conn, now)
    }

    fn counts(&mut self, visitor: Option<&VisitorId>, now: UnixTime) -> Result<Counts, StoreError> {
        // One read transaction, so the visitor's count and the totals agree.
        let tx = self.conn.transaction().map_err(sqlite_error)?;
        let mine = match visitor {
            Some(id) => hits_of(&tx, id)?,
            None => 0,
        };
        let (hits, visitors) = tx
            .prepare_cached("SELECT hits, visitors FROM totals WHERE id = 1")
            .and_then(|mut stmt| stmt.query_row([], |row| Ok((row.get(0)?, row.get(1)?))))
            .map_err(sqlite_error)?;
        let active = count_active(&tx, now)?;
        tx.finish().map_err(sqlite_error)?;

        Ok(Counts {
            visitor: mine,
            totals: Totals {
                hits,
                visitors,
                active,
            },
        })
    }

    fn visitor_hits(&mut self, visitor: &VisitorId) -> Result<i64, StoreError> {
        hits_of(&self.conn, visitor)
    }

    fn minutes(&mut self, from: UnixTime, to: UnixTime) -> Result<Vec<MinuteHits>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT minute, hits FROM hits_per_minute
                 WHERE minute BETWEEN ?1 AND ?2 ORDER BY minute",
            )
            .map_err(sqlite_error)?;
        let rows = stmt
            .query_map([from, to], |row| {
                Ok(MinuteHits {
                    minute: row.get(0)?,
                    hits: row.get(1)?,
                })
            })
            .map_err(sqlite_error)?;
        rows.collect::<Result<_, _>>().map_err(sqlite_error)
    }

    fn session_key(&mut self, candidate: &[u8]) -> Result<Vec<u8>, StoreError> {
        // Insert-if-absent, then read: two instances starting together agree on one key.
        self.conn
            .execute(
                "INSERT OR IGNORE INTO app_secrets (name, value) VALUES ('session_key', ?1)",
                [candidate],
            )
            .map_err(sqlite_error)?;
        self.conn
            .query_row(
                "SELECT value FROM app_secrets WHERE name = 'session_key'",
                [],
                |row| row.get(0),
            )
            .map_err(sqlite_error)
    }
}

/// One visitor's count; 0 for a visitor with no row.
fn hits_of(conn: &rusqlite::Connection, visitor: &VisitorId) -> Result<i64, StoreError> {
    conn.prepare_cached("SELECT hits FROM visitors WHERE id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([visitor.as_str()], |row| row.get(0))
                .optional()
        })
        .map(|hits| hits.unwrap_or(0))
        .map_err(sqlite_error)
}

/// Visitors seen within the active window; an index range, not a scan of all visitors.
fn count_active(conn: &rusqlite::Connection, now: UnixTime) -> Result<i64, StoreError> {
    conn.prepare_cached("SELECT COUNT(*) FROM visitors WHERE last_seen > ?1")
        .and_then(|mut stmt| stmt.query_row([now - ACTIVE_WINDOW_SECS], |row| row.get(0)))
        .map_err(sqlite_error)
}

/// Maps a SQLite error to a store error whose reason is SQLite's error code.
fn sqlite_error(err: rusqlite::Error) -> StoreError {
    let reason = match &err {
        rusqlite::Error::SqliteFailure(failure, _) => format!("sqlite: {:?}", failure.code),
        _ => "sqlite: error".to_owned(),
    };
    StoreError::unavailable(reason, err)
}
