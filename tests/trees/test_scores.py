"""Scores, the entity index and hotness (``store.scores``).

OpenHuman's ``score/store_tests.rs`` (10 tests) and the six tests of
``tree_topic/store.rs`` are ported first, with their assertions; then
``replace_score`` (one transaction, all-or-nothing under I/O faults and
power loss), interop through OpenHuman's own SQL, and bad input.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import memtree
import pytest
from memtree import Entity, Hotness, Score, testing
from support import fault_loop, file_digest, reference_connection, run_child

T0 = 1_700_000_000_000


def utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def sample_row(id: str, dropped: bool) -> Score:
    return Score(
        id,
        0.7,
        token_count_signal=1.0,
        unique_words_signal=0.8,
        metadata_weight=0.9,
        source_weight=0.5,
        interaction_weight=0.6,
        entity_density=0.3,
        llm_importance=0.0,
        dropped=dropped,
        reason="below threshold" if dropped else None,
        computed_at=T0,
    )


def sample_entity(id: str) -> Entity:
    return Entity(f"email:{id}", "email", f"{id}@example.com", 1.0)


# ── OpenHuman's score/store_tests.rs ────────────────────────────────────


def test_upsert_then_get_score(store: memtree.Store) -> None:
    row = sample_row("c1", False)
    store.scores.upsert_score(row)
    got = store.scores.get_score("c1")
    assert got is not None, "row exists"
    assert got.chunk_id == row.chunk_id
    assert abs(got.total - row.total) < 1e-6
    assert got.dropped == row.dropped
    assert got.reason == row.reason
    assert got.computed_at == utc(T0)
    assert abs(got.token_count_signal - row.token_count_signal) < 1e-6
    assert got == row._replace(computed_at=utc(T0))  # all 13 columns


def test_upsert_score_idempotent(store: memtree.Store) -> None:
    r = sample_row("c1", False)
    store.scores.upsert_score(r)
    store.scores.upsert_score(r)
    assert store.scores.count_scores() == 1


def test_dropped_flag_persists(store: memtree.Store) -> None:
    store.scores.upsert_score(sample_row("c1", True))
    got = store.scores.get_score("c1")
    assert got is not None
    assert got.dropped
    assert got.reason == "below threshold"


def test_get_missing_score_is_none(store: memtree.Store) -> None:
    assert store.scores.get_score("missing") is None


def test_index_and_lookup_entity(store: memtree.Store) -> None:
    e = sample_entity("alice")
    store.scores.index_entities("chunk-1", [e], timestamp=1000, tree_id="source:chat")
    store.scores.index_entities("chunk-2", [e], timestamp=2000, tree_id="source:chat")
    hits = store.scores.lookup_entity("email:alice")
    assert len(hits) == 2
    # newest first
    assert hits[0].node_id == "chunk-2"
    assert hits[1].node_id == "chunk-1"
    assert hits[0] == memtree.EntityHit(
        "email:alice", "chunk-2", "leaf", "email", "alice@example.com", 1.0, utc(2000),
        "source:chat", False,
    )  # fmt: skip


def test_index_batch(store: memtree.Store) -> None:
    entities = [sample_entity("a"), sample_entity("b"), sample_entity("c")]
    n = store.scores.index_entities("chunk-1", entities, timestamp=1000)
    assert n == 3
    assert store.scores.count_entities() == 3


def test_clear_entity_index_drops_stale_rows(store: memtree.Store) -> None:
    a, b = sample_entity("a"), sample_entity("b")
    store.scores.index_entities("chunk-1", [a, b], timestamp=1000)
    assert store.scores.count_entities() == 2
    # Simulate a re-score that only keeps entity "a".
    cleared = store.scores.clear_entities("chunk-1")
    assert cleared == 2
    store.scores.index_entities("chunk-1", [a], timestamp=1000)
    assert store.scores.lookup_entity("email:b") == [], "stale entity should be removed"
    assert len(store.scores.lookup_entity("email:a")) == 1


def test_index_idempotent_per_entity_node_pair(store: memtree.Store) -> None:
    e = sample_entity("alice")
    store.scores.index_entities("chunk-1", [e], timestamp=1000)
    store.scores.index_entities("chunk-1", [e], timestamp=1000)
    assert store.scores.count_entities() == 1


def test_lookup_limit_respected(store: memtree.Store) -> None:
    e = sample_entity("alice")
    for i in range(5):
        store.scores.index_entities(f"chunk-{i}", [e], timestamp=1000 + i)
    assert len(store.scores.lookup_entity("email:alice", limit=2)) == 2


def test_summary_entity_index_kind_is_parseable(store: memtree.Store) -> None:
    # OpenHuman's regression: a summary's entity rows carry the kind prefix
    # (here written by the seal, memtree's only writer of summary rows).
    store.scores.index_entities(
        "leaf-1", [sample_entity("alice")], timestamp=1000, tree_id="tree-1"
    )
    store.trees.create("source", "s", id="tree-1")
    buf = store.trees.append_to_buffer("tree-1", 0, ["leaf-1"], [1], 0)
    store.trees.seal(
        "tree-1",
        0,
        buf.version,
        content="c",
        id="summary-1",
        entities=["email:alice@example.com", "hashtag:launch-q2"],
        score=0.84,
        time_range=(0, 0),
        sealed_at=2000,
    )
    hits = store.scores.lookup_entity("email:alice@example.com")
    assert len(hits) == 1, "summary row should be discoverable"
    assert hits[0].node_id == "summary-1"
    assert hits[0].node_kind == "summary"
    assert hits[0].entity_kind == "email"
    hits = store.scores.lookup_entity("hashtag:launch-q2")
    assert len(hits) == 1
    assert hits[0].entity_kind == "hashtag"
    hits = store.scores.lookup_entity("email:alice")
    assert len(hits) == 1
    assert hits[0].entity_kind == "email"


# ── OpenHuman's tree_topic/store.rs (hotness) ───────────────────────────


def test_get_missing_hotness_is_none(store: memtree.Store) -> None:
    assert store.scores.get_hotness("email:alice@example.com") is None


def test_get_or_fresh_returns_zero_row(store: memtree.Store) -> None:
    c = store.scores.get_or_fresh_hotness("email:alice@example.com")
    assert c.entity_id == "email:alice@example.com"
    assert c.mention_count_30d == 0
    assert c.distinct_sources == 0
    assert c.last_hotness is None
    # Not persisted — still zero rows in the table.
    assert store.scores.count_hotness() == 0


def test_hotness_upsert_round_trip(store: memtree.Store) -> None:
    c = Hotness(
        "email:alice@example.com",
        mention_count_30d=12,
        distinct_sources=3,
        last_seen=utc(1_700_000_000_000),
        query_hits_30d=2,
        graph_centrality=0.25,
        ingests_since_check=40,
        last_hotness=9.5,
        last_updated=utc(1_700_000_123_000),
    )
    store.scores.upsert_hotness(c)
    assert store.scores.get_hotness(c.entity_id) == c
    assert store.scores.count_hotness() == 1


def test_hotness_upsert_is_idempotent_and_updates_fields(store: memtree.Store) -> None:
    c = store.scores.get_or_fresh_hotness("email:alice@example.com")._replace(
        last_updated=0, mention_count_30d=1
    )
    store.scores.upsert_hotness(c)
    store.scores.upsert_hotness(c._replace(mention_count_30d=99, last_updated=500))
    assert store.scores.count_hotness() == 1
    got = store.scores.get_hotness("email:alice@example.com")
    assert got is not None
    assert got.mention_count_30d == 99
    assert got.last_updated == utc(500)


def test_distinct_sources_counts_trees(store: memtree.Store) -> None:
    e = Entity("email:alice@example.com", "email", "alice@example.com", 1.0)
    store.scores.index_entities("chunk-1", [e], timestamp=1000, tree_id="source:slack")
    store.scores.index_entities("chunk-2", [e], timestamp=2000, tree_id="source:gmail")
    store.scores.index_entities("chunk-3", [e], timestamp=3000, tree_id="source:slack")
    # 3 rows but only 2 distinct tree_ids.
    assert store.scores.distinct_trees("email:alice@example.com") == 2


def test_distinct_sources_ignores_null_tree_id(store: memtree.Store) -> None:
    e = Entity("email:alice@example.com", "email", "alice@example.com", 1.0)
    store.scores.index_entities("chunk-1", [e], timestamp=1000)
    store.scores.index_entities("chunk-2", [e], timestamp=2000, tree_id="source:slack")
    assert store.scores.distinct_trees("email:alice@example.com") == 1


# ── replace_score: one transaction ──────────────────────────────────────


def test_replace_score_swaps_the_entities_with_the_score(store: memtree.Store) -> None:
    a, b, c = sample_entity("a"), sample_entity("b"), sample_entity("c")._replace(score=2.0)
    assert store.scores.replace_score(sample_row("c1", False), [a, b], timestamp=1000) == 2
    assert store.scores.node_entities("c1") == ["email:a", "email:b"]
    rescored = sample_row("c1", False)._replace(total=0.9)
    assert store.scores.replace_score(rescored, [a, c], timestamp=2000, tree_id="t") == 2
    assert store.scores.node_entities("c1") == ["email:c", "email:a"]
    assert store.scores.lookup_entity("email:b") == []
    got = store.scores.get_score("c1")
    assert got is not None and got.total == pytest.approx(0.9)
    assert {h.tree_id for h in store.scores.lookup_entity("email:a")} == {"t"}


def state(db: Path) -> tuple[object, ...]:
    conn = reference_connection(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return (
            tuple(conn.execute("SELECT * FROM mem_tree_score ORDER BY 1")),
            tuple(conn.execute("SELECT * FROM mem_tree_entity_index ORDER BY 1, 2")),
        )
    finally:
        conn.close()


def seed(db: Path) -> None:
    with memtree.Store(db) as store:
        store.scores.replace_score(
            sample_row("c1", False), [sample_entity(f"old{i}") for i in range(30)], timestamp=1
        )


NEW_ENTITIES = [sample_entity(f"new{i}") for i in range(30)]


def replace(store: memtree.Store) -> None:
    store.scores.replace_score(
        sample_row("c1", False)._replace(total=0.95), NEW_ENTITIES, timestamp=2, tree_id="t"
    )


@pytest.mark.parametrize("persistent", [False, True], ids=["once", "persistent"])
@pytest.mark.parametrize("method", ["xRead", "xWrite", "xSync", "xTruncate", "xLock", "xFileSize"])
def test_replace_score_under_a_fault_at_every_io_call(
    tmp_path: Path, method: testing.VfsMethod, persistent: bool
) -> None:
    base = tmp_path / "base.db"
    seed(base)
    before = state(base)
    done = tmp_path / "done.db"
    shutil.copy2(base, done)
    with memtree.Store(done) as store:
        replace(store)
    after = state(done)
    assert after != before
    fired_points, rolled_back = fault_loop(
        tmp_path,
        base,
        method,
        persistent,
        replace,
        state=state,
        outcomes={before, after},
        before=before,
    )
    if method in ("xWrite", "xSync", "xLock"):
        assert fired_points >= 1, "the loop must have injected at least one fault"
        assert rolled_back >= 1, "at least one fault must have hit inside the transaction"


REPLACE_UNDER_CRASH = """
db, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = memtree.Store(db)
testing.arm_crash(db, seed=seed, at_sync=n, exit_code=77)
store.scores.replace_score(
    memtree.Score("c1", 0.95, 1.0, 0.8, 0.9, 0.5, 0.6, 0.3, 0.0, None, False, None,
                  1_700_000_000_000),
    [memtree.Entity(f"email:new{i}", "email", f"new{i}@example.com", 1.0) for i in range(30)],
    timestamp=2, tree_id="t")
