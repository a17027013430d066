//! The hit store: one interface over the embedded SQLite file and Oracle Database.
//!
//! A backend hands out blocking connections. [`Store`] keeps them off the async
//! runtime: hits queue for a single writer thread that commits everything waiting in
//! one transaction (group commit) and answers each hit only after that commit, while
//! reads borrow an idle connection on tokio's blocking pool.

mod known;
#[cfg(feature = "oracle")]
pub mod oracle;
pub mod sqlite;

use std::error::Error as StdError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::visitor::VisitorId;
use known::KnownCounts;

/// Seconds since the Unix epoch.
pub type UnixTime = i64;

/// How long after their last hit a visitor still counts as active.
pub const ACTIVE_WINDOW_SECS: i64 = 300;

/// The most hits one transaction takes; more wait for the next one.
const MAX_BATCH: usize = 512;

/// How many hits may wait for the writer before new ones wait to be queued.
const QUEUE_DEPTH: usize = 16_384;

/// How long a failed batch of hits keeps `/status` unhealthy when nothing else fails.
const FAILURE_MEMORY: Duration = Duration::from_secs(5);

/// How many read connections there are at most, all kept for reuse.
const MAX_IDLE: usize = 8;

/// One counted visit.
#[derive(Debug, Clone)]
pub struct Hit {
    /// Who visited.
    pub visitor: VisitorId,
    /// When the visit happened.
    pub at: UnixTime,
}

/// The room's numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Hits counted for everyone, ever.
    pub hits: i64,
    /// Distinct visitors, ever.
    pub visitors: i64,
    /// Visitors with a hit in the last [`ACTIVE_WINDOW_SECS`].
    pub active: i64,
}

/// What one visitor's page shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// This visitor's own hits (0 for someone not seen before).
    pub visitor: i64,
    /// The room's numbers.
    pub totals: Totals,
}

/// The outcome of one committed batch of hits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// For each hit, in order, its visitor's count including that hit.
    pub visitor_hits: Vec<i64>,
    /// Hits counted for everyone, right after the batch.
    pub hits: i64,
    /// Distinct visitors, right after the batch.
    pub visitors: i64,
}

/// Hits counted in one minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MinuteHits {
    /// Start of the minute.
    pub minute: UnixTime,
    /// Hits counted in it.
    pub hits: i64,
}

/// A failure of the store. Its `reason` is a short code that is safe to show an
/// operator (`/status`); the source holds the database's own message for the log.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached, or refused the work.
    #[error("database unavailable ({reason})")]
    Unavailable {
        /// Short machine-readable cause, such as `sqlite: ReadOnly` or `ORA-12541`.
        reason: String,
        /// The underlying error.
        #[source]
        source: Arc<dyn StdError + Send + Sync>,
    },
    /// The store is shutting down and takes no more hits.
    #[error("the store is shutting down")]
    Closed,
}

impl StoreError {
    /// Wraps a database error under a short reason.
    pub fn unavailable(
        reason: impl Into<String>,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        Self::Unavailable {
            reason: reason.into(),
            source: Arc::new(source),
        }
    }

    /// The short cause, safe for `/status`.
    pub fn reason(&self) -> &str {
        match self {
            Self::Unavailable { reason, .. } => reason,
            Self::Closed => "shutting down",
        }
    }
}

/// One blocking connection to a database. Every method may block; the [`Store`]
/// calls them only from threads where blocking is allowed.
pub trait Connection: Send {
    /// Counts every hit in one transaction and commits it before returning. The totals
    /// it returns are the database's, so they include other instances' hits too.
    fn record(&mut self, hits: &[Hit]) -> Result<Recorded, StoreError>;

    /// Visitors with a hit after `now - ACTIVE_WINDOW_SECS`. It costs a walk over the
    /// active visitors, so the store asks at most twice a second.
    fn active(&mut self, now: UnixTime) -> Result<i64, StoreError>;

    /// Reads a visitor's count (0 when unknown or `None`) and the room's numbers.
    fn counts(&mut self, visitor: Option<&VisitorId>, now: UnixTime) -> Result<Counts, StoreError>;

    /// One visitor's count (0 when unknown); the cheap read behind most polls.
    fn visitor_hits(&mut self, visitor: &VisitorId) -> Result<i64, StoreError>;

    /// Hits per minute for the minutes starting in `from..=to`; minutes without
    /// hits may be left out.
    fn minutes(&mut self, from: UnixTime, to: UnixTime) -> Result<Vec<MinuteHits>, StoreError>;

    /// Returns the stored cookie-signing key, first storing `candidate` if there is
    /// none yet. Every instance sharing the database gets the same key.
    fn session_key(&mut self, candidate: &[u8]) -> Result<Vec<u8>, StoreError>;
}

