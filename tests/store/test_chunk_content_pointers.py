"""Content pointers carried by a Chunk through upsert (issue 10, item 7):
written with a new id, kept by a re-ingest, validated as a pair."""

from __future__ import annotations

import pickle
import sqlite3
from pathlib import Path

import memtree
import pytest
from support import ChunkFactory

SHA = "0123456789abcdef" * 4


def test_pointers_go_in_with_the_chunk_and_read_back(
    store: memtree.Store, db_path: Path, make_chunk: ChunkFactory
) -> None:
    chunk = make_chunk(1, content="preview…", content_path="bodies/1.md", content_sha256=SHA)
    store.upsert_chunks([chunk])
    back = store.get_chunk(chunk.id)
    assert back == chunk
    assert (back.content_path, back.content_sha256) == ("bodies/1.md", SHA)
    assert store.get_chunk_content_pointers(chunk.id) == ("bodies/1.md", SHA)
    # The reference reads the same columns.
    conn = sqlite3.connect(db_path)
    row = conn.execute(
        "SELECT content_path, content_sha256 FROM mem_tree_chunks WHERE id = ?", (chunk.id,)
    ).fetchone()
    conn.close()
    assert row == ("bodies/1.md", SHA)


def test_a_reingest_keeps_the_pointers(store: memtree.Store, make_chunk: ChunkFactory) -> None:
    store.upsert_chunks([make_chunk(1, content_path="bodies/1.md", content_sha256=SHA)])
    store.upsert_chunks([make_chunk(1, content="edited")])
    back = store.get_chunk(make_chunk(1).id)
    assert back is not None and back.content == "edited"
    assert (back.content_path, back.content_sha256) == ("bodies/1.md", SHA)


@pytest.mark.parametrize(
    ("fields", "error", "named"),
    [
        ({"content_path": "bodies/1.md"}, ValueError, "content_sha256"),
        ({"content_sha256": SHA}, ValueError, "content_path"),
        ({"content_path": "", "content_sha256": SHA}, ValueError, "content_path"),
        ({"content_path": "b", "content_sha256": SHA.upper()}, ValueError, "content_sha256"),
        ({"content_path": "b", "content_sha256": SHA[:-1]}, ValueError, "content_sha256"),
        ({"content_path": 3, "content_sha256": SHA}, TypeError, "content_path"),
    ],
)
def test_bad_pointers_are_refused_by_name(
    make_chunk: ChunkFactory, fields: dict[str, object], error: type[Exception], named: str
) -> None:
    with pytest.raises(error, match=named):
        make_chunk(1, **fields)


def test_pointers_survive_replace_and_pickle(make_chunk: ChunkFactory) -> None:
    chunk = make_chunk(1, content_path="bodies/1.md", content_sha256=SHA)
    assert pickle.loads(pickle.dumps(chunk)) == chunk
    assert chunk.replace(content="x").content_path == "bodies/1.md"
    cleared = chunk.replace(content_path=None, content_sha256=None)
    assert cleared.content_path is None and cleared.content_sha256 is None
