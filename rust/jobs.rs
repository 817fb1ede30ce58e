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
//! - **Lease tokens**: every claim writes a fresh random 128-bit token into
//!   `lease_token` (a column memtree adds; the reference's readers ignore it).
//!   `mark_done`, `mark_failed`, `defer`, `heartbeat` and `release` match on
//!   `(id, status = 'running', lease_token)`; a worker whose lease was
//!   recovered, re-claimed or already settled gets [`Error::LeaseLost`] and
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

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::str::FromStr;
use std::sync::{Condvar, LazyLock, Mutex};
use std::time::Duration;

use rusqlite::{params, OptionalExtension, Row, Transaction};

use crate::chunk::{check_time_ms, non_empty, Chunk, MAX_TIME_MS};
use crate::chunks::{claim_source_in, upsert_in, validate_all, ChunkInput};
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::SourceKind;

/// The lease a claim takes when none is given (the reference's 5 minutes).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(5 * 60);
/// Attempts a job gets when none is given.
pub const DEFAULT_MAX_ATTEMPTS: i64 = 5;
/// Delay before the second attempt of a failed job.
pub const RETRY_BASE_MS: i64 = 60_000;
/// The longest delay between attempts.
pub const RETRY_CAP_MS: i64 = 3_600_000;
/// The most rows one [`Jobs::list`] or [`Jobs::claim_many`] call returns
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
    /// Ended by [`Jobs::cancel`] before it ran (or after it failed).
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
    /// [`Jobs::retry`] revives it) or `cancelled`.
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
    encoded: bool,
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

/// What [`Jobs::ingest`] did.
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
const NEW_ID_SQL: &str = "'job:' || lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) \
     || '-4' || substr(lower(hex(randomblob(2))), 2) || '-' \
     || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) \
     || '-' || lower(hex(randomblob(6)))";

const JOB_COLUMNS: &str = "id, kind, payload_json, dedupe_key, status, attempts, max_attempts, \
     available_at_ms, locked_until_ms, last_error, created_at_ms, started_at_ms, \
     completed_at_ms, lease_token";

/// The most kinds one claim names (its own `kinds` plus the kinds given a
/// priority): each is one arm of the claim's compound SELECT, and SQLite
/// allows 500 arms.
pub const MAX_CLAIM_KINDS: usize = 256;

/// Claim priorities by kind: higher is claimed first; a kind not listed has
/// priority 0. Within a priority, jobs are claimed oldest first.
pub type Priorities = [(String, i64)];

/// The UPDATE of every claim; `{select}` is the rowid SELECT from
/// [`select_for_kinds`] (rowids: the update then reads each row directly, not
/// through the id index). `?1` now, `?2` lease end. The kinds and how many
/// are written into the text ([`text_literal`]): SQLite re-prepares a
/// statement on every run after rebinding a LIMIT parameter, or a kind
/// compared by `=` in a query with an ORDER BY (the planner reads the bound
/// values), and the claim is the longest statement memtree runs. One
/// statement per set of kinds and limit, kept in the statement cache.
fn claim_sql(select: &str) -> String {
    format!(
        "UPDATE mem_tree_jobs SET status = 'running', attempts = attempts + 1, \
         locked_until_ms = ?2, started_at_ms = ?1, lease_token = lower(hex(randomblob(16))) \
         WHERE rowid IN ({select}) RETURNING {JOB_COLUMNS}"
    )
}

/// The WHERE term of `idx_memtree_jobs_active` (schema step 106), which a
/// query must repeat for SQLite to use that partial index.
macro_rules! active {
    () => {
        "status IN ('ready', 'running')"
    };
}

/// The WHERE term of `idx_memtree_jobs_active`; see the module docs.
pub const ACTIVE: &str = active!();

/// One arm: the available ready rows of one kind (`?n`), or of every kind
/// but the listed ones, with the FIFO keys, read from
/// `idx_memtree_jobs_active` (whose WHERE term it repeats).
fn claim_arm(kind_filter: &str) -> String {
    format!(
        "SELECT available_at_ms AS a, created_at_ms AS c, rowid AS r FROM mem_tree_jobs \
         WHERE {} AND status = 'ready' AND available_at_ms <= ?1{kind_filter}",
        active!()
    )
}

/// The priority of each kind named in `priorities`, refusing an empty or
/// repeated kind.
fn rank_of(priorities: &Priorities) -> Result<HashMap<&str, i64>> {
    let mut prio: HashMap<&str, i64> = HashMap::new();
    for (i, (kind, p)) in priorities.iter().enumerate() {
        non_empty(&format!("priorities[{i}].kind"), kind)?;
        if prio.insert(kind.as_str(), *p).is_some() {
            return Err(Error::invalid(
                "priorities",
                format!("kind {kind:?} is given twice"),
            ));
        }
    }
    Ok(prio)
}

fn too_many_kinds(n: usize) -> Error {
    Error::invalid(
        "kinds",
        format!("a claim names at most {MAX_CLAIM_KINDS} kinds (kinds and priorities), got {n}"),
    )
}

/// `text` as an SQL expression of type TEXT: a blob literal of its UTF-8
/// bytes, cast. Any text fits (a quote, a NUL), nothing is interpreted,
/// and it is a constant to the planner, unlike a bound parameter.
fn text_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2 + 20);
    out.push_str("CAST(x'");
    for b in text.bytes() {
        let _ = write!(out, "{b:02x}");
    }
    out.push_str("' AS TEXT)");
    out
}

/// Adds `arm` to the tier of priority `p`.
fn add_arm(tiers: &mut Vec<(i64, Vec<String>)>, p: i64, arm: String) {
    match tiers.iter_mut().find(|(tp, _)| *tp == p) {
        Some((_, arms)) => arms.push(arm),
        None => tiers.push((p, vec![arm])),
    }
}

/// The rowid SELECT of a claim of `kinds` and the kinds it names (each
/// once); none named: nothing to claim.
fn select_for_kinds(
    kinds: &[String],
    prio: &HashMap<&str, i64>,
    limit: i64,
) -> (String, Vec<String>) {
    let mut bound: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    // (priority, arms); an arm is a kind filter.
    let mut tiers: Vec<(i64, Vec<String>)> = Vec::new();
    for kind in kinds {
        if !seen.insert(kind.as_str()) {
            continue;
        }
        bound.push(kind.clone());
        let p = prio.get(kind.as_str()).copied().unwrap_or(0);
        add_arm(&mut tiers, p, format!(" AND kind = {}", text_literal(kind)));
    }
    (tiered_select(tiers, limit), bound)
}

