//! The queue's data: a job ([`Job`]), a job to enqueue ([`NewJob`]), its
//! status, the defaults and the failure back-off, and the row a job is read
//! from.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rusqlite::Row;

use crate::chunks::record::{check_time_ms, non_empty};
use crate::error::{Error, Result};

/// The lease a claim takes when none is given (the reference's 5 minutes).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(5 * 60);

/// Attempts a job gets when none is given.
pub const DEFAULT_MAX_ATTEMPTS: i64 = 5;

/// Delay before the second attempt of a failed job.
pub const RETRY_BASE_MS: i64 = 60_000;

/// The longest delay between attempts.
pub const RETRY_CAP_MS: i64 = 3_600_000;

/// The most rows one [`Jobs::list`](crate::jobs::Jobs::list) or [`Jobs::claim_many`](crate::jobs::Jobs::claim_many) call returns
/// (the store's own listing limit).
pub use crate::chunks::MAX_LIST_LIMIT;

/// Where a job is in its life; stored as the lowercase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobStatus {
    /// Waiting for `available_at_ms`, then for a worker.
    Ready,
    /// Claimed; a worker holds the lease.
    Running,
    /// Finished successfully.
    Done,
    /// Out of attempts: the dead-letter state.
    Failed,
    /// Ended by [`Jobs::cancel`](crate::jobs::Jobs::cancel) before it ran (or after it failed).
    Cancelled,
}

impl JobStatus {
    /// Every status, in life order.
    pub const ALL: [JobStatus; 5] = [
        JobStatus::Ready,
        JobStatus::Running,
        JobStatus::Done,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ];

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            JobStatus::Ready => "ready",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// No worker will claim the job again: `done`, `failed` (only a hand
    /// [`Jobs::retry`](crate::jobs::Jobs::retry) revives it) or `cancelled`.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Done | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

impl FromStr for JobStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        JobStatus::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "status",
                    format!(
                        "unknown job status {s:?} \
                         (expected ready, running, done, failed or cancelled)"
                    ),
                )
            })
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of `mem_tree_jobs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// `job:<uuid v4>`.
    pub id: String,
    /// What the job does; workers pick handlers by it.
    pub kind: String,
    /// The payload, as JSON text.
    pub payload_json: String,
    /// At most one `ready`/`running` job carries a given key.
    pub dedupe_key: Option<String>,
    /// Where the job is.
    pub status: JobStatus,
    /// Claims that counted (deferrals and graceful releases do not).
    pub attempts: i64,
    /// Attempts before the job is dead-lettered.
    pub max_attempts: i64,
    /// Not claimed before this time.
    pub available_at_ms: i64,
    /// While running: when the lease expires.
    pub locked_until_ms: Option<i64>,
    /// The last failure, deferral reason or recovery note.
    pub last_error: Option<String>,
    /// When it was enqueued.
    pub created_at_ms: i64,
    /// When it was last claimed.
    pub started_at_ms: Option<i64>,
    /// When it reached `done` or `failed`.
    pub completed_at_ms: Option<i64>,
    /// The current claim's token (running jobs only).
    pub lease_token: Option<String>,
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// What the job does.
    pub kind: String,
    /// The payload as JSON text (checked to parse).
    pub payload_json: String,
    /// Optional dedupe key.
    pub dedupe_key: Option<String>,
    /// Not claimed before this; `None` means now.
    pub available_at_ms: Option<i64>,
    /// Attempts before dead-lettering (>= 1).
    pub max_attempts: i64,
    /// Set only by the crate's own payload encoder (the Python glue), whose
    /// walk enforces what the JSON reader would: the text is then stored
    /// without a second parse.
    pub(crate) encoded: bool,
}

impl NewJob {
    /// A job of `kind` with `payload_json`, no dedupe key, available now.
    pub fn new(kind: impl Into<String>, payload_json: impl Into<String>) -> Self {
        NewJob {
            kind: kind.into(),
            payload_json: payload_json.into(),
            dedupe_key: None,
            available_at_ms: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            encoded: false,
        }
    }

    /// [`NewJob::new`] for payload text the crate's own encoder wrote
    /// (`python::payload`): [`NewJob::validate`] does not parse it again.
    #[cfg_attr(not(feature = "python"), allow(dead_code))]
    pub(crate) fn encoded(kind: String, payload_json: String) -> Self {
        NewJob {
            encoded: true,
            ..NewJob::new(kind, payload_json)
        }
    }

    /// Checks the fields; `prefix` names the job in errors (`"jobs[2]."`).
    pub fn validate(&self, prefix: &str) -> Result<()> {
        non_empty(&format!("{prefix}kind"), &self.kind)?;
        if self.max_attempts < 1 {
            return Err(Error::invalid(
                format!("{prefix}max_attempts"),
                "must be at least 1",
            ));
        }
        if self.dedupe_key.as_deref() == Some("") {
            return Err(Error::invalid(
                format!("{prefix}dedupe_key"),
                "must not be empty (use None for no key)",
            ));
        }
        if let Some(ms) = self.available_at_ms {
            check_time_ms(&format!("{prefix}available_at"), ms)?;
        }
        if self.encoded {
            return Ok(());
        }
        Self::check_payload_json(&self.payload_json, &format!("{prefix}payload"))
    }

    /// Refuses payload text the queue's JSON reader cannot parse: invalid
    /// JSON, more than 127 nested containers, or a number beyond `f64`.
    pub fn check_payload_json(payload_json: &str, field: &str) -> Result<()> {
        serde_json::from_str::<serde_json::Value>(payload_json)
            .map(drop)
            .map_err(|e| Error::invalid(field, format!("not storable JSON: {e}")))
    }
}

/// What [`Jobs::ingest`](crate::jobs::Jobs::ingest) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingest {
    /// Every gate was claimed and the batch written; false: a gate was
    /// already taken and nothing was written.
    pub claimed: bool,
    /// Chunks upserted (0 when the claim lost).
    pub upserted: usize,
    /// One id per job (`None`: a dedupe collision, or the claim lost).
    pub job_ids: Vec<Option<String>>,
}

/// The delay before the next attempt after failed attempt number `attempts`
/// (1-based): 60 s, 120 s, 240 s, … capped at 1 h.
pub fn retry_delay_ms(attempts: i64) -> i64 {
    let doublings = attempts.saturating_sub(1).clamp(0, 32) as u32;
    RETRY_BASE_MS
        .saturating_mul(1_i64 << doublings)
        .min(RETRY_CAP_MS)
}

pub(crate) const JOB_COLUMNS: &str =
    "id, kind, payload_json, dedupe_key, status, attempts, max_attempts, \
     available_at_ms, locked_until_ms, last_error, created_at_ms, started_at_ms, \
     completed_at_ms, lease_token";

pub(crate) fn job_from_row(row: &Row<'_>) -> rusqlite::Result<Job> {
    let status: String = row.get(4)?;
    let status = status.parse().map_err(|e: Error| {
        rusqlite::Error::FromSqlConversionFailure(
            4,
            rusqlite::types::Type::Text,
            e.to_string().into(),
        )
    })?;
    Ok(Job {
        id: row.get(0)?,
        kind: row.get(1)?,
        payload_json: row.get(2)?,
        dedupe_key: row.get(3)?,
        status,
        attempts: row.get(5)?,
        max_attempts: row.get(6)?,
        available_at_ms: row.get(7)?,
        locked_until_ms: row.get(8)?,
        last_error: row.get(9)?,
        created_at_ms: row.get(10)?,
        started_at_ms: row.get(11)?,
        completed_at_ms: row.get(12)?,
        lease_token: row.get(13)?,
    })
}
