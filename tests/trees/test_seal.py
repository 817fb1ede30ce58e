"""The seal (``store.trees.seal``): one transaction, optimistic on the
buffer version, all-or-nothing under I/O faults and power loss."""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
from pathlib import Path

import memtree
import pytest
from memtree import TreeKind, testing
from support import ChunkFactory, fault_loop, file_digest, run_child

# Every table the seal writes, with every column but those that differ
# between two runs of the same seal (a job's id and its enqueue time, a
# buffer's write time): their rows before and after are all there is.
STATE_QUERIES = (
    "SELECT * FROM mem_tree_trees ORDER BY 1",
    "SELECT * FROM mem_tree_summaries ORDER BY 1",
    "SELECT tree_id, level, item_ids_json, token_sum, oldest_at_ms FROM mem_tree_buffers"
    " ORDER BY 1, 2",
    "SELECT * FROM mem_tree_entity_index ORDER BY 1, 2",
    "SELECT * FROM mem_tree_chunks ORDER BY 1",
    "SELECT kind, payload_json, dedupe_key, status, attempts FROM mem_tree_jobs ORDER BY 3",
)


def state(db: Path) -> tuple[object, ...]:
    """Every row the seal touches, after an integrity check; read through a
    stdlib connection."""
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return tuple(tuple(conn.execute(query)) for query in STATE_QUERIES)
    finally:
        conn.close()


def fill(store: memtree.Store, make_chunk: ChunkFactory, n: int = 12) -> memtree.TreeBuffer:
    """A source tree "t" whose level-0 buffer holds ``n`` scored chunks."""
    chunks = [make_chunk(i, token_count=10 + i) for i in range(n)]
    store.upsert_chunks(chunks)
    store.trees.create(TreeKind.SOURCE, "slack:#eng", id="t")
    oldest = min(c.timestamp for c in chunks)
    return store.trees.append_to_buffer(
        "t", 0, [c.id for c in chunks], [c.token_count for c in chunks], oldest
    )


def seal(store: memtree.Store, version: str, **kw: object) -> memtree.Summary:
    return store.trees.seal(
        "t",
        0,
        version,
        content="the summary",
        token_count=42,
        entities=["person:alice", "topic:launch"],
        id="sum-1",
        **kw,  # type: ignore[arg-type]
    )


def test_a_seal_writes_everything_in_one_go(
    store: memtree.Store, db_path: Path, make_chunk: ChunkFactory
) -> None:
    buf = fill(store, make_chunk)
    chunks = store.get_chunks(list(buf.item_ids))
    with sqlite3.connect(db_path) as conn:
        conn.execute(
            "INSERT INTO mem_tree_score (chunk_id, total, token_count_signal, unique_words_signal, "
            "metadata_weight, source_weight, interaction_weight, entity_density, computed_at_ms) "
            "VALUES (?, 0.9, 0, 0, 0, 0, 0, 0, 1)",
            (chunks[3].id,),
        )
    conn.close()
    s = seal(store, buf.version)
    # The summary: children from the buffer, envelope and score from them.
    assert s.level == 1 and s.tree_kind == TreeKind.SOURCE
    assert s.child_ids == buf.item_ids
    assert s.time_range_start == min(c.time_range[0] for c in chunks)
    assert s.time_range_end == max(c.time_range[1] for c in chunks)
    assert s.score == pytest.approx(0.9)
    assert store.trees.get_summary("sum-1") == s
    # Children linked to it.
    conn = sqlite3.connect(db_path)
    try:
        parents = {p for (p,) in conn.execute("SELECT parent_summary_id FROM mem_tree_chunks")}
        assert parents == {"sum-1"}
        # Entities indexed as OpenHuman indexes a summary's.
        assert sorted(conn.execute("SELECT * FROM mem_tree_entity_index")) == [
            (
                "person:alice",
                "sum-1",
                "summary",
                "person",
                "person:alice",
                pytest.approx(0.9),
                s.sealed_at.timestamp() * 1000,
                "t",
                0,
            ),
            (
                "topic:launch",
                "sum-1",
                "summary",
                "topic",
                "topic:launch",
                pytest.approx(0.9),
                s.sealed_at.timestamp() * 1000,
                "t",
                0,
            ),
        ]
    finally:
        conn.close()
    # The buffer cleared, the parent level holding the summary.
    cleared = store.trees.get_buffer("t", 0)
    assert cleared.is_empty and cleared.token_sum == 0 and cleared.oldest_at is None
    parent = store.trees.get_buffer("t", 1)
    assert parent.item_ids == ("sum-1",) and parent.token_sum == 42
    assert parent.oldest_at == s.time_range_start
    # The tree climbed.
    tree = store.trees.get("t")
    assert tree is not None
    assert (tree.root_id, tree.max_level, tree.last_sealed_at) == ("sum-1", 1, s.sealed_at)
    # The follow-up: a source tree routes its summary to topics.
    jobs = store.jobs.list()
    assert [(j.kind, j.dedupe_key, json.loads(j.payload_json)) for j in jobs] == [
        (
            "topic_route",
            "topic_route:summary:sum-1",
            {"node": {"kind": "summary", "summary_id": "sum-1"}},
        ),
    ]
    assert jobs[0].payload_json == '{"node":{"kind":"summary","summary_id":"sum-1"}}'


