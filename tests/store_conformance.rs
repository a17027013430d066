//! One conformance suite for the hit store, written once against the public [`Store`]
//! API and run against every backend.
//!
//! SQLite: every check runs as its own test on a fresh database file.
//!
//! Oracle: one test runs every check in turn, when the crate is built with
//! `--features oracle` and `ORACLE_TEST_CONNECT_STRING`, `ORACLE_TEST_USER` and
//! `ORACLE_TEST_PASSWORD` point at a database; otherwise it prints one line saying it
//! was skipped. The Oracle schema may hold data from earlier runs, so every check uses
//! fresh visitor ids and compares totals before and after instead of absolute numbers;
//! run it against a schema that no live app writes to.
//!
//! `cargo test --test store_conformance [--features oracle]`

use std::path::PathBuf;

use hit_counter::store::sqlite::Sqlite;
use hit_counter::store::{Counts, Store, now};
use hit_counter::visitor::VisitorId;

/// A database the suite can open (and reopen) a [`Store`] on.
#[derive(Clone)]
enum Database {
    Sqlite(PathBuf),
    #[cfg(feature = "oracle")]
    Oracle(hit_counter::config::OracleSettings),
}

impl Database {
    /// Opens a store on the database; connecting blocks, so it runs on the blocking pool.
    async fn open(&self) -> Store {
        let database = self.clone();
        tokio::task::spawn_blocking(move || match database {
            Database::Sqlite(path) => Store::open(Sqlite::new(path)),
            #[cfg(feature = "oracle")]
            Database::Oracle(settings) => {
                hit_counter::store::oracle::Oracle::open(&settings).and_then(Store::open)
            }
        })
        .await
        .expect("the opening task finished")
        .expect("the store opens")
    }
}

fn new_visitor() -> VisitorId {
    VisitorId::generate().expect("the OS has randomness")
}

async fn room(store: &Store) -> Counts {
    store.counts(None).await.expect("counts are readable")
}

/// The checks, each an async function of a database. They assume nothing about what
/// the database held before, so they also hold on a shared, long-lived schema.
mod checks {
    use super::*;

    pub async fn a_first_hit_counts_one_and_adds_a_visitor(db: &Database) {
        let store = db.open().await;
        let before = room(&store).await;

        let counts = store.hit(new_visitor()).await.unwrap();

        assert_eq!(counts.visitor, 1);
        assert_eq!(counts.totals.visitors, before.totals.visitors + 1);
        assert_eq!(counts.totals.hits, before.totals.hits + 1);
        assert!(counts.totals.active >= 1, "{counts:?}");
    }

    pub async fn repeated_hits_count_up_for_the_same_visitor(db: &Database) {
        let store = db.open().await;
        let visitor = new_visitor();
        let before = room(&store).await;

        let mut seen = Vec::new();
        for _ in 0..5 {
            seen.push(store.hit(visitor.clone()).await.unwrap().visitor);
        }

        assert_eq!(seen, vec![1, 2, 3, 4, 5]);
        let after = room(&store).await;
        assert_eq!(after.totals.visitors, before.totals.visitors + 1);
        assert_eq!(after.totals.hits, before.totals.hits + 5);
    }

    pub async fn reading_counts_counts_nothing(db: &Database) {
        let store = db.open().await;
        let visitor = new_visitor();
        store.hit(visitor.clone()).await.unwrap();
        let before = store.counts(Some(visitor.clone())).await.unwrap();

        for _ in 0..3 {
            store.counts(Some(visitor.clone())).await.unwrap();
            store.counts(None).await.unwrap();
        }

        let after = store.counts(Some(visitor)).await.unwrap();
        assert_eq!(after.visitor, 1);
        assert_eq!(after.totals.hits, before.totals.hits);
        assert_eq!(after.totals.visitors, before.totals.visitors);
    }

    pub async fn an_unknown_visitor_reads_zero(db: &Database) {
        let store = db.open().await;
        let before = room(&store).await;

        let counts = store.counts(Some(new_visitor())).await.unwrap();

        assert_eq!(counts.visitor, 0);
        assert_eq!(counts.totals.visitors, before.totals.visitors);
        assert_eq!(room(&store).await.visitor, 0);
    }

