"""Issue 10, interoperability of the derived data (items 5 to 7).

Both directions: what memtree writes is read by the reference's own SQL
(its statements below as plain strings, decoded as the reference decodes
them), and a database laid out and filled by the reference reads back
through memtree's API.
"""

from __future__ import annotations

import array
import json
import sqlite3
import struct
from pathlib import Path
from typing import Any

import memtree
import pytest
from reference_db import create_reference_db
from support import ChunkFactory, reference_connection

# The reference's reads (memory/tree/store.rs), verbatim but for whitespace.
REF_GET_EMBEDDING = "SELECT embedding FROM mem_tree_chunks WHERE id = ?1"
REF_GET_RAW_REFS = "SELECT raw_refs_json FROM mem_tree_chunks WHERE id = ?1"
REF_GET_CHUNK_POINTERS = "SELECT content_path, content_sha256 FROM mem_tree_chunks WHERE id = ?1"
REF_GET_CHUNK_PATH = "SELECT content_path FROM mem_tree_chunks WHERE id = ?1"
REF_GET_SUMMARY_POINTERS = (
    "SELECT content_path, content_sha256 FROM mem_tree_summaries WHERE id = ?1"
)
REF_LIST_SUMMARIES_WITH_PATH = (
    "SELECT id, content_path, content_sha256 FROM mem_tree_summaries "
    "WHERE content_path IS NOT NULL AND content_sha256 IS NOT NULL AND deleted = 0"
)


def ref_query(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = reference_connection(db)
    try:
        return [tuple(r) for r in conn.execute(sql, args)]
    finally:
        conn.close()


def ref_unpack_embedding(blob: bytes) -> list[float]:
    """The reference's decoding: length a multiple of 4, little-endian f32."""
    assert len(blob) % 4 == 0
    return list(struct.unpack(f"<{len(blob) // 4}f", blob))


def ref_parse_raw_refs(text: str) -> list[tuple[str, int, int | None]]:
    """The reference's serde shape: `path` a string, `start` a usize
    (default 0), `end` an optional usize; no other keys written."""
    refs = []
    for item in json.loads(text):
        assert set(item) == {"path", "start", "end"}
        assert isinstance(item["path"], str)
        assert isinstance(item["start"], int) and item["start"] >= 0
        assert item["end"] is None or (isinstance(item["end"], int) and item["end"] >= 0)
        refs.append((item["path"], item["start"], item["end"]))
    return refs


def test_reference_sql_reads_what_memtree_writes(
    store: memtree.Store, db_path: Path, make_chunk: ChunkFactory
) -> None:
    chunks = [make_chunk(i) for i in range(3)]
    store.upsert_chunks(chunks)
    a, b, c = (ch.id for ch in chunks)
    store.set_chunk_embedding(a, [0.25, -1.5, 3.0, 1e-3])
    store.set_chunk_raw_refs(
        a, [memtree.RawRef("raw/inbox/1700000_msg.md"), memtree.RawRef("raw/x.md", 4, 90)]
    )
    store.set_chunk_raw_refs(b, [])

    (blob,) = ref_query(db_path, REF_GET_EMBEDDING, a)[0]
    assert store.get_chunk_embedding(a) == array.array("f", ref_unpack_embedding(blob))
    assert len(blob) == 4 * 4
    assert ref_query(db_path, REF_GET_EMBEDDING, b) == [(None,)]

    (text,) = ref_query(db_path, REF_GET_RAW_REFS, a)[0]
    assert ref_parse_raw_refs(text) == [("raw/inbox/1700000_msg.md", 0, None), ("raw/x.md", 4, 90)]
    assert ref_parse_raw_refs(ref_query(db_path, REF_GET_RAW_REFS, b)[0][0]) == []
    assert ref_query(db_path, REF_GET_RAW_REFS, c) == [(None,)]

    # memtree's writes leave the pointer columns as the reference reads them.
    assert ref_query(db_path, REF_GET_CHUNK_POINTERS, a) == [(None, None)]
    assert ref_query(db_path, REF_GET_CHUNK_PATH, a) == [(None,)]

    # And a cleared embedding is a NULL, which the reference reads as None.
    store.set_chunk_embedding(a, None)
    assert ref_query(db_path, REF_GET_EMBEDDING, a) == [(None,)]


def add_reference_summaries(db: Path) -> list[tuple[str, str | None, str | None, int]]:
    """Summary rows as the reference's sealer writes them (with pointers)."""
    rows: list[tuple[str, str | None, str | None, int]] = [
        ("sum-L1-a", "summaries/source/a.md", "a1" * 32, 0),
        ("sum-L1-b", "summaries/source/b.md", "b2" * 32, 1),  # archived
        ("sum-L1-c", None, None, 0),  # legacy: body in `content`
        ("sum-L2-d", "summaries/global/d.md", "d4" * 32, 0),
    ]
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "INSERT INTO mem_tree_trees (id, kind, scope, created_at_ms) "
            "VALUES ('tree-1', 'source', 'chat:general', 1700000000000)"
        )
        for sid, path, sha, deleted in rows:
            conn.execute(
                "INSERT INTO mem_tree_summaries (id, tree_id, tree_kind, level, content, "
                "token_count, time_range_start_ms, time_range_end_ms, sealed_at_ms, deleted, "
                "content_path, content_sha256) "
                "VALUES (?, 'tree-1', 'source', 1, 'preview', 9, 0, 1, 2, ?, ?, ?)",
                (sid, deleted, path, sha),
            )
    conn.close()
    return rows


