//! Claims: the claim statement built per call from the kinds and
//! priorities asked (one index SEARCH per kind, in claim order, never a sort),
//! prepared once and run inside the caller's transaction, and the lease a
//! claim takes.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use rusqlite::Transaction;

use super::lease;
use super::model::{job_from_row, Job, JOB_COLUMNS};
use crate::chunks::record::{non_empty, MAX_TIME_MS};
use crate::error::{Error, Result};

/// The most kinds one claim names (its own `kinds` plus the kinds given a
/// priority): each is one arm of the claim's compound SELECT, and SQLite
/// allows 500 arms.
pub const MAX_CLAIM_KINDS: usize = 256;

/// Claim priorities by kind: higher is claimed first; a kind not listed has
/// priority 0. Within a priority, jobs are claimed oldest first.
pub type Priorities = [(String, i64)];

/// The UPDATE of every claim; `{select}` is the rowid SELECT from
/// [`select_for_kinds`] (rowids: the update then reads each row directly, not
/// through the id index). `?1` now, `?2` lease end, `?3` the claimer's holder
/// identity ([`crate::jobs::lease`]), written in front of the token. The kinds and how many
/// are written into the text ([`text_literal`]): SQLite re-prepares a
/// statement on every run after rebinding a LIMIT parameter, or a kind
/// compared by `=` in a query with an ORDER BY (the planner reads the bound
/// values), and the claim is the longest statement memtree runs. One
/// statement per set of kinds and limit, kept in the statement cache.
pub(crate) fn claim_sql(select: &str) -> String {
    format!(
        "UPDATE mem_tree_jobs SET status = 'running', attempts = attempts + 1, \
         locked_until_ms = ?2, started_at_ms = ?1, \
         lease_token = ?3 || lower(hex(randomblob(16))) \
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
pub(crate) use active;

/// The WHERE term of `idx_memtree_jobs_active`; see the module docs.
pub const ACTIVE: &str = active!();

/// One arm: the available ready rows of one kind (`?n`), or of every kind
/// but the listed ones, with the FIFO keys, read from
/// `idx_memtree_jobs_active` (whose WHERE term it repeats).
pub(crate) fn claim_arm(kind_filter: &str) -> String {
    format!(
        "SELECT available_at_ms AS a, created_at_ms AS c, rowid AS r FROM mem_tree_jobs \
         WHERE {} AND status = 'ready' AND available_at_ms <= ?1{kind_filter}",
        active!()
    )
}

/// The priority of each kind named in `priorities`, refusing an empty or
/// repeated kind.
pub(crate) fn rank_of(priorities: &Priorities) -> Result<HashMap<&str, i64>> {
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

pub(crate) fn too_many_kinds(n: usize) -> Error {
    Error::invalid(
        "kinds",
        format!("a claim names at most {MAX_CLAIM_KINDS} kinds (kinds and priorities), got {n}"),
    )
}

/// `text` as an SQL expression of type TEXT: a blob literal of its UTF-8
/// bytes, cast. Any text fits (a quote, a NUL), nothing is interpreted,
/// and it is a constant to the planner, unlike a bound parameter.
pub(crate) fn text_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2 + 20);
    out.push_str("CAST(x'");
    for b in text.bytes() {
        let _ = write!(out, "{b:02x}");
    }
    out.push_str("' AS TEXT)");
    out
}

/// Adds `arm` to the tier of priority `p`.
pub(crate) fn add_arm(tiers: &mut Vec<(i64, Vec<String>)>, p: i64, arm: String) {
    match tiers.iter_mut().find(|(tp, _)| *tp == p) {
        Some((_, arms)) => arms.push(arm),
        None => tiers.push((p, vec![arm])),
    }
}

/// The rowid SELECT of a claim of `kinds` and the kinds it names (each
/// once); none named: nothing to claim.
pub(crate) fn select_for_kinds(
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
pub(crate) fn tiered_select(mut tiers: Vec<(i64, Vec<String>)>, limit: i64) -> String {
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
pub(crate) fn select_any_kind_sorted(priorities: &Priorities, limit: i64) -> (String, Vec<String>) {
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
pub(crate) const READY_KINDS_SQL: &str = concat!(
    "WITH RECURSIVE k(kind) AS (SELECT (SELECT kind FROM mem_tree_jobs WHERE ",
    active!(),
    " AND status = 'ready' ORDER BY kind LIMIT 1) \
     UNION ALL SELECT (SELECT kind FROM mem_tree_jobs WHERE ",
    active!(),
    " AND status = 'ready' AND kind > k.kind ORDER BY kind LIMIT 1) \
     FROM k WHERE k.kind IS NOT NULL) SELECT kind FROM k WHERE kind IS NOT NULL LIMIT 257"
);

const _: () = assert!(MAX_CLAIM_KINDS + 1 == 257);

pub(crate) fn ready_kinds(tx: &Transaction<'_>) -> rusqlite::Result<Vec<String>> {
    let mut stmt = tx.prepare_cached(READY_KINDS_SQL)?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    rows.collect()
}

/// A claim checked and built before its transaction: the statement and
/// its kinds (for a claim of any kind, built in the transaction once it has
/// found the kinds with ready jobs), the values it binds, and
/// the priority of each listed kind (which orders what the claim hands
/// out).
pub(crate) struct PreparedClaim<'a> {
    /// The statement and its kinds; `None`: any kind.
    fixed: Option<(String, Vec<String>)>,
    pub(crate) head: [rusqlite::types::Value; 3],
    /// The claim's time (also `head[0]`).
    now: i64,
    limit: i64,
    priorities: &'a Priorities,
    rank: HashMap<&'a str, i64>,
}

/// Checks a claim's arguments (the lease first, then kinds and priorities)
/// and builds it; `None` when `kinds` is empty and nothing can be claimed.
pub(crate) fn prepare_claim<'a>(
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
        head: [
            now.into(),
            until.into(),
            lease::holder_prefix().to_owned().into(),
        ],
        now,
        limit,
        priorities,
        rank,
    }))
}

impl PreparedClaim<'_> {
    /// The statement and its kinds inside `tx`; `None`: no kind has ready
    /// jobs.
    pub(crate) fn statement(
        &self,
        tx: &Transaction<'_>,
    ) -> rusqlite::Result<Option<(String, Vec<String>)>> {
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
    pub(crate) fn run(&self, tx: &Transaction<'_>) -> rusqlite::Result<Vec<Job>> {
        // A job whose holder died on this host is claimable again at once.
        lease::reclaim_dead_throttled(tx, self.now)?;
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

/// When a lease of `lease` taken at `now` ends. Checked before any
/// transaction: a lease ending past [`MAX_TIME_MS`] (a `timedelta.max`)
/// would be written and then fail every read of `locked_until`.
pub(crate) fn lease_end(now: i64, lease: Duration) -> Result<i64> {
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

/// The first job `claim` takes inside `tx` (none without a claim).
pub(crate) fn claim_one(
    tx: &Transaction<'_>,
    claim: Option<&PreparedClaim<'_>>,
) -> rusqlite::Result<Option<Job>> {
    match claim {
        Some(claim) => Ok(claim.run(tx)?.into_iter().next()),
        None => Ok(None),
    }
}
