"""Summary trees: trees, summaries and buffers (``store.trees``).

The first eight tests are OpenHuman's ``tree_source/store_tests.rs``, ported
with their assertions; the rest hold the interop (OpenHuman's own SQL reads
memtree's rows and writes rows memtree reads) and the refusal of bad input
before any write.
"""

from __future__ import annotations

import array
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

import memtree
import pytest
from memtree import Summary, TreeKind, TreeStatus
from memtree._native.bench import walk_phases
from support import (
    BAD_CHUNK_VALUES,
    CHUNK_FIELDS,
    corrupt_chunk_column,
    file_digest,
    full_chunk,
    reference_connection,
)

T0 = 1_700_000_000_000


def utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def sample_tree(store: memtree.Store, id: str, scope: str) -> memtree.Tree:
    return store.trees.create(TreeKind.SOURCE, scope, id=id, created_at=T0)


def sample_summary(id: str, tree_id: str, level: int) -> Summary:
    return Summary(
        id,
        tree_id,
        level,
        "seal content",
        T0,
        T0,
        tree_kind=TreeKind.SOURCE,
        child_ids=["leaf-a", "leaf-b"],
        token_count=100,
        entities=["entity:alice"],
        topics=["#launch"],
        score=0.75,
        sealed_at=T0,
    )


def upsert_buffer(
    db: Path, tree_id: str, level: int, items: list[str], tokens: int, oldest: int
) -> None:
    """OpenHuman's ``upsert_buffer_tx``, verbatim, through sqlite3."""
    with reference_connection(db) as conn:
        conn.execute(
            """INSERT INTO mem_tree_buffers (
            tree_id, level, item_ids_json, token_sum, oldest_at_ms, updated_at_ms
        ) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
        ON CONFLICT(tree_id, level) DO UPDATE SET
            item_ids_json = excluded.item_ids_json,
            token_sum = excluded.token_sum,
            oldest_at_ms = excluded.oldest_at_ms,
            updated_at_ms = excluded.updated_at_ms""",
            (tree_id, level, "[" + ",".join(f'"{i}"' for i in items) + "]", tokens, oldest, T0),
        )
    conn.close()


# ── OpenHuman's tree_source/store_tests.rs ──────────────────────────────


def test_tree_round_trip(store: memtree.Store) -> None:
    t = sample_tree(store, "tree-1", "slack:#eng")
    got = store.trees.get("tree-1")
    assert got == t
    assert got is not None
    assert (got.kind, got.status, got.root_id, got.max_level) == (
        TreeKind.SOURCE,
        TreeStatus.ACTIVE,
        None,
        0,
    )
    assert got.created_at == utc(T0) and got.last_sealed_at is None
    by_scope = store.trees.get_by_scope(TreeKind.SOURCE, "slack:#eng")
    assert by_scope is not None and by_scope.id == "tree-1"


def test_duplicate_scope_fails(store: memtree.Store) -> None:
    sample_tree(store, "t1", "slack:#eng")
    with pytest.raises(memtree.ConstraintError) as caught:
        sample_tree(store, "t2", "slack:#eng")
    assert caught.value.name == "SQLITE_CONSTRAINT_UNIQUE"
    assert store.trees.get("t2") is None


def test_summary_insert_and_fetch(store: memtree.Store) -> None:
    sample_tree(store, "tree-1", "slack:#eng")
    node = sample_summary("sum-1", "tree-1", 1)
    assert store.trees.insert_summary(node)
    got = store.trees.get_summary("sum-1")
    assert got == node
    at_level = store.trees.list_summaries("tree-1", 1)
    assert len(at_level) == 1
    assert store.trees.count_summaries("tree-1") == 1


def test_summary_insert_is_idempotent_on_id(store: memtree.Store) -> None:
    sample_tree(store, "tree-1", "slack:#eng")
    node = sample_summary("sum-1", "tree-1", 1)
    assert store.trees.insert_summary(node)
    assert not store.trees.insert_summary(node)
    assert store.trees.count_summaries("tree-1") == 1


