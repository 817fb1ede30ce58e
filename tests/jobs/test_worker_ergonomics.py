"""`Worker.run_until_idle`: returns once no job of its kinds is ready or
running, runs the jobs itself when the worker is not started, waits for its
threads when it is, and raises `TimeoutError` (leaving the jobs) when jobs
remain past the timeout. `Jobs.cancel` of a running job: its next heartbeat
or settle raises `JobCancelledError` and the job stays `cancelled`."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import memtree
import pytest


def test_an_unstarted_worker_runs_every_job_here(tmp_path: Path) -> None:
    store = memtree.Store(tmp_path / "chunks.db")
    for i in range(25):
        store.jobs.enqueue("a", {"i": i})
    store.jobs.enqueue("other", {})  # not handled: does not keep it busy
    seen: list[int] = []
    worker = memtree.Worker(store, {"a": lambda job: seen.append(job.payload["i"])})
    assert worker.run_until_idle(timeout=30) == 25
    assert sorted(seen) == list(range(25))
    assert worker.idle()
    assert store.jobs.counts()["ready"] == 1


def test_a_started_worker_is_waited_for(tmp_path: Path) -> None:
    store = memtree.Store(tmp_path / "chunks.db")
    done = threading.Event()
    ran: list[str] = []

    def slow(job: memtree.Job) -> None:
        done.wait(0.2)
        ran.append(job.id)

    with memtree.Worker(store, {"a": slow}, concurrency=2) as worker:
        ids = [store.jobs.enqueue("a", {"i": i}) for i in range(6)]
        assert worker.run_until_idle(timeout=30) == 0
        assert sorted(ran) == sorted(i for i in ids if i is not None)
        assert store.jobs.counts()["done"] == 6


def test_a_job_not_yet_due_times_out_and_is_left(tmp_path: Path) -> None:
    store = memtree.Store(tmp_path / "chunks.db")
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    job_id = store.jobs.enqueue("a", {}, available_at=later)
    worker = memtree.Worker(store, {"a": lambda job: None})
    assert not worker.idle()
    with pytest.raises(TimeoutError, match="still ready or running"):
        worker.run_until_idle(timeout=0.2)
    job = store.jobs.get(job_id or "")
    assert job is not None and job.status == "ready"


def test_a_bad_timeout_is_refused(tmp_path: Path) -> None:
    worker = memtree.Worker(memtree.Store(tmp_path / "chunks.db"), {"a": lambda job: None})
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="timeout"):
            worker.run_until_idle(timeout=bad)


def test_cancel_of_a_running_job_stops_its_handler_at_the_next_heartbeat(
    tmp_path: Path,
) -> None:
    """Cooperative abort: the handler heartbeats between steps; once the job
    is cancelled the heartbeat raises `JobCancelledError`, the handler stops,
    and the job stays `cancelled` (the worker's settle changes nothing)."""
    store = memtree.Store(tmp_path / "chunks.db")
    started = threading.Event()
    steps: list[int] = []
    stopped_by: list[BaseException] = []

    def long_job(job: memtree.Job) -> None:
        started.set()
        try:
            for step in range(500):
                store.jobs.heartbeat(job)
                steps.append(step)
                time.sleep(0.01)
        except memtree.JobCancelledError as e:
            stopped_by.append(e)
            raise

    job_id = store.jobs.enqueue("long", {})
    assert job_id is not None
    with memtree.Worker(store, {"long": long_job}, concurrency=1) as worker:
        assert started.wait(10)
        assert store.jobs.cancel(job_id) is True
        worker.run_until_idle(timeout=10)
    assert len(stopped_by) == 1 and isinstance(stopped_by[0], memtree.LeaseLostError)
    assert job_id in str(stopped_by[0]) and "cancelled" in str(stopped_by[0])
    assert len(steps) < 500, "the handler stopped early"
    row = store.jobs.get(job_id)
    assert row is not None and row.status == "cancelled" and row.attempts == 1


def test_a_lost_lease_that_is_not_a_cancel_stays_lease_lost(tmp_path: Path) -> None:
    store = memtree.Store(tmp_path / "chunks.db")
    store.jobs.enqueue("a", {})
    job = store.jobs.claim_next(lease=timedelta(milliseconds=1))
    assert job is not None
    time.sleep(0.01)
    assert store.jobs.recover_stale_locks() == 1
    with pytest.raises(memtree.LeaseLostError) as lost:
        store.jobs.heartbeat(job)
    assert not isinstance(lost.value, memtree.JobCancelledError)
    assert store.jobs.cancel(job.id) is True, "a ready job is cancelled as before"
    with pytest.raises(memtree.JobCancelledError):
        store.jobs.mark_done(job)


def test_a_retry_policy_sets_base_cap_and_max_attempts(tmp_path: Path) -> None:
    store = memtree.Store(tmp_path / "chunks.db")
    policy = memtree.RetryPolicy(
        base=timedelta(seconds=20), cap=timedelta(seconds=50), max_attempts=4
    )
    job_id = store.jobs.enqueue("a", {}, max_attempts=10)
    delays = []
    for attempt in range(1, 5):
        claimed = store.jobs.claim_many(1, kinds=["a"])
        if not claimed:
            # Not due yet: make it due now without spending an attempt.
            claimed = [_claim_now(store)]
        held = claimed[0]
        assert held.attempts == attempt
        before = datetime.now(timezone.utc)
        status = store.jobs.mark_failed(held, f"boom {attempt}", retry=policy)
        after = datetime.now(timezone.utc)
        row = store.jobs.get(job_id or "")
        assert row is not None
        if attempt < 4:
            assert status == "ready" and row.available_at is not None
            delays.append(_whole_seconds(row.available_at - after, row.available_at - before))
        else:
            assert status == "failed", "policy's max_attempts is final before the job's 10"
    assert delays == [20, 40, 50]


def _whole_seconds(shortest: timedelta, longest: timedelta) -> int | tuple[timedelta, timedelta]:
    """The delay in whole seconds a retry was given, known to lie between
    ``shortest`` and ``longest`` (from after and before the call that read
    the clock; the row keeps milliseconds); the bounds if no single whole
    second does. Rounding from the time before the call alone read 21 s
    for 20 s when the thread was paused half a second around the call."""
    ms = timedelta(milliseconds=1)
    fits = [s for s in range(3600) if shortest - ms <= timedelta(seconds=s) <= longest + ms]
    return fits[0] if len(fits) == 1 else (shortest, longest)


def _claim_now(store: memtree.Store) -> memtree.Job:
    """Claims the ready job now: the test cannot wait out the back-off, so
    it makes the job due through a side connection (no attempt spent)."""
    import sqlite3

    conn = sqlite3.connect(store.path)
    conn.execute("UPDATE mem_tree_jobs SET available_at_ms = 0 WHERE status = 'ready'")
    conn.commit()
    conn.close()
    claimed = store.jobs.claim_next(kinds=["a"])
    assert claimed is not None
    return claimed


def test_a_bad_retry_policy_changes_nothing(tmp_path: Path) -> None:
    store = memtree.Store(tmp_path / "chunks.db")
    store.jobs.enqueue("a", {})
    job = store.jobs.claim_next()
    assert job is not None
    for bad in (
        memtree.RetryPolicy(base=timedelta(seconds=-1)),
        memtree.RetryPolicy(base=timedelta(seconds=10), cap=timedelta(seconds=5)),
        memtree.RetryPolicy(max_attempts=0),
    ):
        with pytest.raises(ValueError, match="retry"):
            store.jobs.mark_failed(job, "x", retry=bad)
    row = store.jobs.get(job.id)
    assert row is not None and row.status == "running" and row.lease_token == job.lease_token
    with pytest.raises(TypeError, match="RetryPolicy"):
        memtree.Worker(store, {"a": lambda job: None}, retry={"a": (1, 2)})  # type: ignore[dict-item]


def test_a_worker_retries_a_kind_by_its_policy(tmp_path: Path) -> None:
    """With a 1 ms back-off and 3 attempts the failing job is dead-lettered
    at once; under the default (60 s) it would still be waiting."""
    store = memtree.Store(tmp_path / "chunks.db")
    fast = store.jobs.enqueue("fast", {})
    calls: list[str] = []

    def fail(job: memtree.Job) -> None:
        calls.append(job.kind)
        raise RuntimeError("boom")

    worker = memtree.Worker(
        store,
        {"fast": fail},
        retry={
            "fast": memtree.RetryPolicy(
                base=timedelta(milliseconds=1), cap=timedelta(milliseconds=5), max_attempts=3
            )
        },
    )
    worker.run_until_idle(timeout=30)
    assert calls == ["fast"] * 3
    row = store.jobs.get(fast or "")
    assert row is not None and row.status == "failed" and row.attempts == 3
