//! The production store: Oracle Database through sibyl's blocking OCI interface.
//!
//! Blocking mode, on purpose. The [`Store`](super::Store) already calls every
//! connection method from threads where blocking is allowed (its writer thread and
//! tokio's blocking pool), so async OCI calls would buy nothing. And sibyl's
//! `nonblocking` + `tokio` mode has open crash reports against Oracle 23 session pools
//! (<https://github.com/quietboil/sibyl/issues/21>), while its `ConnectionPool` exists
//! in blocking mode only.
//!
//! Lifetimes. sibyl ties a `SessionPool<'a>` to the `Environment` it was made in, and
//! a `Session` to the pool it came from. The environment is process-wide (OCI wants one
//! per process anyway) and lives in a `static`, so the pool is a `SessionPool<'static>`
//! that can be shared behind an `Arc` and dropped when the last user goes. A
//! [`Connection`] here holds a [`SharedPool`], not a session: each call takes the current
//! pool and a pooled session from it for its own duration and hands both back at the
//! end. The OCI pool therefore does the pooling, bounded by `ORACLE_POOL_SIZE`, however
//! many idle connections the `Store` keeps; no borrowed session ever has to outlive its
//! call.
//!
//! Recovery. sibyl always releases a session to the OCI pool in the default mode (it has
//! no way to pass `OCI_SESSRLS_DROP`), so a session whose connection broke, say because
//! the database restarted, goes back to the pool and can be handed out again. Instead,
//! a call that fails with an error meaning the connection is gone (see
//! [`connection_lost`]), or whose session OCI reports as disconnected, makes
//! [`SharedPool`] log in a fresh pool and put it in place of the old one. The failed call
//! still returns its error, so nothing is acknowledged that was not committed; later
//! calls take the fresh pool, while calls still running on the old one finish on it and
//! the old pool is closed when the last of them ends. Rebuilds are tried at most once
//! per [`REBUILD_INTERVAL`], so an outage does not hammer the listener; a rebuild that
//! fails keeps the old pool, and a later failing call tries again.
//!
//! Exactness. An increment is an `UPDATE ... RETURNING`, whose row lock serialises
//! concurrent increments of one row, also across app instances. A missing row is
//! inserted; an insert that loses a race with another instance's insert of the same key
//! fails with ORA-00001 and is retried as an update, so no count is read and then
//! written back. Rows are locked in a fixed order (visitors by id, minutes by start,
//! totals last) so that instances sharing the schema cannot deadlock one another.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock, TryLockError};
use std::time::{Duration, Instant};

use sibyl::{Environment, Session, SessionPool, SessionPoolGetMode};

use super::{
    ACTIVE_WINDOW_SECS, Backend, Connection, Counts, Hit, MinuteHits, Recorded, StoreError, Totals,
    UnixTime, hits_by_minute,
};
use crate::config::{OracleSettings, Secret};
use crate::visitor::VisitorId;

/// The DDL that `ORACLE_APPLY_SCHEMA` runs; the same file the database image runs.
const SCHEMA: &str = include_str!("../../schema.sql");

/// How long a call waits for a free pooled session before failing with ORA-24457,
/// rather than hanging while every session is busy.
const SESSION_WAIT_MS: u32 = 10_000;

/// The longest one round trip to the database may take, so that a database that stops
/// answering fails the call (and `/status`) instead of holding a thread forever.
const CALL_TIMEOUT_MS: u32 = 15_000;

/// The least time between two attempts to rebuild the session pool. Each attempt is a
/// login, so while the database is down the listener sees one every few seconds from
/// this instance, not one per failed hit; once it is back, `/status` recovers within
/// about this long.
const REBUILD_INTERVAL: Duration = Duration::from_secs(5);

/// How often an insert that lost a race to another instance is retried as an update.
/// One retry suffices: the loser's insert waits until the winner commits.
const RACE_ATTEMPTS: usize = 3;

/// ORA-00001: unique constraint violated.
const ORA_UNIQUE_VIOLATION: i32 = 1;

/// Errors that a concurrent run of the same re-runnable schema can raise and that leave
/// the schema as intended: ORA-00955 (name already used, by the other run's table) and
/// ORA-00001 (the other run seeded the totals row first).
const SCHEMA_RACE_CODES: [i32; 2] = [955, ORA_UNIQUE_VIOLATION];