/// A database the store can open connections to.
pub trait Backend: Send + Sync {
    /// Opens a new connection.
    fn connect(&self) -> Result<Box<dyn Connection>, StoreError>;

    /// Names the database for the start-up log, without secrets.
    fn describe(&self) -> String;
}

/// The current time as [`UnixTime`].
pub fn now() -> UnixTime {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

/// Groups a batch's hits by the minute they fall in.
pub fn hits_by_minute(hits: &[Hit]) -> Vec<(UnixTime, i64)> {
    let mut minutes: Vec<(UnixTime, i64)> = Vec::new();
    for hit in hits {
        let minute = hit.at - hit.at.rem_euclid(60);
        match minutes.iter_mut().find(|(start, _)| *start == minute) {
            Some((_, count)) => *count += 1,
            None => minutes.push((minute, 1)),
        }
    }
    minutes
}

/// The hit store shared by all requests; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Arc<dyn Backend>,
    idle: Mutex<Vec<Box<dyn Connection>>>,
    /// One permit per read connection: reads beyond that wait for one to come back
    /// rather than open (and soon drop) connections of their own.
    readers: Arc<Semaphore>,
    /// What the writer and the readers tell each other.
    shared: Arc<Shared>,
    queue: Option<mpsc::Sender<Pending>>,
    writer: Option<JoinHandle<()>>,
}

/// A hit waiting for its transaction, with the way back to its request. A probe from
/// the health check carries no hit and is answered with the batch's outcome.
struct Pending {
    hit: Option<Hit>,
    reply: oneshot::Sender<Result<Counts, StoreError>>,
}

impl Store {
    /// Opens the store: connects once, so that a database that cannot be reached at all
    /// stops start-up, and starts the writer thread.
    pub fn open(backend: impl Backend + 'static) -> Result<Self, StoreError> {
        let backend: Arc<dyn Backend> = Arc::new(backend);
        let first = backend.connect()?;

        let (queue, incoming) = mpsc::channel(QUEUE_DEPTH);
        let shared = Arc::new(Shared::default());
        let writer_backend = Arc::clone(&backend);
        let writer_shared = Arc::clone(&shared);
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || write_loop(writer_backend.as_ref(), incoming, &writer_shared))
            .map_err(|err| StoreError::unavailable("no writer thread", err))?;

