//! Visitors' counts kept in memory, so that most polls need no database read.
//!
//! A count is known exactly when this process committed it (a commit returns it) or read
//! it. It stays right for as long as no other instance writes to the same database. That
//! is checked against the database's total hits, which every commit and every full read
//! returns: when the total moved by more than this process's own commits, someone else
//! counted hits, and everything known is forgotten.

use std::collections::HashMap;

use super::{Hit, Recorded};
use crate::visitor::VisitorId;

/// Most visitors remembered; past this, the map starts over (about 5 MiB).
const MAX_KNOWN: usize = 50_000;

/// Visitors' counts as this process last saw them.
#[derive(Debug, Default)]
pub(super) struct KnownCounts {
    counts: HashMap<VisitorId, i64>,
    /// The database's total hits when this process last knew every hit in it.
    database_hits: Option<i64>,
    /// Bumped whenever everything is forgotten, so that a read that started before
    /// cannot put back what it saw.
    epoch: u64,
}

impl KnownCounts {
    /// The visitor's count, when it is known.
    pub(super) fn get(&self, visitor: &VisitorId) -> Option<i64> {
        self.database_hits?;
        self.counts.get(visitor).copied()
    }

    /// Takes what a commit of `hits` returned.
    pub(super) fn committed(&mut self, hits: &[Hit], recorded: &Recorded) {
        let before = recorded.hits - hits.len() as i64;
        if self.database_hits != Some(before) {
            // Hits we did not commit arrived since we last looked (or we never looked).
            self.forget();
        }
        for (hit, count) in hits.iter().zip(&recorded.visitor_hits) {
            self.raise(hit.visitor.clone(), *count);
        }
        self.database_hits = Some(recorded.hits);
    }

    /// Takes the total hits a full read returned.
    pub(super) fn read_totals(&mut self, database_hits: i64) {
        match self.database_hits {
            // An older read than our last commit: nothing new.
            Some(known) if database_hits <= known => {}
            Some(_) => {
                self.forget();
                self.database_hits = Some(database_hits);
            }
            None => self.database_hits = Some(database_hits),
        }
    }

    /// Remembers a count read from the database, if nothing was forgotten since the read
    /// began in `epoch`.
    pub(super) fn read_visitor(&mut self, visitor: VisitorId, count: i64, epoch: u64) {
        if epoch == self.epoch && self.database_hits.is_some() {
            self.raise(visitor, count);
        }
    }

    /// The current epoch, to pass to [`KnownCounts::read_visitor`].
    pub(super) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Counts only grow: a late answer must not lower one.
    fn raise(&mut self, visitor: VisitorId, count: i64) {
        if self.counts.len() >= MAX_KNOWN && !self.counts.contains_key(&visitor) {
            self.counts.clear();
        }
        let known = self.counts.entry(visitor).or_insert(count);
        *known = (*known).max(count);
    }

    fn forget(&mut self) {
        self.counts.clear();
        self.epoch += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visitor(n: u8) -> VisitorId {
        VisitorId::parse(&format!("{n:032x}")).unwrap()
    }

    fn commit(known: &mut KnownCounts, who: &[u8], counts: &[i64], total_after: i64) {
        let hits: Vec<Hit> = who
            .iter()
            .map(|&n| Hit {
                visitor: visitor(n),
                at: 0,
            })
            .collect();
        let recorded = Recorded {
            visitor_hits: counts.to_vec(),
            hits: total_after,
            visitors: 0,
        };
        known.committed(&hits, &recorded);
    }

    #[test]
    fn counts_this_process_committed_are_known() {
        let mut known = KnownCounts::default();

        commit(&mut known, &[1, 2, 1], &[1, 1, 2], 3);

        assert_eq!(known.get(&visitor(1)), Some(2));
        assert_eq!(known.get(&visitor(2)), Some(1));
        assert_eq!(known.get(&visitor(3)), None);
    }

    #[test]
    fn a_commit_that_finds_foreign_hits_forgets_what_was_known() {
        let mut known = KnownCounts::default();
        commit(&mut known, &[1], &[1], 1);

        commit(&mut known, &[2], &[1], 5);

        assert_eq!(
            known.get(&visitor(1)),
            None,
            "three hits came from elsewhere"
        );
        assert_eq!(known.get(&visitor(2)), Some(1));
    }

    #[test]
    fn a_read_that_finds_foreign_hits_forgets_what_was_known() {
        let mut known = KnownCounts::default();
        commit(&mut known, &[1], &[1], 1);

        known.read_totals(2);

        assert_eq!(known.get(&visitor(1)), None);
    }

    #[test]
    fn a_read_older_than_the_last_commit_changes_nothing() {
        let mut known = KnownCounts::default();
        commit(&mut known, &[1], &[4], 10);

        known.read_totals(9);

        assert_eq!(known.get(&visitor(1)), Some(4));
    }

    #[test]
    fn a_visitor_read_from_before_a_forgetting_is_not_put_back() {
        let mut known = KnownCounts::default();
        known.read_totals(10);
        let epoch = known.epoch();

        known.read_totals(11);
        known.read_visitor(visitor(1), 3, epoch);

        assert_eq!(known.get(&visitor(1)), None);
    }

    #[test]
    fn a_late_read_never_lowers_a_count() {
        let mut known = KnownCounts::default();
        commit(&mut known, &[1], &[5], 5);

        known.read_visitor(visitor(1), 4, known.epoch());

        assert_eq!(known.get(&visitor(1)), Some(5));
    }

    #[test]
    fn nothing_is_known_before_the_database_total_is() {
        let mut known = KnownCounts::default();

        known.read_visitor(visitor(1), 3, known.epoch());

        assert_eq!(known.get(&visitor(1)), None);
    }
}
