//! Periodic jobs on the queue, crash-safe and once per time slot: a
//! schedule fires by enqueueing its job, and the job row itself records
//! that the slot fired. The check and the enqueue are one transaction, so
//! however many processes call [`Scheduler::schedule`] for a slot, exactly
//! one job exists for it, and a crash leaves the slot either fired (its job
//! committed) or not.
//!
//! On top of it, OpenHuman's daily scheduler (`jobs/scheduler.rs`): the
//! global digest of yesterday and the stale-buffer flush of today
//! ([`Scheduler::run_daily`]), the manual digest trigger and the backfill of
//! missed days.

use std::time::Duration;

use rusqlite::{OptionalExtension, Transaction};

use crate::chunk::{check_time_ms, non_empty};
use crate::error::{Error, Result};
use crate::job_kinds::Payload;
use crate::jobs::{enqueue_in, notify_enqueued, NewJob};
use crate::store::Store;

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// The periodic side of the job queue of one database.
#[derive(Debug, Clone, Copy)]
pub struct Scheduler<'a> {
    store: &'a Store,
}

impl Store {
    /// The scheduler of this database's job queue.
    pub fn scheduler(&self) -> Scheduler<'_> {
        Scheduler { store: self }
    }
}

/// The UTC calendar date (`YYYY-MM-DD`) of `ms` since the epoch (Howard
/// Hinnant's `civil_from_days`).
pub fn date_iso(ms: i64) -> String {
    let z = ms.div_euclid(DAY_MS) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Enqueues `job` in `tx` unless a job with its dedupe key exists in ANY
/// status (done and failed included): the once-only enqueue of a slot.
fn enqueue_once_in(
    tx: &Transaction<'_>,
    job: &NewJob,
    now: i64,
) -> rusqlite::Result<Option<String>> {
    let fired = tx
        .prepare_cached("SELECT 1 FROM mem_tree_jobs WHERE dedupe_key = ?1 LIMIT 1")?
        .query_row([&job.dedupe_key], |_| Ok(()))
        .optional()?
        .is_some();
    if fired {
        return Ok(None);
    }
    Ok(enqueue_in(tx, std::slice::from_ref(job), now)?
        .into_iter()
        .next()
        .flatten())
}

impl Scheduler<'_> {
    /// Enqueues `job` unless a job with its dedupe key was ever enqueued
    /// (any status): one transaction. `None` when it was.
    pub fn enqueue_once(&self, job: &NewJob, now_ms: i64) -> Result<Option<String>> {
        job.validate("")?;
        if job.dedupe_key.is_none() {
            return Err(Error::invalid(
                "dedupe_key",
                "a once-only enqueue needs a dedupe key",
            ));
        }
        let id = self
            .store
            .write("enqueue_once", |tx| enqueue_once_in(tx, job, now_ms))?;
        if id.is_some() {
            notify_enqueued();
        }
        Ok(id)
    }

    /// Fires the schedule `key` for the slot of `every` that holds `now_ms`
    /// (slots start at multiples of `every` since the epoch): enqueues a job
    /// of `kind` with `payload_json`, dedupe key `<key>@<slot start ms>`,
    /// available at the slot's start, unless the slot already fired. Returns
    /// the new job's id, or `None` when the slot had fired. Call it as often
    /// as you like, from as many processes as you like.
    pub fn schedule(
        &self,
        kind: &str,
        every: Duration,
        payload_json: &str,
        key: &str,
        now_ms: i64,
    ) -> Result<Option<String>> {
        NewJob::new(kind, payload_json).validate("")?;
        non_empty("key", key)?;
        check_time_ms("now", now_ms)?;
        let every_ms = i64::try_from(every.as_millis()).unwrap_or(i64::MAX);
        if every_ms < 1 {
            return Err(Error::invalid("every", "must be at least 1 ms"));
        }
        let slot = now_ms.div_euclid(every_ms) * every_ms;
        let mut job = NewJob::new(kind, payload_json);
        job.dedupe_key = Some(format!("{key}@{slot}"));
        job.available_at_ms = Some(slot);
        self.enqueue_once(&job, now_ms)
    }

    /// OpenHuman's manual digest trigger: enqueues `digest_daily` for
    /// `date_iso` unless one for that day is ready or running (a finished
    /// one does not stop it: a manual trigger re-runs the day).
    pub fn trigger_digest(&self, date_iso: &str) -> Result<Option<String>> {
        let payload = Payload::DigestDaily {
            date_iso: date_iso.to_owned(),
        };
        payload.validate()?;
        self.store.jobs().enqueue(&payload.new_job())
    }

    /// OpenHuman's backfill: a `digest_daily` for each of the `days_back`
    /// days before `today_ms`'s day, in ONE transaction; how many were new
    /// (a day whose digest is ready or running is skipped).
    pub fn backfill_missing_digests(&self, days_back: i64, today_ms: i64) -> Result<usize> {
        check_time_ms("today", today_ms)?;
        if days_back <= 0 {
            return Ok(0);
        }
        if days_back > 36_500 {
            return Err(Error::invalid("days_back", "at most 36500 (a century)"));
        }
        let jobs: Vec<NewJob> = (1..=days_back)
            .map(|offset| {
                Payload::DigestDaily {
                    date_iso: date_iso(today_ms - offset * DAY_MS),
                }
                .new_job()
            })
            .collect();
        let ids = self.store.jobs().enqueue_many(&jobs)?;
        Ok(ids.iter().filter(|id| id.is_some()).count())
    }

    /// OpenHuman's daily run, once per UTC day however often it is called:
    /// the global digest of yesterday and the stale-buffer flush of today
    /// (their own dedupe keys, `digest_daily:<date>` and
    /// `flush_stale:<date>`), both in ONE transaction, each enqueued only if
    /// no job with its key was ever enqueued. Returns the two new ids.
    pub fn run_daily(&self, now_ms: i64) -> Result<(Option<String>, Option<String>)> {
        check_time_ms("now", now_ms)?;
        let digest = Payload::DigestDaily {
            date_iso: date_iso(now_ms - DAY_MS),
        }
        .new_job();
        let flush = Payload::FlushStale {
            max_age_secs: None,
            date_iso: date_iso(now_ms),
        }
        .new_job();
        let ids = self.store.write("run_daily", |tx| {
            Ok((
                enqueue_once_in(tx, &digest, now_ms)?,
                enqueue_once_in(tx, &flush, now_ms)?,
            ))
        })?;
        if ids.0.is_some() || ids.1.is_some() {
            notify_enqueued();
        }
        Ok(ids)
    }
}

/// Milliseconds from `now_ms` to the next daily run, 00:05 UTC (OpenHuman's).
pub fn next_daily_run_in(now_ms: i64) -> i64 {
    let next = now_ms.div_euclid(DAY_MS) * DAY_MS + 5 * 60_000;
    if next > now_ms {
        next - now_ms
    } else {
        next + DAY_MS - now_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_calendar_days() {
        assert_eq!(date_iso(0), "1970-01-01");
        assert_eq!(date_iso(1_767_225_600_000), "2026-01-01");
        assert_eq!(date_iso(1_767_225_600_000 - 1), "2025-12-31");
        assert_eq!(date_iso(951_782_400_000), "2000-02-29");
        assert_eq!(date_iso(-1), "1969-12-31");
    }

    #[test]
    fn the_daily_run_is_at_five_past_midnight() {
        assert_eq!(next_daily_run_in(0), 5 * 60_000);
        assert_eq!(next_daily_run_in(5 * 60_000), DAY_MS);
        assert_eq!(next_daily_run_in(DAY_MS - 1), 5 * 60_000 + 1);
    }
}