/// The name under which the cookie-signing key is kept in `app_secrets`.
const SESSION_KEY_NAME: &str = "session_key";

/// The one OCI environment of the process. It is never dropped: statics are not, and
/// OCI environments are meant to live as long as the process that made them.
static OCI: OnceLock<Environment> = OnceLock::new();

// sibyl marks its OCI handles `Send`/`Sync` itself; these assertions make the compiler
// confirm that the types this module shares between threads really are.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<Environment>();
    shareable::<SessionPool<'static>>();
    shareable::<SharedPool>();
    shareable::<Oracle>();
    shareable::<OracleConnection>();
};

/// Oracle Database, reached through a session pool.
pub struct Oracle {
    pool: Arc<SharedPool>,
    description: String,
}

impl Oracle {
    /// Creates the session pool (which logs in once, so that a wrong address or password
    /// stops start-up) and, when asked to, creates the missing tables.
    pub fn open(settings: &OracleSettings) -> Result<Self, StoreError> {
        let login = Login {
            connect_string: settings.connect_string.clone(),
            user: settings.user.clone(),
            password: settings.password.clone(),
            max_sessions: usize::try_from(settings.pool_size).unwrap_or(usize::MAX),
        };
        let pool = SharedPool::open(login)?;
        if settings.apply_schema {
            pool.with_session(apply_schema)?;
        }
        Ok(Self {
            pool: Arc::new(pool),
            description: format!(
                "oracle at {} as {} (up to {} sessions)",
                settings.connect_string, settings.user, settings.pool_size
            ),
        })
    }
}

impl Backend for Oracle {
    fn connect(&self) -> Result<Box<dyn Connection>, StoreError> {
        Ok(Box::new(OracleConnection {
            pool: Arc::clone(&self.pool),
        }))
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

/// What a session pool is made from, kept so that it can be made again.
struct Login {
    /// Connect string, e.g. `localhost/freepdb1`.
    connect_string: String,
    /// Database user.
    user: String,
    /// Database password.
    password: Secret<String>,
    /// Sessions in the pool, at most.
    max_sessions: usize,
}

impl Login {
    /// Creates a pool, which logs in one session: a pool that comes back is one whose
    /// database answered.
    fn create_pool(&self) -> Result<SessionPool<'static>, StoreError> {
        let pool = environment()?
            .create_session_pool(
                &self.connect_string,
                &self.user,
                self.password.expose(),
                1,
                1,
                self.max_sessions.max(1),
            )
            .map_err(oracle_error)?;
        pool.set_get_mode(SessionPoolGetMode::TimedWait)
            .map_err(oracle_error)?;
        pool.set_wait_timeout(SESSION_WAIT_MS)
            .map_err(oracle_error)?;
        Ok(pool)
    }
}

/// The session pool in use, replaced by a fresh one when its connections are lost.
struct SharedPool {
    /// The current pool. Calls clone the `Arc` and let go of the lock at once, so a
    /// rebuild never waits for a running call, nor a call for a running rebuild.
    current: RwLock<Arc<SessionPool<'static>>>,
    /// How to make a new pool.
    login: Login,
    /// When a pool was last made or tried. Rebuilding holds this lock, and callers only
    /// try it, so at most one rebuild runs and no call queues behind it.
    last_attempt: Mutex<Instant>,
}

impl SharedPool {
    /// Logs in the first pool.
    fn open(login: Login) -> Result<Self, StoreError> {
        let pool = login.create_pool()?;
        Ok(Self {
            current: RwLock::new(Arc::new(pool)),
            login,
            last_attempt: Mutex::new(Instant::now()),
        })
    }

    /// The pool to take sessions from now.
    fn current(&self) -> Arc<SessionPool<'static>> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Runs `work` on a session from the current pool. When the call fails because the
    /// connection is gone, the pool is rebuilt (throttled) before the error is returned,
    /// so that the next call does not get another session of the dead pool.
    fn with_session<T>(
        &self,
        work: impl FnOnce(&Session) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pool = self.current();
        let (result, disconnected) = match pooled_session(&pool) {
            Ok(session) => {
                let result = work(&session);
                // OCI marks the server handle when it notices the connection broke, which
                // also catches a broken connection whose error code is not in our list.
                // Reading the mark is local; it costs no round trip.
                let disconnected = result.is_err() && matches!(session.is_connected(), Ok(false));
                (result, disconnected)
            }
            Err(err) => (Err(err), false),
        };
        if let Err(err) = &result
            && (disconnected || connection_lost(err))
        {
            self.rebuild(&pool, err);
        }
        result
    }

