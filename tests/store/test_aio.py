"""``memtree.aio.AsyncStore``: the same API as coroutines, run off the loop."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path

import memtree
import pytest
from memtree import testing
from memtree.aio import AsyncJobBatch, AsyncJobs, AsyncStore
from support import ChunkFactory, write_lock_in_another_process


def test_async_api_mirrors_the_store() -> None:
    public = {
        name
        for name, member in inspect.getmembers(memtree.Store)
        if not name.startswith("_") and callable(member) and name not in {"open", "invalidate"}
    }
    for name in public:
        method = getattr(AsyncStore, name)
        # iter_chunks is an async generator: `async for chunk in ...`.
        assert inspect.iscoroutinefunction(method) or inspect.isasyncgenfunction(method), name
    for prop in ("path", "journal_mode", "closed", "jobs"):
        assert isinstance(inspect.getattr_static(AsyncStore, prop), property)


def test_async_jobs_mirror_the_queue() -> None:
    public = {
        name
        for name, member in inspect.getmembers(memtree.Jobs)
        if not name.startswith("_") and callable(member)
    }
    assert "enqueue" in public and "claim_next" in public
    for name in public - {"batch"}:
        assert inspect.iscoroutinefunction(getattr(AsyncJobs, name)), name
    batch_api = {
        name
        for name, member in inspect.getmembers(memtree.JobBatch)
        if not name.startswith("_") and callable(member)
    }
    for name in batch_api:
        assert hasattr(AsyncJobBatch, name), name
    assert inspect.iscoroutinefunction(AsyncJobBatch.commit)


def test_async_jobs_round_trip(tmp_path: Path, make_chunk: ChunkFactory) -> None:
    async def main() -> None:
        async with AsyncStore.open(tmp_path) as store:
            jobs = store.jobs
            first = await jobs.enqueue("summarise", {"source": "s1"}, dedupe_key="s1")
            assert first is not None
            assert await jobs.enqueue("summarise", {}, dedupe_key="s1") is None
            async with jobs.batch() as b:
                assert b.upsert_chunks([make_chunk(1)]) == 1
                b.enqueue("embed", {"ids": ["chunk-00001"]})
                with pytest.raises(RuntimeError):  # nothing written before the block ends
                    _ = b.job_ids
            assert len(b.job_ids) == 1 and b.job_ids[0] is not None
            assert await store.count_chunks() == 1
            with pytest.raises(RuntimeError):
                async with jobs.batch() as b2:
                    b2.enqueue("embed", {"ids": []})
                    raise RuntimeError("discard me")
            assert (await jobs.counts())["ready"] == 2
            job = await jobs.claim_next(kinds=iter(["summarise"]))
            assert job is not None and job.id == first and job.status == "running"
            await jobs.mark_done(job)
            got = await jobs.get(first)
            assert got is not None and got.status == "done"
            assert [j.kind for j in await jobs.list(status="ready")] == ["embed"]
            assert await jobs.recover_stale_locks() == 0

    asyncio.run(main())


def test_round_trip_and_context_managers(tmp_path: Path, make_chunk: ChunkFactory) -> None:
    async def main() -> None:
        async with AsyncStore.open(tmp_path) as store:
            assert store.journal_mode == "truncate"
            assert await store.claim_source("chat", "s")
            assert not await store.claim_source("chat", "s")
            assert await store.upsert_chunks(make_chunk(i) for i in range(10)) == 10
            assert await store.count_chunks() == 10
            got = await store.get_chunk("chunk-00003")
            assert got is not None and got.id == "chunk-00003"
            assert [c.id for c in await store.get_chunks(["chunk-00001", "nope"])] == [
                "chunk-00001"
            ]
            newest = await store.list_chunks(owner="alice", limit=2)
            assert [c.id for c in newest] == ["chunk-00008", "chunk-00006"]
            assert await store.set_lifecycle_status(["chunk-00001"], "summarized") == 1
            assert await store.count_by_lifecycle_status() == {"admitted": 9, "summarized": 1}
            assert await store.check(full=True) == ["ok"]
            with pytest.raises(TypeError):
                await store.get_chunks("chunk-00001")
        assert store.closed
        with pytest.raises(memtree.StoreClosedError):
            await store.count_chunks()

        opened = await AsyncStore.connect(store.path)
        async with opened:
            assert await opened.count_chunks() == 10
            assert await opened.delete_source("chat", "source-0") == 4
        assert opened.closed

    asyncio.run(main())


def test_the_loop_stays_responsive_while_an_upsert_waits(
    tmp_path: Path, make_chunk: ChunkFactory
) -> None:
    # Not timed: another process holds the write lock, so the upsert waits
    # (the busy handler retrying xLock) until this loop releases it. Had the
    # upsert blocked the loop, the loop could neither watch the retries nor
    # release the lock: the upsert would end in BusyError first.
    db = tmp_path / "chunks.db"
    batch = [make_chunk(i) for i in range(2_000)]

    async def main() -> int:
        async with AsyncStore.connect(db) as store:
            with write_lock_in_another_process(db) as release:
                retries_before = testing.method_calls(db, "xLock")
                upsert = asyncio.ensure_future(store.upsert_chunks(batch))
                while testing.method_calls(db, "xLock") < retries_before + 3:
                    assert not upsert.done(), upsert
                    await asyncio.sleep(0.001)
                assert not upsert.done(), "the upsert waits for the lock"
                release()
            written = await upsert
            assert await store.count_chunks() == len(batch)
            return written

    assert asyncio.run(main()) == len(batch)
