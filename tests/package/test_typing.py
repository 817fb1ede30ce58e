"""The public API used as a typed user would; checked by ``mypy --strict``
(``make lint``) and run by pytest."""

from __future__ import annotations

import array
import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import memtree
from memtree import errors, testing
from memtree.aio import AsyncJobs, AsyncStore


def use_the_api(workspace: Path) -> list[str]:
    now = datetime.now(timezone.utc)
    chunk = memtree.Chunk(
        "typed-1",
        "hello",
        memtree.SourceKind.EMAIL,
        "thread-9",
        "alice",
        now,
        tags=["inbox"],
        embedding=[0.1, 0.2],
    )
    with memtree.Store.open(workspace) as store:
        written: int = store.upsert_chunks([chunk])
        found: memtree.Chunk | None = store.get_chunk("typed-1")
        listed: list[memtree.Chunk] = store.list_chunks(source_kind="email", since=now, limit=5)
        counts: dict[str, int] = store.count_by_lifecycle_status()
        upserted, removed = store.replace_source_chunks("email", "thread-9", [chunk])
        stats: testing.IoStats = testing.io_stats(store.path)
        mode: str = store.journal_mode
        path: Path = store.path
    try:
        raise errors.from_code(memtree.ResultCode.IOERR_SHMOPEN)
    except memtree.TransientIOError as e:
        name: str = e.name
        transient: bool = e.transient
    assert found is not None and found.embedding is not None
    return [
        str(written),
        found.source_kind.value,
        str(len(listed)),
        str(counts),
        str(upserted + removed),
        str(stats["sync_calls"]),
        mode,
        path.name,
        name,
        str(transient),
    ]


def test_typed_usage(tmp_path: Path) -> None:
    out = use_the_api(tmp_path)
    assert out[0] == "1" and out[1] == "email" and out[-2] == "SQLITE_IOERR_SHMOPEN"


async def use_the_async_api(workspace: Path) -> int:
    async with AsyncStore.open(workspace) as store:
        written: int = await store.upsert_chunks([])
        listed: list[memtree.Chunk] = await store.list_chunks(limit=1)
        mode: str = store.journal_mode
    reopened: AsyncStore = await AsyncStore.connect(store.path)
    await reopened.close()
    return written + len(listed) + (mode == "truncate")


def test_typed_async_usage(tmp_path: Path) -> None:
    assert asyncio.run(use_the_async_api(tmp_path)) == 1


# Each of these returns inside a `with` block and has no return after it:
# `mypy --strict` accepts that only if the context manager's `__exit__`
# returns None (a `bool` may swallow the exception, and the function fall
# through: "Missing return statement").
def count_inside_with(workspace: Path) -> int:
    with memtree.Store.open(workspace) as store:
        return store.count_chunks()


def job_ids_inside_batch(store: memtree.Store) -> int:
    with store.jobs.batch() as b:
        return b.enqueue("typed", {"n": 1})


def faults_inside_fault(path: Path) -> int:
    with testing.fault(path, "xWrite", 1_000_000, memtree.ResultCode.IOERR):
        return testing.faults_fired(path)


def ignore(job: memtree.Job) -> None:
    del job


def worker_inside_with(store: memtree.Store) -> bool:
    with memtree.Worker(store, {"unused-kind": ignore}, concurrency=1) as worker:
        return worker is not None


async def count_inside_async_with(workspace: Path) -> int:
    async with AsyncStore.open(workspace) as store:
        async with store.jobs.batch() as b:
            b.enqueue("typed", {"n": 2})
            return await store.count_chunks()


def test_returning_inside_with_blocks(tmp_path: Path) -> None:
    assert count_inside_with(tmp_path) == 0
    with memtree.Store.open(tmp_path) as store:
        assert job_ids_inside_batch(store) == 0  # the enqueue's index
        assert store.jobs.counts()["ready"] == 1
        assert faults_inside_fault(store.path) == 0
        assert worker_inside_with(store)
    assert asyncio.run(count_inside_async_with(tmp_path)) == 0
    with memtree.Store.open(tmp_path) as store:
        assert store.jobs.counts()["ready"] == 2


