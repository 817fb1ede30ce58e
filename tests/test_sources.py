"""Issue 10 item 8: `delete_chunk` (one chunk with its score and entity rows)
and `list_sources` (per-source aggregates along an index)."""

from __future__ import annotations

import array
import re
import sqlite3
from datetime import timedelta
from pathlib import Path

import memtree
import pytest
from conftest import BASE_TIME, ChunkFactory


def add_dependents(db: Path, chunk_ids: list[str]) -> None:
    """A score row and two entity-index rows per chunk, as the reference writes them."""
    conn = sqlite3.connect(db)
    with conn:
        for cid in chunk_ids:
            conn.execute(
                "INSERT INTO mem_tree_score (chunk_id, total, token_count_signal, "
                "unique_words_signal, metadata_weight, source_weight, interaction_weight, "
                "entity_density, computed_at_ms) VALUES (?, 1, 1, 1, 1, 1, 1, 1, 0)",
                (cid,),
            )
            for entity in ("person:alice", "topic:rust"):
                conn.execute(
                    "INSERT INTO mem_tree_entity_index (entity_id, node_id, node_kind, "
                    "entity_kind, surface, score, timestamp_ms) "
                    "VALUES (?, ?, 'chunk', 'x', 's', 1, 0)",
                    (entity, cid),
                )
    conn.close()


def counts(db: Path, chunk_id: str) -> tuple[int, int, int]:
    conn = sqlite3.connect(db)
    try:
        return (
            conn.execute(
                "SELECT count(*) FROM mem_tree_chunks WHERE id = ?", (chunk_id,)
            ).fetchone()[0],
            conn.execute(
                "SELECT count(*) FROM mem_tree_score WHERE chunk_id = ?", (chunk_id,)
            ).fetchone()[0],
            conn.execute(
                "SELECT count(*) FROM mem_tree_entity_index WHERE node_id = ?", (chunk_id,)
            ).fetchone()[0],
        )
    finally:
        conn.close()


def test_delete_chunk_cascades_and_is_idempotent(
    store: memtree.Store, db_path: Path, make_chunk: ChunkFactory
) -> None:
    chunks = [make_chunk(i) for i in range(3)]
    store.upsert_chunks(chunks)
    store.claim_source(memtree.SourceKind.CHAT, chunks[1].source_id)
    ids = [c.id for c in chunks]
    add_dependents(db_path, ids)
    assert counts(db_path, ids[1]) == (1, 1, 2)

    assert store.delete_chunk(ids[1]) is True
    assert counts(db_path, ids[1]) == (0, 0, 0)
    assert store.get_chunk(ids[1]) is None
    # The neighbours and the source's ingest claim are untouched.
    assert counts(db_path, ids[0]) == (1, 1, 2)
    assert counts(db_path, ids[2]) == (1, 1, 2)
    assert store.is_source_ingested(memtree.SourceKind.CHAT, chunks[1].source_id)

    assert store.delete_chunk(ids[1]) is False
    assert store.count_chunks() == 2


def test_delete_chunk_removes_orphaned_dependents(store: memtree.Store, db_path: Path) -> None:
    # Score and entity rows left by a chunk deleted elsewhere go with a retry.
    add_dependents(db_path, ["gone"])
    assert store.delete_chunk("gone") is False
    assert counts(db_path, "gone") == (0, 0, 0)


