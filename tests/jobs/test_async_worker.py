"""`AsyncWorker`: async handlers on the caller's loop, with the Worker's
semantics: done, Defer, failures by the kind's RetryPolicy, heartbeats, a
cancelled job's handler cancelled, `run_until_idle` with its timeout."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import memtree
import pytest
from memtree.async_worker import AsyncWorker


def test_handlers_run_concurrently_on_the_loop_until_idle(tmp_path: Path) -> None:
    store = memtree.Store(tmp_path / "chunks.db")
    for i in range(12):
        store.jobs.enqueue("a", {"i": i})
    now = 0
    most = 0
    seen: list[int] = []

    async def handler(job: memtree.Job) -> None:
        nonlocal now, most
        now += 1
        most = max(most, now)
        await asyncio.sleep(0.02)
        now -= 1
        seen.append(job.payload["i"])

    async def main() -> int:
        return await AsyncWorker(store, {"a": handler}, concurrency=4).run_until_idle(timeout=30)

    assert asyncio.run(main()) == 12
    assert sorted(seen) == list(range(12)) and most >= 2
    assert store.jobs.counts()["done"] == 12


def test_defer_and_failures_follow_the_worker_rules(tmp_path: Path) -> None:
    store = memtree.Store(tmp_path / "chunks.db")
    failing = store.jobs.enqueue("fail", {})
    deferred = store.jobs.enqueue("later", {})

    async def fail(job: memtree.Job) -> None:
        raise RuntimeError("boom")

    async def later(job: memtree.Job) -> memtree.Defer:
        return memtree.Defer(timedelta(hours=1), "not yet")

    worker = AsyncWorker(
        store,
        {"fail": fail},
        retry={"fail": memtree.RetryPolicy(base=timedelta(milliseconds=1), max_attempts=2)},
    )
    asyncio.run(worker.run_until_idle(timeout=30))
    row = store.jobs.get(failing or "")
    assert row is not None and row.status == "failed" and row.attempts == 2
    assert row.last_error is not None and "RuntimeError: boom" in row.last_error

    async def once() -> None:
        with pytest.raises(TimeoutError):
            await AsyncWorker(store, {"later": later}).run_until_idle(timeout=0.3)

    asyncio.run(once())
    row = store.jobs.get(deferred or "")
    assert row is not None and row.status == "ready" and row.attempts == 0
    assert row.last_error == "not yet"


def test_a_cancelled_job_cancels_its_handler(tmp_path: Path) -> None:
    store = memtree.Store(tmp_path / "chunks.db")
    job_id = store.jobs.enqueue("long", {})
    assert job_id is not None
    stopped: list[str] = []

    async def main() -> None:
        began = asyncio.Event()

        async def long(job: memtree.Job) -> None:
            began.set()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                stopped.append(job.id)
                raise

        worker = AsyncWorker(store, {"long": long}, lease=timedelta(milliseconds=150))
        run = asyncio.ensure_future(worker.run_until_idle(timeout=20))
        await began.wait()
        assert await asyncio.to_thread(store.jobs.cancel, job_id)
        await run

    asyncio.run(main())
    assert stopped == [job_id]
    row = store.jobs.get(job_id)
    assert row is not None and row.status == "cancelled"


def test_a_timeout_hands_the_running_jobs_back(tmp_path: Path) -> None:
    store = memtree.Store(tmp_path / "chunks.db")
    job_id = store.jobs.enqueue("slow", {})

    async def slow(job: memtree.Job) -> None:
        await asyncio.sleep(30)

    async def main() -> None:
        with pytest.raises(TimeoutError):
            await AsyncWorker(store, {"slow": slow}).run_until_idle(timeout=0.2)

    asyncio.run(main())
    row = store.jobs.get(job_id or "")
    assert row is not None and row.status == "ready" and row.attempts == 0


def test_sync_handlers_and_bad_arguments_are_refused(tmp_path: Path) -> None:
    store = memtree.Store(tmp_path / "chunks.db")
    with pytest.raises(TypeError, match="async def"):
        AsyncWorker(store, {"a": lambda job: None})  # type: ignore[dict-item,return-value]
    with pytest.raises(ValueError, match="concurrency"):
        AsyncWorker(store, {"a": _noop}, concurrency=0)


async def _noop(job: memtree.Job) -> None:
    return None
