//! Settling a held lease: done, failed (with back-off or to the dead
//! letters), and the recovery of expired leases.

use rusqlite::{params, OptionalExtension, Transaction};

use super::claim::active;
use super::model::JobStatus;
use super::retry::RetryPolicy;

/// The lease recovery: running rows whose lease ended by `?1` go back to
/// `ready` (or `failed` after their last attempt). Reads only running rows
/// (through `idx_memtree_jobs_active`).
pub(crate) const RECOVER_SQL: &str = concat!(
    "UPDATE mem_tree_jobs SET \
     status = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'ready' END, \
     completed_at_ms = CASE WHEN attempts >= max_attempts THEN ?1 END, \
     available_at_ms = ?1, \
     last_error = 'lease expired (worker lost or stalled); locked until ' \
         || coalesce(locked_until_ms, 'unknown') || ' ms', \
     locked_until_ms = NULL, lease_token = NULL WHERE ",
    active!(),
    " AND status = 'running' AND (locked_until_ms IS NULL OR locked_until_ms <= ?1)"
);

/// The held-lease condition every settle matches on (a macro so the
/// statements below are assembled by `concat!` at compile time).
macro_rules! held {
    () => {
        "id = ?1 AND status = 'running' AND lease_token = ?2"
    };
}
pub(crate) use held;

/// Back to `ready` with the attempt refunded and the lease dropped: the SET
/// fragment shared by a deferral and both releases.
macro_rules! requeue {
    () => {
        "status = 'ready', attempts = max(attempts - 1, 0), \
         locked_until_ms = NULL, lease_token = NULL"
    };
}
pub(crate) use requeue;

/// Settles each `(id, token)` as done inside `tx`; `Err(id)` names the
/// first lease that is not held (the caller rolls back).
pub(crate) fn done_in<'s>(
    tx: &Transaction<'_>,
    leases: impl IntoIterator<Item = (&'s str, &'s str)>,
    now: i64,
) -> rusqlite::Result<std::result::Result<(), String>> {
    let mut stmt = tx.prepare_cached(concat!(
        "UPDATE mem_tree_jobs SET status = 'done', completed_at_ms = ?3, \
         locked_until_ms = NULL, lease_token = NULL WHERE ",
        held!()
    ))?;
    for (id, token) in leases {
        if stmt.execute(params![id, token, now])? == 0 {
            return Ok(Err(id.to_owned()));
        }
    }
    Ok(Ok(()))
}

/// Records a failed attempt inside `tx`: back to `ready` after
/// the policy's delay ([`RetryPolicy`]), or `failed` after the last attempt; `Err(id)` when
/// the lease is not held.
pub(crate) fn failed_in(
    tx: &Transaction<'_>,
    now: i64,
    id: &str,
    token: &str,
    error: &str,
    policy: &RetryPolicy,
) -> rusqlite::Result<std::result::Result<JobStatus, String>> {
    let held: Option<(i64, i64)> = tx
        .prepare_cached(concat!(
            "SELECT attempts, max_attempts FROM mem_tree_jobs WHERE ",
            held!()
        ))?
        .query_row(params![id, token], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((attempts, max_attempts)) = held else {
        return Ok(Err(id.to_owned()));
    };
    let (status, available_at, completed_at) = if policy.is_final(attempts, max_attempts) {
        (JobStatus::Failed, None, Some(now))
    } else {
        (
            JobStatus::Ready,
            Some(now.saturating_add(policy.delay_ms(attempts))),
            None,
        )
    };
    tx.prepare_cached(concat!(
        "UPDATE mem_tree_jobs SET status = ?3, \
         available_at_ms = coalesce(?4, available_at_ms), completed_at_ms = ?5, \
         last_error = ?6, locked_until_ms = NULL, lease_token = NULL WHERE ",
        held!()
    ))?
    .execute(params![
        id,
        token,
        status.as_str(),
        available_at,
        completed_at,
        error
    ])?;
    Ok(Ok(status))
}
