//! The queue's tests, beside it.

use std::time::Duration;

use crate::chunks::record::{Chunk, SourceKind, MAX_TIME_MS};
use crate::db::store::Store;
use crate::error::{Error, Result};
use crate::sys::clock::now_ms;

use super::api::*;
use super::claim::*;
use super::model::*;
use super::settle::*;
use super::signal::*;
use crate::jobs::retry::RetryPolicy;

/// A minimal valid chunk of source `chat:s`.
fn small_chunk(id: &str) -> Chunk {
    Chunk {
        id: id.into(),
        content: "hello".into(),
        source_kind: SourceKind::Chat,
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
    let mut job = NewJob::new(kind, r#"{"n": 1}"#);
    job.dedupe_key = key.map(str::to_owned);
    job
}

fn lease_of(j: &Job) -> (String, String) {
    (j.id.clone(), j.lease_token.clone().unwrap_or_default())
}

/// Enqueues `new` allowed only `max_attempts` attempts; its id.
fn enqueue_with_attempts(jobs: &Jobs<'_>, new: NewJob, max_attempts: i64) -> Result<String> {
    Ok(jobs
        .enqueue(&NewJob {
            max_attempts,
            ..new
        })?
        .expect("id"))
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
    let mut late = job("k", None);
    late.available_at_ms = Some(MAX_TIME_MS + 1);
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
    // The holder's identity, then 32 random hex digits.
    let token = next.lease_token.as_deref().unwrap_or_default();
    let random = token.strip_prefix(crate::jobs::lease::holder_prefix());
    assert!(random.is_some_and(|r| r.len() == 32), "{token}");
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
    let id = enqueue_with_attempts(&jobs, job("k", Some("dk")), 3)?;
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
    let id = enqueue_with_attempts(&jobs, job("k", None), 1)?;
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
    let id = enqueue_with_attempts(&jobs, job("k", None), 1)?;
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
fn plan_of(store: &Store, sql: &str, values: Vec<rusqlite::types::Value>) -> Result<Vec<String>> {
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
        let rows = stmt.query_map(rusqlite::params_from_iter(claim.head.iter()), |r| r.get(3))?;
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
                .all(|j| status.is_none_or(|s| j.status == s) && kind.is_none_or(|k| j.kind == k)));
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
        plan.iter()
            .any(|l| l
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
                        &RetryPolicy::default(),
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
fn cancel_ends_ready_running_and_failed_jobs() -> Result<()> {
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
    let (id, token) = lease_of(&running);
    jobs.mark_done(&id, &token)?;
    assert!(!jobs.cancel(&id)?, "done stays done");
    // A running job ends cancelled; its holder's settle is refused as
    // cancelled and changes nothing.
    jobs.enqueue(&job("k", None))?;
    let held = jobs.claim_next(LEASE, None)?.expect("claim");
    assert!(jobs.cancel(&held.id)?);
    let (id, token) = lease_of(&held);
    let refused = jobs.mark_done(&id, &token).unwrap_err();
    assert!(
        matches!(
            refused,
            Error::LeaseLost {
                cancelled: true,
                ..
            }
        ),
        "{refused}"
    );
    let row = jobs.get(&id)?.expect("row");
    assert_eq!(row.status, JobStatus::Cancelled);
    assert_eq!(row.lease_token, held.lease_token, "the cancelled claim");
    let failing = enqueue_with_attempts(&jobs, job("k", None), 1)?;
    let j = jobs.claim_next(LEASE, None)?.expect("claim");
    assert_eq!(j.id, failing);
    let (id, token) = lease_of(&j);
    assert_eq!(jobs.mark_failed(&id, &token, "boom")?, JobStatus::Failed);
    assert!(jobs.cancel(&failing)?);
    assert!(!jobs.retry(&failing)?, "a cancelled job is not retried");
    assert!(!jobs.cancel("job:unknown")?);
    assert_eq!(jobs.counts()?[&JobStatus::Cancelled], 3);
    assert!(!JobStatus::Ready.is_terminal() && !JobStatus::Running.is_terminal());
    assert!(JobStatus::Done.is_terminal() && JobStatus::Failed.is_terminal());
    Ok(())
}

#[test]
fn the_gate_commits_with_the_chunks_or_nothing_is_written() -> Result<()> {
    let (_dir, store) = open()?;
    let chunk = small_chunk;
    let gate = [(SourceKind::Chat, "s".to_owned())];
    let jobs = store.jobs();
    // Bad input anywhere: nothing written, the gate still free.
    let bad = jobs.ingest(&gate, &[chunk("c1")], &[NewJob::new("", "{}")]);
    assert!(matches!(bad, Err(Error::InvalidInput { .. })));
    let empty_id = [(SourceKind::Chat, String::new())];
    assert!(jobs.ingest::<Chunk>(&empty_id, &[], &[]).is_err());
    assert!(store
        .is_source_ingested(SourceKind::Chat, "s")
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
    let two = [(SourceKind::Email, "new".to_owned()), gate[0].clone()];
    assert!(!jobs.ingest::<Chunk>(&two, &[], &[])?.claimed);
    assert!(!store.is_source_ingested(SourceKind::Email, "new")?);
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