    pub async fn concurrent_hits_for_one_visitor_are_counted_exactly(db: &Database) {
        const TASKS: usize = 64;
        let store = db.open().await;
        let visitor = new_visitor();
        let before = room(&store).await;

        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let store = store.clone();
                let visitor = visitor.clone();
                tokio::spawn(async move { store.hit(visitor).await })
            })
            .collect();
        let mut answered = Vec::new();
        for task in tasks {
            if let Ok(counts) = task.await.expect("the task did not panic") {
                answered.push(counts.visitor);
            }
        }

        // Every acknowledged hit got its own count: together they are exactly 1..=n.
        answered.sort_unstable();
        let acknowledged = answered.len() as i64;
        assert_eq!(answered, (1..=acknowledged).collect::<Vec<_>>());
        assert!(acknowledged > 0, "no hit was acknowledged");
        let after = store.counts(Some(visitor)).await.unwrap();
        assert_eq!(after.visitor, acknowledged);
        assert_eq!(after.totals.hits, before.totals.hits + acknowledged);
        assert_eq!(after.totals.visitors, before.totals.visitors + 1);
    }

    pub async fn totals_add_up_across_visitors(db: &Database) {
        let store = db.open().await;
        let (ada, bob, cy) = (new_visitor(), new_visitor(), new_visitor());
        let before = room(&store).await;

        for (visitor, hits) in [(&ada, 3), (&bob, 1), (&cy, 2)] {
            for _ in 0..hits {
                store.hit(visitor.clone()).await.unwrap();
            }
        }

        let after = room(&store).await;
        assert_eq!(after.totals.hits, before.totals.hits + 6);
        assert_eq!(after.totals.visitors, before.totals.visitors + 3);
        assert_eq!(store.counts(Some(ada)).await.unwrap().visitor, 3);
        assert_eq!(store.counts(Some(bob)).await.unwrap().visitor, 1);
        assert_eq!(store.counts(Some(cy)).await.unwrap().visitor, 2);
    }

    pub async fn visitors_with_a_recent_hit_count_as_active(db: &Database) {
        let store = db.open().await;

        for _ in 0..3 {
            store.hit(new_visitor()).await.unwrap();
        }

        // Visitors from an earlier run may leave the window meanwhile, so on a shared
        // database only a lower bound holds.
        let totals = room(&store).await.totals;
        assert!(totals.active >= 3, "{totals:?}");
        assert!(totals.active <= totals.visitors, "{totals:?}");
    }

    pub async fn minutes_returns_the_hits_of_each_minute(db: &Database) {
        let store = db.open().await;
        let visitor = new_visitor();
        let (from, to) = (now() - 120, now() + 120);
        let sum = |minutes: &[hit_counter::store::MinuteHits]| -> i64 {
            minutes.iter().map(|minute| minute.hits).sum()
        };
        let before = store.minutes(from, to).await.unwrap();

        for _ in 0..4 {
            store.hit(visitor.clone()).await.unwrap();
        }

        let after = store.minutes(from, to).await.unwrap();
        assert_eq!(sum(&after) - sum(&before), 4, "{before:?} then {after:?}");
        assert!(
            after
                .iter()
                .all(|m| m.minute % 60 == 0 && (from..=to).contains(&m.minute))
        );
        assert!(
            after.windows(2).all(|pair| pair[0].minute < pair[1].minute),
            "{after:?}"
        );
        assert!(store.minutes(to + 60, to + 600).await.unwrap().is_empty());
    }

    pub async fn the_first_stored_session_key_wins(db: &Database) {
        let store = db.open().await;
        let candidate = |visitor: VisitorId| visitor.as_str().repeat(2).into_bytes();
        let (first, second) = (candidate(new_visitor()), candidate(new_visitor()));

        let kept = store.session_key(first.clone()).await.unwrap();
        let later = store.session_key(second.clone()).await.unwrap();

        // On a fresh database the first candidate is stored; on a used one, the key that
        // was already there. Either way every later caller gets that same key.
        assert!(!kept.is_empty());
        assert_eq!(later, kept);
        assert_ne!(later, second);
        let reopened = db.open().await;
        assert_eq!(reopened.session_key(second).await.unwrap(), kept);
    }

    pub async fn a_healthy_store_passes_its_check(db: &Database) {
        let store = db.open().await;
        let before = room(&store).await;

        store.check().await.expect("the check passes");

        assert_eq!(room(&store).await.totals.hits, before.totals.hits);
    }

    pub async fn hits_survive_reopening_the_store(db: &Database) {
        let visitor = new_visitor();
        let store = db.open().await;
        store.hit(visitor.clone()).await.unwrap();
        let acknowledged = store.hit(visitor.clone()).await.unwrap();
        let dropped = tokio::task::spawn_blocking(move || drop(store));
        dropped.await.expect("the store closed");

        let reopened = db.open().await;
        let counts = reopened.counts(Some(visitor.clone())).await.unwrap();

        assert_eq!(counts.visitor, 2);
        assert!(counts.totals.hits >= acknowledged.totals.hits, "{counts:?}");
        assert_eq!(reopened.hit(visitor).await.unwrap().visitor, 3);
    }
}