def test_a_full_parent_enqueues_its_own_seal_and_the_cascade_links_summaries(
    store: memtree.Store, make_chunk: ChunkFactory
) -> None:
    store.trees.create(TreeKind.GLOBAL, "global", id="t")
    sealed = []
    for k in range(10):
        buf = store.trees.append_to_buffer("t", 0, [f"c{k}"], [5], 1_000 + k)
        sealed.append(
            store.trees.seal("t", 0, buf.version, content=f"day {k}", time_range=(k, k + 1))
        )
    ids = [s.id for s in sealed]
    assert all(i.startswith("summary:") and ":L1-" in i for i in ids)
    parent = store.trees.get_buffer("t", 1)
    assert parent.item_ids == tuple(ids) and parent.should_seal
    jobs = store.jobs.list()
    # A global tree routes nothing; the tenth seal met the level-1 gate.
    assert [(j.kind, j.dedupe_key) for j in jobs] == [("seal", "seal:t:1")]
    assert jobs[0].payload_json == '{"tree_id":"t","level":1,"force_now_ms":null}'
    top = store.trees.seal("t", 1, parent.version, content="week")
    assert top.level == 2 and top.child_ids == tuple(ids)
    assert (top.time_range_start.timestamp(), top.time_range_end.timestamp()) == (0, 0.01)
    assert {store.trees.get_summary(i).parent_id for i in ids} == {top.id}  # type: ignore[union-attr]
    tree = store.trees.get("t")
    assert tree is not None and (tree.root_id, tree.max_level) == (top.id, 2)
    # A seal at a level below the top keeps the root.
    buf = store.trees.append_to_buffer("t", 0, ["late"], [1], 5)
    store.trees.seal("t", 0, buf.version, content="late", time_range=(5, 5))
    tree = store.trees.get("t")
    assert tree is not None and (tree.root_id, tree.max_level) == (top.id, 2)


def test_a_stale_version_writes_nothing(
    store: memtree.Store, db_path: Path, make_chunk: ChunkFactory
) -> None:
    read = fill(store, make_chunk)
    store.trees.append_to_buffer("t", 0, ["late-chunk"], [1], 0)
    before = file_digest(db_path)
    with pytest.raises(memtree.StaleBufferError, match="changed since it was read") as caught:
        seal(store, read.version)
    assert caught.value.name == "SQLITE_ERROR"
    assert file_digest(db_path) == before
    assert store.trees.get_summary("sum-1") is None
    # Read again, seal again: it goes through, with the late item.
    fresh = store.trees.get_buffer("t", 0)
    assert "late-chunk" in seal(store, fresh.version).child_ids
    # And the version it sealed is now stale in turn.
    with pytest.raises(memtree.StaleBufferError):
        store.trees.seal("t", 0, fresh.version, content="again", time_range=(0, 0))


def test_a_write_by_another_program_also_makes_the_version_stale(
    store: memtree.Store, db_path: Path, make_chunk: ChunkFactory
) -> None:
    read = fill(store, make_chunk)
    with sqlite3.connect(db_path) as conn:
        # OpenHuman's own upsert with the same updated_at_ms: only the
        # content changed.
        conn.execute("UPDATE mem_tree_buffers SET token_sum = token_sum + 1 WHERE tree_id = 't'")
    conn.close()
    with pytest.raises(memtree.StaleBufferError):
        seal(store, read.version)


def race(store: memtree.Store, version: str) -> list[object]:
    """Two threads seal the buffer at ``version`` at the same moment."""
    start = threading.Barrier(2)
    outcomes: list[object] = [None, None]

    def run(k: int) -> None:
        start.wait()
        try:
            outcomes[k] = store.trees.seal("t", 0, version, content=f"by {k}", time_range=(0, 0))
        except memtree.StaleBufferError as e:
            outcomes[k] = e

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_two_threads_sealing_one_buffer_exactly_one_wins(
    store: memtree.Store, make_chunk: ChunkFactory
) -> None:
    buf = fill(store, make_chunk)
    for round in range(20):
        if round:
            buf = store.trees.append_to_buffer("t", 0, [f"late-{round}"], [1], 0)
        outcomes = race(store, buf.version)
        wins = [o for o in outcomes if isinstance(o, memtree.Summary)]
        losses = [o for o in outcomes if isinstance(o, memtree.StaleBufferError)]
        assert (len(wins), len(losses)) == (1, 1), outcomes
    assert store.trees.count_summaries("t") == 20
    assert len(store.trees.get_buffer("t", 1).item_ids) == 20


