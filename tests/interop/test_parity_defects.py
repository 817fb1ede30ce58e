"""Issue 10, defects 1-4: behaviours where memtree differed from the reference
store (re-ingest kept no derived state, ties listed newest-insert first, a
huge limit overflowed, a `source_id` filter walked the whole table)."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import memtree
import pytest
from support import BASE_TIME, ChunkFactory

# --- Defect 1: a re-ingest replaces the ingest fields and keeps derived state


def _upsert(store: memtree.Store, chunks: list[memtree.Chunk]) -> None:
    store.upsert_chunks(chunks)


def _replace(store: memtree.Store, chunks: list[memtree.Chunk]) -> None:
    store.replace_source_chunks(chunks[0].source_kind, chunks[0].source_id, chunks)


def _job_batch(store: memtree.Store, chunks: list[memtree.Chunk]) -> None:
    with store.jobs.batch() as b:
        b.upsert_chunks(chunks)


REINGEST_PATHS: list[Callable[[memtree.Store, list[memtree.Chunk]], None]] = [
    _upsert,
    _replace,
    _job_batch,
]


def _reference_derived(db: Path, chunk_id: str) -> tuple[Any, ...]:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute(
            "SELECT raw_refs_json, content_path, content_sha256, parent_summary_id "
            "FROM mem_tree_chunks WHERE id = ?",
            (chunk_id,),
        ).fetchone()
    finally:
        conn.close()
    assert row is not None
    return tuple(row)


@pytest.mark.parametrize("reingest", REINGEST_PATHS, ids=lambda f: f.__name__.strip("_"))
def test_reingest_preserves_the_existing_embedding(
    store: memtree.Store,
    db_path: Path,
    make_chunk: ChunkFactory,
    reingest: Callable[[memtree.Store, list[memtree.Chunk]], None],
) -> None:
    first = make_chunk(1, source_id="doc", embedding=[0.25, -0.5, 1.0])
    store.upsert_chunks([first])
    assert store.set_lifecycle_status([first.id], "sealed") == 1
    # The reference's other derived columns, written as the reference does.
    derived = ('[{"path": "raw/a.md", "start": 0, "end": 10}]', "c/a.md", "ab" * 32, "sum-1")
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute(
            "UPDATE mem_tree_chunks SET raw_refs_json = ?, content_path = ?, "
            "content_sha256 = ?, parent_summary_id = ? WHERE id = ?",
            (*derived, first.id),
        )
    conn.close()

    # The source again, as an ingest produces it: no embedding, the default
    # status, and new ingest fields.
    again = make_chunk(
        1,
        source_id="doc",
        content="edited body",
        owner="carol",
        tags=("new",),
        token_count=99,
        seq_in_source=7,
        timestamp=BASE_TIME + timedelta(days=1),
        created_at=BASE_TIME + timedelta(days=1),
    )
    assert again.embedding is None and again.lifecycle_status == "admitted"
    reingest(store, [again])

    back = store.get_chunk(first.id)
    assert back is not None
    assert back.embedding == pytest.approx((0.25, -0.5, 1.0))
    assert back.lifecycle_status == "sealed"
    assert store.get_lifecycle_status(first.id) == "sealed"
    assert _reference_derived(db_path, first.id) == derived
    # The content pointers kept are readable on the chunk too.
    assert (back.content_path, back.content_sha256) == (derived[1], derived[2])
    # Every ingest field is the new one.
    assert (
        back.replace(
            embedding=None, lifecycle_status="admitted", content_path=None, content_sha256=None
        )
        == again
    )
    assert store.count_chunks() == 1


def test_reingest_ignores_derived_state_carried_by_the_chunk(
    store: memtree.Store, make_chunk: ChunkFactory
) -> None:
    """Derived state is written when a chunk is new; afterwards only its own
    setters change it, so a re-ingest carrying other values leaves it."""
    store.upsert_chunks([make_chunk(1, embedding=[1.0, 2.0], lifecycle_status="buffered")])
    store.upsert_chunks([make_chunk(1, embedding=[9.0], lifecycle_status="sealed")])
    back = store.get_chunk("chunk-00001")
    assert back is not None
    assert back.embedding == pytest.approx((1.0, 2.0))
    assert back.lifecycle_status == "buffered"
    # A new id in the same call is inserted whole, derived state included.
    store.upsert_chunks([make_chunk(1), make_chunk(2, embedding=[3.0], lifecycle_status="sealed")])
    new = store.get_chunk("chunk-00002")
    assert new is not None
    assert new.embedding == pytest.approx((3.0,)) and new.lifecycle_status == "sealed"


# --- Defect 2: equal timestamps list in reading order


def test_equal_timestamps_list_in_reading_order(
    store: memtree.Store, make_chunk: ChunkFactory
) -> None:
    same = BASE_TIME + timedelta(hours=1)
    doc = [
        make_chunk(i, source_id="doc", owner="alice", timestamp=same, seq_in_source=i)
        for i in range(5)
    ]
    # Inserted in reading order, then out of it: neither insert order shows.
    store.upsert_chunks(doc[:3])
    store.upsert_chunks([doc[4], doc[3]])
    older = make_chunk(9, source_id="doc", owner="alice", timestamp=BASE_TIME, seq_in_source=0)
    newer = make_chunk(8, source_id="other", timestamp=same + timedelta(seconds=1))
    store.upsert_chunks([older, newer])
    expected = [c.id for c in doc]
    for filters in (
        {},
        {"source_kind": "chat"},
        {"source_id": "doc"},
        {"owner": "alice"},
        {"source_kind": "chat", "source_id": "doc"},
        {"source_kind": "chat", "owner": "alice"},
        {"source_id": "doc", "owner": "alice", "source_kind": "chat"},
        {"since": same, "until": same + timedelta(seconds=1)},
    ):
        got = [c.id for c in store.list_chunks(**filters)]  # type: ignore[arg-type]
        assert [i for i in got if i in expected] == expected, filters
    assert [c.id for c in store.list_chunks(source_id="doc")] == [*expected, older.id]
    assert [c.id for c in store.list_chunks(limit=3)] == [newer.id, *expected[:2]]


# --- Defect 3: any int limit clamps; other types are TypeErrors


def test_any_int_limit_clamps(store: memtree.Store, make_chunk: ChunkFactory) -> None:
    store.upsert_chunks([make_chunk(i) for i in range(3)])
    for huge in (2**64 - 1, 2**63, 10**400):
        assert len(store.list_chunks(limit=huge)) == 3
    for small in (0, -1, -(2**63) - 1, -(10**400)):
        assert len(store.list_chunks(limit=small)) == 1
    assert len(store.list_chunks(limit=2)) == 2


@pytest.mark.parametrize("limit", [True, False, 2.0, "3", None, 3j])
def test_a_non_int_limit_is_a_type_error_naming_limit(
    store: memtree.Store, make_chunk: ChunkFactory, limit: object
) -> None:
    store.upsert_chunks([make_chunk(0)])
    with pytest.raises(TypeError, match=r"^limit: expected int"):
        store.list_chunks(limit=limit)  # type: ignore[arg-type]


# --- Defect 4: every equality filter combination searches an index


EQUALITY = {"source_kind": "email", "source_id": "source-1", "owner": "bob"}
WINDOWS: list[dict[str, Any]] = [
    {},
    {"since": BASE_TIME + timedelta(minutes=5)},
    {"until": BASE_TIME + timedelta(minutes=50)},
    {"since": BASE_TIME + timedelta(minutes=5), "until": BASE_TIME + timedelta(minutes=50)},
]
COMBINATIONS = [
    {k: EQUALITY[k] for k in keys} | window
    for n in range(len(EQUALITY) + 1)
    for keys in itertools.combinations(EQUALITY, n)
    for window in WINDOWS
]


def test_every_filter_combination_is_an_index_search(
    store: memtree.Store, make_chunk: ChunkFactory
) -> None:
    chunks = [
        make_chunk(
            i,
            source_kind="email" if i % 4 == 0 else "chat",
            owner="bob" if i % 5 < 3 else "alice",
            seq_in_source=i % 5,
        )
        for i in range(60)
    ]
    store.upsert_chunks(chunks)
    assert len(COMBINATIONS) == 8 * 4
    for filters in COMBINATIONS:
        plan = store.explain_list_chunks(**filters)
        text = " | ".join(plan)
        assert len(plan) == 1 and "TEMP B-TREE" not in text, (filters, text)
        if filters:
            assert plan[0].startswith("SEARCH mem_tree_chunks USING INDEX "), (filters, text)
        else:
            # Nothing to search on: newest-first walk of the time index,
            # stopped by LIMIT.
            assert plan == ["SCAN mem_tree_chunks USING INDEX idx_memtree_chunks_time_seq"]
        if "source_id" in filters:
            # A source id pins a few rows; an owner's or kind's index could
            # hold every row (107 ms at 182k rows before).
            assert "idx_memtree_chunks_source_id_time_seq (source_id=?" in text, (filters, text)

        # And the answer is the filter's, in the list order.
        def keep(c: memtree.Chunk, f: dict[str, Any] = filters) -> bool:
            return (
                all(str(getattr(c, k)) == f[k] for k in EQUALITY if k in f)
                and ("since" not in f or c.timestamp >= f["since"])
                and ("until" not in f or c.timestamp < f["until"])
            )

        expected = sorted(
            (c for c in chunks if keep(c)),
            key=lambda c: (-c.timestamp.timestamp(), c.seq_in_source),
        )
        assert expected, filters  # every combination matches some rows
        got = store.list_chunks(**filters, limit=1000)
        assert [c.id for c in got] == [c.id for c in expected], filters