/// Declares one SQLite test per check, each on its own fresh file, and the Oracle run
/// that goes through all checks in order on one database.
macro_rules! conformance_suite {
    ($($check:ident),+ $(,)?) => {
        mod sqlite {
            use super::*;

            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $check() {
                    let dir = tempfile::tempdir().expect("a temporary directory");
                    let db = Database::Sqlite(dir.path().join("hits.db"));
                    checks::$check(&db).await;
                }
            )+
        }

        #[cfg(feature = "oracle")]
        async fn run_every_check(db: &Database) {
            $( checks::$check(db).await; )+
        }
    };
}

conformance_suite!(
    a_first_hit_counts_one_and_adds_a_visitor,
    repeated_hits_count_up_for_the_same_visitor,
    reading_counts_counts_nothing,
    an_unknown_visitor_reads_zero,
    concurrent_hits_for_one_visitor_are_counted_exactly,
    totals_add_up_across_visitors,
    visitors_with_a_recent_hit_count_as_active,
    minutes_returns_the_hits_of_each_minute,
    the_first_stored_session_key_wins,
    a_healthy_store_passes_its_check,
    hits_survive_reopening_the_store,
);

/// The variables that point the Oracle run at a database.
const ORACLE_TEST_VARIABLES: [&str; 3] = [
    "ORACLE_TEST_CONNECT_STRING",
    "ORACLE_TEST_USER",
    "ORACLE_TEST_PASSWORD",
];

#[cfg(feature = "oracle")]
#[tokio::test(flavor = "multi_thread")]
async fn the_oracle_store_passes_every_check() {
    use hit_counter::config::{OracleSettings, Secret};

    let values: Vec<Option<String>> = ORACLE_TEST_VARIABLES
        .iter()
        .map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
        .collect();
    let [Some(connect_string), Some(user), Some(password)] =
        <[_; 3]>::try_from(values).expect("three variables")
    else {
        skipped(&format!(
            "the Oracle conformance run needs {} to point at a database",
            ORACLE_TEST_VARIABLES.join(", ")
        ));
        return;
    };

    let settings = OracleSettings {
        connect_string,
        user,
        password: Secret::new(password),
        pool_size: 4,
        // The test user needs CREATE TABLE; the schema is re-runnable, so this also
        // works where the tables already exist.
        apply_schema: true,
    };
    run_every_check(&Database::Oracle(settings)).await;
}

#[cfg(not(feature = "oracle"))]
#[tokio::test(flavor = "multi_thread")]
async fn the_oracle_store_passes_every_check() {
    skipped(&format!(
        "the Oracle conformance run needs `--features oracle` and {}",
        ORACLE_TEST_VARIABLES.join(", ")
    ));
}

/// Says why a test did not run. It writes to the stderr handle itself, which the test
/// harness does not capture (unlike `println!`), so the line shows in every run.
fn skipped(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
}