def test_buffer_upsert_and_clear(store: memtree.Store, db_path: Path) -> None:
    # The reference upserts and clears through its crate-private helpers;
    # here its own upsert statement writes, memtree reads.
    sample_tree(store, "tree-1", "slack:#eng")
    upsert_buffer(db_path, "tree-1", 0, ["leaf-a", "leaf-b"], 500, T0)
    got = store.trees.get_buffer("tree-1", 0)
    assert (got.tree_id, got.level, got.item_ids, got.token_sum, got.oldest_at) == (
        "tree-1",
        0,
        ("leaf-a", "leaf-b"),
        500,
        utc(T0),
    )
    # clear_buffer_tx is an upsert of the empty buffer.
    with reference_connection(db_path) as conn:
        conn.execute(
            "UPDATE mem_tree_buffers SET item_ids_json = '[]', token_sum = 0, oldest_at_ms = NULL"
        )
    conn.close()
    cleared = store.trees.get_buffer("tree-1", 0)
    assert cleared.is_empty
    assert cleared.token_sum == 0
    assert cleared.oldest_at is None


def test_get_buffer_returns_empty_when_missing(store: memtree.Store) -> None:
    sample_tree(store, "tree-1", "slack:#eng")
    got = store.trees.get_buffer("tree-1", 0)
    assert got.is_empty
    assert got.tree_id == "tree-1"
    assert got.updated_at is None


def test_update_tree_after_seal_persists(store: memtree.Store) -> None:
    # The reference calls update_tree_after_seal_tx directly; in memtree the
    # seal is the only writer of root_id / max_level / last_sealed_at.
    tree = sample_tree(store, "tree-1", "slack:#eng")
    buf = store.trees.append_to_buffer(tree.id, 0, ["leaf-a"], [10], T0)
    sealed_at = T0 + 123_000
    store.trees.seal(
        tree.id, 0, buf.version, content="s", id="sum-1", time_range=(T0, T0), sealed_at=sealed_at
    )
    got = store.trees.get("tree-1")
    assert got is not None
    assert got.root_id == "sum-1"
    assert got.max_level == 1
    assert got.last_sealed_at == utc(sealed_at)


def test_list_stale_buffers_orders_by_age(store: memtree.Store, db_path: Path) -> None:
    # Two L0 buffers across two trees, plus an L1 stale buffer that must be
    # excluded: only L0 rows are listed, so a flush cannot force-seal an
    # under-fanout upper buffer.
    sample_tree(store, "tree-1", "slack:#eng")
    sample_tree(store, "tree-2", "slack:#ops")
    t0, t1, t_l1, t2 = T0, T0 + 10_000, T0 + 5_000, T0 + 20_000
    store.trees.append_to_buffer("tree-1", 0, ["a"], [10], t0)
    store.trees.append_to_buffer("tree-1", 1, ["upper"], [5], t_l1)
    store.trees.append_to_buffer("tree-2", 0, ["b"], [20], t1)
    stale = store.trees.list_stale_buffers(t2)
    assert len(stale) == 2, "L1 stale buffer must be filtered out"
    assert all(b.level == 0 for b in stale)
    assert stale[0].oldest_at == utc(t0)
    assert stale[1].oldest_at == utc(t1)
    only_oldest = store.trees.list_stale_buffers(utc(t0))
    assert len(only_oldest) == 1
    assert only_oldest[0].level == 0
    assert only_oldest[0].tree_id == "tree-1"


# ── beyond the reference ────────────────────────────────────────────────


def test_get_or_create_is_idempotent_and_lists_in_creation_order(store: memtree.Store) -> None:
    first = store.trees.get_or_create("source", "slack:#eng")
    assert store.trees.get_or_create(TreeKind.SOURCE, "slack:#eng") == first
    assert first.id.startswith("source:") and len(first.id) == len("source:") + 36
    store.trees.create("topic", "person:alice", created_at=T0)
    second = store.trees.create("source", "slack:#ops")
    assert [t.scope for t in store.trees.list("source")] == ["slack:#eng", "slack:#ops"]
    assert [t.id for t in store.trees.list(TreeKind.TOPIC)] != [second.id]
    assert store.trees.list("global") == []


