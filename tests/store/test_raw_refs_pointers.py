"""Issue 10 items 6 and 7: raw-archive refs (`raw_refs_json`) and content
pointers (`content_path` / `content_sha256`) per chunk and summary."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import memtree
import pytest
from support import ChunkFactory

RawRef = memtree.RawRef


def column(db: Path, name: str, chunk_id: str) -> Any:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            f"SELECT {name} FROM mem_tree_chunks WHERE id = ?", (chunk_id,)
        ).fetchone()[0]
    finally:
        conn.close()


def whole_row(db: Path, chunk_id: str) -> tuple[Any, ...]:
    conn = sqlite3.connect(db)
    try:
        return tuple(
            conn.execute("SELECT * FROM mem_tree_chunks WHERE id = ?", (chunk_id,)).fetchone()
        )
    finally:
        conn.close()


@pytest.fixture
def one_chunk(store: memtree.Store, make_chunk: ChunkFactory) -> str:
    chunk = make_chunk(0)
    store.upsert_chunks([chunk])
    return chunk.id


def test_raw_refs_round_trip_as_reference_json(
    store: memtree.Store, db_path: Path, one_chunk: str
) -> None:
    assert store.get_chunk_raw_refs(one_chunk) is None
    refs = [RawRef("raw/a.md"), RawRef("raw/b.md", 10, 20), RawRef(path="raw/é.md", start=3)]
    assert store.set_chunk_raw_refs(one_chunk, refs) is True
    assert store.get_chunk_raw_refs(one_chunk) == refs
    stored = column(db_path, "raw_refs_json", one_chunk)
    assert stored == (
        '[{"path":"raw/a.md","start":0,"end":null},'
        '{"path":"raw/b.md","start":10,"end":20},'
        '{"path":"raw/\u00e9.md","start":3,"end":null}]'
    )
    assert json.loads(stored)[1] == {"path": "raw/b.md", "start": 10, "end": 20}


def test_raw_refs_empty_list_none_and_missing_id(
    store: memtree.Store, db_path: Path, one_chunk: str
) -> None:
    assert store.set_chunk_raw_refs(one_chunk, ()) is True
    assert store.get_chunk_raw_refs(one_chunk) == []
    assert column(db_path, "raw_refs_json", one_chunk) == "[]"
    assert store.set_chunk_raw_refs(one_chunk, None) is True
    assert store.get_chunk_raw_refs(one_chunk) is None
    assert column(db_path, "raw_refs_json", one_chunk) is None
    assert store.set_chunk_raw_refs("missing", [RawRef("x")]) is False
    assert store.get_chunk_raw_refs("missing") is None


def test_raw_refs_change_only_their_column(
    store: memtree.Store, db_path: Path, one_chunk: str
) -> None:
    store.set_chunk_embedding(one_chunk, [1.0])
    before = whole_row(db_path, one_chunk)
    store.set_chunk_raw_refs(one_chunk, [RawRef("p")])
    after = whole_row(db_path, one_chunk)
    conn = sqlite3.connect(db_path)
    names = [r[1] for r in conn.execute("PRAGMA table_info(mem_tree_chunks)")]
    conn.close()
    changed = [names[i] for i, (a, b) in enumerate(zip(before, after)) if a != b]
    assert changed == ["raw_refs_json"]


@pytest.mark.parametrize(
    ("refs", "error", "message"),
    [
        ("raw/a.md", TypeError, r"^refs: expected a sequence of RawRef, got a single str"),
        (5, TypeError, r"^refs: expected a sequence of RawRef, got int"),
        ([RawRef("a"), ("b", 0, None)], TypeError, r"^refs\[1\]: expected RawRef, got tuple"),
        ([{"path": "a"}], TypeError, r"^refs\[0\]: expected RawRef, got dict"),
        ([RawRef(1)], TypeError, r"^refs\[0\]\.path: expected str, got int"),  # type: ignore[arg-type]
        ([RawRef("a", "0")], TypeError, r"^refs\[0\]\.start: expected int, got str"),  # type: ignore[arg-type]
        ([RawRef("a", 0, 1.5)], TypeError, r"^refs\[0\]\.end: expected int, got float"),  # type: ignore[arg-type]
        ([RawRef("a", 2**64)], ValueError, r"^refs\[0\]\.start: out of range"),
        ([RawRef("")], ValueError, r"^refs\[0\]\.path: must not be empty"),
        ([RawRef("a", -1)], ValueError, r"^refs\[0\]\.start: must be >= 0"),
        (
            [RawRef("a"), RawRef("b", 5, 4)],
            ValueError,
            r"^refs\[1\]\.end: must be None or >= start",
        ),
        ([RawRef("\ud800")], ValueError, r"^refs\[0\]\.path: not encodable as UTF-8"),
    ],
)
def test_bad_raw_refs_change_nothing(
    store: memtree.Store, db_path: Path, one_chunk: str, refs: Any, error: type, message: str
) -> None:
    store.set_chunk_raw_refs(one_chunk, [RawRef("kept", 1, 2)])
    before = whole_row(db_path, one_chunk)
    with pytest.raises(error, match=message):
        store.set_chunk_raw_refs(one_chunk, refs)
    assert whole_row(db_path, one_chunk) == before


def test_malformed_stored_raw_refs_are_an_error(
    store: memtree.Store, db_path: Path, one_chunk: str
) -> None:
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute(
            "UPDATE mem_tree_chunks SET raw_refs_json = '[{\"start\":0}]' WHERE id = ?",
            (one_chunk,),
        )
    conn.close()
    with pytest.raises(memtree.MemtreeError, match=r"raw_refs_json\[0\]\.path is not a string"):
        store.get_chunk_raw_refs(one_chunk)


def set_pointers(db: Path, table: str, row_id: str, path: str | None, sha: str | None) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            f"UPDATE {table} SET content_path = ?, content_sha256 = ? WHERE id = ?",
            (path, sha, row_id),
        )
    conn.close()


def add_summary(db: Path, summary_id: str, *, deleted: int = 0) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "INSERT OR IGNORE INTO mem_tree_trees (id, kind, scope, created_at_ms) "
            "VALUES ('t1', 'source', 'chat:x', 0)"
        )
        conn.execute(
            "INSERT INTO mem_tree_summaries (id, tree_id, tree_kind, level, content, token_count, "
            "time_range_start_ms, time_range_end_ms, sealed_at_ms, deleted) "
            "VALUES (?, 't1', 'source', 1, 'preview', 3, 0, 1, 2, ?)",
            (summary_id, deleted),
        )
    conn.close()


def test_chunk_content_pointers(store: memtree.Store, db_path: Path, one_chunk: str) -> None:
    assert store.get_chunk_content_pointers(one_chunk) is None
    assert store.get_chunk_content_path(one_chunk) is None
    set_pointers(db_path, "mem_tree_chunks", one_chunk, "chat/x/000000.md", "ab" * 32)
    assert store.get_chunk_content_pointers(one_chunk) == ("chat/x/000000.md", "ab" * 32)
    assert store.get_chunk_content_path(one_chunk) == "chat/x/000000.md"
    # Only a path: the pair is incomplete, the path alone still reads.
    set_pointers(db_path, "mem_tree_chunks", one_chunk, "chat/x/000000.md", None)
    assert store.get_chunk_content_pointers(one_chunk) is None
    assert store.get_chunk_content_path(one_chunk) == "chat/x/000000.md"
    set_pointers(db_path, "mem_tree_chunks", one_chunk, None, "ab" * 32)
    assert store.get_chunk_content_pointers(one_chunk) is None
    assert store.get_chunk_content_path(one_chunk) is None
    assert store.get_chunk_content_pointers("missing") is None
    assert store.get_chunk_content_path("missing") is None


def test_summary_content_pointers(store: memtree.Store, db_path: Path) -> None:
    for sid, deleted in [("s3", 0), ("s1", 0), ("s2", 1), ("s4", 0), ("s5", 0)]:
        add_summary(db_path, sid, deleted=deleted)
    set_pointers(db_path, "mem_tree_summaries", "s1", "summaries/s1.md", "11" * 32)
    set_pointers(db_path, "mem_tree_summaries", "s2", "summaries/s2.md", "22" * 32)
    set_pointers(db_path, "mem_tree_summaries", "s3", "summaries/s3.md", "33" * 32)
    set_pointers(db_path, "mem_tree_summaries", "s4", "summaries/s4.md", None)
    assert store.get_summary_content_pointers("s1") == ("summaries/s1.md", "11" * 32)
    assert store.get_summary_content_pointers("s2") == ("summaries/s2.md", "22" * 32)
    assert store.get_summary_content_pointers("s4") is None
    assert store.get_summary_content_pointers("s5") is None
    assert store.get_summary_content_pointers("missing") is None
    assert store.list_summaries_with_content_path() == [
        ("s1", "summaries/s1.md", "11" * 32),
        ("s3", "summaries/s3.md", "33" * 32),
    ]


@pytest.mark.parametrize(
    "call",
    [
        "get_chunk_raw_refs",
        "get_chunk_content_pointers",
        "get_chunk_content_path",
        "get_summary_content_pointers",
    ],
)
def test_reads_name_a_bad_id(store: memtree.Store, call: str) -> None:
    with pytest.raises(TypeError, match=r"^id: expected str, got bytes"):
        getattr(store, call)(b"x")
    with pytest.raises(ValueError, match=r"^id: not encodable as UTF-8"):
        getattr(store, call)("\ud800")


def test_set_raw_refs_bad_id(store: memtree.Store) -> None:
    with pytest.raises(ValueError, match=r"^id: must not be empty"):
        store.set_chunk_raw_refs("", [RawRef("a")])