/// Tiers (one per priority, highest first) concatenated by `UNION ALL`,
/// which SQLite runs left to right and stops at the LIMIT; inside a tier
/// the arms (one per kind, each read in claim order from
/// `idx_memtree_jobs_active`) are merged in FIFO order, which sorts
/// nothing.
fn tiered_select(mut tiers: Vec<(i64, Vec<String>)>, limit: i64) -> String {
    tiers.sort_by_key(|(p, _)| std::cmp::Reverse(*p));
    tiers
        .iter()
        .map(|(_, arms)| {
            let merged: Vec<String> = arms.iter().map(|f| claim_arm(f)).collect();
            format!(
                "SELECT r FROM ({} ORDER BY a, c, r LIMIT {limit})",
                merged.join(" UNION ALL ")
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
        + &format!(" LIMIT {limit}")
}

/// The claim of any kind when more than [`MAX_CLAIM_KINDS`] kinds have
/// ready jobs: each kind with a priority an arm, the rest one arm sorted
/// in a temp B-tree (too many kinds for an arm each).
fn select_any_kind_sorted(priorities: &Priorities, limit: i64) -> (String, Vec<String>) {
    let mut tiers: Vec<(i64, Vec<String>)> = Vec::new();
    let mut bound: Vec<String> = Vec::new();
    for (kind, p) in priorities.iter().filter(|(_, p)| *p != 0) {
        bound.push(kind.clone());
        add_arm(
            &mut tiers,
            *p,
            format!(" AND kind = {}", text_literal(kind)),
        );
    }
    let rest = if bound.is_empty() {
        String::new()
    } else {
        let listed: Vec<String> = bound.iter().map(|k| text_literal(k)).collect();
        format!(" AND kind NOT IN ({})", listed.join(", "))
    };
    add_arm(&mut tiers, 0, rest);
    (tiered_select(tiers, limit), bound)
}

/// The kinds that have ready jobs, in order, at most one more than
/// [`MAX_CLAIM_KINDS`] (a literal LIMIT: see [`claim_sql`]): a
/// skip-scan of `idx_memtree_jobs_active`, one index SEARCH per kind
/// however many jobs each has.
const READY_KINDS_SQL: &str = concat!(
    "WITH RECURSIVE k(kind) AS (SELECT (SELECT kind FROM mem_tree_jobs WHERE ",
    active!(),
    " AND status = 'ready' ORDER BY kind LIMIT 1) \
     UNION ALL SELECT (SELECT kind FROM mem_tree_jobs WHERE ",
    active!(),
    " AND status = 'ready' AND kind > k.kind ORDER BY kind LIMIT 1) \
     FROM k WHERE k.kind IS NOT NULL) SELECT kind FROM k WHERE kind IS NOT NULL LIMIT 257"
);
const _: () = assert!(MAX_CLAIM_KINDS + 1 == 257);

fn ready_kinds(tx: &Transaction<'_>) -> rusqlite::Result<Vec<String>> {
    let mut stmt = tx.prepare_cached(READY_KINDS_SQL)?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    rows.collect()
}

/// A claim checked and built before its transaction: the statement and
/// its kinds (for a claim of any kind, built in the transaction once it has
/// found the kinds with ready jobs), the values it binds, and
/// the priority of each listed kind (which orders what the claim hands
/// out).
struct PreparedClaim<'a> {
    /// The statement and its kinds; `None`: any kind.
    fixed: Option<(String, Vec<String>)>,
    head: [rusqlite::types::Value; 2],
    limit: i64,
    priorities: &'a Priorities,
    rank: HashMap<&'a str, i64>,
}

/// Checks a claim's arguments (the lease first, then kinds and priorities)
/// and builds it; `None` when `kinds` is empty and nothing can be claimed.
fn prepare_claim<'a>(
    now: i64,
    lease: Duration,
    kinds: Option<&[String]>,
    limit: i64,
    priorities: &'a Priorities,
) -> Result<Option<PreparedClaim<'a>>> {
    let until = lease_end(now, lease)?;
    let rank = rank_of(priorities)?;
    let fixed = match kinds {
        Some(kinds) => {
            let (select, bound) = select_for_kinds(kinds, &rank, limit);
            if bound.is_empty() {
                return Ok(None);
            }
            if bound.len() > MAX_CLAIM_KINDS {
                return Err(too_many_kinds(bound.len()));
            }
            Some((claim_sql(&select), bound))
        }
        None => {
            let ranked = priorities.iter().filter(|(_, p)| *p != 0).count();
            if ranked > MAX_CLAIM_KINDS {
                return Err(too_many_kinds(ranked));
            }
            None
        }
    };
    Ok(Some(PreparedClaim {
        fixed,
        head: [now.into(), until.into()],
        limit,
        priorities,
        rank,
    }))
}

impl PreparedClaim<'_> {
    /// The statement and its kinds inside `tx`; `None`: no kind has ready
    /// jobs.
    fn statement(&self, tx: &Transaction<'_>) -> rusqlite::Result<Option<(String, Vec<String>)>> {
        if let Some(fixed) = &self.fixed {
            return Ok(Some(fixed.clone()));
        }
        let kinds = ready_kinds(tx)?;
        let (select, bound) = if kinds.is_empty() {
            return Ok(None);
        } else if kinds.len() > MAX_CLAIM_KINDS {
            select_any_kind_sorted(self.priorities, self.limit)
        } else {
            select_for_kinds(&kinds, &self.rank, self.limit)
        };
        Ok(Some((claim_sql(&select), bound)))
    }

    /// Runs the claim inside `tx`; the jobs in claim order.
    fn run(&self, tx: &Transaction<'_>) -> rusqlite::Result<Vec<Job>> {
        let Some((sql, _)) = self.statement(tx)? else {
            return Ok(Vec::new());
        };
        let mut stmt = tx.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(self.head.iter()), job_from_row)?;
        let mut jobs = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        // RETURNING yields rows in no promised order: hand them out in
        // claim order.
        jobs.sort_by_key(|j| {
            (
                std::cmp::Reverse(self.rank.get(j.kind.as_str()).copied().unwrap_or(0)),
                j.available_at_ms,
                j.created_at_ms,
            )
        });
        Ok(jobs)
    }
}

/// The lease recovery: running rows whose lease ended by `?1` go back to
/// `ready` (or `failed` after their last attempt). Reads only running rows
/// (through `idx_memtree_jobs_active`).
const RECOVER_SQL: &str = concat!(
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

/// The insert behind every enqueue; `?1`..`?6` kind, payload, dedupe key,
/// max attempts, available at, now. Built once.
static ENQUEUE_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO mem_tree_jobs (id, kind, payload_json, dedupe_key, status, attempts, \
         max_attempts, available_at_ms, created_at_ms) \
         VALUES ({NEW_ID_SQL}, ?1, ?2, ?3, 'ready', 0, ?4, ?5, ?6) \
         ON CONFLICT DO NOTHING RETURNING id"
    )
});