    /// Replaces `failed` with a freshly logged-in pool, unless another call already did,
    /// a rebuild is running, or the last attempt was less than [`REBUILD_INTERVAL`] ago.
    /// A rebuild that fails leaves `failed` in place; the caller returns its own error
    /// either way.
    ///
    /// The login runs on the thread whose call failed. A database that is back answers
    /// it quickly and one that is still down refuses it quickly; only a network that
    /// drops packets holds the thread until the connect times out, which the connect
    /// string can bound (`CONNECT_TIMEOUT`, or `?connect_timeout=` in Easy Connect).
    fn rebuild(&self, failed: &Arc<SessionPool<'static>>, cause: &StoreError) {
        let mut last_attempt = match self.last_attempt.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        // Checked under the lock: a call that took the old pool before another call's
        // rebuild finished must not throw away the fresh pool.
        if !Arc::ptr_eq(failed, &self.current()) || last_attempt.elapsed() < REBUILD_INTERVAL {
            return;
        }
        *last_attempt = Instant::now();

        tracing::warn!(
            cause = cause.reason(),
            "oracle connection lost; rebuilding the session pool"
        );
        match self.login.create_pool() {
            Ok(fresh) => {
                let old = std::mem::replace(
                    &mut *self.current.write().unwrap_or_else(PoisonError::into_inner),
                    Arc::new(fresh),
                );
                tracing::info!("oracle session pool rebuilt");
                // The old pool closes, logging off its sessions, when the last call
                // holding it lets go; the failed call that got here is one of them.
                drop(old);
            }
            Err(err) => tracing::warn!(
                error = %err,
                cause = ?std::error::Error::source(&err),
                retry_in_secs = REBUILD_INTERVAL.as_secs(),
                "oracle session pool not rebuilt; keeping the old one"
            ),
        }
    }
}

/// A handle on the shared pool; every call borrows a pooled session for its own
/// duration.
struct OracleConnection {
    pool: Arc<SharedPool>,
}

impl Connection for OracleConnection {
    fn record(&mut self, hits: &[Hit]) -> Result<Recorded, StoreError> {
        self.pool.with_session(|session| {
            let recorded = record_batch(session, hits).and_then(|recorded| {
                session.commit().map_err(oracle_error)?;
                Ok(recorded)
            });
            if recorded.is_err() {
                // sibyl also rolls back when a session goes back to the pool; saying it
                // here keeps a failed batch from ever depending on that.
                let _ = session.rollback();
            }
            recorded
        })
    }

    fn counts(&mut self, visitor: Option<&VisitorId>, now: UnixTime) -> Result<Counts, StoreError> {
        self.pool.with_session(|session| {
            // One statement reads from one snapshot, so the visitor's count and the
            // totals always agree with each other.
            let stmt = session
                .prepare(
                    "SELECT NVL((SELECT v.hits FROM visitors v WHERE v.id = :visitor_id), 0),
                            t.hits,
                            t.visitors,
                            (SELECT COUNT(*) FROM visitors a WHERE a.last_seen > :since)
                       FROM totals t
                      WHERE t.id = 1",
                )
                .map_err(oracle_error)?;
            let row = stmt
                .query_single((
                    (":VISITOR_ID", visitor.map(VisitorId::as_str)),
                    (":SINCE", now - ACTIVE_WINDOW_SECS),
                ))
                .map_err(oracle_error)?
                .ok_or_else(missing_totals_row)?;

            Ok(Counts {
                visitor: row.get(0).map_err(oracle_error)?,
                totals: Totals {
                    hits: row.get(1).map_err(oracle_error)?,
                    visitors: row.get(2).map_err(oracle_error)?,
                    active: row.get(3).map_err(oracle_error)?,
                },
            })
        })
    }

    fn active(&mut self, now: UnixTime) -> Result<i64, StoreError> {
        self.pool.with_session(|session| count_active(session, now))
    }

    fn visitor_hits(&mut self, visitor: &VisitorId) -> Result<i64, StoreError> {
        self.pool.with_session(|session| {
            let stmt = session
                .prepare("SELECT hits FROM visitors WHERE id = :visitor_id")
                .map_err(oracle_error)?;
            let row = stmt
                .query_single((":VISITOR_ID", visitor.as_str()))
                .map_err(oracle_error)?;
            match row {
                Some(row) => row.get(0).map_err(oracle_error),
                None => Ok(0),
            }
        })
    }