def test_soft_deleted_summaries_are_flagged_and_skipped(store: memtree.Store) -> None:
    sample_tree(store, "tree-1", "slack:#eng")
    for i, sealed in enumerate([T0 + 2, T0 + 1, T0 + 3]):
        store.trees.insert_summary(Summary(f"s{i}", "tree-1", 1, "c", T0, T0, sealed_at=sealed))
    assert [s.id for s in store.trees.list_summaries("tree-1", 1)] == ["s1", "s0", "s2"]
    assert store.trees.delete_summary("s1")
    assert not store.trees.delete_summary("s1")
    got = store.trees.get_summary("s1")
    assert got is not None and got.deleted
    assert [s.id for s in store.trees.list_summaries("tree-1", 1)] == ["s0", "s2"]
    assert store.trees.count_summaries("tree-1") == 2


def test_summary_embedding_uses_the_chunk_format(store: memtree.Store, db_path: Path) -> None:
    sample_tree(store, "tree-1", "slack:#eng")
    store.trees.insert_summary(sample_summary("sum-1", "tree-1", 1))
    assert store.trees.get_summary_embedding("sum-1") is None
    assert store.trees.set_summary_embedding("sum-1", [0.5, -1.0, 2.0])
    assert store.trees.get_summary_embedding("sum-1") == array.array("f", [0.5, -1.0, 2.0])
    with reference_connection(db_path) as conn:
        (blob,) = conn.execute("SELECT embedding FROM mem_tree_summaries").fetchone()
    conn.close()
    assert blob == bytes.fromhex("0000003f000080bf00000040")  # little-endian f32
    assert not store.trees.set_summary_embedding("missing", [1.0])
    with pytest.raises(ValueError, match="vector"):
        store.trees.set_summary_embedding("sum-1", [float("nan")])
    assert store.trees.set_summary_embedding("sum-1", None)
    assert store.trees.get_summary_embedding("sum-1") is None


def test_content_pointers_as_for_chunks(store: memtree.Store) -> None:
    sample_tree(store, "tree-1", "slack:#eng")
    sha = "ab" * 32
    store.trees.insert_summary(
        Summary("sum-1", "tree-1", 1, "preview", T0, T0, content_path="s/1.md", content_sha256=sha)
    )
    got = store.trees.get_summary("sum-1")
    assert got is not None and (got.content_path, got.content_sha256) == ("s/1.md", sha)
    assert store.get_summary_content_pointers("sum-1") == ("s/1.md", sha)
    with pytest.raises(ValueError, match="content_sha256"):
        Summary("x", "tree-1", 1, "c", T0, T0, content_path="s/1.md")


def test_append_is_idempotent_per_item_and_moves_the_version(store: memtree.Store) -> None:
    tree = store.trees.create("source", "s")
    empty = store.trees.get_buffer(tree.id, 0)
    first = store.trees.append_to_buffer(tree.id, 0, ["a", "b"], [3, 4], T0 + 50)
    assert first.version != empty.version
    again = store.trees.append_to_buffer(tree.id, 0, ["a"], [3], T0)
    assert again == first, "a retried append changes nothing"
    more = store.trees.append_to_buffer(tree.id, 0, ["b", "c"], [4, 5], T0)
    assert more.item_ids == ("a", "b", "c")
    assert more.token_sum == 12
    assert more.oldest_at == utc(T0)
    assert more.version != first.version
    assert store.trees.get_buffer(tree.id, 0) == more


# ── interop with OpenHuman's SQL ────────────────────────────────────────

REFERENCE_GET_TREE = """SELECT id, kind, scope, root_id, max_level, status,
                    created_at_ms, last_sealed_at_ms
               FROM mem_tree_trees WHERE id = ?1"""
REFERENCE_GET_SUMMARY = """SELECT id, tree_id, tree_kind, level, parent_id,
                    child_ids_json, content, token_count,
                    entities_json, topics_json,
                    time_range_start_ms, time_range_end_ms,
                    score, sealed_at_ms, deleted, embedding
               FROM mem_tree_summaries WHERE id = ?1"""
REFERENCE_GET_BUFFER = """SELECT tree_id, level, item_ids_json, token_sum, oldest_at_ms
           FROM mem_tree_buffers WHERE tree_id = ?1 AND level = ?2"""
