"""Queue parity (issue 10 item 10): claim priority by kind, FIFO within a
priority, the typed ``JobStatus`` and ``Jobs.cancel``. The query plans of
every claim shape (one index SEARCH per kind, no temp B-tree) are checked in
rust/jobs/tests.rs (``every_claim_shape_searches_an_index_and_sorts_nothing``)."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import memtree
import pytest
from memtree import JobStatus, Store, Worker

PRIORITIES = {"digest": 10, "seal": 10, "extract": -1}


def enqueue_in_age_order(store: Store, kinds: list[str]) -> list[str]:
    """One job per kind, each a second older than the next."""
    start = datetime.now(timezone.utc) - timedelta(minutes=5)
    ids = []
    for i, kind in enumerate(kinds):
        job_id = store.jobs.enqueue(kind, {"i": i}, available_at=start + timedelta(seconds=i))
        assert job_id is not None
        ids.append(job_id)
    return ids


def test_job_status_is_a_typed_exported_enum() -> None:
    assert memtree.JobStatus is JobStatus
    assert "JobStatus" in memtree.__all__
    assert [s.value for s in JobStatus] == ["ready", "running", "done", "failed", "cancelled"]
    assert {s for s in JobStatus if s.is_terminal} == {
        JobStatus.DONE,
        JobStatus.FAILED,
        JobStatus.CANCELLED,
    }
    assert JobStatus.READY == "ready" and str(JobStatus.RUNNING) == "running"


def test_job_status_and_mark_failed_return_members(store: Store) -> None:
    store.jobs.enqueue("k", {}, max_attempts=1)
    job = store.jobs.claim_next()
    assert job is not None
    assert job.status is JobStatus.RUNNING
    assert not job.status.is_terminal
    assert store.jobs.mark_failed(job, "boom") is JobStatus.FAILED
    row = store.jobs.get(job.id)
    assert row is not None and row.status is JobStatus.FAILED and row.status.is_terminal
    assert [j.id for j in store.jobs.list(status=JobStatus.FAILED)] == [job.id]


def test_claims_take_higher_priorities_first_fifo_within(store: Store) -> None:
    kinds = ["extract", "other", "digest", "seal", "digest", "extract"]
    ids = enqueue_in_age_order(store, kinds)
    order = []
    while (job := store.jobs.claim_next(priorities=PRIORITIES)) is not None:
        order.append(job.id)
    assert order == [ids[2], ids[3], ids[4], ids[1], ids[0], ids[5]]


def test_without_priorities_the_claim_stays_fifo(store: Store) -> None:
    ids = enqueue_in_age_order(store, ["extract", "digest", "seal"])
    many = store.jobs.claim_many(10, kinds=["seal", "digest", "extract"])
    assert [j.id for j in many] == ids


def test_claim_many_is_one_claim_in_priority_order(store: Store) -> None:
    ids = enqueue_in_age_order(store, ["extract", "seal", "digest", "extract"])
    many = store.jobs.claim_many(3, kinds=["extract", "seal", "digest"], priorities=PRIORITIES)
    assert [j.id for j in many] == [ids[1], ids[2], ids[0]]
    assert store.jobs.counts()["ready"] == 1


@pytest.mark.parametrize(
    ("priorities", "error"),
    [
        (["digest"], TypeError),
        ({"digest": "high"}, TypeError),
        ({"digest": True}, TypeError),
        ({"digest": 1.5}, TypeError),
        ({1: 1}, TypeError),
        ({"": 1}, ValueError),
        ({"digest": 2**63}, ValueError),
        ({f"k{i}": 1 for i in range(257)}, ValueError),
    ],
)
def test_bad_priorities_are_refused_before_any_write(
    store: Store, priorities: Any, error: type[Exception]
) -> None:
    store.jobs.enqueue("digest", {})
    with pytest.raises(error, match=r"priorities|kinds"):
        store.jobs.claim_next(priorities=priorities)
    with pytest.raises(error, match=r"priorities|kinds"):
        store.jobs.claim_many(5, priorities=priorities)
    assert store.jobs.counts()["ready"] == 1
    assert store.jobs.counts()["running"] == 0


def test_worker_claims_by_priority(store: Store) -> None:
    ids = enqueue_in_age_order(store, ["extract", "extract", "seal", "digest"])
    seen: list[str] = []
    handlers = {k: (lambda job: seen.append(job.id)) for k in ("extract", "seal", "digest")}
    worker = Worker(store, handlers, concurrency=1, priorities=PRIORITIES)
    while worker.run_once() is not None:
        pass
    assert seen == [ids[2], ids[3], ids[0], ids[1]]


@pytest.mark.parametrize(
    ("priorities", "error"),
    [(["x"], TypeError), ({"x": "1"}, TypeError), ({"": 1}, ValueError), ({1: 1}, TypeError)],
)
def test_worker_refuses_bad_priorities_at_construction(
    store: Store, priorities: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match="priorities"):
        Worker(store, {"x": lambda job: None}, priorities=priorities)


def test_cancel_ends_ready_running_and_failed_jobs(store: Store) -> None:
    jobs = store.jobs
    ready = jobs.enqueue("k", {}, dedupe_key="dk")
    assert ready is not None
    assert jobs.cancel(ready) is True
    row = jobs.get(ready)
    assert row is not None and row.status is JobStatus.CANCELLED
    assert row.completed_at is not None
    assert jobs.cancel(ready) is False
    assert jobs.enqueue("k", {}, dedupe_key="dk") is not None, "the key is free again"

    running = jobs.claim_next()
    assert running is not None
    done = jobs.enqueue("k", {})
    finished = jobs.claim_next()
    assert finished is not None and finished.id == done
    jobs.mark_done(finished)
    assert jobs.cancel(finished.id) is False, "a done job stays done"
    # A running job ends cancelled at once; its worker learns it at its next
    # heartbeat or settle (tests/test_worker_ergonomics.py).
    assert jobs.cancel(running.id) is True
    after = jobs.get(running.id)
    assert after is not None and after.status is JobStatus.CANCELLED
    assert after.lease_token == running.lease_token, "the cancelled claim is named"
    with pytest.raises(memtree.JobCancelledError):
        jobs.mark_done(running)

    failing = jobs.enqueue("k", {}, max_attempts=1)
    job = jobs.claim_next()
    assert job is not None and job.id == failing
    jobs.mark_failed(job, "boom")
    assert jobs.cancel(job.id) is True
    assert jobs.retry(job.id) is False
    assert jobs.cancel("job:nope") is False
    assert jobs.counts()["cancelled"] == 3
    with pytest.raises(TypeError):
        jobs.cancel(42)  # type: ignore[arg-type]


def test_the_claim_indexes_are_schema_steps(tmp_path: Path) -> None:
    db = tmp_path / "chunks.db"
    with Store(db):
        pass
    with sqlite3.connect(db) as conn:
        indexes = {
            row[0]: row[1]
            for row in conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE tbl_name = 'mem_tree_jobs'"
                " AND type = 'index' AND sql IS NOT NULL"
            )
        }
        columns = [row[1] for row in conn.execute("PRAGMA table_info(mem_tree_jobs)")]
    conn.close()
    # Schema step 106: one partial index on the active rows.
    active = indexes["idx_memtree_jobs_active"]
    assert "(status, kind, available_at_ms, created_at_ms)" in active
    assert "WHERE status IN ('ready', 'running')" in active
    assert set(indexes) == {"idx_mem_tree_jobs_dedupe_active", "idx_memtree_jobs_active"}
    # The reference's columns plus memtree's lease token, nothing more.
    assert "priority" not in columns and columns[-1] == "lease_token"