    fn minutes(&mut self, from: UnixTime, to: UnixTime) -> Result<Vec<MinuteHits>, StoreError> {
        self.pool.with_session(|session| {
            let stmt = session
                .prepare(
                    "SELECT minute_start, hits
                       FROM hits_per_minute
                      WHERE minute_start BETWEEN :first_minute AND :last_minute
                      ORDER BY minute_start",
                )
                .map_err(oracle_error)?;
            let rows = stmt
                .query(((":FIRST_MINUTE", from), (":LAST_MINUTE", to)))
                .map_err(oracle_error)?;

            let mut minutes = Vec::new();
            while let Some(row) = rows.next().map_err(oracle_error)? {
                minutes.push(MinuteHits {
                    minute: row.get(0).map_err(oracle_error)?,
                    hits: row.get(1).map_err(oracle_error)?,
                });
            }
            Ok(minutes)
        })
    }

    fn session_key(&mut self, candidate: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.pool.with_session(|session| {
            // Insert-if-absent, then read: instances starting together all end up with
            // the key of whichever insert committed first.
            let insert = session
                .prepare("INSERT INTO app_secrets (name, secret) VALUES (:name, :secret)")
                .map_err(oracle_error)?;
            match insert.execute(((":NAME", SESSION_KEY_NAME), (":SECRET", candidate))) {
                Ok(_) => session.commit().map_err(oracle_error)?,
                Err(sibyl::Error::Oracle(ORA_UNIQUE_VIOLATION, _)) => {}
                Err(err) => return Err(oracle_error(err)),
            }

            let select = session
                .prepare("SELECT secret FROM app_secrets WHERE name = :name")
                .map_err(oracle_error)?;
            let row = select
                .query_single(SESSION_KEY_NAME)
                .map_err(oracle_error)?
                .ok_or_else(|| {
                    let reason = "the session key row vanished after it was stored";
                    StoreError::unavailable("oracle: no session key", io::Error::other(reason))
                })?;
            let key: &[u8] = row.get(0).map_err(oracle_error)?;
            Ok(key.to_vec())
        })
    }
}

/// The process-wide OCI environment, made on first use.
fn environment() -> Result<&'static Environment, StoreError> {
    if let Some(env) = OCI.get() {
        return Ok(env);
    }
    let created = Environment::new().map_err(oracle_error)?;
    // Should two threads race here, the loser's environment is simply dropped.
    Ok(OCI.get_or_init(|| created))
}

/// Takes a session from the pool, waiting at most [`SESSION_WAIT_MS`] for a free one.
fn pooled_session<'p>(pool: &'p SessionPool<'static>) -> Result<Session<'p>, StoreError> {
    let session = pool.get_session().map_err(oracle_error)?;
    session
        .set_call_timeout(CALL_TIMEOUT_MS)
        .map_err(oracle_error)?;
    Ok(session)
}

/// One visitor's share of a batch.
struct VisitorShare {
    /// Hits in the batch.
    hits: i64,
    /// Earliest and latest hit in the batch.
    first: UnixTime,
    last: UnixTime,
    /// Where its hits are in the batch, in order.
    positions: Vec<usize>,
}

/// Counts a batch inside the session's open transaction; the caller commits.
fn record_batch(session: &Session, hits: &[Hit]) -> Result<Recorded, StoreError> {
    let (visitor_hits, new_visitors) = add_visitor_hits(session, hits)?;
    add_minute_hits(session, hits)?;
    let added_hits = i64::try_from(hits.len()).unwrap_or(i64::MAX);
    let (total_hits, total_visitors) = add_totals(session, added_hits, new_visitors)?;

    Ok(Recorded {
        visitor_hits,
        hits: total_hits,
        visitors: total_visitors,
    })
}