REFERENCE_INSERT_TREE = """INSERT INTO mem_tree_trees (
            id, kind, scope, root_id, max_level, status,
            created_at_ms, last_sealed_at_ms
        ) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"""
# OpenHuman's statement, verbatim.
REFERENCE_INSERT_SUMMARY = """INSERT OR IGNORE INTO mem_tree_summaries (
            id, tree_id, tree_kind, level, parent_id,
            child_ids_json, content, token_count,
            entities_json, topics_json,
            time_range_start_ms, time_range_end_ms,
            score, sealed_at_ms, deleted, embedding,
            content_path, content_sha256
        ) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"""  # noqa: E501


def test_openhumans_selects_read_memtrees_rows(store: memtree.Store, db_path: Path) -> None:
    sample_tree(store, "tree-1", "slack:#eng")
    store.trees.insert_summary(sample_summary("sum-1", "tree-1", 1))
    store.trees.set_summary_embedding("sum-1", [1.0, 2.0])
    store.trees.append_to_buffer("tree-1", 0, ["leaf-a", "leaf-b"], [5, 6], T0)
    conn = reference_connection(db_path)
    try:
        assert conn.execute(REFERENCE_GET_TREE, ("tree-1",)).fetchone() == (
            "tree-1",
            "source",
            "slack:#eng",
            None,
            0,
            "active",
            T0,
            None,
        )
        row = conn.execute(REFERENCE_GET_SUMMARY, ("sum-1",)).fetchone()
        assert row[:15] == (
            "sum-1",
            "tree-1",
            "source",
            1,
            None,
            '["leaf-a","leaf-b"]',
            "seal content",
            100,
            '["entity:alice"]',
            '["#launch"]',
            T0,
            T0,
            0.75,
            T0,
            0,
        )
        assert row[15] == bytes.fromhex("0000803f00000040")
        assert conn.execute(REFERENCE_GET_BUFFER, ("tree-1", 0)).fetchone() == (
            "tree-1",
            0,
            '["leaf-a","leaf-b"]',
            11,
            T0,
        )
    finally:
        conn.close()


def test_memtree_reads_rows_written_by_openhumans_inserts(
    store: memtree.Store, db_path: Path
) -> None:
    conn = reference_connection(db_path)
    with conn:
        conn.execute(
            REFERENCE_INSERT_TREE,
            ("global:1", "global", "global", "sum-9", 2, "archived", T0, T0 + 1),
        )
        conn.execute(
            REFERENCE_INSERT_SUMMARY,
            (
                "sum-9",
                "global:1",
                "global",
                2,
                None,
                '["a","b"]',
                "text",
                7,
                '["person:bob"]',
                "[]",
                T0,
                T0 + 5,
                0.5,
                T0 + 9,
                0,
                bytes.fromhex("0000803f"),
                "g/9.md",
                "cd" * 32,
            ),
        )
    conn.close()
    upsert_buffer(db_path, "global:1", 2, ["x"], 3, T0)
    tree = store.trees.get("global:1")
    assert tree is not None
    assert (tree.kind, tree.status, tree.root_id, tree.max_level, tree.last_sealed_at) == (
        TreeKind.GLOBAL,
        TreeStatus.ARCHIVED,
        "sum-9",
        2,
        utc(T0 + 1),
    )
    s = store.trees.get_summary("sum-9")
    assert s is not None
    assert (s.tree_kind, s.level, s.child_ids, s.entities, s.topics, s.score) == (
        TreeKind.GLOBAL,
        2,
        ("a", "b"),
        ("person:bob",),
        (),
        0.5,
    )
    assert (s.time_range_start, s.time_range_end, s.sealed_at) == (
        utc(T0),
        utc(T0 + 5),
        utc(T0 + 9),
    )
    assert s.embedding == (1.0,) and s.content_path == "g/9.md"
    buf = store.trees.get_buffer("global:1", 2)
    assert buf.item_ids == ("x",) and buf.token_sum == 3


def test_a_stored_list_that_is_not_a_json_list_is_a_read_error(
    store: memtree.Store, db_path: Path
) -> None:
    sample_tree(store, "tree-1", "slack:#eng")
    store.trees.insert_summary(sample_summary("sum-1", "tree-1", 1))
    with reference_connection(db_path) as conn:
        conn.execute("UPDATE mem_tree_summaries SET child_ids_json = '{\"a\": 1}'")
    conn.close()
    with pytest.raises(memtree.MemtreeError, match="not a JSON list"):
        store.trees.get_summary("sum-1")


