"""Paging past 10,000 rows: the list order is total (``timestamp DESC,
seq_in_source ASC, id ASC``), ``list_chunks(after=chunk)`` continues exactly
after a chunk, and ``iter_chunks`` yields every matching chunk once, in
order, also while another thread inserts older rows."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import memtree
import pytest
from memtree.aio import AsyncStore

BASE_MS = 1_790_000_000_000
SHARED_TS = BASE_MS + 5_000_500  # no other row has it (theirs are whole seconds)


def order_key(c: memtree.Chunk) -> tuple[int, int, str]:
    return (-c.timestamp_ms, c.seq_in_source, c.id)


def corpus(n: int) -> list[memtree.Chunk]:
    """``n`` chunks: 1,000 share one timestamp, 100 of those share one
    ``(timestamp, seq)`` too; ids are not in timestamp order."""
    out = []
    for i in range(n):
        if i < 100:
            ts, seq = SHARED_TS, 7
        elif i < 1000:
            ts, seq = SHARED_TS, 8 + i % 37
        else:
            ts, seq = BASE_MS + (i * 7919) % n * 1000, i % 3
        out.append(
            memtree.Chunk(
                f"id-{(i * 104729) % 1_000_003:07d}",
                f"text {i}",
                ["chat", "email"][i % 2],
                f"s{i % 11}",
                f"o{i % 3}",
                ts,
                seq_in_source=seq,
            )
        )
    return out


@pytest.fixture(scope="module")
def paged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[memtree.Chunk]]:
    db = tmp_path_factory.mktemp("paging") / "p.db"
    rows = corpus(25_000)
    with memtree.Store(db) as store:
        for start in range(0, len(rows), 5000):
            store.upsert_chunks(rows[start : start + 5000])
    return db, sorted(rows, key=order_key)


def test_iter_chunks_yields_each_row_once_in_order(
    paged: tuple[Path, list[memtree.Chunk]],
) -> None:
    db, ordered = paged
    want = [c.id for c in ordered]
    with memtree.Store(db) as store:
        for page_size in (1000, 999, 10_000, 101):
            got = [c.id for c in store.iter_chunks(page_size=page_size)]
            assert got == want, page_size
        # And through filters.
        got = [c.id for c in store.iter_chunks(owner="o1", source_kind="email", page_size=700)]
        assert got == [c.id for c in ordered if c.owner == "o1" and c.source_kind == "email"]


def test_list_chunks_after_continues_exactly(paged: tuple[Path, list[memtree.Chunk]]) -> None:
    db, ordered = paged
    with memtree.Store(db) as store:
        first = store.list_chunks(limit=10_000)
        assert [c.id for c in first] == [c.id for c in ordered[:10_000]]
        # A cursor inside the run of 1,000 shared timestamps, and inside the
        # run of 100 shared (timestamp, seq).
        tied = [i for i, c in enumerate(ordered) if c.timestamp_ms == SHARED_TS]
        assert len(tied) == 1000
        for at in (tied[0], tied[1], tied[50], tied[99], tied[100], tied[-1], len(ordered) - 2):
            page = store.list_chunks(after=ordered[at], limit=300)
            assert [c.id for c in page] == [c.id for c in ordered[at + 1 : at + 301]], at
        assert store.list_chunks(after=ordered[-1]) == []
        # The cursor need not be stored: a chunk built by hand works too.
        probe = memtree.Chunk("id-0000000", "x", "chat", "s", "o", SHARED_TS, seq_in_source=7)
        want = [c.id for c in ordered if order_key(c) > order_key(probe)][:50]
        assert [c.id for c in store.list_chunks(after=probe, limit=50)] == want


FILTER_SETS = [
    {},
    {"source_kind": "chat"},
    {"owner": "o1"},
    {"source_kind": "chat", "owner": "o1"},
    {"source_id": "s3"},
    {"source_id": "s3", "owner": "o1", "source_kind": "email"},
]


@pytest.mark.parametrize("filters", FILTER_SETS)
def test_paging_stays_an_index_search_without_a_sort(
    paged: tuple[Path, list[memtree.Chunk]], filters: dict[str, str]
) -> None:
    db, ordered = paged
    with memtree.Store(db) as store:
        for after in (None, ordered[500]):
            plan = " | ".join(store.explain_list_chunks(after=after, **filters))  # type: ignore[arg-type]
            assert "TEMP B-TREE" not in plan and "USING INDEX idx_memtree_chunks_" in plan, plan


def test_iteration_while_another_thread_inserts_older_rows(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    rows = corpus(6000)
    with memtree.Store(db) as store:
        store.upsert_chunks(rows)
        stop = threading.Event()
        first_batch = threading.Event()
        inserted: list[str] = []

        def insert_older() -> None:
            i = 0
            while not stop.is_set():
                batch = [
                    memtree.Chunk(
                        f"late-{i + j:05d}", "late", "chat", "s", "o", BASE_MS - 1000 - i - j
                    )
                    for j in range(20)
                ]
                store.upsert_chunks(batch)
                inserted.extend(c.id for c in batch)
                first_batch.set()
                i += 20

        writer = threading.Thread(target=insert_older)
        writer.start()
        try:
            seen = []
            for chunk in store.iter_chunks(page_size=250):
                if not seen:
                    # The walk has begun: it must still reach rows committed
                    # now. Waiting for the writer's first batch keeps a
                    # loaded machine from finishing the walk before the
                    # writer ever ran (one CI run met that).
                    assert first_batch.wait(timeout=60), "the writer committed nothing"
                seen.append(chunk)
        finally:
            stop.set()
            writer.join()
    ids = [c.id for c in seen]
    assert len(ids) == len(set(ids)), "a row was yielded twice"
    assert {c.id for c in rows} <= set(ids), "a row present from the start was skipped"
    keys = [order_key(c) for c in seen]
    assert keys == sorted(keys), "yielded out of order"
    late = [i for i in ids if i.startswith("late-")]
    print(f"older rows inserted meanwhile: {len(inserted)}, seen by the walk: {len(late)}")
    assert late, "the writer's rows, older than every row, are reached by the walk"


_SHARED_ITERATOR = """
import sys, threading
import memtree