        Ok(Self {
            inner: Arc::new(Inner {
                backend,
                idle: Mutex::new(vec![first]),
                readers: Arc::new(Semaphore::new(MAX_IDLE)),
                shared,
                queue: Some(queue),
                writer: Some(writer),
            }),
        })
    }

    /// Names the database, without secrets.
    pub fn describe(&self) -> String {
        self.inner.backend.describe()
    }

    /// Counts one hit for `visitor`; resolves once the hit is committed.
    pub async fn hit(&self, visitor: VisitorId) -> Result<Counts, StoreError> {
        let hit = Hit { visitor, at: now() };
        self.send(Some(hit)).await
    }

    /// Queues a hit (or, with `None`, an empty probe) for the writer and waits for its
    /// commit.
    async fn send(&self, hit: Option<Hit>) -> Result<Counts, StoreError> {
        let queue = self.inner.queue.as_ref().ok_or(StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        queue
            .send(Pending { hit, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Reads a visitor's count and the room's numbers; counts nothing.
    ///
    /// The room's numbers come from the shared snapshot while it is fresh, so a poll
    /// costs at most one primary-key read however many visitors are active.
    pub async fn counts(&self, visitor: Option<VisitorId>) -> Result<Counts, StoreError> {
        let shared = &self.inner.shared;
        let held = shared.snapshot();
        let refreshing = held
            .is_none_or(|snapshot| !snapshot.is_fresh())
            .then(|| Refreshing::claim(&shared.refreshing))
            .flatten();
        if let (Some(snapshot), None) = (held, &refreshing) {
            // Fresh, or being refreshed by another request: the held numbers will do.
            let visitor = match visitor {
                Some(id) => self.visitor_hits(id).await?,
                None => 0,
            };
            return Ok(Counts {
                visitor,
                totals: snapshot.totals,
            });
        }

        let epoch = shared.known().epoch();
        let read_visitor = visitor.clone();
        let counts = self
            .read(move |conn| conn.counts(read_visitor.as_ref(), now()))
            .await;
        drop(refreshing);
        let counts = counts?;
        shared.offer(counts.totals);
        let mut known = shared.known();
        known.read_totals(counts.totals.hits);
        if let Some(id) = visitor {
            known.read_visitor(id, counts.visitor, epoch);
        }
        Ok(counts)
    }

    /// One visitor's count: from memory when known, else one read, then remembered.
    async fn visitor_hits(&self, visitor: VisitorId) -> Result<i64, StoreError> {
        let shared = &self.inner.shared;
        let epoch = {
            let known = shared.known();
            if let Some(count) = known.get(&visitor) {
                return Ok(count);
            }
            known.epoch()
        };
        let read_visitor = visitor.clone();
        let count = self
            .read(move |conn| conn.visitor_hits(&read_visitor))
            .await?;
        shared.known().read_visitor(visitor, count, epoch);
        Ok(count)
    }

    /// Hits per minute for the minutes starting in `from..=to`.
    pub async fn minutes(
        &self,
        from: UnixTime,
        to: UnixTime,
    ) -> Result<Vec<MinuteHits>, StoreError> {
        self.read(move |conn| conn.minutes(from, to)).await
    }

    /// The cookie-signing key kept in the database, created on first use.
    pub async fn session_key(&self, candidate: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        self.read(move |conn| conn.session_key(&candidate)).await
    }

    /// Checks that a hit could be committed now: an empty batch goes through the writer
    /// like any hit, so a full disk or a lost database fails it exactly as it would fail
    /// a hit (a write that is rolled back would not reach the disk at all).
    ///
    /// A commit that only rewrites a page can still succeed on a full disk (SQLite reuses
    /// its log), so a batch of real hits that failed recently also counts as unhealthy.
    pub async fn check(&self) -> Result<(), StoreError> {
        self.send(None).await?;
        match self.inner.shared.recent_failure() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    /// Runs `work` on the blocking pool with an idle connection, or a new one. A
    /// connection that failed is dropped, so the next call reconnects.
    async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let permit = Arc::clone(&inner.readers)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let idle = inner.take_idle();
            let mut conn = match idle {
                Some(conn) => conn,
                None => inner.backend.connect()?,
            };
            let result = work(conn.as_mut());
            if result.is_ok() {
                inner.give_back(conn);
            }
            result
        });
        task.await
            .map_err(|err| StoreError::unavailable("reader task failed", err))?
    }
}

impl Inner {
    fn take_idle(&self) -> Option<Box<dyn Connection>> {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    fn give_back(&self, conn: Box<dyn Connection>) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }
}

impl Drop for Inner {
    /// Closing the queue lets the writer commit what is still waiting and stop;
    /// joining it means every queued hit is stored before the store is gone.
    fn drop(&mut self) {
        self.queue.take();
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!("the store's writer thread panicked");
        }
        tracing::info!("store closed");
    }
}

/// How long the room's numbers are served from memory before they are read again. Well
/// under a poll interval, so hits taken by other instances on the same database show up
/// by the next poll; every commit on this instance refreshes hits and visitors at once.
const SNAPSHOT_TTL: Duration = Duration::from_millis(500);

/// The room's numbers as last known, and how old each part is.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    totals: Totals,
    /// When hits and visitors were read from the database (a commit returns them).
    counted_at: Instant,
    /// When the active visitors were counted.
    active_at: Instant,
}

impl Snapshot {
    fn is_fresh(&self) -> bool {
        self.counted_at.elapsed() < SNAPSHOT_TTL && self.active_at.elapsed() < SNAPSHOT_TTL
    }
}

/// The right to refresh the snapshot, held by one request at a time. Dropping it (also
/// when a client goes away mid-read and its request is cancelled) lets the next one in.
struct Refreshing<'a>(&'a AtomicBool);

impl<'a> Refreshing<'a> {
    fn claim(flag: &'a AtomicBool) -> Option<Self> {
        (!flag.swap(true, Ordering::AcqRel)).then_some(Self(flag))
    }
}

impl Drop for Refreshing<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// State the writer and the readers share.
#[derive(Default)]
struct Shared {
    snapshot: Mutex<Option<Snapshot>>,
    /// Visitors' counts, while no other instance has written.
    known: Mutex<KnownCounts>,
    /// Set while one reader refreshes a stale snapshot, so the others need not.
    refreshing: AtomicBool,
    /// The last failed batch of hits, until a batch of hits commits again.
    failure: Mutex<Option<(Instant, StoreError)>>,
}

