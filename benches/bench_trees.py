"""Summary trees: the walk, the seal and replace_score, as ratios against a
peer measured in the same run.

Not a test: ``make bench`` runs it after the suites (release build), or
run ``python benches/bench_trees.py`` after ``make build``. On a fresh
database in a temporary folder it measures:

- ``walk``: the subtree of a 4-level tree of 11,111 nodes (10,000 chunks,
  fan-out 10) in one statement, against OpenHuman's walk, one point read
  per node (``get_summary`` / ``get_chunk``) through memtree itself.
  Target: ≤ 1/5 of the node-by-node time. The walk's time is then split
  per node into the SQL alone (its statement stepped to the end), the
  decoding and ordering of the rows in the core, and the building of the
  Python objects.
- ``seal`` of a 64-item buffer (one transaction) against two durable
  commits (``set_chunk_embedding`` twice). Target: ≤ 1.
- ``replace_score`` with 20 entities against one durable commit.
  Target: ≤ 1.2.

Each figure is the median of the runs; the ratio is of the medians. The
walk and its peer run in alternate rounds, so that a load that comes and
goes weighs on both.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import memtree
from memtree import Entity, Score
from memtree._native.bench import walk_phases

FANOUT = 10
LEVELS = 4


def build_tree(db: Path) -> str:
    """A source tree over FANOUT**LEVELS chunks, written in one transaction
    with OpenHuman's INSERT statements; returns the root summary id."""
    with memtree.Store(db) as store:
        store.trees.create("source", "bench", id="t")
        store.upsert_chunks(
            [
                memtree.Chunk(f"c{i:06d}", f"chunk {i} " * 20, "chat", "bench", "me", i)
                for i in range(FANOUT**LEVELS)
            ]
        )
    conn = sqlite3.connect(db)
    with conn:
        children = [f"c{i:06d}" for i in range(FANOUT**LEVELS)]
        for level in range(1, LEVELS + 1):
            parents = []
            for g in range(0, len(children), FANOUT):
                sid = f"s{level}-{g // FANOUT:05d}"
                conn.execute(
                    "INSERT INTO mem_tree_summaries (id, tree_id, tree_kind, level, "
                    "child_ids_json, content, token_count, time_range_start_ms, "
                    "time_range_end_ms, sealed_at_ms) "
                    "VALUES (?, 't', 'source', ?, ?, ?, 10, 0, 0, 0)",
                    (sid, level, json.dumps(children[g : g + FANOUT]), f"summary {sid} " * 40),
                )
                parents.append(sid)
            children = parents
    conn.close()
    return children[0]


def median_time(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def node_by_node(store: memtree.Store, root: str) -> int:
    """OpenHuman's retrieval: one point read per node."""
    seen, todo = 0, [root]
    while todo:
        sid = todo.pop()
        node = store.trees.get_summary(sid)
        assert node is not None
        seen += 1
        if node.level == 1:
            for cid in node.child_ids:
                assert store.get_chunk(cid) is not None
                seen += 1
        else:
            todo.extend(node.child_ids)
    return seen


def main(runs: int) -> None:
    folder = Path(tempfile.mkdtemp())
    db = folder / "chunks.db"
    root = build_tree(db)
    with memtree.Store(db) as store:
        nodes = len(store.trees.walk(root))
        assert nodes == node_by_node(store, root) == sum(FANOUT**k for k in range(LEVELS + 1))
        # Interleaved, one round of each at a time, so that a neighbour's
        # load (the machine is shared) weighs on both sides alike.
        walks, peers = [], []
        for _ in range(runs):
            walks.append(median_time(lambda: store.trees.walk(root), 1))
            peers.append(median_time(lambda: node_by_node(store, root), 1))
        walk, peer = statistics.median(walks), statistics.median(peers)
        print(f"walk of {nodes} nodes: {walk * 1e3:.1f} ms; node by node {peer * 1e3:.1f} ms; "
              f"ratio {walk / peer:.3f} (target <= 0.2)")  # fmt: skip
        # Each phase in the same loop as a whole walk, so a noisy neighbour
        # slows all three alike.
        walks, sqls, cores = [], [], []
        for _ in range(runs):
            walks.append(median_time(lambda: store.trees.walk(root), 1))
            sql_ns, core_ns = walk_phases(store, root)
            sqls.append(sql_ns / 1e9)
            cores.append(core_ns / 1e9)
        sql, core, whole = map(statistics.median, (sqls, cores, walks))
        us = 1e6 / nodes  # seconds of the whole walk to microseconds per node
        print(f"  per node: SQL {sql * us:.2f} us, decoding and order {(core - sql) * us:.2f} us, "
              f"Python objects {(whole - core) * us:.2f} us (walk {whole * us:.2f} us); "
              f"node by node {peer * us:.2f} us")  # fmt: skip

        store.trees.create("source", "seal", id="s")
        ids = [f"c{i:06d}" for i in range(64)]
        seals, commits = [], []
        for k in range(runs):
            buf = store.trees.append_to_buffer("s", 0, ids, [1] * 64, 0)
            start = time.perf_counter()
            store.trees.seal("s", 0, buf.version, content="s", id=f"seal-{k}")
            seals.append(time.perf_counter() - start)
            start = time.perf_counter()
            store.set_chunk_embedding("c000000", [float(k)])
            store.set_chunk_embedding("c000001", [float(k)])
            commits.append(time.perf_counter() - start)
        seal, two = statistics.median(seals), statistics.median(commits)
        print(f"seal of 64 items: {seal * 1e3:.2f} ms; two commits {two * 1e3:.2f} ms; "
              f"ratio {seal / two:.2f} (target <= 1)")  # fmt: skip

        entities = [Entity(f"person:p{i}", "person", f"P{i}") for i in range(20)]
        replaces, ones = [], []
        for k in range(runs):
            start = time.perf_counter()
            store.scores.replace_score(Score("c000002", 0.5 + k / 1e6), entities, timestamp=k)
            replaces.append(time.perf_counter() - start)
            start = time.perf_counter()
            store.set_chunk_embedding("c000003", [float(k)])
            ones.append(time.perf_counter() - start)
        rep, one = statistics.median(replaces), statistics.median(ones)
        print(f"replace_score with 20 entities: {rep * 1e3:.2f} ms; one commit "
              f"{one * 1e3:.2f} ms; ratio {rep / one:.2f} (target <= 1.2)")  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 9)