/// [`Jobs::get`]'s statement, built once; `?1` the id.
static GET_SQL: LazyLock<String> =
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
fn list_sql(status: Option<JobStatus>, kind: Option<&str>, limit: i64) -> String {
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

/// The held-lease condition every settle matches on (a macro so the
/// statements below are assembled by `concat!` at compile time).
macro_rules! held {
    () => {
        "id = ?1 AND status = 'running' AND lease_token = ?2"
    };
}

/// Back to `ready` with the attempt refunded and the lease dropped: the SET
/// fragment shared by a deferral and both releases.
macro_rules! requeue {
    () => {
        "status = 'ready', attempts = max(attempts - 1, 0), \
         locked_until_ms = NULL, lease_token = NULL"
    };
}

/// Bumps the enqueue signal when `n` rows may have become claimable;
/// returns `n`.
fn notify_if_any(n: usize) -> usize {
    if n > 0 {
        notify_enqueued();
    }
    n
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

fn validate_jobs(jobs: &[NewJob]) -> Result<()> {
    jobs.iter()
        .enumerate()
        .try_for_each(|(i, j)| j.validate(&format!("jobs[{i}].")))
}

/// When a lease of `lease` taken at `now` ends. Checked before any
/// transaction: a lease ending past [`MAX_TIME_MS`] (a `timedelta.max`)
/// would be written and then fail every read of `locked_until`.
fn lease_end(now: i64, lease: Duration) -> Result<i64> {
    let ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    if ms < 1 {
        return Err(Error::invalid("lease", "must be at least 1 ms"));
    }
    match now.checked_add(ms) {
        Some(until) if until <= MAX_TIME_MS => Ok(until),
        _ => Err(Error::invalid(
            "lease",
            "would end after 9999-12-31T23:59:59.999Z",
        )),
    }
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
    pub fn claim_at(
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
    pub fn claim_prioritized_at(
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

    /// Ends a `ready` or `failed` job as `cancelled` (its dedupe key is free
    /// again); true if it was cancelled. False, changing nothing, for a job
    /// that is `running` (its worker holds the lease and settles it as
    /// usual; cancel it after if it is retried), already `done` or
    /// `cancelled`, or unknown.
    pub fn cancel(&self, id: &str) -> Result<bool> {
        let now = now_ms();
        let changed = self.store.write("cancel", |tx| {
            tx.prepare_cached(
                "UPDATE mem_tree_jobs SET status = 'cancelled', completed_at_ms = ?2, \
                 locked_until_ms = NULL, lease_token = NULL \
                 WHERE id = ?1 AND status IN ('ready', 'failed')",
            )?
            .execute(params![id, now])
        })?;
        Ok(changed == 1)
    }

    /// Settles a running job as done. [`Error::LeaseLost`] if `token` is not
    /// the current lease.
    pub fn mark_done(&self, id: &str, token: &str) -> Result<()> {
        self.mark_done_many(&[(id.to_owned(), token.to_owned())])
    }

    /// Settles several running jobs as done in one transaction, all or none:
    /// one lost lease is [`Error::LeaseLost`] and nothing changes.
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
    /// both commit or neither does. [`Error::LeaseLost`] if `token` is not
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
    pub fn mark_done_and_claim_next_at(
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

    /// Records a failed attempt: back to `ready` after [`retry_delay_ms`], or
    /// `failed` when it was the last attempt. Returns the new status.
    pub fn mark_failed(&self, id: &str, token: &str, error: &str) -> Result<JobStatus> {
        self.mark_failed_at(now_ms(), id, token, error)
    }

    /// [`Jobs::mark_failed`] at an explicit `now`.
    pub fn mark_failed_at(
        &self,
        now: i64,
        id: &str,
        token: &str,
        error: &str,
    ) -> Result<JobStatus> {
        self.settle("mark_failed", |tx| failed_in(tx, now, id, token, error))
    }

    /// Records a failed attempt (as [`Jobs::mark_failed`]) and claims the
    /// next available job (as [`Jobs::claim_prioritized`] with a limit of 1)
    /// in ONE transaction; returns the failed job's new status and the job
    /// claimed. [`Error::LeaseLost`] claims nothing; a bad claim argument is
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
        self.mark_failed_and_claim_next_at(now_ms(), id, token, error, lease, kinds, priorities)
    }

    /// [`Jobs::mark_failed_and_claim_next`] at an explicit `now`.
    #[allow(clippy::too_many_arguments)]
    pub fn mark_failed_and_claim_next_at(
        &self,
        now: i64,
        id: &str,
        token: &str,
        error: &str,
        lease: Duration,
        kinds: Option<&[String]>,
        priorities: &Priorities,
    ) -> Result<(JobStatus, Option<Job>)> {
        let claim = prepare_claim(now, lease, kinds, 1, priorities)?;
        self.settle("mark_failed_and_claim_next", |tx| {
            let status = match failed_in(tx, now, id, token, error)? {
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
    /// stalled): `ready` now, or `failed` if that claim spent the last
    /// attempt. Returns how many rows changed.
    pub fn recover_stale_locks(&self) -> Result<usize> {
        self.recover_stale_locks_at(now_ms())
    }

    /// [`Jobs::recover_stale_locks`] at an explicit `now`.
    pub fn recover_stale_locks_at(&self, now: i64) -> Result<usize> {
        self.store
            .write("recover_stale_locks", |tx| tx.execute(RECOVER_SQL, [now]))
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
    /// rolls back and becomes [`Error::LeaseLost`].
    fn settle<T>(
        &self,
        context: &str,
        f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<std::result::Result<T, String>>,
    ) -> Result<T> {
        self.store
            .write_checked(context, f)?
            .map_err(|job_id| Error::LeaseLost { job_id })
    }
}

/// Settles each `(id, token)` as done inside `tx`; `Err(id)` names the
/// first lease that is not held (the caller rolls back).
fn done_in<'s>(
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
/// [`retry_delay_ms`], or `failed` after the last attempt; `Err(id)` when
/// the lease is not held.
fn failed_in(
    tx: &Transaction<'_>,
    now: i64,
    id: &str,
    token: &str,
    error: &str,
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
    let (status, available_at, completed_at) = if attempts >= max_attempts {
        (JobStatus::Failed, None, Some(now))
    } else {
        (
            JobStatus::Ready,
            Some(now.saturating_add(retry_delay_ms(attempts))),
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

/// The first job `claim` takes inside `tx` (none without a claim).
fn claim_one(
    tx: &Transaction<'_>,
    claim: Option<&PreparedClaim<'_>>,
) -> rusqlite::Result<Option<Job>> {
    match claim {
        Some(claim) => Ok(claim.run(tx)?.into_iter().next()),
        None => Ok(None),
    }
}

fn job_from_row(row: &Row<'_>) -> rusqlite::Result<Job> {
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

/// The process-wide enqueue signal: a generation counter bumped whenever a
/// job may have become claimable in this process, so idle workers wake at
/// once instead of at their next poll.
static SIGNAL: LazyLock<(Mutex<u64>, Condvar)> = LazyLock::new(Default::default);

/// The current generation of the enqueue signal.
pub fn signal_generation() -> u64 {
    *SIGNAL.0.lock().unwrap_or_else(|p| p.into_inner())
}

/// Bumps the enqueue signal and wakes every waiter.
pub fn notify_enqueued() {
    let (lock, cvar) = &*SIGNAL;
    *lock.lock().unwrap_or_else(|p| p.into_inner()) += 1;
    cvar.notify_all();
}

/// Waits until the generation differs from `seen` or `timeout` passes;
/// returns the generation then. Returns at once if it already differs.
pub fn wait_for_signal(seen: u64, timeout: Duration) -> u64 {
    let (lock, cvar) = &*SIGNAL;
    let guard = lock.lock().unwrap_or_else(|p| p.into_inner());
    let (guard, _) = cvar
        .wait_timeout_while(guard, timeout, |g| *g == seen)
        .unwrap_or_else(|p| p.into_inner());
    *guard
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal valid chunk of source `chat:s`.
    fn small_chunk(id: &str) -> Chunk {
        Chunk {
            id: id.into(),
            content: "hello".into(),
            source_kind: crate::SourceKind::Chat,
            source_id: "s".into(),
            source_ref: None,
            owner: "o".into(),
            timestamp_ms: 1,
            time_range_start_ms: 1,
            time_range_end_ms: 1,
            tags: vec![],
            token_count: 1,
            seq_in_source: 0,
            created_at_ms: 1,
            lifecycle_status: "admitted".into(),
            embedding: None,
            content_path: None,
            content_sha256: None,
        }
    }

    fn open() -> Result<(tempfile::TempDir, Store)> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", Path::new("."), e))?;
        let (store, _) = Store::open_file(&dir.path().join("chunks.db"))?;
        Ok((dir, store))
    }

    use std::path::Path;

    const LEASE: Duration = Duration::from_secs(60);

    fn job(kind: &str, key: Option<&str>) -> NewJob {
        NewJob {
            dedupe_key: key.map(str::to_owned),
            ..NewJob::new(kind, r#"{"n": 1}"#)
        }
    }

    fn lease_of(j: &Job) -> (String, String) {
        (j.id.clone(), j.lease_token.clone().unwrap_or_default())
    }

    #[test]
    fn unrepresentable_times_are_refused_before_any_write() -> Result<()> {
        let (_dir, store) = open()?;
        let jobs = store.jobs();
        jobs.enqueue(&job("k", None))?;
        let held = jobs.claim_next(LEASE, None)?.expect("claim");
        let (id, token) = lease_of(&held);
        let forever = Duration::from_secs(u64::MAX);
        let invalid = |r: Result<()>| matches!(r, Err(Error::InvalidInput { .. }));
        assert!(invalid(jobs.heartbeat(&id, &token, forever).map(drop)));
        assert!(invalid(jobs.claim_next(forever, None).map(drop)));
        assert!(invalid(jobs.defer(&id, &token, MAX_TIME_MS + 1, "")));
        assert!(invalid(jobs.defer(&id, &token, i64::MIN, "")));
        let late = NewJob {
            available_at_ms: Some(MAX_TIME_MS + 1),
            ..job("k", None)
        };
        assert!(invalid(jobs.enqueue(&late).map(drop)));
        let row = jobs.get(&id)?.expect("row");
        assert_eq!(row.locked_until_ms, held.locked_until_ms, "lease untouched");
        assert_eq!(jobs.counts()?.values().sum::<i64>(), 1);
        // The edge itself is accepted.
        jobs.defer(&id, &token, MAX_TIME_MS, "until the end of time")?;
        Ok(())
    }

    #[test]
    fn back_off_doubles_from_a_minute_and_caps_at_an_hour() {
        let delays: Vec<i64> = (1..=9).map(retry_delay_ms).collect();
        assert_eq!(
            delays,
            [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600].map(|s| s * 1000)
        );
        assert_eq!(retry_delay_ms(0), 60_000);
        assert_eq!(retry_delay_ms(i64::MAX), RETRY_CAP_MS);
    }

    #[test]
    fn ids_look_like_uuid_v4() -> Result<()> {
        let (_dir, store) = open()?;
        let id = store.jobs().enqueue(&job("k", None))?.unwrap_or_default();
        let uuid = id.strip_prefix("job:").unwrap_or_default();
        let parts: Vec<&str> = uuid.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
        assert!("89ab".contains(&parts[3][..1]));
        Ok(())
    }

    #[test]
    fn dedupe_among_active_jobs_only() -> Result<()> {
        let (_dir, store) = open()?;
        let jobs = store.jobs();
        let first = jobs.enqueue(&job("k", Some("key")))?;
        assert!(first.is_some());
        assert_eq!(jobs.enqueue(&job("k", Some("key")))?, None);
        let claimed = jobs.claim_next(LEASE, None)?.expect("a job");
        assert_eq!(
            jobs.enqueue(&job("k", Some("key")))?,
            None,
            "running is active"
        );
        jobs.mark_done(&claimed.id, claimed.lease_token.as_deref().unwrap_or(""))?;
        assert!(
            jobs.enqueue(&job("k", Some("key")))?.is_some(),
            "done frees the key"
        );
        let batch = jobs.enqueue_many(&[job("k", Some("b")), job("k", Some("b"))])?;
        assert!(batch[0].is_some() && batch[1].is_none());
        Ok(())
    }

    #[test]
    fn invalid_jobs_write_nothing() -> Result<()> {
        let (_dir, store) = open()?;
        let jobs = store.jobs();
        let bad = NewJob::new("k", "{not json");
        let err = jobs.enqueue_many(&[job("k", None), bad]).unwrap_err();
        assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
        let zero = NewJob {
            max_attempts: 0,
            ..job("k", None)
        };
        assert!(jobs.enqueue(&zero).is_err());
        assert_eq!(jobs.counts()?[&JobStatus::Ready], 0);
        Ok(())
    }

    #[test]
    fn claim_takes_oldest_available_of_the_kinds() -> Result<()> {
        let (_dir, store) = open()?;
        let jobs = store.jobs();
        let now = now_ms();
        let later = NewJob {
            available_at_ms: Some(now + 3_600_000),
            ..job("a", None)
        };
        jobs.enqueue(&later)?;
        let a = jobs.enqueue(&job("a", None))?;
        let b = jobs.enqueue(&job("b", None))?;
        let only_b = jobs.claim_next(LEASE, Some(&["b".to_owned()]))?;
        assert_eq!(only_b.map(|j| Some(j.id)), Some(b));
        let next = jobs.claim_next(LEASE, None)?.expect("a");
        assert_eq!(Some(next.id.clone()), a);
        assert_eq!(next.status, JobStatus::Running);
        assert_eq!(next.attempts, 1);
        assert!(next.lease_token.as_deref().is_some_and(|t| t.len() == 32));
        assert!(
            jobs.claim_next(LEASE, None)?.is_none(),
            "the rest is in the future"
        );
        Ok(())
    }

    #[test]
    fn failure_backs_off_then_dead_letters_and_retry_revives() -> Result<()> {
        let (_dir, store) = open()?;
        let jobs = store.jobs();
        let id = jobs
            .enqueue(&NewJob {
                max_attempts: 3,
                ..job("k", Some("dk"))
            })?
            .expect("id");
        let mut now = now_ms();
        for attempt in 1..=3 {
            let claimed = jobs.claim_at(now, LEASE, None, 1)?;
            let j = claimed.first().expect("claimable");
            assert_eq!(j.attempts, attempt);
            let (jid, token) = lease_of(j);
            let status = jobs.mark_failed_at(now, &jid, &token, "boom")?;
            let row = jobs.get(&id)?.expect("row");
            if attempt < 3 {
                assert_eq!(status, JobStatus::Ready);
                assert_eq!(row.available_at_ms, now + retry_delay_ms(attempt));
                assert!(
                    jobs.claim_at(now, LEASE, None, 1)?.is_empty(),
                    "backing off"
                );
                now = row.available_at_ms;
            } else {
                assert_eq!(status, JobStatus::Failed);
                assert_eq!(row.completed_at_ms, Some(now));
            }
            assert_eq!(row.last_error.as_deref(), Some("boom"));
            assert_eq!(row.lease_token, None);
        }
        assert_eq!(jobs.list(Some(JobStatus::Failed), None, 10)?.len(), 1);
        // The key is free while dead-lettered; a new holder blocks the retry.
        let blocker = jobs.enqueue(&job("k", Some("dk")))?.expect("key free");
        assert!(!jobs.retry(&id)?);
        let b = jobs.claim_next(LEASE, None)?.expect("blocker");
        assert_eq!(b.id, blocker);
        jobs.mark_done(&b.id, b.lease_token.as_deref().unwrap_or(""))?;
        assert!(jobs.retry(&id)?);
        let row = jobs.get(&id)?.expect("row");
        assert_eq!((row.status, row.attempts), (JobStatus::Ready, 0));
        assert!(!jobs.retry(&id)?, "only failed jobs are retried");
        Ok(())
    }

    #[test]
    fn stale_settles_change_nothing() -> Result<()> {
        let (_dir, store) = open()?;
        let jobs = store.jobs();
        jobs.enqueue(&job("k", None))?;
        let now = now_ms();
        let first = jobs.claim_at(now, Duration::from_millis(10), None, 1)?;
        let (id, stale) = lease_of(&first[0]);
        assert_eq!(
            jobs.recover_stale_locks_at(now + 5)?,
            0,
            "lease still valid"
        );
        assert_eq!(jobs.recover_stale_locks_at(now + 10)?, 1);
        let second = jobs.claim_at(now + 20, LEASE, None, 1)?;
        let (_, fresh) = lease_of(&second[0]);
        assert_eq!(second[0].attempts, 2, "the lost claim counted");
        let before = jobs.get(&id)?;
        let lost = |r: Result<()>| matches!(r, Err(Error::LeaseLost { .. }));
        assert!(lost(jobs.mark_done(&id, &stale)));
        assert!(lost(jobs.mark_failed(&id, &stale, "x").map(|_| ())));
        assert!(lost(jobs.defer(&id, &stale, now, "x")));
        assert!(lost(jobs.heartbeat(&id, &stale, LEASE).map(|_| ())));
        assert_eq!(jobs.release(&[(id.clone(), stale.clone())])?, 0);
        assert_eq!(jobs.get(&id)?, before, "the row is untouched");
        jobs.mark_done(&id, &fresh)?;
        assert!(lost(jobs.mark_done(&id, &fresh)), "settled twice");
        Ok(())
    }

    #[test]
    fn mark_done_many_is_all_or_nothing() -> Result<()> {
        let (_dir, store) = open()?;
        let jobs = store.jobs();
        jobs.enqueue_many(&[job("k", None), job("k", None)])?;
        let claimed = jobs.claim_many(10, LEASE, None)?;
        assert_eq!(claimed.len(), 2);
        let mut leases: Vec<_> = claimed.iter().map(lease_of).collect();
        leases[1].1 = "not-the-token".into();
        assert!(jobs.mark_done_many(&leases).is_err());
        assert_eq!(jobs.counts()?[&JobStatus::Running], 2);
        leases[1] = lease_of(&claimed[1]);
        jobs.mark_done_many(&leases)?;
        assert_eq!(jobs.counts()?[&JobStatus::Done], 2);
        Ok(())
    }

    #[test]
    fn defer_and_release_do_not_count_as_attempts() -> Result<()> {
        let (_dir, store) = open()?;
        let jobs = store.jobs();
        let id = jobs
            .enqueue(&NewJob {
                max_attempts: 1,
                ..job("k", None)
            })?
            .expect("id");
        let now = now_ms();
        for _ in 0..3 {
            let j = jobs.claim_next(LEASE, None)?.expect("claim");
            let (jid, token) = lease_of(&j);
            jobs.defer(&jid, &token, now, "rate limited")?;
            let row = jobs.get(&jid)?.expect("row");
            assert_eq!(row.started_at_ms, None, "a deferral clears the start");
            assert_eq!(row.last_error.as_deref(), Some("rate limited"));
        }
        let j = jobs.claim_next(LEASE, None)?.expect("claim");
        assert_eq!(j.attempts, 1);
        assert_eq!(j.last_error.as_deref(), Some("rate limited"));
        assert_eq!(jobs.release(&[lease_of(&j)])?, 1);
        let j = jobs.claim_next(LEASE, None)?.expect("claim");
        assert_eq!(j.attempts, 1);
        let until = jobs.heartbeat(&j.id, j.lease_token.as_deref().unwrap_or(""), LEASE)?;
        assert!(until >= j.locked_until_ms.unwrap_or(0));
        assert_eq!(jobs.release_running_locks()?, 1);
        let row = jobs.get(&id)?.expect("row");
        assert_eq!((row.status, row.attempts), (JobStatus::Ready, 0));
        Ok(())
    }

    #[test]
    fn expired_last_attempt_is_dead_lettered() -> Result<()> {
        let (_dir, store) = open()?;
        let jobs = store.jobs();
        let id = jobs
            .enqueue(&NewJob {
                max_attempts: 1,
                ..job("k", None)
            })?
            .expect("id");
        let now = now_ms();
        jobs.claim_at(now, Duration::from_millis(1), None, 1)?;
        assert_eq!(jobs.recover_stale_locks_at(now + 1)?, 1);
        let row = jobs.get(&id)?.expect("row");
        assert_eq!(row.status, JobStatus::Failed);
        assert!(row.last_error.unwrap_or_default().contains("lease expired"));
        Ok(())
    }

    #[test]
    fn chunks_and_jobs_commit_together() -> Result<()> {
        let (_dir, store) = open()?;
        let chunk = small_chunk("c1");
        let bad = NewJob::new("", "{}");
        assert!(store
            .jobs()
            .upsert_chunks_and_enqueue(std::slice::from_ref(&chunk), &[bad])
            .is_err());
        assert_eq!(store.count_chunks()?, 0, "nothing written");
        let (n, ids) = store
            .jobs()
            .upsert_chunks_and_enqueue(&[chunk], &[job("summarise", None)])?;
        assert_eq!((n, ids.len()), (1, 1));
        assert_eq!(store.count_chunks()?, 1);
        Ok(())
    }

    /// A claim's kinds filter and priorities.
    type ClaimShape = (Option<Vec<String>>, Vec<(String, i64)>);

    /// The plan of `sql` (EXPLAIN QUERY PLAN's detail lines) with `values`.
    fn plan_of(
        store: &Store,
        sql: &str,
        values: Vec<rusqlite::types::Value>,
    ) -> Result<Vec<String>> {
        let sql = format!("EXPLAIN QUERY PLAN {sql}");
        store.read("plan", |conn| {
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(values.iter()), |r| r.get(3))?;
            rows.collect()
        })
    }

    /// The plan of the statement `claim` runs now (for a claim of any
    /// kind, after finding the kinds with ready jobs).
    fn claim_plan(store: &Store, claim: &PreparedClaim<'_>) -> Result<Vec<String>> {
        store.write("plan", |tx| {
            let (sql, _) = claim.statement(tx)?.expect("kinds with ready jobs");
            let mut stmt = tx.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
            let rows =
                stmt.query_map(rusqlite::params_from_iter(claim.head.iter()), |r| r.get(3))?;
            rows.collect()
        })
    }

    #[test]
    fn a_claim_statement_is_prepared_once_not_per_run() -> Result<()> {
        let (_dir, store) = open()?;
        let jobs = store.jobs();
        let now = now_ms();
        jobs.enqueue_many(&(0..8).map(|_| job("k", None)).collect::<Vec<_>>())?;
        let kinds = ["k".to_owned(), "other".to_owned()];
        let forms: [Option<&[String]>; 2] = [Some(&kinds), None];
        for (i, kinds) in forms.into_iter().enumerate() {
            // Three claims at three different times (new bindings each).
            for t in 0..3 {
                jobs.claim_at(now + t, LEASE, kinds, 1)?;
            }
            let claim = prepare_claim(now, LEASE, kinds, 1, &[])?.expect("a claim");
            let reprepared = store.write("statement", |tx| {
                let (sql, _) = claim.statement(tx)?.expect("ready kinds");
                let stmt = tx.prepare_cached(&sql)?;
                let runs = stmt.get_status(rusqlite::StatementStatus::Run);
                assert_eq!(runs, 3, "form {i}: the cached statement ran each claim");
                Ok(stmt.get_status(rusqlite::StatementStatus::RePrepare))
            })?;
            assert_eq!(reprepared, 0, "form {i}");
        }
        Ok(())
    }

    #[test]
    fn a_list_statement_is_prepared_once_not_per_run() -> Result<()> {
        let (_dir, store) = open()?;
        let jobs = store.jobs();
        jobs.enqueue_many(&(0..8).map(|_| job("k", None)).collect::<Vec<_>>())?;
        jobs.enqueue(&job("it's", None))?;
        let forms: [(Option<JobStatus>, Option<&str>, usize); 6] = [
            (None, None, 9),
            (Some(JobStatus::Ready), None, 9),
            (Some(JobStatus::Done), None, 0),
            (None, Some("k"), 8),
            (Some(JobStatus::Ready), Some("it's"), 1),
            (Some(JobStatus::Running), Some("k"), 0),
        ];
        // Each form twice, the forms interleaved (the old statement bound
        // its values and was re-prepared at each run after the first).
        for _ in 0..2 {
            for (status, kind, found) in forms {
                let listed = jobs.list(status, kind, DEFAULT_LIST_LIMIT)?;
                assert_eq!(listed.len(), found, "{status:?} {kind:?}");
                assert!(listed
                    .iter()
                    .all(|j| status.is_none_or(|s| j.status == s)
                        && kind.is_none_or(|k| j.kind == k)));
            }
        }
        assert_eq!(jobs.list(None, None, 2)?.len(), 2, "another limit");
        for (status, kind, _) in forms {
            let sql = list_sql(status, kind, DEFAULT_LIST_LIMIT);
            let (runs, reprepared) = store.read("statement", |conn| {
                let stmt = conn.prepare_cached(&sql)?;
                Ok((
                    stmt.get_status(rusqlite::StatementStatus::Run),
                    stmt.get_status(rusqlite::StatementStatus::RePrepare),
                ))
            })?;
            assert_eq!((runs, reprepared), (2, 0), "{sql}");
        }
        Ok(())
    }

    #[test]
    fn past_the_kind_limit_a_claim_of_any_kind_still_goes_in_order() -> Result<()> {
        let (_dir, store) = open()?;
        let jobs = store.jobs();
        let now = now_ms();
        // More kinds with ready jobs than one claim has arms for; the
        // oldest is a kind late in the alphabet.
        let many: Vec<NewJob> = (0..MAX_CLAIM_KINDS + 20)
            .map(|i| NewJob {
                available_at_ms: Some(now - 1_000 + i as i64),
                ..NewJob::new(format!("k{:04}", 1_000 - i), format!("{i}"))
            })
            .collect();
        jobs.enqueue_many(&many)?;
        let first = jobs.claim_at(now, LEASE, None, 2)?;
        let got: Vec<&str> = first.iter().map(|j| j.payload_json.as_str()).collect();
        assert_eq!(got, ["0", "1"]);
        let prio = [("k0990".to_owned(), 1)];
        let next = jobs.claim_prioritized_at(now, LEASE, None, 2, &prio)?;
        let got: Vec<&str> = next.iter().map(|j| j.payload_json.as_str()).collect();
        assert_eq!(got, ["10", "2"], "the priority first, then FIFO");
        Ok(())
    }

    #[test]
    fn every_claim_shape_walks_the_active_index_in_claim_order() -> Result<()> {
        let (_dir, store) = open()?;
        // 5,000 jobs sharing one time (a batch enqueue) beside others: the
        // plan must not depend on how the rows look.
        let now = now_ms();
        let same: Vec<NewJob> = (0..5_000)
            .map(|i| NewJob {
                available_at_ms: Some(now - 10),
                ..job(["a", "b", "digest"][i % 3], None)
            })
            .collect();
        store.jobs().enqueue_many(&same)?;
        let s = |v: &[&str]| v.iter().map(|k| (*k).to_owned()).collect::<Vec<_>>();
        let p = |v: &[(&str, i64)]| {
            v.iter()
                .map(|(k, p)| ((*k).to_owned(), *p))
                .collect::<Vec<_>>()
        };
        let shapes: Vec<ClaimShape> = vec![
            (None, vec![]),
            (Some(s(&["a"])), vec![]),
            (Some(s(&["a", "b", "c"])), vec![]),
            (None, p(&[("digest", 10), ("seal", 10), ("extract", -1)])),
            (Some(s(&["digest", "extract", "x"])), p(&[("digest", 5)])),
            (None, p(&[("a", 0)])),
        ];
        for (kinds, prio) in shapes {
            for limit in [1, 100] {
                let claim =
                    prepare_claim(now, LEASE, kinds.as_deref(), limit, &prio)?.expect("a claim");
                let plan = claim_plan(&store, &claim)?;
                let shape = format!("{kinds:?} {prio:?} limit {limit}: {plan:?}");
                let searches = plan.iter().filter(|l| {
                    l.starts_with("SEARCH mem_tree_jobs USING ")
                        && l.contains(
                            "INDEX idx_memtree_jobs_active (status=? AND kind=? AND available_at_ms<?)",
                        )
                });
                // One SEARCH per kind: the given ones, or the three that
                // have ready jobs.
                let arms = kinds.as_ref().map_or(3, Vec::len);
                assert_eq!(searches.count(), arms, "{shape}");
                assert!(
                    !plan
                        .iter()
                        .any(|l| l.contains("TEMP B-TREE") || l.starts_with("SCAN mem_tree_jobs")),
                    "{shape}"
                );
            }
        }
        // The skip-scan that finds the kinds with ready jobs: index seeks.
        let plan = plan_of(&store, READY_KINDS_SQL, vec![])?;
        assert!(
            plan.iter().any(|l| l
                .contains("USING COVERING INDEX idx_memtree_jobs_active (status=? AND kind>?)"))
                && !plan
                    .iter()
                    .any(|l| l.contains("TEMP B-TREE") || l.starts_with("SCAN mem_tree_jobs")),
            "{plan:?}"
        );
        // The lease recovery and the hand-back read only running rows.
        let release = concat!(
            "SELECT id FROM mem_tree_jobs WHERE ",
            active!(),
            " AND status = 'running'"
        );
        for (sql, values) in [(RECOVER_SQL, vec![now.into()]), (release, vec![])] {
            let plan = plan_of(&store, sql, values)?;
            assert!(
                plan.iter().any(|l| l.starts_with(
                    "SEARCH mem_tree_jobs USING INDEX idx_memtree_jobs_active (status=?)"
                )) && !plan.iter().any(|l| l.starts_with("SCAN")),
                "{sql}: {plan:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn same_time_jobs_are_claimed_in_enqueue_order() -> Result<()> {
        let (_dir, store) = open()?;
        let jobs = store.jobs();
        let now = now_ms();
        let batch: Vec<NewJob> = (0..50)
            .map(|i| NewJob {
                available_at_ms: Some(now - 10),
                ..NewJob::new(if i % 2 == 0 { "a" } else { "b" }, format!("{i}"))
            })
            .collect();
        jobs.enqueue_many(&batch)?;
        let kinds = ["a".to_owned(), "b".to_owned()];
        let mut got = Vec::new();
        for _ in 0..25 {
            got.extend(jobs.claim_at(now, LEASE, None, 1)?);
            got.extend(jobs.claim_at(now, LEASE, Some(&kinds), 1)?);
        }
        let order: Vec<&str> = got.iter().map(|j| j.payload_json.as_str()).collect();
        let want: Vec<String> = (0..50).map(|i| i.to_string()).collect();
        assert_eq!(order, want);
        Ok(())
    }

    #[test]
    fn settle_and_claim_equals_settle_then_claim() -> Result<()> {
        // The same script of jobs and outcomes through both paths; every
        // row ends the same but for the random ids and tokens.
        let run = |combined: bool| -> Result<Vec<(String, String, i64, JobStatus)>> {
            let (_dir, store) = open()?;
            let jobs = store.jobs();
            let now = now_ms();
            let script: Vec<NewJob> = (0..12)
                .map(|i| NewJob {
                    available_at_ms: Some(now - 100 + i),
                    max_attempts: 2,
                    ..NewJob::new(["x", "y", "z"][(i % 3) as usize], format!("{i}"))
                })
                .collect();
            jobs.enqueue_many(&script)?;
            let prio = [("y".to_owned(), 5)];
            let kinds = ["x".to_owned(), "y".to_owned()];
            let mut seen = Vec::new();
            let mut current = jobs.claim_prioritized_at(now, LEASE, Some(&kinds), 1, &prio)?;
            let mut i = 0;
            while let Some(j) = current.pop() {
                seen.push((j.kind.clone(), j.payload_json.clone()));
                let (id, token) = lease_of(&j);
                let fail = i % 3 == 1;
                i += 1;
                current = match (combined, fail) {
                    (true, false) => jobs
                        .mark_done_and_claim_next_at(now, &id, &token, LEASE, Some(&kinds), &prio)?
                        .into_iter()
                        .collect(),
                    (true, true) => jobs
                        .mark_failed_and_claim_next_at(
                            now,
                            &id,
                            &token,
                            "boom",
                            LEASE,
                            Some(&kinds),
                            &prio,
                        )?
                        .1
                        .into_iter()
                        .collect(),
                    (false, false) => {
                        jobs.mark_done(&id, &token)?;
                        jobs.claim_prioritized_at(now, LEASE, Some(&kinds), 1, &prio)?
                    }
                    (false, true) => {
                        jobs.mark_failed_at(now, &id, &token, "boom")?;
                        jobs.claim_prioritized_at(now, LEASE, Some(&kinds), 1, &prio)?
                    }
                };
            }
            assert!(seen.len() >= 8, "the script claimed {seen:?}");
            let rows = jobs.list(None, None, 100)?;
            Ok(rows
                .into_iter()
                .map(|r| (r.kind, r.payload_json, r.attempts, r.status))
                .collect())
        };
        assert_eq!(run(true)?, run(false)?);
        Ok(())
    }

    #[test]
    fn a_settle_that_fails_claims_nothing() -> Result<()> {
        let (_dir, store) = open()?;
        let jobs = store.jobs();
        jobs.enqueue_many(&[job("k", None), job("k", None)])?;
        let first = jobs.claim_next(LEASE, None)?.expect("claim");
        let (id, token) = lease_of(&first);
        let ready = |jobs: &Jobs<'_>| -> Result<i64> { Ok(jobs.counts()?[&JobStatus::Ready]) };
        let lost = |r: Result<()>| matches!(r, Err(Error::LeaseLost { .. }));
        assert!(lost(
            jobs.mark_done_and_claim_next(&id, "stale", LEASE, None, &[])
                .map(drop)
        ));
        assert!(lost(
            jobs.mark_failed_and_claim_next(&id, "stale", "x", LEASE, None, &[])
                .map(drop)
        ));
        assert_eq!(ready(&jobs)?, 1, "nothing claimed");
        // A bad claim argument is refused before the settle.
        let bad = [("".to_owned(), 1)];
        assert!(matches!(
            jobs.mark_done_and_claim_next(&id, &token, LEASE, None, &bad),
            Err(Error::InvalidInput { .. })
        ));
        assert!(matches!(
            jobs.mark_failed_and_claim_next(&id, &token, "x", Duration::ZERO, None, &[]),
            Err(Error::InvalidInput { .. })
        ));
        assert_eq!(
            jobs.get(&id)?,
            Some(first.clone()),
            "still running, untouched"
        );
        // No kinds: settled, nothing claimed.
        assert_eq!(
            jobs.mark_done_and_claim_next(&id, &token, LEASE, Some(&[]), &[])?,
            None
        );
        assert_eq!(jobs.get(&id)?.map(|j| j.status), Some(JobStatus::Done));
        assert_eq!(ready(&jobs)?, 1);
        let second = jobs.claim_next(LEASE, None)?.expect("claim");
        let (id, token) = lease_of(&second);
        // The last job: settled, nothing left to claim.
        let (status, next) = jobs.mark_failed_and_claim_next(&id, &token, "x", LEASE, None, &[])?;
        assert_eq!((status, next), (JobStatus::Ready, None), "backing off");
        Ok(())
    }

    #[test]
    fn priorities_claim_higher_kinds_first_fifo_within() -> Result<()> {
        let (_dir, store) = open()?;
        let jobs = store.jobs();
        let now = now_ms();
        let at = |kind: &str, ms: i64| NewJob {
            available_at_ms: Some(ms),
            ..job(kind, None)
        };
        // Oldest first in the table: extraction, then digest and seal.
        jobs.enqueue_many(&[
            at("extract", now - 50),
            at("other", now - 45),
            at("digest", now - 40),
            at("seal", now - 30),
            at("digest", now - 20),
            at("extract", now - 10),
        ])?;
        let prio = [
            ("digest".to_owned(), 10),
            ("seal".to_owned(), 10),
            ("extract".to_owned(), -1),
        ];
        let order: Vec<(String, i64)> = (0..6)
            .map(|_| {
                let j = jobs.claim_prioritized_at(now, LEASE, None, 1, &prio)?;
                Ok(j.into_iter()
                    .map(|j| (j.kind, j.available_at_ms))
                    .next()
                    .expect("a job"))
            })
            .collect::<Result<_>>()?;
        let want = [
            ("digest", now - 40),
            ("seal", now - 30),
            ("digest", now - 20),
            ("other", now - 45),
            ("extract", now - 50),
            ("extract", now - 10),
        ];
        assert_eq!(order, want.map(|(k, t)| (k.to_owned(), t)));
        // claim_many returns the same order in one statement.
        let (_dir2, store2) = open()?;
        store2.jobs().enqueue_many(&[
            at("extract", now - 5),
            at("seal", now - 1),
            at("digest", now - 2),
        ])?;
        let kinds = ["extract".to_owned(), "seal".to_owned(), "digest".to_owned()];
        let many = store2
            .jobs()
            .claim_prioritized_at(now, LEASE, Some(&kinds), 10, &prio)?;
        let got: Vec<&str> = many.iter().map(|j| j.kind.as_str()).collect();
        assert_eq!(got, ["digest", "seal", "extract"]);
        Ok(())
    }

    #[test]
    fn bad_priorities_are_refused_before_any_write() -> Result<()> {
        let (_dir, store) = open()?;
        let jobs = store.jobs();
        jobs.enqueue(&job("k", None))?;
        let twice = [("k".to_owned(), 1), ("k".to_owned(), 2)];
        let empty = [(String::new(), 1)];
        let many: Vec<(String, i64)> = (0..=MAX_CLAIM_KINDS)
            .map(|i| (format!("k{i}"), 1))
            .collect();
        for prio in [&twice[..], &empty[..], &many[..]] {
            let err = jobs.claim_prioritized(1, LEASE, None, prio).unwrap_err();
            assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
        }
        assert_eq!(jobs.counts()?[&JobStatus::Ready], 1, "nothing claimed");
        Ok(())
    }

    #[test]
    fn cancel_ends_ready_and_failed_jobs_only() -> Result<()> {
        let (_dir, store) = open()?;
        let jobs = store.jobs();
        let ready = jobs.enqueue(&job("k", Some("dk")))?.expect("id");
        assert!(jobs.cancel(&ready)?);
        let row = jobs.get(&ready)?.expect("row");
        assert_eq!(row.status, JobStatus::Cancelled);
        assert!(row.status.is_terminal() && row.completed_at_ms.is_some());
        assert!(!jobs.cancel(&ready)?, "already cancelled");
        assert!(
            jobs.enqueue(&job("k", Some("dk")))?.is_some(),
            "the key is free"
        );
        let running = jobs.claim_next(LEASE, None)?.expect("claim");
        let before = jobs.get(&running.id)?;
        assert!(!jobs.cancel(&running.id)?, "a running job is its worker's");
        assert_eq!(jobs.get(&running.id)?, before, "unchanged");
        let (id, token) = lease_of(&running);
        jobs.mark_done(&id, &token)?;
        assert!(!jobs.cancel(&id)?, "done stays done");
        let failing = jobs
            .enqueue(&NewJob {
                max_attempts: 1,
                ..job("k", None)
            })?
            .expect("id");
        let j = jobs.claim_next(LEASE, None)?.expect("claim");
        assert_eq!(j.id, failing);
        let (id, token) = lease_of(&j);
        assert_eq!(jobs.mark_failed(&id, &token, "boom")?, JobStatus::Failed);
        assert!(jobs.cancel(&failing)?);
        assert!(!jobs.retry(&failing)?, "a cancelled job is not retried");
        assert!(!jobs.cancel("job:unknown")?);
        assert_eq!(jobs.counts()?[&JobStatus::Cancelled], 2);
        assert!(!JobStatus::Ready.is_terminal() && !JobStatus::Running.is_terminal());
        assert!(JobStatus::Done.is_terminal() && JobStatus::Failed.is_terminal());
        Ok(())
    }

    #[test]
    fn the_gate_commits_with_the_chunks_or_nothing_is_written() -> Result<()> {
        let (_dir, store) = open()?;
        let chunk = small_chunk;
        let gate = [(crate::SourceKind::Chat, "s".to_owned())];
        let jobs = store.jobs();
        // Bad input anywhere: nothing written, the gate still free.
        let bad = jobs.ingest(&gate, &[chunk("c1")], &[NewJob::new("", "{}")]);
        assert!(matches!(bad, Err(Error::InvalidInput { .. })));
        let empty_id = [(crate::SourceKind::Chat, String::new())];
        assert!(jobs.ingest::<Chunk>(&empty_id, &[], &[]).is_err());
        assert!(store
            .is_source_ingested(crate::SourceKind::Chat, "s")
            .map(|b| !b)?);
        let won = jobs.ingest(
            &[gate[0].clone(), gate[0].clone()],
            &[chunk("c1")],
            &[job("embed", None)],
        )?;
        assert!(won.claimed && won.upserted == 1 && won.job_ids[0].is_some());
        let lost = jobs.ingest(&gate, &[chunk("c2")], &[job("embed", None)])?;
        assert_eq!(
            lost,
            Ingest {
                claimed: false,
                upserted: 0,
                job_ids: vec![None]
            }
        );
        assert_eq!(store.count_chunks()?, 1, "the loser wrote no chunk");
        assert_eq!(jobs.counts()?[&JobStatus::Ready], 1, "nor a job");
        // A lost second gate rolls back the first one too.
        let two = [
            (crate::SourceKind::Email, "new".to_owned()),
            gate[0].clone(),
        ];
        assert!(!jobs.ingest::<Chunk>(&two, &[], &[])?.claimed);
        assert!(!store.is_source_ingested(crate::SourceKind::Email, "new")?);
        Ok(())
    }

    #[test]
    fn signal_wakes_waiters() {
        // Deliberately huge: a missing notify would park the waiter for it.
        const TIMEOUT: Duration = Duration::from_secs(60);
        let seen = signal_generation();
        let started = std::time::Instant::now();
        let waiter = std::thread::spawn(move || wait_for_signal(seen, TIMEOUT));
        notify_enqueued();
        let after = waiter.join().unwrap_or(seen);
        assert!(
            started.elapsed() < TIMEOUT / 2,
            "the waiter was woken, not timed out"
        );
        assert!(after > seen);
        // Other tests may notify in parallel, so only a lower bound holds.
        let before = signal_generation();
        let started = std::time::Instant::now();
        let current = wait_for_signal(seen, TIMEOUT);
        assert!(
            started.elapsed() < TIMEOUT / 2,
            "an old generation returns at once"
        );
        assert!(current >= before);
    }
}