@pytest.mark.parametrize(
    ("kw", "error", "match"),
    [
        ({"level": -1}, ValueError, "level"),
        ({"level": 32}, ValueError, "level"),
        ({"score": float("nan")}, ValueError, "score"),
        ({"token_count": -1}, ValueError, "token_count"),
        ({"tree_id": "nope"}, ValueError, "tree"),
        ({"time_range": (5, 4)}, ValueError, "time_range_end"),
        ({"entities": "person:alice"}, TypeError, "entities"),
        ({"embedding": []}, ValueError, "embedding"),
        ({"id": "sum-0"}, ValueError, "exists"),
    ],
)
def test_bad_input_is_refused_and_the_file_is_unchanged(
    store: memtree.Store,
    db_path: Path,
    make_chunk: ChunkFactory,
    kw: dict[str, object],
    error: type[Exception],
    match: str,
) -> None:
    buf = fill(store, make_chunk)
    store.trees.insert_summary(memtree.Summary("sum-0", "t", 1, "x", 0, 0))
    before = file_digest(db_path)
    args: dict[str, object] = {"tree_id": "t", "level": 0, "content": "c", "id": "sum-1"}
    args.update(kw)
    with pytest.raises(error, match=match):
        store.trees.seal(
            args.pop("tree_id"),
            args.pop("level"),
            buf.version,
            **args,  # type: ignore[arg-type]
        )
    assert file_digest(db_path) == before


def test_an_empty_buffer_is_not_sealed(store: memtree.Store, db_path: Path) -> None:
    store.trees.create("source", "s", id="t")
    empty = store.trees.get_buffer("t", 0)
    before = file_digest(db_path)
    with pytest.raises(ValueError, match="empty"):
        store.trees.seal("t", 0, empty.version, content="c", time_range=(0, 0))
    assert file_digest(db_path) == before


# ── all-or-nothing under I/O faults and power loss ──────────────────────


@pytest.mark.parametrize("persistent", [False, True], ids=["once", "persistent"])
@pytest.mark.parametrize("method", ["xRead", "xWrite", "xSync", "xTruncate", "xLock", "xFileSize"])
def test_a_fault_at_every_io_call_leaves_before_or_after(
    tmp_path: Path, make_chunk: ChunkFactory, method: testing.VfsMethod, persistent: bool
) -> None:
    base = tmp_path / "base.db"
    with memtree.Store(base) as store:
        version = fill(store, make_chunk).version
    before = state(base)
    done = tmp_path / "done.db"
    shutil.copy2(base, done)
    with memtree.Store(done) as store:
        seal(store, version, sealed_at=1_700_000_000_000)
    after = state(done)
    assert after != before
    fired_points, rolled_back = fault_loop(
        tmp_path,
        base,
        method,
        persistent,
        lambda store: seal(store, version, sealed_at=1_700_000_000_000),
        state=state,
        outcomes={before, after},
        before=before,
    )
    if method in ("xWrite", "xSync", "xLock"):
        assert fired_points >= 1, "the loop must have injected at least one fault"
        assert rolled_back >= 1, "at least one fault must have hit inside the transaction"


SEAL_UNDER_CRASH = """
import json
db, n, seed, version = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
store = memtree.Store(db)
testing.arm_crash(db, seed=seed, at_sync=n, exit_code=77)
store.trees.seal("t", 0, version, content="the summary", token_count=42,
                 entities=["person:alice", "topic:launch"], id="sum-1",
                 sealed_at=1_700_000_000_000)
print("completed", flush=True)
"""


def test_power_loss_during_a_seal_keeps_before_or_after(
    tmp_path: Path, make_chunk: ChunkFactory
) -> None:
    base = tmp_path / "base.db"
    with memtree.Store(base) as store:
        version = fill(store, make_chunk).version
    before = state(base)
    after_db = tmp_path / "after.db"
    shutil.copy2(base, after_db)
    out = run_child(SEAL_UNDER_CRASH, str(after_db), "0", "0", version)
    assert out.returncode == 0, out.stderr
    after = state(after_db)
    assert after != before
    crashes = {"before": 0, "after": 0}
    for seed in range(3):
        for n in range(1, 50):
            db = tmp_path / f"crash-{seed}-{n}.db"
            shutil.copy2(base, db)
            out = run_child(SEAL_UNDER_CRASH, str(db), str(n), str(seed), version)
            if out.returncode == 0:
                assert "completed" in out.stdout
                break
            assert out.returncode == 77, out.stderr
            # Reopening rolls back a hot journal; memtree's open does it.
            memtree.Store(db).close()
            seen = state(db)
            assert seen in {before, after}, f"seed {seed}, sync {n}"
            crashes["before" if seen == before else "after"] += 1
    assert crashes["before"] >= 3, crashes