/// Adds each visitor's hits with one statement per visitor (sibyl has no array DML),
/// and returns every hit's count in batch order plus the number of new visitors.
fn add_visitor_hits(session: &Session, hits: &[Hit]) -> Result<(Vec<i64>, i64), StoreError> {
    // A BTreeMap visits visitors sorted by id: the fixed lock order.
    let mut shares: BTreeMap<&str, VisitorShare> = BTreeMap::new();
    for (position, hit) in hits.iter().enumerate() {
        let share = shares
            .entry(hit.visitor.as_str())
            .or_insert_with(|| VisitorShare {
                hits: 0,
                first: hit.at,
                last: hit.at,
                positions: Vec::new(),
            });
        share.hits += 1;
        share.first = share.first.min(hit.at);
        share.last = share.last.max(hit.at);
        share.positions.push(position);
    }

    let update = session
        .prepare(
            "UPDATE visitors
                SET hits = hits + :added, last_seen = GREATEST(last_seen, :last_seen)
              WHERE id = :visitor_id
             RETURNING hits INTO :total",
        )
        .map_err(oracle_error)?;
    let insert = session
        .prepare(
            "INSERT INTO visitors (id, hits, first_seen, last_seen)
             VALUES (:visitor_id, :added, :first_seen, :last_seen)",
        )
        .map_err(oracle_error)?;

    let mut counts = vec![0_i64; hits.len()];
    let mut new_visitors = 0_i64;
    for (id, share) in &shares {
        let (total, inserted) = update_or_insert(
            || {
                let mut total = 0_i64;
                let updated = update.execute((
                    (":ADDED", share.hits),
                    (":LAST_SEEN", share.last),
                    (":VISITOR_ID", *id),
                    (":TOTAL", &mut total),
                ))?;
                Ok((updated > 0).then_some(total))
            },
            || {
                insert.execute((
                    (":VISITOR_ID", *id),
                    (":ADDED", share.hits),
                    (":FIRST_SEEN", share.first),
                    (":LAST_SEEN", share.last),
                ))?;
                Ok(share.hits)
            },
        )?;
        if inserted {
            new_visitors += 1;
        }
        // The visitor's hits in this batch are the last `share.hits` of its total.
        let before = total - share.hits;
        for (&position, nth) in share.positions.iter().zip(1_i64..) {
            counts[position] = before + nth;
        }
    }
    Ok((counts, new_visitors))
}

/// Adds the batch to the per-minute counts, minutes in ascending order.
fn add_minute_hits(session: &Session, hits: &[Hit]) -> Result<(), StoreError> {
    let mut minutes = hits_by_minute(hits);
    minutes.sort_unstable();

    let update = session
        .prepare("UPDATE hits_per_minute SET hits = hits + :added WHERE minute_start = :minute")
        .map_err(oracle_error)?;
    let insert = session
        .prepare("INSERT INTO hits_per_minute (minute_start, hits) VALUES (:minute, :added)")
        .map_err(oracle_error)?;

    for (minute, added) in minutes {
        update_or_insert(
            || {
                let updated = update.execute(((":ADDED", added), (":MINUTE", minute)))?;
                Ok((updated > 0).then_some(()))
            },
            || {
                insert.execute(((":MINUTE", minute), (":ADDED", added)))?;
                Ok(())
            },
        )?;
    }
    Ok(())
}

/// Adds the batch to the totals row and returns the new totals. The row is seeded by
/// schema.sql; should it be missing, it is recreated from this batch.
fn add_totals(
    session: &Session,
    added_hits: i64,
    new_visitors: i64,
) -> Result<(i64, i64), StoreError> {
    let update = session
        .prepare(
            "UPDATE totals
                SET hits = hits + :added_hits, visitors = visitors + :added_visitors
              WHERE id = 1
             RETURNING hits, visitors INTO :total_hits, :total_visitors",
        )
        .map_err(oracle_error)?;
    let insert = session
        .prepare("INSERT INTO totals (id, hits, visitors) VALUES (1, :added_hits, :added_visitors)")
        .map_err(oracle_error)?;

    let (totals, _) = update_or_insert(
        || {
            let mut total_hits = 0_i64;
            let mut total_visitors = 0_i64;
            let updated = update.execute((
                (":ADDED_HITS", added_hits),
                (":ADDED_VISITORS", new_visitors),
                (":TOTAL_HITS", &mut total_hits),
                (":TOTAL_VISITORS", &mut total_visitors),
            ))?;
            Ok((updated > 0).then_some((total_hits, total_visitors)))
        },
        || {
            insert.execute((
                (":ADDED_HITS", added_hits),
                (":ADDED_VISITORS", new_visitors),
            ))?;
            Ok((added_hits, new_visitors))
        },
    )?;
    Ok(totals)
}

