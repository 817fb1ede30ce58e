"""The job queue: enqueue, dedupe, leases, back-off, dead letters, batches."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import memtree
import pytest
from memtree import testing
from support import ChunkFactory

MINUTE = timedelta(minutes=1)


def claim(store: memtree.Store, **kwargs: object) -> memtree.Job:
    job = store.jobs.claim_next(**kwargs)  # type: ignore[arg-type]
    assert job is not None
    return job


def test_enqueue_round_trips_any_json_payload(store: memtree.Store) -> None:
    payload = {"text": "héllo", "n": [1, 2.5, None, True], "nested": {"k": "v"}}
    job_id = store.jobs.enqueue("summarise", payload, max_attempts=3)
    assert job_id is not None and job_id.startswith("job:")
    job = store.jobs.get(job_id)
    assert job is not None
    assert job.payload == payload
    assert (job.kind, job.status, job.attempts, job.max_attempts) == ("summarise", "ready", 0, 3)
    assert job.lease_token is None and job.locked_until is None
    assert job.available_at == job.created_at
    assert job.available_at.tzinfo is not None
    # The payload is a fresh copy: the frozen job cannot be changed through it.
    job.payload["n"].append(99)
    assert job.payload == payload


@pytest.mark.parametrize("payload", [object(), {1, 2}, {"x": object()}, b"bytes"])
def test_unserialisable_payload_is_a_type_error_and_writes_nothing(
    store: memtree.Store, payload: object
) -> None:
    with pytest.raises(TypeError, match="payload"):
        store.jobs.enqueue("k", payload)
    with store.jobs.batch() as b, pytest.raises(TypeError, match="payload"):
        b.enqueue("k", payload)
    assert store.jobs.counts() == {"ready": 0, "running": 0, "done": 0, "failed": 0, "cancelled": 0}


def _nested(depth: int) -> object:
    value: object = 0
    for _ in range(depth):
        value = [value]
    return value


def _circular() -> object:
    loop: list[object] = []
    loop.append(loop)
    return loop


@pytest.mark.parametrize(
    "payload",
    [
        {"x": math.nan},
        [math.inf],
        10**400,  # beyond a float: the queue's JSON reader refuses it
        -(10**400),
        _nested(128),  # one container past the 127 the stub allows
        _nested(100_000),  # deeper than Python's own recursion limit
        _circular(),
    ],
    ids=["nan", "inf", "huge-int", "huge-negative", "depth-128", "depth-100000", "circular"],
)
def test_a_serialisable_but_unstorable_payload_is_a_value_error_and_writes_nothing(
    store: memtree.Store, payload: object
) -> None:
    before = store.path.read_bytes()
    with pytest.raises(ValueError, match="payload"):
        store.jobs.enqueue("k", payload)
    with store.jobs.batch() as b, pytest.raises(ValueError, match="payload"):
        b.enqueue("k", payload)
    assert store.path.read_bytes() == before


def test_payload_at_the_limits_is_stored_and_reads_back(store: memtree.Store) -> None:
    deepest = _nested(127)  # the deepest the stub allows
    for payload in (deepest, 2**63, 1e308, -(2**63)):
        job_id = store.jobs.enqueue("k", payload)
        job = store.jobs.get(job_id or "")
        assert job is not None and job.payload == payload


def test_invalid_arguments(store: memtree.Store) -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        store.jobs.enqueue("k", {}, max_attempts=0)
    with pytest.raises(ValueError, match="kind"):
        store.jobs.enqueue("", {})
    with pytest.raises(ValueError, match="naive"):
        store.jobs.enqueue("k", {}, available_at=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="lease"):
        store.jobs.claim_next(lease=timedelta(0))
    with pytest.raises(TypeError, match="kinds"):
        store.jobs.claim_next(kinds="a")
    with pytest.raises(TypeError, match=r"kinds\[1\]: expected str"):
        store.jobs.claim_next(kinds=["a", 1])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="status"):
        store.jobs.list(status="nope")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Job"):
        store.jobs.mark_done("job:x")  # type: ignore[arg-type]


def test_dedupe_among_active_jobs_and_reuse_after_finish(store: memtree.Store) -> None:
    jobs = store.jobs
    first = jobs.enqueue("embed", {"chunk": 1}, dedupe_key="embed:1")
    assert first is not None
    assert jobs.enqueue("embed", {"chunk": 1}, dedupe_key="embed:1") is None
    job = claim(store)
    assert job.dedupe_key == "embed:1"
    assert jobs.enqueue("embed", {}, dedupe_key="embed:1") is None, "running is active"
    jobs.mark_done(job)
    second = jobs.enqueue("embed", {}, dedupe_key="embed:1")
    assert second is not None and second != first
    assert jobs.enqueue("embed", {}, dedupe_key="embed:2") is not None
    assert jobs.counts() == {"ready": 2, "running": 0, "done": 1, "failed": 0, "cancelled": 0}


def test_claim_is_oldest_available_first_and_filters_kinds(store: memtree.Store) -> None:
    jobs = store.jobs
    now = datetime.now(timezone.utc)
    later = jobs.enqueue("a", 0, available_at=now + timedelta(hours=1))
    earlier = jobs.enqueue("a", 1, available_at=now - timedelta(hours=1))
    plain = jobs.enqueue("b", 2)
    assert claim(store, kinds=["b"]).id == plain
    got = claim(store, lease=timedelta(seconds=30))
    assert got.id == earlier
    assert got.status == "running" and got.attempts == 1
    # <host>.<pid>.<start>. (the holder, on Linux) then 32 random hex digits
    assert got.lease_token is not None
    assert re.fullmatch(r"([0-9a-f]+-[0-9]+\.[0-9]+\.[0-9]+\.)?[0-9a-f]{32}", got.lease_token)
    assert got.locked_until is not None and got.started_at is not None
    lease = (got.locked_until - got.started_at).total_seconds()
    assert lease == pytest.approx(30, abs=0.01)
    assert jobs.claim_next() is None, f"{later} is not available yet"


def test_failure_backs_off_doubling_then_dead_letters(store: memtree.Store) -> None:
    jobs = store.jobs
    job_id = jobs.enqueue("flaky", {}, max_attempts=3)
    assert job_id is not None
    for attempt, expected_delay in [(1, 60), (2, 120)]:
        job = claim(store)
        assert job.attempts == attempt
        assert jobs.mark_failed(job, f"boom {attempt}") == "ready"
        row = jobs.get(job_id)
        assert row is not None and row.completed_at is None
        assert row.last_error == f"boom {attempt}"
        # The back-off is counted from the failure, which follows the claim.
        assert job.started_at is not None
        delay = (row.available_at - job.started_at).total_seconds()
        assert expected_delay <= delay < expected_delay + 5
        assert jobs.claim_next() is None, "backing off"
        _make_available_now(store, job_id)
    job = claim(store)
    assert jobs.mark_failed(job, "final") == "failed"
    dead = jobs.list(status="failed")
    assert [j.id for j in dead] == [job_id]
    assert dead[0].completed_at is not None and dead[0].last_error == "final"
    assert jobs.claim_next() is None
    assert jobs.retry(job_id)
    revived = claim(store)
    assert (revived.id, revived.attempts) == (job_id, 1)
    assert not jobs.retry(job_id), "only failed jobs are retried"


def _other_process_sql(store: memtree.Store, sql: str, *params: object) -> list[tuple[object, ...]]:
    """Runs SQL through Python's sqlite3 in a child process: a second SQLite
    library in this process would not see memtree's POSIX locks."""
    script = (
        "import json, sqlite3, sys\n"
        "conn = sqlite3.connect(sys.argv[1])\n"
        "with conn:\n"
        "    rows = conn.execute(sys.argv[2], json.loads(sys.argv[3])).fetchall()\n"
        "print(json.dumps(rows))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(store.path), sql, json.dumps(params)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [tuple(r) for r in json.loads(out)]


def _make_available_now(store: memtree.Store, job_id: str) -> None:
    """Skips a back-off (tests must not wait minutes), as another process could."""
    _other_process_sql(store, "UPDATE mem_tree_jobs SET available_at_ms = 0 WHERE id = ?", job_id)


def test_stale_lease_settles_change_nothing(store: memtree.Store) -> None:
    jobs = store.jobs
    job_id = jobs.enqueue("k", {})
    stale = claim(store, lease=timedelta(milliseconds=1))
    time.sleep(0.01)
    assert jobs.recover_stale_locks() == 1
    fresh = claim(store)
    assert fresh.id == stale.id and fresh.lease_token != stale.lease_token
    assert fresh.attempts == 2
    before = jobs.get(fresh.id)
    with pytest.raises(memtree.LeaseLostError) as info:
        jobs.mark_done(stale)
    assert stale.id in str(info.value)
    with pytest.raises(memtree.LeaseLostError):
        jobs.mark_failed(stale, "late failure")
    with pytest.raises(memtree.LeaseLostError):
        jobs.defer(stale, MINUTE, "late deferral")
    with pytest.raises(memtree.LeaseLostError):
        jobs.heartbeat(stale)
    with pytest.raises(memtree.LeaseLostError):
        jobs.mark_done_many([fresh, stale])
    assert jobs.release([stale]) == 0
    assert jobs.get(fresh.id) == before, "the row is untouched"
    jobs.mark_done(fresh)
    with pytest.raises(memtree.LeaseLostError):
        jobs.mark_done(fresh)
    done = jobs.get(fresh.id)
    assert done is not None and done.status == "done" and job_id == done.id


def test_a_job_read_without_a_claim_cannot_settle(store: memtree.Store) -> None:
    job_id = store.jobs.enqueue("k", {})
    assert job_id is not None
    unclaimed = store.jobs.get(job_id)
    assert unclaimed is not None
    with pytest.raises(memtree.LeaseLostError):
        store.jobs.mark_done(unclaimed)
    assert issubclass(memtree.LeaseLostError, memtree.MemtreeError)


def test_defer_does_not_count_as_an_attempt(store: memtree.Store) -> None:
    jobs = store.jobs
    job_id = jobs.enqueue("k", {}, max_attempts=1)
    assert job_id is not None
    for _ in range(3):
        claimed = claim(store)
        assert claimed.started_at is not None
        jobs.defer(claimed, datetime.now(timezone.utc) - MINUTE, "rate limited")
        row = jobs.get(job_id)
        assert row is not None and row.started_at is None, "a deferral clears the start"
    job = claim(store)
    assert job.attempts == 1 and job.last_error == "rate limited"
    jobs.defer(job, timedelta(hours=1), "later")
    row = jobs.get(job_id)
    assert row is not None and row.status == "ready" and row.attempts == 0
    assert row.available_at > datetime.now(timezone.utc) + timedelta(minutes=59)
    assert jobs.claim_next() is None


def test_heartbeat_extends_the_lease(store: memtree.Store) -> None:
    store.jobs.enqueue("k", {})
    job = claim(store, lease=timedelta(seconds=1))
    until = store.jobs.heartbeat(job, timedelta(minutes=10))
    assert job.locked_until is not None and until > job.locked_until + timedelta(minutes=9)
    time.sleep(0.01)
    assert store.jobs.recover_stale_locks() == 0
    store.jobs.mark_done(job)


def test_release_hands_back_without_spending_an_attempt(store: memtree.Store) -> None:
    jobs = store.jobs
    for i in range(3):
        jobs.enqueue("k", i)
    mine = jobs.claim_many(2)
    assert [j.payload for j in mine] == [0, 1]
    assert jobs.release(mine) == 2
    assert jobs.counts()["running"] == 0
    again = jobs.claim_many(10)
    assert sorted(j.payload for j in again) == [0, 1, 2]
    assert all(j.attempts == 1 for j in again)
    assert jobs.release_running_locks() == 3
    assert {j.attempts for j in jobs.list(status="ready")} == {0}


def test_recover_dead_letters_an_expired_last_attempt(store: memtree.Store) -> None:
    job_id = store.jobs.enqueue("poison", {}, max_attempts=1)
    claim(store, lease=timedelta(milliseconds=1))
    time.sleep(0.01)
    assert store.jobs.recover_stale_locks() == 1
    row = store.jobs.get(job_id or "")
    assert row is not None and row.status == "failed"
    assert row.last_error is not None and "lease expired" in row.last_error


def test_list_counts_and_limits(store: memtree.Store) -> None:
    with store.jobs.batch() as b:
        for i in range(30):
            b.enqueue("a" if i % 2 else "b", i)
    assert len(store.jobs.list(limit=5)) == 5
    assert [j.payload for j in store.jobs.list(kind="a", limit=3)] == [1, 3, 5]
    assert len(store.jobs.list(status="ready", limit=100_000)) == 30
    assert store.jobs.counts()["ready"] == 30
    assert store.jobs.list(status="done") == []


def test_batch_commits_chunks_and_jobs_in_one_transaction(
    store: memtree.Store, make_chunk: ChunkFactory
) -> None:
    with store.jobs.batch() as b:
        assert b.upsert_chunks([make_chunk(i) for i in range(3)]) == 3
        assert b.enqueue("summarise", {"ids": [0, 1, 2]}, dedupe_key="s") == 0
        assert b.enqueue("summarise", {}, dedupe_key="s") == 1
        with pytest.raises(RuntimeError):
            b.job_ids  # noqa: B018  (not committed yet)
        assert store.count_chunks() == 0, "nothing is written before the commit"
    first, duplicate = b.job_ids
    assert first is not None and duplicate is None
    assert store.count_chunks() == 3
    with pytest.raises(RuntimeError):
        b.enqueue("k", {})


def test_batch_is_discarded_on_error_and_all_or_nothing_on_failure(
    store: memtree.Store, make_chunk: ChunkFactory
) -> None:
    with pytest.raises(KeyError), store.jobs.batch() as b:
        b.upsert_chunks([make_chunk(0)])
        b.enqueue("k", {})
        raise KeyError("stop")
    assert store.count_chunks() == 0 and store.jobs.counts()["ready"] == 0
    # A failure inside the one transaction rolls back the chunks too.
    b = store.jobs.batch()
    b.upsert_chunks([make_chunk(1)])
    b.enqueue("k", {})
    with testing.fault(store.path, "xWrite", 1, memtree.ResultCode.FULL):
        with pytest.raises(memtree.DiskFullError):
            b.commit()
        assert testing.faults_fired(store.path) >= 1
    assert store.count_chunks() == 0 and store.jobs.counts()["ready"] == 0
    with pytest.raises(RuntimeError, match="already"):
        b.commit()


def test_lease_token_column_is_a_schema_step(store: memtree.Store) -> None:
    columns = _other_process_sql(store, "SELECT name FROM pragma_table_info('mem_tree_jobs')")
    assert columns[-1] == ("lease_token",)
    assert store.connection_settings()["user_version"] == str(memtree.schema_version())


def test_a_settle_costs_one_commit(store: memtree.Store) -> None:
    store.jobs.enqueue("k", {})
    job = claim(store)
    testing.reset_io_stats(store.path)
    store.jobs.mark_done(job)
    stats = testing.io_stats(store.path)
    # TRUNCATE + FULL: journal x3 and database x1 per commit.
    assert stats["sync_calls"] == 4, stats


def test_a_closed_store_refuses_job_calls(db_path: Path) -> None:
    store = memtree.Store(db_path)
    jobs = store.jobs
    store.close()
    with pytest.raises(memtree.StoreClosedError):
        jobs.enqueue("k", {})
    with pytest.raises(memtree.StoreClosedError):
        jobs.claim_next()
