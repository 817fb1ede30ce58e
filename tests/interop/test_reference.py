"""A database written by the reference application opens and reads back."""

from __future__ import annotations

import sqlite3
import struct
from pathlib import Path

import memtree
from reference_db import EMBEDDING_DIM, create_reference_db


def reference_rows(db: Path) -> dict[str, tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT id, content, source_kind, source_id, owner, timestamp_ms, tags_json, "
            "lifecycle_status, embedding, content_path FROM mem_tree_chunks"
        )
        return {row[0]: row for row in rows}
    finally:
        conn.close()


def test_reference_database_opens_and_reads_back(tmp_path: Path) -> None:
    db = tmp_path / "memory_tree" / "chunks.db"
    db.parent.mkdir()
    ids = create_reference_db(db, chunks=6)
    expected = reference_rows(db)
    import json

    with memtree.Store.open(tmp_path) as store:
        assert store.connection_settings()["user_version"] == str(memtree.schema_version())
        chunks = store.get_chunks(ids)
        assert [c.id for c in chunks] == ids
        for chunk in chunks:
            row = expected[chunk.id]
            assert chunk.content == row[1]
            assert chunk.source_kind.value == row[2]
            assert (chunk.source_id, chunk.owner, chunk.timestamp_ms) == row[3:6]
            assert list(chunk.tags) == json.loads(str(row[6]))
            assert chunk.lifecycle_status == row[7]
            blob = row[8]
            if blob is None:
                assert chunk.embedding is None
            else:
                assert isinstance(blob, bytes)
                floats = struct.unpack(f"<{EMBEDDING_DIM}f", blob)
                assert chunk.embedding == floats
        assert any(c.embedding is not None for c in chunks)
        # memtree writes the reference's format: the rows it upserts are read
        # by a plain SQLite reader exactly as the reference would read them.
        store.upsert_chunks(chunks)
    after = reference_rows(db)
    assert after == expected, "columns memtree does not model (content_path) are kept"
    assert memtree.Store(db).count_chunks() == len(ids)