/// Visitors seen within the active window, counted on the `last_seen` index.
fn count_active(session: &Session, now: UnixTime) -> Result<i64, StoreError> {
    let stmt = session
        .prepare("SELECT COUNT(*) FROM visitors WHERE last_seen > :since")
        .map_err(oracle_error)?;
    let row = stmt
        .query_single(now - ACTIVE_WINDOW_SECS)
        .map_err(oracle_error)?
        .ok_or_else(|| {
            StoreError::unavailable(
                "oracle: no count",
                io::Error::other("COUNT(*) returned no row"),
            )
        })?;
    row.get(0).map_err(oracle_error)
}

/// Runs `update`; when it finds no row, runs `insert`; when that insert loses a race
/// with another session's insert of the same key (ORA-00001), updates again. Returns
/// the result and whether the row was inserted.
fn update_or_insert<T>(
    mut update: impl FnMut() -> sibyl::Result<Option<T>>,
    mut insert: impl FnMut() -> sibyl::Result<T>,
) -> Result<(T, bool), StoreError> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        if let Some(updated) = update().map_err(oracle_error)? {
            return Ok((updated, false));
        }
        match insert() {
            Ok(inserted) => return Ok((inserted, true)),
            // Oracle undoes only the failed statement; the transaction goes on.
            Err(sibyl::Error::Oracle(ORA_UNIQUE_VIOLATION, _)) if attempts < RACE_ATTEMPTS => {}
            Err(err) => return Err(oracle_error(err)),
        }
    }
}

/// Runs every statement of schema.sql and commits.
fn apply_schema(session: &Session) -> Result<(), StoreError> {
    for statement in schema_statements(SCHEMA) {
        let stmt = session.prepare(&statement).map_err(oracle_error)?;
        match stmt.execute(()) {
            Ok(_) => {}
            Err(sibyl::Error::Oracle(code, message)) if SCHEMA_RACE_CODES.contains(&code) => {
                tracing::debug!(%message, "schema statement raced another instance; skipped");
            }
            Err(err) => return Err(oracle_error(err)),
        }
    }
    session.commit().map_err(oracle_error)?;
    tracing::info!("oracle schema applied");
    Ok(())
}

/// Splits schema.sql into statements without their terminating `;`. The file keeps to
/// simple rules (see its header): comment lines stand alone and a statement ends with a
/// `;` at the end of a line.
fn schema_statements(script: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    for line in script.lines() {
        let trimmed = line.trim_end();
        if trimmed.trim_start().starts_with("--") || trimmed.trim().is_empty() {
            continue;
        }
        match trimmed.strip_suffix(';') {
            Some(last_line) => {
                current.push_str(last_line);
                statements.push(std::mem::take(&mut current).trim().to_owned());
            }
            None => {
                current.push_str(trimmed);
                current.push('\n');
            }
        }
    }
    if !current.trim().is_empty() {
        statements.push(current.trim().to_owned());
    }
    statements
}

fn missing_totals_row() -> StoreError {
    let reason = "the totals row (id 1) is missing; run schema.sql";
    StoreError::unavailable("oracle: no totals row", io::Error::other(reason))
}

/// Maps a sibyl error to a store error whose reason is the ORA code when there is one.
fn oracle_error(err: sibyl::Error) -> StoreError {
    let reason = match &err {
        sibyl::Error::Oracle(code, _) => format!("ORA-{code:05}"),
        _ => "oracle: client error".to_owned(),
    };
    StoreError::unavailable(reason, err)
}

/// Whether a failed call means the pool's connections are gone, so that the pool should
/// be rebuilt. Only errors raised by Oracle count; client-side errors (a bad bind, a
/// type mismatch) say nothing about the connection.
fn connection_lost(err: &StoreError) -> bool {
    match err {
        StoreError::Unavailable { source, .. } => matches!(
            source.downcast_ref::<sibyl::Error>(),
            Some(sibyl::Error::Oracle(code, _)) if lost_connection_code(*code)
        ),
        StoreError::Closed => false,
    }
}