def test_delete_chunk_bad_id_changes_nothing(
    store: memtree.Store, db_path: Path, make_chunk: ChunkFactory
) -> None:
    store.upsert_chunks([make_chunk(0)])
    with pytest.raises(TypeError, match=r"^id: expected str, got NoneType"):
        store.delete_chunk(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^id: must not be empty"):
        store.delete_chunk("")
    assert store.count_chunks() == 1


def test_list_sources_aggregates(store: memtree.Store, make_chunk: ChunkFactory) -> None:
    assert store.list_sources() == []
    store.upsert_chunks(
        [
            make_chunk(0, source_id="doc-b", token_count=5),
            make_chunk(1, source_id="doc-b", token_count=7),
            make_chunk(2, source_id="doc-a", token_count=3),
            make_chunk(
                3,
                source_kind=memtree.SourceKind.EMAIL,
                source_id="doc-a",
                token_count=11,
                timestamp=BASE_TIME - timedelta(days=1),
            ),
        ]
    )
    sources = store.list_sources()
    assert sources == [
        memtree.SourceInfo(
            memtree.SourceKind.CHAT,
            "doc-a",
            1,
            3,
            BASE_TIME + timedelta(minutes=2),
            BASE_TIME + timedelta(minutes=2),
        ),
        memtree.SourceInfo(
            memtree.SourceKind.CHAT, "doc-b", 2, 12, BASE_TIME, BASE_TIME + timedelta(minutes=1)
        ),
        memtree.SourceInfo(
            memtree.SourceKind.EMAIL,
            "doc-a",
            1,
            11,
            BASE_TIME - timedelta(days=1),
            BASE_TIME - timedelta(days=1),
        ),
    ]
    first = sources[0]
    assert isinstance(first, memtree.SourceInfo)
    assert first.source_kind is memtree.SourceKind.CHAT
    assert first.oldest.tzinfo is not None
    with pytest.raises(AttributeError):
        first.chunk_count = 9  # type: ignore[misc]


def test_list_sources_follows_deletes(store: memtree.Store, make_chunk: ChunkFactory) -> None:
    store.upsert_chunks([make_chunk(0, source_id="s"), make_chunk(1, source_id="s")])
    store.delete_chunk(make_chunk(0).id)
    [only] = store.list_sources()
    assert (only.chunk_count, only.token_total) == (1, 12)
    store.delete_chunk(make_chunk(1).id)
    assert store.list_sources() == []


def test_list_sources_walks_the_source_index_without_sorting(
    store: memtree.Store, make_chunk: ChunkFactory
) -> None:
    store.upsert_chunks([make_chunk(i) for i in range(50)])
    plan = store.explain_list_sources()
    text = "\n".join(plan)
    assert "TEMP B-TREE" not in text, plan
    # One ordered walk of an index led by (source_kind, source_id): the
    # reference's (…, seq_in_source) or memtree's (…, timestamp_ms).
    assert re.fullmatch(
        r"SCAN mem_tree_chunks USING (COVERING )?INDEX idx_mem_?tree_chunks_source_(seq|time)",
        text,
    ), plan


def test_list_sources_plan_on_a_reference_database(tmp_path: Path) -> None:
    from reference_db import create_reference_db

    db = tmp_path / "chunks.db"
    create_reference_db(db, chunks=12)
    with memtree.Store(db) as store:
        plan = "\n".join(store.explain_list_sources())
        assert "TEMP B-TREE" not in plan and "USING" in plan, plan
        sources = store.list_sources()
        assert sum(s.chunk_count for s in sources) == 12
        conn = sqlite3.connect(db)
        expected = conn.execute(
            "SELECT source_kind, source_id, count(*), sum(token_count), min(timestamp_ms), "
            "max(timestamp_ms) FROM mem_tree_chunks GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
        conn.close()
        got = [
            (
                s.source_kind.value,
                s.source_id,
                s.chunk_count,
                s.token_total,
                int(s.oldest.timestamp() * 1000),
                int(s.newest.timestamp() * 1000),
            )
            for s in sources
        ]
        assert got == expected


def test_async_store_carries_the_new_calls(tmp_path: Path, make_chunk: ChunkFactory) -> None:
    import asyncio

    from memtree.aio import AsyncStore

    async def run() -> None:
        async with AsyncStore.connect(tmp_path / "a.db") as store:
            await store.upsert_chunks([make_chunk(0), make_chunk(1)])
            cid = make_chunk(0).id
            assert await store.set_chunk_embedding(cid, [1.0, 2.0]) is True
            assert await store.get_chunk_embedding(cid) == array.array("f", [1.0, 2.0])
            assert await store.set_chunk_raw_refs(cid, [memtree.RawRef("p", 1, 2)]) is True
            assert await store.get_chunk_raw_refs(cid) == [memtree.RawRef("p", 1, 2)]
            assert await store.get_chunk_content_pointers(cid) is None
            assert await store.get_chunk_content_path(cid) is None
            assert await store.get_summary_content_pointers("s") is None
            assert await store.list_summaries_with_content_path() == []
            assert [s.chunk_count for s in await store.list_sources()] == [1, 1]
            assert "TEMP B-TREE" not in "".join(await store.explain_list_sources())
            assert await store.delete_chunk(cid) is True
            assert await store.delete_chunk(cid) is False

    asyncio.run(run())