print("completed", flush=True)
"""


def test_power_loss_during_replace_score_keeps_before_or_after(tmp_path: Path) -> None:
    base = tmp_path / "base.db"
    seed(base)
    before = state(base)
    after_db = tmp_path / "after.db"
    shutil.copy2(base, after_db)
    out = run_child(REPLACE_UNDER_CRASH, str(after_db), "0", "0")
    assert out.returncode == 0, out.stderr
    after = state(after_db)
    assert after != before
    crashes = 0
    for seed_ in range(3):
        for n in range(1, 50):
            db = tmp_path / f"crash-{seed_}-{n}.db"
            shutil.copy2(base, db)
            out = run_child(REPLACE_UNDER_CRASH, str(db), str(n), str(seed_))
            if out.returncode == 0:
                break
            assert out.returncode == 77, out.stderr
            memtree.Store(db).close()  # the open rolls a hot journal back
            assert state(db) in {before, after}, f"seed {seed_}, sync {n}"
            crashes += 1
    assert crashes >= 3


# ── interop with OpenHuman's SQL ────────────────────────────────────────

REFERENCE_GET_SCORE = """SELECT chunk_id, total,
                    token_count_signal, unique_words_signal,
                    metadata_weight, source_weight, interaction_weight, entity_density,
                    llm_importance, llm_importance_reason,
                    dropped, reason, computed_at_ms
             FROM mem_tree_score WHERE chunk_id = ?1"""
REFERENCE_LOOKUP = """SELECT entity_id, node_id, node_kind, entity_kind, surface,
                    score, timestamp_ms, tree_id
             FROM mem_tree_entity_index
             WHERE entity_id = ?1
             ORDER BY timestamp_ms DESC
             LIMIT ?2"""
REFERENCE_INDEX = """INSERT OR REPLACE INTO mem_tree_entity_index (
                entity_id, node_id, node_kind, entity_kind, surface,
                score, timestamp_ms, tree_id
             ) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"""
REFERENCE_UPSERT_SCORE = """INSERT OR REPLACE INTO mem_tree_score (
    chunk_id, total,
    token_count_signal, unique_words_signal,
    metadata_weight, source_weight, interaction_weight, entity_density,
    llm_importance, llm_importance_reason,
    dropped, reason, computed_at_ms
 ) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"""
REFERENCE_GET_HOTNESS = """SELECT entity_id, mention_count_30d, distinct_sources, last_seen_ms,
                    query_hits_30d, graph_centrality, ingests_since_check,
                    last_hotness, last_updated_ms
               FROM mem_tree_entity_hotness WHERE entity_id = ?1"""


def test_openhumans_selects_read_memtrees_rows(store: memtree.Store, db_path: Path) -> None:
    store.scores.replace_score(
        sample_row("c1", True)._replace(llm_importance=0.5, llm_importance_reason="why"),
        [sample_entity("alice")],
        timestamp=1000,
        tree_id="t",
    )
    store.scores.upsert_hotness(Hotness("email:alice", 3, 1, 5, 0, None, 2, 1.5, 6))
    conn = reference_connection(db_path)
    try:
        assert conn.execute(REFERENCE_GET_SCORE, ("c1",)).fetchone() == (
            "c1", 0.7, 1.0, 0.8, 0.9, 0.5, 0.6, 0.3, 0.5, "why", 1, "below threshold", T0,
        )  # fmt: skip
        assert conn.execute(REFERENCE_LOOKUP, ("email:alice", 100)).fetchall() == [
            ("email:alice", "c1", "leaf", "email", "alice@example.com", 1.0, 1000, "t"),
        ]
        assert conn.execute(REFERENCE_GET_HOTNESS, ("email:alice",)).fetchone() == (
            "email:alice", 3, 1, 5, 0, None, 2, 1.5, 6,
        )  # fmt: skip
    finally:
        conn.close()


def test_memtree_reads_rows_written_by_openhumans_statements(
    store: memtree.Store, db_path: Path
) -> None:
    conn = reference_connection(db_path)
    with conn:
        conn.execute(
            REFERENCE_UPSERT_SCORE,
            ("c9", 0.25, 1, 2, 3, 4, 5, 6, None, None, 0, None, T0),
        )
        conn.execute(
            REFERENCE_INDEX,
            ("person:bob", "c9", "leaf", "person", "Bob", 0.5, 42, None),
        )
    conn.close()
    got = store.scores.get_score("c9")
    assert got == Score("c9", 0.25, 1, 2, 3, 4, 5, 6, 0.0, None, False, None, utc(T0))
    assert store.scores.lookup_entity("person:bob") == [
        memtree.EntityHit("person:bob", "c9", "leaf", "person", "Bob", 0.5, utc(42), None, False)
    ]
    assert store.scores.node_entities("c9") == ["person:bob"]


REFERENCE_UPSERT_HOTNESS = """INSERT INTO mem_tree_entity_hotness (
                entity_id, mention_count_30d, distinct_sources, last_seen_ms,
                query_hits_30d, graph_centrality, ingests_since_check,
                last_hotness, last_updated_ms
             ) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT(entity_id) DO UPDATE SET
                mention_count_30d = excluded.mention_count_30d,
                distinct_sources  = excluded.distinct_sources,
                last_seen_ms      = excluded.last_seen_ms,
                query_hits_30d    = excluded.query_hits_30d,
                graph_centrality  = excluded.graph_centrality,
                ingests_since_check = excluded.ingests_since_check,
                last_hotness      = excluded.last_hotness,
                last_updated_ms   = excluded.last_updated_ms"""


def test_memtree_reads_hotness_written_by_openhumans_upsert(
    store: memtree.Store, db_path: Path
) -> None:
    conn = reference_connection(db_path)
    with conn:
        conn.execute(REFERENCE_UPSERT_HOTNESS, ("topic:x", 4, 2, None, 1, 0.5, 7, None, T0))
    conn.close()
    assert store.scores.get_hotness("topic:x") == Hotness(
        "topic:x", 4, 2, None, 1, 0.5, 7, None, utc(T0)
    )


# ── bad input: refused before any write ─────────────────────────────────


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda s: s.scores.upsert_score(Score("c", float("nan"))), ValueError, "total"),
        (lambda s: s.scores.upsert_score(Score("", 0.1)), ValueError, "chunk_id"),
        (
            lambda s: s.scores.upsert_score(Score("c", 0.1, entity_density=float("inf"))),
            ValueError,
            "entity_density",
        ),
        (lambda s: s.scores.upsert_score(("c", 0.1)), TypeError, "score"),
        (
            lambda s: s.scores.replace_score(
                Score("c", 0.5), [Entity("x:1", "planet", "x")], timestamp=1
            ),
            ValueError,
            r"entities\[0\].entity_kind",
        ),
        (
            lambda s: s.scores.replace_score(
                Score("c", float("nan")), [sample_entity("a")], timestamp=1
            ),
            ValueError,
            "total",
        ),
        (
            lambda s: s.scores.replace_score(Score("c", 0.5), "email:a", timestamp=1),
            TypeError,
            "entities",
        ),
        (
            lambda s: s.scores.index_entities(
                "n", [sample_entity("a")._replace(score=float("nan"))], timestamp=1
            ),
            ValueError,
            "score",
        ),
        (
            lambda s: s.scores.index_entities(
                "n", [sample_entity("a")], timestamp=1, node_kind="branch"
            ),
            ValueError,
            "node_kind",
        ),
        (lambda s: s.scores.upsert_hotness(Hotness("e", mention_count_30d=-1)), ValueError,
         "mention_count_30d"),
        (lambda s: s.scores.upsert_hotness(Hotness("e", last_hotness=float("nan"))), ValueError,
         "last_hotness"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_and_the_file_is_unchanged(
    store: memtree.Store, db_path: Path, call: object, error: type[Exception], match: str
) -> None:
    store.scores.replace_score(sample_row("c", False), [sample_entity("z")], timestamp=1)
    before = file_digest(db_path)
    with pytest.raises(error, match=match):
        call(store)  # type: ignore[operator]
    assert file_digest(db_path) == before