impl Shared {
    fn snapshot(&self) -> Option<Snapshot> {
        *self.snapshot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a full read of the room's numbers, unless the snapshot already holds more
    /// hits: reads and commits race, and the numbers on a page must never go backwards.
    fn offer(&self, totals: Totals) {
        let now = Instant::now();
        let mut snapshot = self.snapshot.lock().unwrap_or_else(PoisonError::into_inner);
        if snapshot.is_none_or(|held| held.totals.hits <= totals.hits) {
            *snapshot = Some(Snapshot {
                totals,
                counted_at: now,
                active_at: now,
            });
        }
    }

    /// Takes the totals a commit returned, and a fresh active count when there is one.
    fn offer_committed(&self, recorded: &Recorded, active: Option<i64>) -> Totals {
        let now = Instant::now();
        let mut snapshot = self.snapshot.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next = snapshot.unwrap_or(Snapshot {
            totals: Totals::default(),
            counted_at: now,
            active_at: now,
        });
        if next.totals.hits <= recorded.hits {
            // Visitors new since the last count have only just arrived, so they are
            // active: between recounts, arrivals show at once.
            let arrived = (recorded.visitors - next.totals.visitors).max(0);
            next.totals.active += arrived;
            next.totals.hits = recorded.hits;
            next.totals.visitors = recorded.visitors;
            next.counted_at = now;
        }
        if let Some(active) = active {
            next.totals.active = active;
            next.active_at = now;
        }
        *snapshot = Some(next);
        next.totals
    }

    fn known(&self) -> std::sync::MutexGuard<'_, KnownCounts> {
        self.known.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn active_is_stale(&self) -> bool {
        self.snapshot()
            .is_none_or(|held| held.active_at.elapsed() >= SNAPSHOT_TTL)
    }

    fn after_batch(&self, outcome: &Result<Recorded, StoreError>, probe_only: bool) {
        if probe_only {
            return;
        }
        let mut failure = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        *failure = match outcome {
            Ok(_) => None,
            Err(err) => Some((Instant::now(), err.clone())),
        };
    }

    fn recent_failure(&self) -> Option<StoreError> {
        let failure = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        failure
            .as_ref()
            .filter(|(at, _)| at.elapsed() < FAILURE_MEMORY)
            .map(|(_, err)| err.clone())
    }
}

/// The writer thread: takes every hit waiting, commits them in one transaction, then
/// answers each. Hits that arrive during a commit form the next batch, so the number
/// of commits per second stays bounded by the disk while hits per second grow.
fn write_loop(backend: &dyn Backend, mut incoming: mpsc::Receiver<Pending>, shared: &Shared) {
    let mut conn: Option<Box<dyn Connection>> = None;
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);

    while incoming.blocking_recv_many(&mut batch, MAX_BATCH) > 0 {
        let hits: Vec<Hit> = batch
            .iter()
            .filter_map(|pending| pending.hit.clone())
            .collect();
        let result = match conn.as_mut() {
            Some(open) => open.record(&hits),
            None => backend.connect().and_then(|mut fresh| {
                let recorded = fresh.record(&hits);
                conn = Some(fresh);
                recorded
            }),
        };

        shared.after_batch(&result, hits.is_empty());

        match result {
            Ok(recorded) => {
                // The hits are committed whatever happens to this count; a failed count
                // only leaves the previous one in place.
                let active = match (shared.active_is_stale(), conn.as_mut()) {
                    (true, Some(open)) => open.active(now()).ok(),
                    _ => None,
                };
                let totals = shared.offer_committed(&recorded, active);
                shared.known().committed(&hits, &recorded);
                answer_all(&mut batch, &recorded, totals);
            }
            Err(err) => {
                tracing::warn!(error = %err, cause = ?err.source(), hits = batch.len(), "batch of hits not stored");
                conn = None;
                for pending in batch.drain(..) {
                    let _ = pending.reply.send(Err(err.clone()));
                }
            }
        }
    }
}

fn answer_all(batch: &mut Vec<Pending>, recorded: &Recorded, totals: Totals) {
    let mut visitor_hits = recorded.visitor_hits.iter();
    for pending in batch.drain(..) {
        let visitor = match pending.hit {
            Some(_) => visitor_hits.next().copied(),
            None => Some(0),
        };
        let answer = visitor
            .map(|visitor| Counts { visitor, totals })
            .ok_or(StoreError::Closed);
        // A request that gave up waiting has gone; its hit is stored all the same.
        let _ = pending.reply.send(answer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit_at(at: UnixTime) -> Hit {
        Hit {
            visitor: VisitorId::parse("0123456789abcdef0123456789abcdef").unwrap(),
            at,
        }
    }

    #[test]
    fn one_request_at_a_time_refreshes_and_letting_go_frees_the_right() {
        let flag = AtomicBool::new(false);

        let first = Refreshing::claim(&flag);
        let second = Refreshing::claim(&flag);
        drop(first);
        let third = Refreshing::claim(&flag);

        assert!(second.is_none());
        assert!(
            third.is_some(),
            "dropping the first claim (as a cancelled request does)"
        );
    }

    #[test]
    fn hits_are_grouped_by_the_minute_they_fall_in() {
        let hits = [hit_at(120), hit_at(179), hit_at(180), hit_at(121)];

        let grouped = hits_by_minute(&hits);

        assert_eq!(grouped, vec![(120, 3), (180, 1)]);
    }
}