# ── bad input: refused before any write ─────────────────────────────────


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda s: s.trees.create("forest", "x"), ValueError, "kind"),
        (lambda s: s.trees.create("source", ""), ValueError, "scope"),
        (lambda s: s.trees.append_to_buffer("tree-1", -1, ["a"], [1], T0), ValueError, "level"),
        (lambda s: s.trees.append_to_buffer("tree-1", 33, ["a"], [1], T0), ValueError, "level"),
        (lambda s: s.trees.append_to_buffer("tree-1", 0, ["a"], [1, 2], T0), ValueError, "tokens"),
        (lambda s: s.trees.append_to_buffer("tree-1", 0, ["a"], [-1], T0), ValueError, "tokens"),
        (lambda s: s.trees.append_to_buffer("tree-1", 0, "ab", [1, 1], T0), TypeError, "item_ids"),
        (lambda s: s.trees.append_to_buffer("tree-1", 0, [""], [1], T0), ValueError, "item_ids"),
        (lambda s: s.trees.insert_summary(object()), TypeError, "summary"),
    ],
)
def test_bad_input_is_refused_and_the_file_is_unchanged(
    store: memtree.Store, db_path: Path, call: object, error: type[Exception], match: str
) -> None:
    sample_tree(store, "tree-1", "slack:#eng")
    before = file_digest(db_path)
    with pytest.raises(error, match=match):
        call(store)  # type: ignore[operator]
    assert file_digest(db_path) == before


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"level": 0}, "level"),
        ({"level": 33}, "level"),
        ({"score": float("nan")}, "score"),
        ({"tree_kind": "forest"}, "tree_kind"),
        ({"token_count": -1}, "token_count"),
        ({"time_range_end": T0 - 1}, "time_range_end"),
        ({"embedding": [float("inf")]}, "embedding"),
    ],
)
def test_a_bad_summary_cannot_be_built(overrides: dict[str, object], match: str) -> None:
    fields: dict[str, object] = {"time_range_start": T0, "time_range_end": T0, "level": 1}
    fields.update(overrides)
    with pytest.raises(ValueError, match=match):
        Summary("s", "t", content="c", **fields)  # type: ignore[arg-type]


def test_a_summary_of_a_missing_tree_is_a_constraint_error(store: memtree.Store) -> None:
    with pytest.raises(memtree.ConstraintError) as caught:
        store.trees.insert_summary(sample_summary("sum-1", "no-such-tree", 1))
    assert caught.value.name == "SQLITE_CONSTRAINT_FOREIGNKEY"
    assert store.trees.get_summary("sum-1") is None


# ── walk and ancestors: one statement each ──────────────────────────────


def test_walk_returns_the_subtree_depth_first_in_one_statement(store: memtree.Store) -> None:
    tree = store.trees.create("source", "walk", id="t")
    chunks = [
        memtree.Chunk(f"c{i}", f"text {i}", "chat", "walk", "me", T0 + i, token_count=1)
        for i in range(4)
    ]
    store.upsert_chunks(chunks)
    l1 = []
    for pair in ([0, 1], [2, 3]):
        buf = store.trees.append_to_buffer(tree.id, 0, [chunks[i].id for i in pair], [1, 1], T0)
        l1.append(store.trees.seal(tree.id, 0, buf.version, content="l1", id=f"s1-{pair[0]}"))
    top_buffer = store.trees.get_buffer(tree.id, 1)
    top = store.trees.seal(tree.id, 1, top_buffer.version, content="l2", id="s2")
    walked = store.trees.walk("s2")
    assert [n.id for n in walked] == ["s2", "s1-0", "c0", "c1", "s1-2", "c2", "c3"]
    assert walked[0] == store.trees.get_summary("s2")
    assert walked[2] == store.get_chunk("c0")
    assert isinstance(walked[1], memtree.Summary) and isinstance(walked[2], memtree.Chunk)
    assert [n.id for n in store.trees.walk("s2", 1)] == ["s2", "s1-0", "s1-2"]
    assert [n.id for n in store.trees.walk("s2", 0)] == ["s2"]
    assert [n.id for n in store.trees.walk("s1-2")] == ["s1-2", "c2", "c3"]
    assert store.trees.walk("c0") == [] and store.trees.walk("nope") == []
    # Soft-deleted nodes come flagged; a missing child is left out.
    store.trees.delete_summary("s1-0")
    store.delete_chunk("c3")
    walked = store.trees.walk("s2")
    assert [n.id for n in walked] == ["s2", "s1-0", "c0", "c1", "s1-2", "c2"]
    assert walked[1].deleted  # type: ignore[union-attr]
    # Ancestors: nearest first, from a chunk or a summary.
    assert [s.id for s in store.trees.ancestors("c0")] == ["s1-0", "s2"]
    assert [s.id for s in store.trees.ancestors("s1-2")] == ["s2"]
    assert store.trees.ancestors("s2") == [] and store.trees.ancestors("nope") == []
    assert top.child_ids == ("s1-0", "s1-2") and l1[0].parent_id is None
    with pytest.raises(ValueError, match="depth"):
        store.trees.walk("s2", -1)