/// The ORA codes that mean the connection is gone or the database cannot be reached.
/// The first group is the list that ODPI-C (under python-oracledb and node-oracledb) uses
/// to mark a session dead, less its codes for client memory faults.
fn lost_connection_code(code: i32) -> bool {
    match code {
        // The session's connection broke or its server process went away: the session
        // is unusable, and others made before the same outage most likely are too.
        // 22 invalid session ID, 28 session killed, 31 session marked for kill, 45 session
        // terminated with no replay, 603 server session ended by a fatal error, 1012 not
        // logged on, 1089 immediate shutdown in progress, 1092 instance terminated,
        // 2396 idle time exceeded, 3113 end-of-file on communication channel, 3114 not
        // connected, 3122 attempt to close the Oracle-side window, 3135 connection lost
        // contact, 12153 TNS not connected, 12537 TNS connection closed, 12547 TNS lost
        // contact, 12570 TNS packet reader failure, 12583 TNS no reader, 28511 lost RPC
        // connection.
        22 | 28 | 31 | 45 | 603 | 1012 | 1089 | 1092 | 2396 | 3113 | 3114 | 3122 | 3135 | 12153
        | 12537 | 12547 | 12570 | 12583 | 28511 => true,
        // A call cut off mid-way by a lost connection under transparent failover:
        // 25408 cannot safely replay call.
        25408 => true,
        // No new session could be logged in because the database is down, restarting or
        // unreachable. The pool itself may be fine, but its idle sessions predate the
        // outage; a rebuild attempt here costs one refused login per interval while the
        // database is away, and the first one that succeeds swaps out all of those
        // sessions at once instead of letting calls find them dead one by one.
        // 1033 initialisation or shutdown in progress, 1034 Oracle not available,
        // 1090 shutdown in progress, 12170 connect timeout, 12514 listener does not know
        // the service (not registered yet), 12528 all handlers blocked (instance
        // starting), 12541 no listener, 12543 destination host unreachable, 12545 host
        // does not exist, 28547 connection to server failed.
        1033 | 1034 | 1090 | 12170 | 12514 | 12528 | 12541 | 12543 | 12545 | 28547 => true,
        // Left out on purpose: 24457 (no free session within the wait) means every
        // session is busy, i.e. load; a second pool would add logins to a busy database
        // and fix nothing. 3156 (call timeout) means the database was slow; if the
        // connection is really gone, the session's next call fails with one of the codes
        // above, or OCI marks it disconnected.
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_splits_into_its_statements_without_comments_or_semicolons() {
        let statements = schema_statements(SCHEMA);

        assert!(
            statements
                .iter()
                .all(|s| !s.ends_with(';') && !s.contains("\n--"))
        );
        assert!(statements[0].starts_with("CREATE TABLE IF NOT EXISTS visitors ("));
        assert_eq!(statements.last().map(String::as_str), Some("COMMIT"));
        let tables = statements
            .iter()
            .filter(|s| s.starts_with("CREATE TABLE IF NOT EXISTS"))
            .count();
        assert_eq!(tables, 4);
    }

    #[test]
    fn a_statement_may_span_lines_and_a_trailing_one_needs_no_semicolon() {
        let script = "-- note\nCREATE TABLE t (\n  id NUMBER\n);\n\nSELECT 1 FROM dual";

        assert_eq!(
            schema_statements(script),
            vec![
                "CREATE TABLE t (\n  id NUMBER\n)".to_owned(),
                "SELECT 1 FROM dual".to_owned()
            ]
        );
    }

    #[test]
    fn oracle_errors_are_reported_by_their_ora_code() {
        let err = oracle_error(sibyl::Error::Oracle(12541, "TNS:no listener".into()));

        assert_eq!(err.reason(), "ORA-12541");
    }

    #[test]
    fn errors_meaning_the_connection_is_gone_call_for_a_new_pool() {
        for code in [
            3113, 3114, 3135, 12537, 12547, 28, 1012, 1092, 25408, 12541, 1033, 1034,
        ] {
            let err = oracle_error(sibyl::Error::Oracle(code, "lost".into()));

            assert!(
                connection_lost(&err),
                "ORA-{code:05} should rebuild the pool"
            );
        }
    }

    #[test]
    fn errors_about_the_work_or_the_load_keep_the_pool() {
        // Unique violation, missing table, no free session, call timeout.
        for code in [ORA_UNIQUE_VIOLATION, 942, 24457, 3156] {
            let err = oracle_error(sibyl::Error::Oracle(code, "not lost".into()));

            assert!(!connection_lost(&err), "ORA-{code:05} should keep the pool");
        }
        let client = oracle_error(sibyl::Error::Interface("bad bind".into()));
        assert!(!connection_lost(&client));
        assert!(!connection_lost(&missing_totals_row()));
        assert!(!connection_lost(&StoreError::Closed));
    }
}
