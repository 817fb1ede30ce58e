"""`Worker.run_until_idle`: returns once no job of its kinds is ready or
running, runs the jobs itself when the worker is not started, waits for its
threads when it is, and raises `TimeoutError` (leaving the jobs) when jobs
remain past the timeout."""

from __future__ import annotations

import threading
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