def test_walk_phases_time_the_statement_and_the_core_walk_of_a_real_subtree(
    store: memtree.Store,
) -> None:
    """The benchmark's split: both phases run (a nonexistent root or a bad
    depth fails as ``walk`` does), each timed in nanoseconds."""
    sample_tree(store, "t", "phases")
    store.upsert_chunks([memtree.Chunk("c0", "text", "chat", "phases", "me", T0)])
    store.trees.insert_summary(Summary("s1", "t", 1, "s", T0, T0, child_ids=["c0"]))
    sql_ns, core_ns = walk_phases(store, "s1")
    assert isinstance(sql_ns, int) and isinstance(core_ns, int)
    assert sql_ns > 0 and core_ns > 0
    with pytest.raises(ValueError, match="depth"):
        walk_phases(store, "s1", -1)
    store.close()
    with pytest.raises(memtree.StoreClosedError):
        walk_phases(store, "s1")


def test_walk_and_ancestors_end_on_a_link_cycle(store: memtree.Store, db_path: Path) -> None:
    sample_tree(store, "t", "cycle")
    for a, b in (("a", "b"), ("b", "a")):
        store.trees.insert_summary(Summary(a, "t", 2, "x", T0, T0, child_ids=[b], parent_id=b))
    walked = store.trees.walk("a")
    assert [n.id for n in walked] == ["a", "b"] * 17  # the root and MAX_LEVEL + 1 levels
    assert walked[0] == walked[2] and walked[0] is not walked[2]
    assert [n.id for n in store.trees.walk("a", 3)] == ["a", "b", "a", "b"]
    assert len(store.trees.ancestors("a")) == 33


def test_walk_expands_children_by_the_parents_level_and_repeats_a_shared_node(
    store: memtree.Store,
) -> None:
    """The children of a level-1 summary are chunks and of a higher one
    summaries, whatever else has the id; a node listed twice comes twice,
    each time with its subtree, equal and in place."""
    sample_tree(store, "t", "shared")
    store.upsert_chunks(
        [memtree.Chunk(c, f"text {c}", "chat", "shared", "me", T0) for c in ("c0", "c1", "x")]
    )

    def summary(id: str, level: int, children: list[str]) -> None:
        store.trees.insert_summary(Summary(id, "t", level, id, T0, T0, child_ids=children))

    summary("x", 1, ["c1"])  # a summary and a chunk share the id "x"
    summary("l1-a", 1, ["c0", "x", "missing", "c1"])  # "x" here is the chunk
    summary("l1-b", 1, ["c1", "l1-a"])  # "l1-a" is no chunk: left out
    summary("l2", 2, ["l1-a", "c0", "x", "l1-b", "l1-a"])  # "c0" is no summary
    walked = store.trees.walk("l2")
    assert [(n.id, type(n).__name__) for n in walked] == [
        ("l2", "Summary"),
        ("l1-a", "Summary"),
        ("c0", "Chunk"),
        ("x", "Chunk"),
        ("c1", "Chunk"),
        ("x", "Summary"),
        ("c1", "Chunk"),
        ("l1-b", "Summary"),
        ("c1", "Chunk"),
        ("l1-a", "Summary"),
        ("c0", "Chunk"),
        ("x", "Chunk"),
        ("c1", "Chunk"),
    ]
    assert walked[1] == walked[9] == store.trees.get_summary("l1-a")
    assert walked[4] == walked[6] == walked[8] == store.get_chunk("c1")
    assert [n.id for n in store.trees.walk("l2", 1)] == ["l2", "l1-a", "x", "l1-b", "l1-a"]