def test_reference_database_reads_back_through_the_api(tmp_path: Path) -> None:
    db = tmp_path / "memory_tree" / "chunks.db"
    ids = create_reference_db(db, chunks=9)
    summaries = add_reference_summaries(db)
    expected = {
        cid: ref_query(
            db,
            "SELECT embedding, raw_refs_json, content_path, content_sha256 "
            "FROM mem_tree_chunks WHERE id = ?",
            cid,
        )[0]
        for cid in ids
    }
    # The fixture covers every case: embeddings, raw refs, pointers and their absence.
    assert any(e[0] is not None for e in expected.values())
    assert any(e[0] is None for e in expected.values())
    assert any(e[1] is not None for e in expected.values())
    assert any(e[2] is not None for e in expected.values())
    assert any(e[2] is None for e in expected.values())

    with memtree.Store.open(tmp_path) as store:
        for cid, (blob, refs_json, path, sha) in expected.items():
            embedding = store.get_chunk_embedding(cid)
            assert embedding == (
                None if blob is None else array.array("f", ref_unpack_embedding(blob))
            )
            refs = store.get_chunk_raw_refs(cid)
            if refs_json is None:
                assert refs is None
            else:
                assert [tuple(r) for r in refs or []] == ref_parse_raw_refs(refs_json)
                assert all(isinstance(r, memtree.RawRef) for r in refs or [])
            assert store.get_chunk_content_path(cid) == path
            assert store.get_chunk_content_pointers(cid) == (
                (path, sha) if path is not None and sha is not None else None
            )
        for sid, path, sha, _ in summaries:
            assert store.get_summary_content_pointers(sid) == (
                None if path is None or sha is None else (path, sha)
            )
        assert sorted(store.list_summaries_with_content_path()) == sorted(
            ref_query(db, REF_LIST_SUMMARIES_WITH_PATH)
        )
        assert [s for s, *_ in store.list_summaries_with_content_path()] == [
            "sum-L1-a",
            "sum-L2-d",
        ]

        # Writes through memtree on the reference's file read back by its SQL.
        first = ids[0]
        store.set_chunk_embedding(first, [9.5] * 16)
        assert ref_unpack_embedding(ref_query(db, REF_GET_EMBEDDING, first)[0][0]) == [9.5] * 16
        # The pointers the reference wrote are untouched by memtree's writes.
        assert ref_query(db, REF_GET_CHUNK_POINTERS, first)[0] == expected[first][2:]


@pytest.mark.parametrize("stored", ["", None])
def test_empty_raw_refs_text_reads_as_none_like_the_reference(
    store: memtree.Store, db_path: Path, make_chunk: ChunkFactory, stored: str | None
) -> None:
    store.upsert_chunks([make_chunk(0)])
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("UPDATE mem_tree_chunks SET raw_refs_json = ?", (stored,))
    conn.close()
    assert store.get_chunk_raw_refs(make_chunk(0).id) is None
