"""Chunk operations: upsert, reads, filtered listing, lifecycle, ingest gate,
set-based deletes and source replacement."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import memtree
import pytest
from memtree import SourceKind
from support import BASE_TIME, ChunkFactory


def test_round_trip_keeps_every_field(store: memtree.Store, make_chunk: ChunkFactory) -> None:
    chunk = make_chunk(
        7,
        source_ref="msg-42",
        time_range=(BASE_TIME, BASE_TIME + timedelta(hours=1)),
        tags=("a", "b"),
        lifecycle_status="buffered",
        embedding=[0.5, -0.25, 1e-3],
        created_at=BASE_TIME - timedelta(days=1),
    )
    assert store.upsert_chunks([chunk]) == 1
    back = store.get_chunk(chunk.id)
    assert back == chunk
    assert back is not None
    assert back.source_kind is SourceKind.CHAT
    assert back.timestamp == BASE_TIME + timedelta(minutes=7)
    assert back.timestamp.tzinfo is not None
    assert back.tags == ("a", "b")
    assert back.embedding == pytest.approx((0.5, -0.25, 1e-3))
    assert store.get_chunk("nope") is None


def test_upsert_is_idempotent_on_id(store: memtree.Store, make_chunk: ChunkFactory) -> None:
    store.upsert_chunks([make_chunk(i) for i in range(5)])
    store.upsert_chunks([make_chunk(i) for i in range(5)])
    assert store.count_chunks() == 5
    store.upsert_chunks([make_chunk(2, content="edited")])
    edited = store.get_chunk("chunk-00002")
    assert edited is not None and edited.content == "edited"
    assert store.count_chunks() == 5


def test_get_chunks_keeps_request_order_and_skips_missing(
    store: memtree.Store, make_chunk: ChunkFactory
) -> None:
    store.upsert_chunks([make_chunk(i) for i in range(4)])
    got = store.get_chunks(["chunk-00003", "missing", "chunk-00000"])
    assert [c.id for c in got] == ["chunk-00003", "chunk-00000"]


def test_list_filters_run_before_limit_newest_first(
    store: memtree.Store, make_chunk: ChunkFactory
) -> None:
    chunks = [make_chunk(i) for i in range(30)]
    chunks += [make_chunk(100 + i, source_kind="email", owner="carol") for i in range(5)]
    store.upsert_chunks(chunks)
    emails = store.list_chunks(source_kind=SourceKind.EMAIL, limit=3)
    # Filters apply in SQL before LIMIT (the reference filtered after it).
    assert [c.id for c in emails] == ["chunk-00104", "chunk-00103", "chunk-00102"]
    alice = store.list_chunks(owner="alice", limit=1000)
    assert len(alice) == 15 and all(c.owner == "alice" for c in alice)
    window = store.list_chunks(
        since=BASE_TIME + timedelta(minutes=10), until=BASE_TIME + timedelta(minutes=20)
    )
    assert [c.seq_in_source for c in window] == list(range(19, 9, -1))
    one_source = store.list_chunks(source_kind="chat", source_id="source-1", owner="bob")
    assert {c.id for c in one_source} == {
        f"chunk-{i:05d}" for i in range(30) if i % 3 == 1 and i % 2
    }


def test_list_limit_is_clamped(store: memtree.Store, make_chunk: ChunkFactory) -> None:
    store.upsert_chunks([make_chunk(i) for i in range(3)])
    assert len(store.list_chunks(limit=0)) == 1
    assert len(store.list_chunks(limit=-5)) == 1
    assert len(store.list_chunks(limit=10**9)) == 3


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"source_kind": "chat"},
        {"source_kind": "chat", "source_id": "source-1"},
        {"owner": "alice"},
        {"owner": "alice", "since": BASE_TIME},
        {"since": BASE_TIME, "until": BASE_TIME + timedelta(days=1)},
    ],
)
def test_list_queries_use_an_index_without_sorting(
    store: memtree.Store, make_chunk: ChunkFactory, filters: dict[str, object]
) -> None:
    store.upsert_chunks([make_chunk(i) for i in range(50)])
    plan = " | ".join(store.explain_list_chunks(**filters))  # type: ignore[arg-type]
    assert "TEMP B-TREE" not in plan, plan
    assert "INDEX" in plan, plan


def test_lifecycle_status_get_set_count(store: memtree.Store, make_chunk: ChunkFactory) -> None:
    store.upsert_chunks([make_chunk(i) for i in range(4)])
    assert store.get_lifecycle_status("chunk-00000") == "admitted"
    assert store.set_lifecycle_status(["chunk-00000", "chunk-00001", "missing"], "sealed") == 2
    assert store.get_lifecycle_status("chunk-00001") == "sealed"
    assert store.get_lifecycle_status("missing") is None
    assert store.count_by_lifecycle_status() == {"admitted": 2, "sealed": 2}
    with pytest.raises(ValueError, match="status"):
        store.set_lifecycle_status(["chunk-00002"], "")


def test_claim_source_is_a_gate(store: memtree.Store) -> None:
    assert not store.is_source_ingested("email", "thread-1")
    assert store.claim_source(SourceKind.EMAIL, "thread-1") is True
    assert store.claim_source("email", "thread-1") is False
    assert store.is_source_ingested(SourceKind.EMAIL, "thread-1")
    assert not store.is_source_ingested(SourceKind.CHAT, "thread-1")


def add_score_and_entity_rows(db: Path, chunk_ids: list[str]) -> None:
    """Dependent rows as the reference writes them (no foreign keys)."""
    conn = sqlite3.connect(db)
    with conn:
        for cid in chunk_ids:
            conn.execute(
                "INSERT INTO mem_tree_score (chunk_id, total, token_count_signal, "
                "unique_words_signal, metadata_weight, source_weight, interaction_weight, "
                "entity_density, computed_at_ms) VALUES (?, 1, 1, 1, 1, 1, 1, 1, 0)",
                (cid,),
            )
            conn.execute(
                "INSERT INTO mem_tree_entity_index (entity_id, node_id, node_kind, "
                "entity_kind, surface, score, timestamp_ms) "
                "VALUES ('email:x@example.com', ?, 'leaf', 'email', 'x', 1, 0)",
                (cid,),
            )
    conn.close()


def dependent_counts(db: Path) -> tuple[int, int]:
    conn = sqlite3.connect(db)
    try:
        score = conn.execute("SELECT count(*) FROM mem_tree_score").fetchone()[0]
        entity = conn.execute("SELECT count(*) FROM mem_tree_entity_index").fetchone()[0]
        return score, entity
    finally:
        conn.close()


def test_delete_source_cascades_set_based(store: memtree.Store, make_chunk: ChunkFactory) -> None:
    store.upsert_chunks([make_chunk(i) for i in range(9)])
    store.claim_source("chat", "source-0")
    add_score_and_entity_rows(store.path, [f"chunk-{i:05d}" for i in range(9)])
    assert store.delete_source("chat", "source-0") == 3
    assert store.count_chunks() == 6
    assert dependent_counts(store.path) == (6, 6)
    assert not store.is_source_ingested("chat", "source-0"), "deleted sources can be re-ingested"
    assert store.delete_source("chat", "source-0") == 0


def test_delete_owner_cascades(store: memtree.Store, make_chunk: ChunkFactory) -> None:
    store.upsert_chunks([make_chunk(i) for i in range(10)])
    add_score_and_entity_rows(store.path, [f"chunk-{i:05d}" for i in range(10)])
    assert store.delete_owner("bob") == 5
    assert {c.owner for c in store.list_chunks(limit=100)} == {"alice"}
    assert dependent_counts(store.path) == (5, 5)


def test_replace_source_removes_stale_rows(store: memtree.Store, make_chunk: ChunkFactory) -> None:
    def doc(i: int, text: str = "v1") -> memtree.Chunk:
        return make_chunk(i, id=f"doc-{i}", source_kind="document", source_id="doc", content=text)

    store.upsert_chunks([doc(i) for i in range(5)] + [make_chunk(99)])
    add_score_and_entity_rows(store.path, [f"doc-{i}" for i in range(5)])
    upserted, removed = store.replace_source_chunks("document", "doc", [doc(0, "v2"), doc(1, "v2")])
    assert (upserted, removed) == (2, 3)
    remaining = store.list_chunks(source_kind="document")
    assert sorted(c.id for c in remaining) == ["doc-0", "doc-1"]
    assert all(c.content == "v2" for c in remaining)
    assert store.get_chunk("chunk-00099") is not None, "other sources untouched"
    assert dependent_counts(store.path) == (2, 2)


def test_replace_source_rejects_foreign_chunks_atomically(
    store: memtree.Store, make_chunk: ChunkFactory
) -> None:
    store.upsert_chunks([make_chunk(0, source_id="doc")])
    with pytest.raises(ValueError, match=r"chunks\[1\]"):
        store.replace_source_chunks(
            "chat", "doc", [make_chunk(1, source_id="doc"), make_chunk(2, source_id="other")]
        )
    assert store.count_chunks() == 1