def test_a_walked_chunk_is_the_chunk_get_chunk_reads_field_for_field(
    store: memtree.Store,
) -> None:
    """The walk keeps each chunk as its row's bytes and decodes it when a
    field is first read: every field, equality, hash, pickling, ``replace``
    and a re-ingest behave as for the chunk ``get_chunk`` reads."""
    import pickle

    sample_tree(store, "t", "lazy")
    full = full_chunk(T0)
    bare = memtree.Chunk("bare", "", "chat", "src", "owner", T0)
    store.upsert_chunks([full, bare])
    store.trees.insert_summary(Summary("s1", "t", 1, "s", T0, T0, child_ids=["ç-😀", "bare"]))
    fields = CHUNK_FIELDS
    for chunk_id in ("ç-😀", "bare"):
        read = store.get_chunk(chunk_id)
        assert read is not None
        walked = next(n for n in store.trees.walk("s1") if n.id == chunk_id)
        assert isinstance(walked, memtree.Chunk)
        # The id first (read without decoding), then every field.
        assert walked.id == chunk_id
        for field in fields:
            assert getattr(walked, field) == getattr(read, field), field
        # Equality and hash both ways, before and after a field was read.
        fresh = next(n for n in store.trees.walk("s1") if n.id == chunk_id)
        assert isinstance(fresh, memtree.Chunk)
        assert fresh == read and read == fresh and hash(fresh) == hash(read)
        # Decoded now (equality decodes): every field again, from the record.
        for field in fields:
            assert getattr(fresh, field) == getattr(read, field), field
        assert repr(fresh) == repr(read)
        assert pickle.loads(pickle.dumps(fresh)) == read
        assert fresh.replace(token_count=99).token_count == 99
    # A walked chunk goes back in as it is.
    walked_full = store.trees.walk("s1")[1]
    assert isinstance(walked_full, memtree.Chunk)
    store.upsert_chunks([walked_full.replace(content="changed")])
    changed = store.get_chunk("ç-😀")
    assert changed is not None and changed.content == "changed"
    assert changed.embedding == full.embedding  # kept by a re-ingest


@pytest.mark.parametrize(
    ("column", "value"),
    BAD_CHUNK_VALUES,
)
def test_a_chunk_row_memtree_cannot_read_fails_the_walk_as_it_fails_get_chunk(
    store: memtree.Store, db_path: Path, column: str, value: str
) -> None:
    """A row someone else wrote that is no valid chunk is refused by the
    walk itself, with ``get_chunk``'s error, not later on a field read."""
    sample_tree(store, "t", "bad")
    store.upsert_chunks([memtree.Chunk("c0", "text", "chat", "bad", "me", T0)])
    store.trees.insert_summary(Summary("s1", "t", 1, "s", T0, T0, child_ids=["c0"]))
    corrupt_chunk_column(db_path, column, value)
    with pytest.raises(memtree.MemtreeError) as direct:
        store.get_chunk("c0")
    with pytest.raises(type(direct.value)) as walked:
        store.trees.walk("s1")
    # The same error; the message names the column as the statement does
    # (the walk's columns are named after a summary's).
    assert (walked.value.code, walked.value.name) == (direct.value.code, direct.value.name)
    assert str(walked.value).split(":")[1] == str(direct.value).split(":")[1]


