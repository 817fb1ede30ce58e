//! The queue's API on an open store ([`Jobs`]): enqueue, claim, settle,
//! defer, heartbeat, release, recover, retry, cancel and the reads.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use rusqlite::{params, OptionalExtension, Transaction};

use super::claim::{active, claim_one, lease_end, prepare_claim, text_literal, Priorities};
use super::model::{job_from_row, Ingest, Job, JobStatus, NewJob, JOB_COLUMNS};
use super::settle::{done_in, failed_in, held, requeue, RECOVER_SQL};
use super::signal::{notify_enqueued, notify_if_any};
use crate::chunks::ops::{claim_source_in, upsert_in, validate_all, ChunkInput};
use crate::chunks::record::SourceKind;
use crate::chunks::record::{check_time_ms, non_empty, Chunk};
use crate::chunks::MAX_LIST_LIMIT;
use crate::db::store::Store;
use crate::error::Result;
use crate::sys::clock::now_ms;

/// The queue of one store; obtained from [`Store::jobs`].
#[derive(Debug, Clone, Copy)]
pub struct Jobs<'a> {
    store: &'a Store,
}

impl Store {
    /// The job queue stored in this database.
    pub fn jobs(&self) -> Jobs<'_> {
        Jobs { store: self }
    }
}

/// A `job:<uuid v4>` id from SQLite's random source (version nibble 4,
/// variant bits `10`).
pub(crate) const NEW_ID_SQL: &str =
    "'job:' || lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) \
     || '-4' || substr(lower(hex(randomblob(2))), 2) || '-' \
     || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) \
     || '-' || lower(hex(randomblob(6)))";

/// The insert behind every enqueue; `?1`..`?6` kind, payload, dedupe key,
/// max attempts, available at, now. Built once.
pub(crate) static ENQUEUE_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO mem_tree_jobs (id, kind, payload_json, dedupe_key, status, attempts, \
         max_attempts, available_at_ms, created_at_ms) \
         VALUES ({NEW_ID_SQL}, ?1, ?2, ?3, 'ready', 0, ?4, ?5, ?6) \
         ON CONFLICT DO NOTHING RETURNING id"
    )
});

/// [`Jobs::get`]'s statement, built once; `?1` the id.
pub(crate) static GET_SQL: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {JOB_COLUMNS} FROM mem_tree_jobs WHERE id = ?1"));

/// The limit of a [`Jobs::list`] call that does not give one (Python's
/// default): the only limit whose statements are kept in the statement cache.
pub const DEFAULT_LIST_LIMIT: i64 = 100;

/// [`Jobs::list`]'s statement for a status, a kind and a limit already
/// clamped, all written into the text (the kind as [`text_literal`]), none
/// bound: SQLite reads a bound LIMIT, status (which decides whether the
/// partial index `idx_memtree_jobs_active` applies) or kind (compared by
/// `=` in a query with an ORDER BY) when it plans, so a statement binding
/// them was re-prepared on every run after the first; a test holds the
/// count at 0.
use crate::jobs::cancel;
use crate::jobs::lease;
use crate::jobs::retry::RetryPolicy;
pub(crate) fn list_sql(status: Option<JobStatus>, kind: Option<&str>, limit: i64) -> String {
    let mut filters = Vec::with_capacity(2);
    if let Some(status) = status {
        filters.push(format!("status = '{}'", status.as_str()));
    }
    if let Some(kind) = kind {
        filters.push(format!("kind = {}", text_literal(kind)));
    }
    let filter = if filters.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", filters.join(" AND "))
    };
    format!(
        "SELECT {JOB_COLUMNS} FROM mem_tree_jobs{filter} \
         ORDER BY created_at_ms, rowid LIMIT {limit}"
    )
}

