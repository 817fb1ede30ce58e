//! `purge`: deletes finished jobs (`done`, `failed`, `cancelled`) that
//! finished before a cutoff, in many short transactions, so a queue kept for
//! years does not grow without bound and a purge of millions of rows never
//! holds the write lock long enough to stall an enqueue.
//!
//! - **Never an active job**: `ready` and `running` are refused as statuses
//!   (a typed [`Error::InvalidInput`] before anything is written), and every
//!   DELETE names its terminal statuses in its WHERE clause, so a job that
//!   became active again (`retry`) after the purge started is not touched.
//! - **Bounded transactions**: the table is walked in rowid order by a
//!   cursor, one window of rows per transaction. The window adapts so that
//!   the work inside each transaction takes about [`TARGET_TX_MS`]: halved
//!   when a transaction took longer, doubled when it took under a quarter of
//!   it. A window bounds the rows *scanned*, not only those deleted, so a
//!   table of mostly active jobs does not make one transaction scan it all.
//! - **Age**: a job's age is its `completed_at_ms`, or its `created_at_ms`
//!   when a writer (OpenHuman's) left that empty; a job finished at the
//!   cutoff goes (so `older_than=timedelta(0)` takes every job finished by
//!   now, even within the same millisecond), one finished after it is kept.

use std::time::Instant;

use rusqlite::params;

use crate::db::store::Store;
use crate::error::{Error, Result};
use crate::jobs::JobStatus;

/// The time each purge transaction aims to hold the write lock for, before
/// its commit (the commit's fsyncs come on top).
pub const TARGET_TX_MS: u128 = 20;
/// The first window (rows scanned per transaction).
const FIRST_WINDOW: i64 = 1_000;
const MIN_WINDOW: i64 = 16;
const MAX_WINDOW: i64 = 65_536;

/// What a purge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PurgeReport {
    /// Jobs deleted.
    pub deleted: usize,
    /// Transactions committed.
    pub transactions: usize,
    /// The longest time one transaction's work took, in microseconds.
    pub longest_tx_us: u64,
}

/// The statuses a purge may delete, checked: terminal ones only, at least
/// one.
fn checked_statuses(statuses: &[JobStatus]) -> Result<String> {
    if statuses.is_empty() {
        return Err(Error::invalid("statuses", "must name at least one status"));
    }
    let mut names: Vec<&str> = Vec::with_capacity(statuses.len());
    for status in statuses {
        if !status.is_terminal() {
            return Err(Error::invalid(
                "statuses",
                format!("{status} jobs are never purged (only done, failed and cancelled ones)"),
            ));
        }
        if !names.contains(&status.as_str()) {
            names.push(status.as_str());
        }
    }
    // The names are the enum's own constants, never caller text.
    Ok(names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", "))
}

/// Deletes the jobs of `statuses` that finished at or before `cutoff_ms`; see the
/// module docs.
pub fn purge_jobs(store: &Store, cutoff_ms: i64, statuses: &[JobStatus]) -> Result<PurgeReport> {
    crate::chunks::record::check_time_ms("older_than", cutoff_ms)?;
    let in_list = checked_statuses(statuses)?;
    let window_end = "SELECT max(rowid) FROM (SELECT rowid FROM mem_tree_jobs \
         WHERE rowid > ?1 ORDER BY rowid LIMIT ?2)";
    let delete = format!(
        "DELETE FROM mem_tree_jobs WHERE rowid > ?1 AND rowid <= ?2 \
         AND status IN ({in_list}) AND coalesce(completed_at_ms, created_at_ms) <= ?3"
    );
    let mut report = PurgeReport::default();
    let mut cursor = i64::MIN;
    let mut window = FIRST_WINDOW;
    loop {
        let (end, deleted, took) = store.write("purge", |tx| {
            let started = Instant::now();
            let end: Option<i64> = tx
                .prepare_cached(window_end)?
                .query_row(params![cursor, window], |r| r.get(0))?;
            let deleted = match end {
                Some(end) => tx
                    .prepare_cached(&delete)?
                    .execute(params![cursor, end, cutoff_ms])?,
                None => 0,
            };
            Ok((end, deleted, started.elapsed()))
        })?;
        let Some(end) = end else {
            break;
        };
        report.deleted += deleted;
        report.transactions += 1;
        let took_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        report.longest_tx_us = report.longest_tx_us.max(took_us);
        cursor = end;
        if took.as_millis() > TARGET_TX_MS {
            window = (window / 2).max(MIN_WINDOW);
        } else if took.as_millis() * 4 < TARGET_TX_MS {
            window = (window * 2).min(MAX_WINDOW);
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::clock::now_ms;
    use crate::NewJob;
    use std::time::Duration;

    fn open() -> Result<(tempfile::TempDir, Store)> {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, _) = Store::open_file(&dir.path().join("chunks.db"))?;
        Ok((dir, store))
    }

    #[test]
    fn active_statuses_are_refused_before_anything_is_written() -> Result<()> {
        let (_dir, store) = open()?;
        store.jobs().enqueue(&NewJob::new("k", "{}"))?;
        for bad in [
            &[JobStatus::Ready][..],
            &[JobStatus::Done, JobStatus::Running],
            &[],
        ] {
            let err = purge_jobs(&store, now_ms() + 1, bad).unwrap_err();
            assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
        }
        assert_eq!(store.jobs().counts()?[&JobStatus::Ready], 1);
        Ok(())
    }

    #[test]
    fn only_finished_jobs_older_than_the_cutoff_go() -> Result<()> {
        let (_dir, store) = open()?;
        let jobs = store.jobs();
        let lease = Duration::from_secs(60);
        jobs.enqueue_many(&vec![NewJob::new("k", "{}"); 2_500])?;
        for _ in 0..2 {
            let claimed = jobs.claim_many(1_000, lease, None)?;
            let leases: Vec<_> = claimed
                .into_iter()
                .map(|j| (j.id, j.lease_token.unwrap_or_default()))
                .collect();
            jobs.mark_done_many(&leases)?;
        }
        let running = jobs.claim_next(lease, None)?.expect("one more");
        let cancelled = jobs.claim_next(lease, None)?.expect("and one more");
        jobs.release(&[(
            cancelled.id.clone(),
            cancelled.lease_token.clone().unwrap_or_default(),
        )])?;
        assert!(jobs.cancel(&cancelled.id)?);
        let cutoff = now_ms() + 1;
        let report = purge_jobs(&store, cutoff, &JobStatus::ALL[2..])?;
        assert_eq!(report.deleted, 2_001);
        assert!(jobs.get(&cancelled.id)?.is_none());
        let counts = jobs.counts()?;
        assert_eq!(counts[&JobStatus::Done], 0);
        assert_eq!(counts[&JobStatus::Ready], 498);
        assert_eq!(counts[&JobStatus::Running], 1);
        assert!(jobs.get(&running.id)?.is_some());
        // A job finished after the cutoff stays.
        jobs.mark_done(&running.id, running.lease_token.as_deref().unwrap_or(""))?;
        assert_eq!(
            purge_jobs(&store, cutoff - 10_000, &[JobStatus::Done])?.deleted,
            0
        );
        assert_eq!(jobs.counts()?[&JobStatus::Done], 1);
        Ok(())
    }
}