def test_exit_methods_return_none(tmp_path: Path) -> None:
    # What the stub promises is what the native methods do (mypy, rightly,
    # refuses to look at the result of a call typed as returning None).
    store = memtree.Store.open(tmp_path)
    batch_exit: Any = store.jobs.batch().__exit__
    store_exit: Any = store.__exit__
    assert batch_exit(None, None, None) is None
    assert store_exit(None, None, None) is None
    assert store.closed


def typed_counters(path: Path) -> tuple[int, int, int]:
    stats: testing.IoStats = testing.io_stats(path)
    counters: testing.OpenCounters = testing.open_counters(path)
    report: testing.CrashReport | None = testing.disarm_crash(path)
    return (
        stats["deletes"],
        counters["connections_opened"],
        -1 if report is None else report["truncates_flushed"] + report["deletes"],
    )


def test_group_commit_counters_and_limit_are_typed(tmp_path: Path) -> None:
    with memtree.Store.open(tmp_path) as store:
        store.upsert_chunks([])
        stats: testing.IoStats = testing.io_stats(store.path)
        calls: int = stats["committed_calls"]
        syncs: int = stats["commit_syncs"]
        # An empty upsert writes nothing: no transaction, so no committed
        # call and no sync.
        assert (calls, syncs) == (0, 0)
    previous: int = testing.set_group_commit_limit(64)
    assert previous == 64


def test_the_busy_budget_hooks_are_typed() -> None:
    budget: float
    with testing.busy_timeout(0.5) as budget:
        assert testing.set_busy_timeout(0.5) == 0.5
    restored: float = testing.set_busy_timeout(budget)
    assert (budget, restored) == (5.0, 5.0)


def test_counter_dicts_have_exactly_their_typed_keys(tmp_path: Path) -> None:
    with memtree.Store.open(tmp_path) as store:
        path = store.path
        assert set(testing.io_stats(path)) == testing.IoStats.__required_keys__
        assert set(testing.open_counters(path)) == testing.OpenCounters.__required_keys__
        testing.arm_crash(path, seed=1, at_sync=1_000_000)
        store.upsert_chunks([])
        report = testing.disarm_crash(path)
        assert report is not None
        assert set(report) == testing.CrashReport.__required_keys__
        assert report["crashed"] == 0
    deletes, opened, _ = typed_counters(path)
    assert deletes >= 0 and opened >= 1


def async_jobs_of(store: AsyncStore) -> AsyncJobs:
    return store.jobs


def use_the_derived_data_api(workspace: Path) -> list[str]:
    import array

    now = datetime.now(timezone.utc)
    chunk = memtree.Chunk("typed-d", "hello", "chat", "s-1", "alice", now, token_count=4)
    with memtree.Store.open(workspace) as store:
        store.upsert_chunks([chunk])
        existed: bool = store.set_chunk_embedding("typed-d", array.array("f", [0.5, 1.5]))
        store.set_chunk_embedding("typed-d", memoryview(array.array("d", [0.5])))
        store.set_chunk_embedding("typed-d", (x / 2 for x in range(1, 3)))
        vector: array.array[float] | None = store.get_chunk_embedding("typed-d")
        store.set_chunk_raw_refs("typed-d", [memtree.RawRef("raw/a.md", end=10)])
        refs: list[memtree.RawRef] | None = store.get_chunk_raw_refs("typed-d")
        pointers: tuple[str, str] | None = store.get_chunk_content_pointers("typed-d")
        listed: list[tuple[str, str, str]] = store.list_summaries_with_content_path()
        sources: list[memtree.SourceInfo] = store.list_sources()
        newest: datetime = sources[0].newest
        deleted: bool = store.delete_chunk("typed-d")
        store.set_chunk_embedding("typed-d", None)
    assert refs is not None
    return [
        str(existed),
        str(vector),
        refs[0].path,
        str(refs[0].end),
        str(pointers),
        str(len(listed)),
        sources[0].source_kind.value,
        str(sources[0].token_total),
        str(newest == chunk.timestamp),
        str(deleted),
    ]


def test_typed_derived_data_usage(tmp_path: Path) -> None:
    assert use_the_derived_data_api(tmp_path) == [
        "True",
        "array('f', [0.5, 1.0])",
        "raw/a.md",
        "10",
        "None",
        "0",
        "chat",
        "4",
        "True",
        "True",
    ]