/// Enqueues `jobs` inside an open transaction (`now` stamps them); one id
/// or `None` (a dedupe collision) per job.
pub(crate) fn enqueue_in(
    tx: &Transaction<'_>,
    jobs: &[NewJob],
    now: i64,
) -> rusqlite::Result<Vec<Option<String>>> {
    let mut stmt = tx.prepare_cached(&ENQUEUE_SQL)?;
    jobs.iter()
        .map(|j| {
            stmt.query_row(
                params![
                    j.kind,
                    j.payload_json,
                    j.dedupe_key,
                    j.max_attempts,
                    j.available_at_ms.unwrap_or(now),
                    now
                ],
                |r| r.get(0),
            )
            .optional()
        })
        .collect()
}

pub(crate) fn validate_jobs(jobs: &[NewJob]) -> Result<()> {
    jobs.iter()
        .enumerate()
        .try_for_each(|(i, j)| j.validate(&format!("jobs[{i}].")))
}

impl Jobs<'_> {
    /// Enqueues one job; returns its id, or `None` when a `ready`/`running`
    /// job already has the same dedupe key (nothing is written then).
    pub fn enqueue(&self, job: &NewJob) -> Result<Option<String>> {
        job.validate("")?;
        let ids = self.store.write("enqueue", |tx| {
            enqueue_in(tx, std::slice::from_ref(job), now_ms())
        })?;
        notify_enqueued();
        Ok(ids.into_iter().next().flatten())
    }

    /// Enqueues several jobs in one transaction; one id (or `None` for a
    /// dedupe collision, within the batch too) per job, in order.
    pub fn enqueue_many(&self, jobs: &[NewJob]) -> Result<Vec<Option<String>>> {
        self.upsert_chunks_and_enqueue::<Chunk>(&[], jobs)
            .map(|(_, ids)| ids)
    }

    /// Upserts `chunks` and enqueues `jobs` in ONE transaction: an ingest and
    /// its follow-up jobs commit together or not at all. Takes owned chunks
    /// or references, so callers need not copy them.
    pub fn upsert_chunks_and_enqueue<C: ChunkInput>(
        &self,
        chunks: &[C],
        jobs: &[NewJob],
    ) -> Result<(usize, Vec<Option<String>>)> {
        validate_all(chunks)?;
        validate_jobs(jobs)?;
        if chunks.is_empty() && jobs.is_empty() {
            return Ok((0, Vec::new()));
        }
        let out = self.store.write("upsert_chunks_and_enqueue", |tx| {
            let upserted = upsert_in(tx, chunks)?;
            Ok((upserted, enqueue_in(tx, jobs, now_ms())?))
        })?;
        if !jobs.is_empty() {
            notify_enqueued();
        }
        Ok(out)
    }

    /// The ingest gate inside the write: claims every `(kind, source_id)` in
    /// `gates` in `mem_tree_ingested_sources`, then upserts `chunks` and
    /// enqueues `jobs`, all in ONE transaction. If any gate was already
    /// claimed, the transaction rolls back and nothing is written
    /// ([`Ingest::claimed`] is false): a crash can no longer leave a claimed
    /// source without its chunks. Every argument is checked first.
    pub fn ingest<C: ChunkInput>(
        &self,
        gates: &[(SourceKind, String)],
        chunks: &[C],
        jobs: &[NewJob],
    ) -> Result<Ingest> {
        for (i, (_, source_id)) in gates.iter().enumerate() {
            non_empty(&format!("claim_source[{i}].source_id"), source_id)?;
        }
        validate_all(chunks)?;
        validate_jobs(jobs)?;
        // A gate named twice in one batch is one claim, not a lost one.
        let mut seen = std::collections::HashSet::new();
        let gates: Vec<&(SourceKind, String)> = gates.iter().filter(|g| seen.insert(*g)).collect();
        if gates.is_empty() && chunks.is_empty() && jobs.is_empty() {
            return Ok(Ingest {
                claimed: true,
                upserted: 0,
                job_ids: Vec::new(),
            });
        }
        let written = self.store.write_checked("ingest", |tx| {
            let now = now_ms();
            for (kind, source_id) in &gates {
                if !claim_source_in(tx, *kind, source_id, now)? {
                    // Lost: roll back the gates already taken too.
                    return Ok(Err(()));
                }
            }
            let upserted = upsert_in(tx, chunks)?;
            Ok(Ok((upserted, enqueue_in(tx, jobs, now)?)))
        })?;
        Ok(match written {
            Ok((upserted, job_ids)) => {
                if !jobs.is_empty() {
                    notify_enqueued();
                }
                Ingest {
                    claimed: true,
                    upserted,
                    job_ids,
                }
            }
            Err(()) => Ingest {
                claimed: false,
                upserted: 0,
                job_ids: vec![None; jobs.len()],
            },
        })
    }

    /// Claims the oldest available ready job (of `kinds`, if given) for
    /// `lease`; `None` when there is none.
    pub fn claim_next(&self, lease: Duration, kinds: Option<&[String]>) -> Result<Option<Job>> {
        self.claim_at(now_ms(), lease, kinds, 1)
            .map(|jobs| jobs.into_iter().next())
    }

    /// Claims up to `limit` available ready jobs in one statement, oldest
    /// first, each with its own token.
    pub fn claim_many(
        &self,
        limit: i64,
        lease: Duration,
        kinds: Option<&[String]>,
    ) -> Result<Vec<Job>> {
        self.claim_at(now_ms(), lease, kinds, limit.clamp(1, MAX_LIST_LIMIT))
    }

    /// [`Jobs::claim_many`] at an explicit `now` (for tests and simulations).
    pub(crate) fn claim_at(
        &self,
        now: i64,
        lease: Duration,
        kinds: Option<&[String]>,
        limit: i64,
    ) -> Result<Vec<Job>> {
        self.claim_prioritized_at(now, lease, kinds, limit, &[])
    }

    /// Claims up to `limit` available ready jobs, highest [`Priorities`]
    /// first and oldest first within a priority, in one statement.
    pub fn claim_prioritized(
        &self,
        limit: i64,
        lease: Duration,
        kinds: Option<&[String]>,
        priorities: &Priorities,
    ) -> Result<Vec<Job>> {
        self.claim_prioritized_at(
            now_ms(),
            lease,
            kinds,
            limit.clamp(1, MAX_LIST_LIMIT),
            priorities,
        )
    }

    /// [`Jobs::claim_prioritized`] at an explicit `now`. Every argument is
    /// checked before the transaction begins.
    pub(crate) fn claim_prioritized_at(
        &self,
        now: i64,
        lease: Duration,
        kinds: Option<&[String]>,
        limit: i64,
        priorities: &Priorities,
    ) -> Result<Vec<Job>> {
        let Some(claim) = prepare_claim(now, lease, kinds, limit, priorities)? else {
            return Ok(Vec::new());
        };
        self.store.write("claim_next", |tx| claim.run(tx))
    }

    /// Ends a `ready`, `failed` or `running` job as `cancelled` (its dedupe
    /// key is free again); true if it was cancelled. A running job's worker
    /// learns it at its next heartbeat or settle, which fails with
    /// [`Error::LeaseLost`](crate::error::Error::LeaseLost) `{ cancelled: true }` ([`crate::jobs::cancel`]).
    /// False, changing nothing, for a job already `done` or `cancelled`,
    /// or unknown.
    pub fn cancel(&self, id: &str) -> Result<bool> {
        let now = now_ms();
        let changed = self.store.write("cancel", |tx| {
            tx.prepare_cached(cancel::CANCEL_SQL)?
                .execute(params![id, now])
        })?;
        Ok(changed == 1)
    }

    /// Settles a running job as done. [`Error::LeaseLost`](crate::error::Error::LeaseLost) if `token` is not
    /// the current lease.
    pub fn mark_done(&self, id: &str, token: &str) -> Result<()> {
        self.mark_done_many(&[(id.to_owned(), token.to_owned())])
    }

    /// Settles several running jobs as done in one transaction, all or none:
    /// one lost lease is [`Error::LeaseLost`](crate::error::Error::LeaseLost) and nothing changes.
    pub fn mark_done_many(&self, leases: &[(String, String)]) -> Result<()> {
        let now = now_ms();
        self.settle("mark_done", |tx| {
            done_in(
                tx,
                leases.iter().map(|(i, t)| (i.as_str(), t.as_str())),
                now,
            )
        })
    }

    /// Settles a running job as done and claims the next available job (as
    /// [`Jobs::claim_prioritized`] with a limit of 1) in ONE transaction:
    /// both commit or neither does. [`Error::LeaseLost`](crate::error::Error::LeaseLost) if `token` is not
    /// the current lease, and then nothing is claimed either. Every claim
    /// argument is checked before the transaction begins, so a bad one
    /// settles nothing.
    pub fn mark_done_and_claim_next(
        &self,
        id: &str,
        token: &str,
        lease: Duration,
        kinds: Option<&[String]>,
        priorities: &Priorities,
    ) -> Result<Option<Job>> {
        self.mark_done_and_claim_next_at(now_ms(), id, token, lease, kinds, priorities)
    }

    /// [`Jobs::mark_done_and_claim_next`] at an explicit `now`.
    pub(crate) fn mark_done_and_claim_next_at(
        &self,
        now: i64,
        id: &str,
        token: &str,
        lease: Duration,
        kinds: Option<&[String]>,
        priorities: &Priorities,
    ) -> Result<Option<Job>> {
        let claim = prepare_claim(now, lease, kinds, 1, priorities)?;
        self.settle("mark_done_and_claim_next", |tx| {
            if let Err(lost) = done_in(tx, [(id, token)], now)? {
                return Ok(Err(lost));
            }
            claim_one(tx, claim.as_ref()).map(Ok)
        })
    }

    /// Records a failed attempt: back to `ready` after [`retry_delay_ms`](crate::jobs::retry_delay_ms), or
    /// `failed` when it was the last attempt. Returns the new status.
    pub fn mark_failed(&self, id: &str, token: &str, error: &str) -> Result<JobStatus> {
        self.mark_failed_at(now_ms(), id, token, error)
    }

    /// [`Jobs::mark_failed`] at an explicit `now`.
    pub(crate) fn mark_failed_at(
        &self,
        now: i64,
        id: &str,
        token: &str,
        error: &str,
    ) -> Result<JobStatus> {
        self.mark_failed_with(now, id, token, error, &RetryPolicy::default())
    }

    /// [`Jobs::mark_failed_at`] with a retry back-off other than the
    /// default ([`crate::jobs::retry`]).
    pub fn mark_failed_with(
        &self,
        now: i64,
        id: &str,
        token: &str,
        error: &str,
        policy: &RetryPolicy,
    ) -> Result<JobStatus> {
        policy.validate()?;
        self.settle("mark_failed", |tx| {
            failed_in(tx, now, id, token, error, policy)
        })
    }

    /// Records a failed attempt (as [`Jobs::mark_failed`]) and claims the
    /// next available job (as [`Jobs::claim_prioritized`] with a limit of 1)
    /// in ONE transaction; returns the failed job's new status and the job
    /// claimed. [`Error::LeaseLost`](crate::error::Error::LeaseLost) claims nothing; a bad claim argument is
    /// refused before anything is written.
    pub fn mark_failed_and_claim_next(
        &self,
        id: &str,
        token: &str,
        error: &str,
        lease: Duration,
        kinds: Option<&[String]>,
        priorities: &Priorities,
    ) -> Result<(JobStatus, Option<Job>)> {
        self.mark_failed_and_claim_next_at(
            now_ms(),
            id,
            token,
            error,
            lease,
            kinds,
            priorities,
            &RetryPolicy::default(),
        )
    }

    /// [`Jobs::mark_failed_and_claim_next`] at an explicit `now`, with a
    /// retry back-off ([`crate::jobs::retry`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn mark_failed_and_claim_next_at(
        &self,
        now: i64,
        id: &str,
        token: &str,
        error: &str,
        lease: Duration,
        kinds: Option<&[String]>,
        priorities: &Priorities,
        policy: &RetryPolicy,
    ) -> Result<(JobStatus, Option<Job>)> {
        policy.validate()?;
        let claim = prepare_claim(now, lease, kinds, 1, priorities)?;
        self.settle("mark_failed_and_claim_next", |tx| {
            let status = match failed_in(tx, now, id, token, error, policy)? {
                Ok(status) => status,
                Err(lost) => return Ok(Err(lost)),
            };
            Ok(Ok((status, claim_one(tx, claim.as_ref())?)))
        })
    }

    /// Puts a running job back to `ready` until `until_ms`, recording
    /// `reason`; the attempt is refunded (a deferral does not count).
    ///
    /// As the reference's `mark_deferred` does: `last_error` is the reason
    /// as given (no prefix) and `started_at_ms` is cleared, so a job waiting
    /// out a deferral does not look as if it had started; the next claim
    /// stamps a fresh start.
    pub fn defer(&self, id: &str, token: &str, until_ms: i64, reason: &str) -> Result<()> {
        check_time_ms("until", until_ms)?;
        self.settle("defer", |tx| {
            let changed = tx
                .prepare_cached(concat!(
                    "UPDATE mem_tree_jobs SET ",
                    requeue!(),
                    ", available_at_ms = ?3, last_error = ?4, started_at_ms = NULL WHERE ",
                    held!()
                ))?
                .execute(params![id, token, until_ms, reason])?;
            Ok(if changed == 1 {
                Ok(())
            } else {
                Err(id.to_owned())
            })
        })
    }

    /// Extends a held lease to now + `lease`; returns the new expiry.
    pub fn heartbeat(&self, id: &str, token: &str, lease: Duration) -> Result<i64> {
        let until = lease_end(now_ms(), lease)?;
        self.settle("heartbeat", |tx| {
            let changed = tx
                .prepare_cached(concat!(
                    "UPDATE mem_tree_jobs SET locked_until_ms = ?3 WHERE ",
                    held!()
                ))?
                .execute(params![id, token, until])?;
            Ok(if changed == 1 {
                Ok(until)
            } else {
                Err(id.to_owned())
            })
        })
    }

    /// Hands held leases back at once (graceful shutdown): each job is
    /// `ready` now and its attempt refunded. Leases already lost are
    /// skipped; returns how many were released.
    pub fn release(&self, leases: &[(String, String)]) -> Result<usize> {
        let now = now_ms();
        self.store
            .write("release", |tx| {
                let mut stmt = tx.prepare_cached(concat!(
                    "UPDATE mem_tree_jobs SET ",
                    requeue!(),
                    ", available_at_ms = ?3 WHERE ",
                    held!()
                ))?;
                let mut released = 0;
                for (id, token) in leases {
                    released += stmt.execute(params![id, token, now])?;
                }
                Ok(released)
            })
            .map(notify_if_any)
    }

    /// Hands EVERY running job back at once, whoever holds it (attempts
    /// refunded). Only for a process that knows it is the only worker; a
    /// worker should [`Jobs::release`] its own leases instead.
    pub fn release_running_locks(&self) -> Result<usize> {
        let now = now_ms();
        self.store
            .write("release_running_locks", |tx| {
                tx.execute(
                    concat!(
                        "UPDATE mem_tree_jobs SET ",
                        requeue!(),
                        ", available_at_ms = ?1 WHERE ",
                        active!(),
                        " AND status = 'running'"
                    ),
                    [now],
                )
            })
            .map(notify_if_any)
    }

    /// Requeues running jobs whose lease expired (their worker died or
    /// stalled), and at once those whose holder is provably dead on this
    /// host ([`crate::jobs::lease`]): `ready` now, or `failed` if that claim
    /// spent the last attempt. Returns how many rows changed.
    pub fn recover_stale_locks(&self) -> Result<usize> {
        self.recover_stale_locks_at(now_ms())
    }

    /// [`Jobs::recover_stale_locks`] at an explicit `now`.
    pub(crate) fn recover_stale_locks_at(&self, now: i64) -> Result<usize> {
        self.store
            .write("recover_stale_locks", |tx| {
                Ok(tx.execute(RECOVER_SQL, [now])? + lease::reclaim_dead_in(tx, now)?)
            })
            .map(notify_if_any)
    }

    /// Puts a dead-lettered job back to `ready` now with its attempts reset.
    /// False if it is not `failed`, or an active job holds its dedupe key.
    pub fn retry(&self, id: &str) -> Result<bool> {
        let now = now_ms();
        let changed = self.store.write("retry", |tx| {
            tx.execute(
                "UPDATE mem_tree_jobs SET status = 'ready', attempts = 0, available_at_ms = ?2, \
                 completed_at_ms = NULL, locked_until_ms = NULL, lease_token = NULL \
                 WHERE id = ?1 AND status = 'failed' AND (dedupe_key IS NULL OR NOT EXISTS ( \
                     SELECT 1 FROM mem_tree_jobs AS a WHERE a.dedupe_key = mem_tree_jobs.dedupe_key \
                     AND a.status IN ('ready', 'running')))",
                params![id, now],
            )
        })?;
        Ok(notify_if_any(changed) == 1)
    }

    /// One job by id.
    pub fn get(&self, id: &str) -> Result<Option<Job>> {
        self.store.read("get_job", |conn| {
            conn.prepare_cached(&GET_SQL)?
                .query_row([id], job_from_row)
                .optional()
        })
    }

    /// Jobs oldest first, optionally of one status and kind; `limit` is
    /// clamped to 1..=[`MAX_LIST_LIMIT`].
    pub fn list(
        &self,
        status: Option<JobStatus>,
        kind: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Job>> {
        let limit = limit.clamp(1, MAX_LIST_LIMIT);
        let sql = list_sql(status, kind, limit);
        self.store.read("list_jobs", |conn| {
            let run = |stmt: &mut rusqlite::Statement<'_>| -> rusqlite::Result<Vec<Job>> {
                stmt.query_map([], job_from_row)?.collect()
            };
            // A statement per limit would crowd the cache: only the default
            // limit's are kept (one per status and kind listed); any other
            // is prepared for its call.
            if limit == DEFAULT_LIST_LIMIT {
                run(&mut *conn.prepare_cached(&sql)?)
            } else {
                run(&mut conn.prepare(&sql)?)
            }
        })
    }

    /// Job counts per status; every status is present.
    pub fn counts(&self) -> Result<HashMap<JobStatus, i64>> {
        let rows: Vec<(String, i64)> = self.store.read("count_jobs", |conn| {
            let mut stmt =
                conn.prepare_cached("SELECT status, count(*) FROM mem_tree_jobs GROUP BY status")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })?;
        let mut out: HashMap<JobStatus, i64> = JobStatus::ALL.iter().map(|&s| (s, 0)).collect();
        for (status, n) in rows {
            // A status another tool wrote is not counted under ours.
            if let Ok(s) = status.parse() {
                out.insert(s, n);
            }
        }
        Ok(out)
    }

    /// Runs a token-checked change in one transaction; `Err(id)` from `f`
    /// rolls back and becomes [`Error::LeaseLost`](crate::error::Error::LeaseLost).
    fn settle<T>(
        &self,
        context: &str,
        f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<std::result::Result<T, String>>,
    ) -> Result<T> {
        self.store
            .write_checked(context, f)?
            .map_err(|job_id| cancel::lost_lease(self, job_id))
    }
}