def test_a_walked_summary_is_the_summary_get_summary_reads_field_for_field(
    store: memtree.Store, db_path: Path
) -> None:
    """The walk keeps each summary as its row's bytes too: every field
    (read from those bytes, nothing else decoded) and equality behave as for
    the summary ``get_summary`` reads, before the record is decoded and
    after, for a summary with every column set, one with the optional ones
    empty and one with no list at all. (That a getter decodes nothing is
    the cargo test ``reading_a_lazy_summarys_fields_decodes_nothing``.)"""
    sample_tree(store, "t", "lazy")
    store.upsert_chunks([memtree.Chunk("c0", "text", "chat", "lazy", "me", T0)])
    full = Summary(
        "s1-é",
        "t",
        1,
        "zero\x00byte and 😀",
        T0 - 3,
        T0 + 3,
        tree_kind=TreeKind.SOURCE,
        child_ids=["c0", "gone", 'q"uote'],
        token_count=5,
        entities=["person:alice", "place:é"],
        topics=["#x"],
        score=0.625,
        sealed_at=T0 + 9,
        embedding=[0.25, -4.0],
        content_path="s/1.md",
        content_sha256="cd" * 32,
    )
    store.trees.insert_summary(full)
    store.trees.insert_summary(Summary("bare", "t", 1, "", T0, T0))
    store.trees.insert_summary(Summary("s2", "t", 2, "top", T0, T0, child_ids=["s1-é", "bare"]))
    store.trees.delete_summary("s1-é")
    with closing(reference_connection(db_path)) as conn, conn:
        # A score stored as an integer, as another writer may leave it.
        conn.execute("UPDATE mem_tree_summaries SET score = 2 WHERE id = 's2'")
    fields = [
        "id", "tree_id", "tree_kind", "level", "parent_id", "child_ids", "content",
        "token_count", "entities", "topics", "time_range_start", "time_range_end", "score",
        "sealed_at", "deleted", "embedding", "content_path", "content_sha256",
    ]  # fmt: skip
    for summary_id in ("s2", "s1-é", "bare"):
        read = store.trees.get_summary(summary_id)
        assert read is not None
        walked = next(n for n in store.trees.walk("s2") if n.id == summary_id)
        assert isinstance(walked, Summary)
        # Every field from the row's bytes, twice (a read changes nothing),
        # then the whole record: still the one get_summary reads.
        for _ in range(2):
            for field in fields:
                assert getattr(walked, field) == getattr(read, field), field
        assert repr(walked) == repr(read)
        assert walked == read and read == walked
        fresh = next(n for n in store.trees.walk("s2") if n.id == summary_id)
        assert fresh == read and read == fresh and repr(fresh) == repr(read)
        # Decoded now (equality decodes): every field again, from the record.
        for field in fields:
            assert getattr(fresh, field) == getattr(read, field), field
        # A walked summary goes into another store as it is.
        with memtree.Store(db_path.with_name("copy.db")) as copy:
            if copy.trees.get("t") is None:
                sample_tree(copy, "t", "lazy")
            assert copy.trees.insert_summary(walked)
            assert copy.trees.get_summary(summary_id) == read
    walked_s1 = store.trees.walk("s2")[1]
    assert isinstance(walked_s1, Summary)
    assert walked_s1.deleted and walked_s1.child_ids == ("c0", "gone", 'q"uote')
    assert store.trees.get_summary("s2").score == 2.0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("child_ids_json", "'{}'"),
        ("child_ids_json", "'[1]'"),
        ("entities_json", "'nope'"),
        ("tree_kind", "'forest'"),
        ("level", "'one'"),
        ("content", "CAST(x'ff' AS TEXT)"),
        ("embedding", "x'000000'"),
    ],
)
def test_a_summary_row_memtree_cannot_read_fails_the_walk_as_it_fails_get_summary(
    store: memtree.Store, db_path: Path, column: str, value: str
) -> None:
    sample_tree(store, "t", "bad")
    store.trees.insert_summary(Summary("s1", "t", 1, "s", T0, T0))
    with closing(reference_connection(db_path)) as conn, conn:
        conn.execute(f"UPDATE mem_tree_summaries SET {column} = {value}")
    with pytest.raises(memtree.MemtreeError) as direct:
        store.trees.get_summary("s1")
    with pytest.raises(type(direct.value)) as walked:
        store.trees.walk("s1")
    assert (walked.value.code, walked.value.name) == (direct.value.code, direct.value.name)
