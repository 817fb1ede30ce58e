//! The job queue on `mem_tree_jobs`: at-least-once, leased, deduplicated.
//!
//! A job is `ready` until a worker claims it, `running` while a lease is held,
//! then `done`, back to `ready` (a failure with attempts left, a deferral, a
//! released or expired lease) or `failed` (the dead-letter state, retryable
//! by hand with [`Jobs::retry`]). [`Jobs::cancel`] ends a `ready` or `failed`
//! job as `cancelled`; a running job is left to its worker.
//!
//! Decisions, all enforced in SQL so any process sharing the file agrees:
//!
//! - **Claims** are one `UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING`
//!   inside `BEGIN IMMEDIATE`, so two claimers (threads or processes) never
//!   get the same row. The write lock is taken up front because a rollback
//!   journal cannot upgrade a read lock while another connection writes
//!   without risking a busy deadlock.
//! - **Lease tokens**: every claim writes its holder's identity and a fresh
//!   random 128-bit token into `lease_token` (a column memtree adds; the
//!   reference's readers ignore it). A running job whose holder is provably
//!   dead on this host is taken back by the next claim or
//!   `recover_stale_locks` ([`crate::jobs::lease`]).
//!   `mark_done`, `mark_failed`, `defer`, `heartbeat` and `release` match on
//!   `(id, status = 'running', lease_token)`; a worker whose lease was
//!   recovered, re-claimed or already settled gets [`Error::LeaseLost`](crate::error::Error::LeaseLost) and
//!   the row is unchanged.
//! - **Attempts** are counted at claim, so a worker that dies mid-job has
//!   spent an attempt (a job that kills its worker ends in `failed` instead of
//!   looping forever). A deferral and a graceful release refund the attempt:
//!   neither counts.
//! - **Failure back-off**: [`retry_delay_ms`]: 60 s after the first failed
//!   attempt, doubling, capped at 1 h; the failure that spends the last
//!   attempt moves the job to `failed`.
//! - **Priorities** ([`Priorities`]): a claim takes the highest-priority
//!   kind first (the reference claims digest and seal work before
//!   extraction), FIFO (`available_at_ms`, `created_at_ms`, rowid) within a
//!   priority. The claim's SELECT is one `UNION ALL` per priority, highest
//!   first, each a merge of one index SEARCH per kind on
//!   `idx_memtree_jobs_active (status, kind, available_at_ms,
//!   created_at_ms)`, each read in claim order, so no claim sorts in a temp
//!   B-tree however many jobs share one time. A claim of any kind first
//!   finds the kinds with ready jobs by a skip-scan of the same index (one
//!   SEARCH per kind); past [`MAX_CLAIM_KINDS`] such kinds it falls back to
//!   one sorted arm for the kinds without a priority. Priorities live in
//!   the caller (the worker), not in the table: the reference's layout is
//!   unchanged.
//! - **Pages**: the queue's one index is partial (schema step 106): a row
//!   is in `idx_memtree_jobs_active` while `ready` or `running` and in no
//!   queue index once settled, so an enqueue writes one index page and a
//!   settle one. SQLite uses a partial index only for a query that repeats
//!   the index's WHERE term, so every query meant for it says
//!   [`ACTIVE`]` AND status = …`; EXPLAIN tests hold each to it.
//! - **Settle and claim in one commit**: [`Jobs::mark_done_and_claim_next`]
//!   and [`Jobs::mark_failed_and_claim_next`] settle a job and claim the
//!   next in ONE transaction (a worker's steady state is then two commits a
//!   job: the enqueue and this); a settle that finds its lease lost claims
//!   nothing.
//! - **Dedupe**: `idx_mem_tree_jobs_dedupe_active` is unique among `ready`
//!   and `running` rows only; an enqueue that collides writes nothing and
//!   returns `None`, and a finished job's key is free again.

pub mod api;
pub mod cancel;
pub mod claim;
pub mod lease;
pub mod model;
pub mod retry;
pub mod settle;
pub mod signal;
#[cfg(test)]
mod tests;

pub use api::{Jobs, DEFAULT_LIST_LIMIT};
pub use claim::{Priorities, ACTIVE, MAX_CLAIM_KINDS};
pub use model::{
    retry_delay_ms, Ingest, Job, JobStatus, NewJob, DEFAULT_LEASE, DEFAULT_MAX_ATTEMPTS,
    MAX_LIST_LIMIT, RETRY_BASE_MS, RETRY_CAP_MS,
};
pub use signal::{notify_enqueued, signal_generation, wait_for_signal};