def test_chunk_times_as_int_milliseconds() -> None:
    # The stub takes `datetime | int` for every time of Chunk(...) and replace().
    now = datetime.now(timezone.utc)
    chunk = memtree.Chunk(
        "typed-ms",
        "hello",
        "chat",
        "s-1",
        "alice",
        1_767_225_600_000,
        time_range=(0, now),
        created_at=5,
    )
    ms: int = chunk.timestamp_ms
    later = chunk.replace(timestamp=ms + 1, created_at=now)
    assert ms == 1_767_225_600_000 and later.timestamp_ms == ms + 1


def settle_and_claim(store: memtree.Store) -> tuple[memtree.JobStatus, memtree.Job | None]:
    """The combined settles' types, as the stub declares them."""
    store.jobs.enqueue("typed", [1])
    store.jobs.enqueue("typed", [2])
    job = store.jobs.claim_next(timedelta(seconds=30), ["typed"], {"typed": 1})
    assert job is not None
    nxt: memtree.Job | None = store.jobs.mark_done_and_claim_next(
        job, timedelta(seconds=30), kinds=["typed"], priorities={"typed": 1}
    )
    assert nxt is not None
    return store.jobs.mark_failed_and_claim_next(nxt, "typed failure", lease=timedelta(minutes=1))


def test_settle_and_claim_types(tmp_path: Path) -> None:
    with memtree.Store.open(tmp_path) as store:
        status, nxt = settle_and_claim(store)
        assert status is memtree.JobStatus.READY and nxt is None


def use_the_search_api(path: Path) -> list[str]:
    with memtree.Store(path) as store:
        store.upsert_chunks([memtree.Chunk(f"v{i}", "t", "chat", "s", "o", i) for i in range(3)])
        found: int = store.set_chunk_embeddings(["v0", "v1", "v2"], [[1.0, 0.0], [0.0, 1.0], None])
        one: array.array[float] | None = store.get_chunk_embedding("v0")
        block: memtree.Embeddings = store.get_chunk_embeddings(["v1", "v0"])
        ids: list[str] = block.ids
        dim: int = block.dim
        data: bytes = block.data
        hits: list[memtree.Hit] = store.search_vector(
            array.array("f", [1.0, 0.2]), 2, owner="o", metric="dot", include_summaries=True
        )
        best: memtree.Hit = hits[0]
        rank: int | None = best.vector_rank
        score: float = best.score
    return [
        str(found),
        str(one),
        *ids,
        str(dim),
        str(len(data)),
        best.id,
        best.kind,
        str(rank),
        f"{score:.1f}",
    ]


def test_typed_search_usage(tmp_path: Path) -> None:
    assert use_the_search_api(tmp_path / "s.db") == [
        "3",
        "array('f', [1.0, 0.0])",
        "v1",
        "v0",
        "2",
        "16",
        "v0",
        "chunk",
        "1",
        "1.0",
    ]


def use_text_search_and_paging(path: Path) -> list[str]:
    with memtree.Store(path) as store:
        store.upsert_chunks(
            [
                memtree.Chunk(f"w{i}", f"otter {i}", "chat", "s", "o", 1000, seq_in_source=i)
                for i in range(3)
            ]
        )
        hits: list[memtree.Hit] = store.search_text("otter", 2, owner="o", syntax="words")
        excerpt: str | None = hits[0].snippet
        text_rank: int | None = hits[0].text_rank
        fused: list[memtree.Hit] = store.search(text="otter", vector=[1.0, 0.0], k=1)
        first: list[memtree.Chunk] = store.list_chunks(limit=1)
        after: list[memtree.Chunk] = store.list_chunks(after=first[-1], limit=1)
        walked: list[str] = [c.id for c in store.iter_chunks(page_size=2)]
    return [hits[0].id, str(excerpt), str(text_rank), str(len(fused)), after[0].id, *walked]


def test_typed_text_search_and_paging(tmp_path: Path) -> None:
    assert use_text_search_and_paging(tmp_path / "t.db") == [
        "w0", "otter 0", "1", "1", "w1", "w0", "w1", "w2",
    ]  # fmt: skip