store = memtree.Store(sys.argv[1])
it = store.iter_chunks(page_size=1)
got = [[], []]

def drain(out):
    for chunk in it:
        out.append(chunk.id)

threads = [threading.Thread(target=drain, args=(out,)) for out in got]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(" ".join(sorted(got[0] + got[1])))
"""


def test_two_threads_share_one_iterator(tmp_path: Path) -> None:
    """One iterator read from two threads: each row goes to exactly one of
    them, and neither hangs. With page_size=1 every step reads a page with
    the interpreter released; a thread that waited for the iterator's lock
    while attached would keep that reader from ever getting back (the
    whole process hangs, hence the child process and its timeout)."""
    db = tmp_path / "shared.db"
    rows = corpus(400)
    with memtree.Store(db) as store:
        store.upsert_chunks(rows)
    try:
        done = subprocess.run(
            [sys.executable, "-c", _SHARED_ITERATOR, str(db)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("two threads reading one iterator hang")
    assert done.stdout.split() == sorted(c.id for c in rows), "a row was lost or yielded twice"


def test_arguments_are_checked(tmp_path: Path) -> None:
    with memtree.Store(tmp_path / "a.db") as store:
        store.upsert_chunks(corpus(5))
        with pytest.raises(TypeError, match="after"):
            store.list_chunks(after="id-1")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="page_size"):
            store.iter_chunks(page_size=1.5)  # type: ignore[arg-type]
        assert len(list(store.iter_chunks(page_size=0))) == 5  # clamped like limit
        it = store.iter_chunks(page_size=2)
        assert iter(it) is it
        assert len(list(itertools.islice(it, 3))) == 3 and len(list(it)) == 2


def test_async_iter_chunks(tmp_path: Path) -> None:
    rows = corpus(2500)

    async def run() -> list[str]:
        async with AsyncStore.connect(tmp_path / "a.db") as store:
            await store.upsert_chunks(rows)
            first = await store.list_chunks(limit=2)
            after = await store.list_chunks(after=first[-1], limit=1)
            assert after[0].id not in {c.id for c in first}
            return [c.id async for c in store.iter_chunks(page_size=1000)]

    assert asyncio.run(run()) == [c.id for c in sorted(rows, key=order_key)]


def _async_pages(db: Path, page_size: object) -> tuple[list[int], list[str]]:
    """The rows each of ``AsyncStore.iter_chunks``'s trips off the loop
    brought back (trips that brought none left out), and the ids walked."""
    batches: list[int] = []
    real_to_thread = asyncio.to_thread

    async def counting_to_thread(func: Any, /, *args: Any, **kwargs: Any) -> Any:
        result = await real_to_thread(func, *args, **kwargs)
        if isinstance(result, list) and result and isinstance(result[0], memtree.Chunk):
            batches.append(len(result))
        return result

    async def walk() -> list[str]:
        async with AsyncStore.connect(db) as store:
            asyncio.to_thread = counting_to_thread  # type: ignore[assignment]
            try:
                return [c.id async for c in store.iter_chunks(page_size=page_size)]  # type: ignore[arg-type]
            finally:
                asyncio.to_thread = real_to_thread

    ids = asyncio.run(walk())
    return batches, ids


@pytest.mark.parametrize(
    ("page_size", "batches"),
    [
        # Clamped by the native iterator, as the sync Store.iter_chunks
        # clamps it (the limit rule: 1..10000): no copy of it in Python.
        (10**12, [10_000, 10_000, 5_000]),
        (2**64, [10_000, 10_000, 5_000]),
        (7_000, [7_000, 7_000, 7_000, 4_000]),
        (25_000, [10_000, 10_000, 5_000]),
    ],
)
def test_async_iter_chunks_reads_the_native_pages(
    paged: tuple[Path, list[memtree.Chunk]], page_size: int, batches: list[int]
) -> None:
    db, rows = paged
    got, ids = _async_pages(db, page_size)
    assert got == batches
    assert ids == [c.id for c in rows]


@pytest.mark.parametrize(("page_size", "batches"), [(0, [1] * 5), (-3, [1] * 5), (2, [2, 2, 1])])
def test_async_iter_chunks_clamps_small_page_sizes_like_the_store(
    tmp_path: Path, page_size: int, batches: list[int]
) -> None:
    rows = corpus(5)
    with memtree.Store(tmp_path / "a.db") as store:
        store.upsert_chunks(rows)
        assert len(list(store.iter_chunks(page_size=page_size))) == 5
    got, ids = _async_pages(tmp_path / "a.db", page_size)
    assert got == batches
    assert ids == [c.id for c in sorted(rows, key=order_key)]


@pytest.mark.parametrize("page_size", [1.5, True, "10", None])
def test_async_iter_chunks_refuses_what_the_store_refuses(
    tmp_path: Path, page_size: object
) -> None:
    with memtree.Store(tmp_path / "a.db") as store:
        store.upsert_chunks(corpus(3))
        with pytest.raises(TypeError) as sync_error:
            store.iter_chunks(page_size=page_size)  # type: ignore[arg-type]
    with pytest.raises(TypeError) as async_error:
        _async_pages(tmp_path / "a.db", page_size)
    assert str(async_error.value) == str(sync_error.value)
    assert "page_size" in str(async_error.value)
