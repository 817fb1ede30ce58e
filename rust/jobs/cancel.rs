//! Cancelling a running job cooperatively.
//!
//! [`crate::Jobs::cancel`] ends a `running` job as `cancelled` at once, as
//! it does a `ready` or `failed` one. Its worker cannot be interrupted, so
//! it learns of it at its next heartbeat or settle: those match on
//! `status = 'running'` and the lease token, find neither, change nothing,
//! and fail with [`Error::LeaseLost`] whose `cancelled` is true (Python:
//! `JobCancelledError`, a `LeaseLostError`). A handler that heartbeats stops
//! there; one that does not finishes its work, and its settle is refused
//! the same way, so the job stays `cancelled`.
//!
//! The cancelled row keeps the lease token of the claim it ended (the
//! column is otherwise cleared when a job leaves `running`), so a reader
//! can tell which claim was cancelled.

use crate::error::Error;
use crate::jobs::{JobStatus, Jobs};

/// The cancel: `?1` id, `?2` now. A running row keeps its token; others
/// have none.
pub const CANCEL_SQL: &str = "UPDATE mem_tree_jobs SET status = 'cancelled', \
     completed_at_ms = ?2, locked_until_ms = NULL, \
     lease_token = CASE WHEN status = 'running' THEN lease_token END \
     WHERE id = ?1 AND status IN ('ready', 'running', 'failed')";

/// The error for a lease found lost on `job_id`: `cancelled` when the job
/// now stands cancelled (read after the settle's transaction rolled back).
pub fn lost_lease(jobs: &Jobs<'_>, job_id: String) -> Error {
    let cancelled = matches!(
        jobs.get(&job_id),
        Ok(Some(job)) if job.status == JobStatus::Cancelled
    );
    Error::LeaseLost { job_id, cancelled }
}
