"""The vector search's copy in memory is read again exactly when the searched
vectors can have changed (issue 20's follow-up).

Observable: ``memtree.testing.vector_cache_reads()`` counts the table
snapshots this process read from its files. Every search below is also
compared with a brute force over the file, read by the stdlib ``sqlite3``:

- job traffic (enqueue, claim, settle, purge; by this process, a ``Worker``
  thread and another process), re-ingest, lifecycle, tree and filter-column
  writes keep the copy (no read), and every filter still agrees;
- every kind of vector write reads the changed table again: memtree's write
  paths, another process, OpenHuman-style plain SQL, and the wholesale
  replacements (compact, restore, quarantine salvage), where the versions
  may even be equal and the schema cookie tells them apart.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import memtree
import pytest
from memtree import testing

np = pytest.importorskip("numpy")

DIM = 4
BASE = datetime(2026, 11, 1, tzinfo=timezone.utc)
BASE_MS = int(BASE.timestamp() * 1000)
OWNERS = ["o0", "o1", "o2"]
#: Every row of the fixture fits in one answer: the whole ranking is compared.
K = 200
QUERIES = [[1.0, 0.0, 0.0, 0.0], [0.0, -1.0, 2.0, 1.0], [3.0, 1.0, -2.0, 0.5]]


def vectors(n: int, seed: int) -> Any:
    """Small integers: float32 dot products are exact, so are the ties."""
    return np.random.default_rng(seed).integers(-3, 4, size=(n, DIM)).astype(np.float32)


def chunk(i: int, owner: str | None = None, content: str | None = None, **kw: Any) -> memtree.Chunk:
    return memtree.Chunk(
        f"c{i:02d}",
        content or f"text {i}",
        "chat",
        f"s{i % 4}",
        owner or OWNERS[i % 3],
        BASE_MS + i * 60_000,
        created_at=BASE_MS,
        **kw,
    )


def build(db: Path, seed: int = 1) -> None:
    """30 chunks (every 7th without an embedding) and 6 summaries (one
    soft-deleted), spread over owners, sources and time."""
    m = vectors(36, seed)
    with memtree.Store(db) as store:
        store.upsert_chunks([chunk(i) for i in range(30)])
        ids = [f"c{i:02d}" for i in range(30) if i % 7 != 3]
        store.set_chunk_embeddings(ids, m[[int(i[1:]) for i in ids]])
        tree = store.trees.create("source", "chat:s0", id="t0", created_at=BASE_MS)
        for j in range(6):
            store.trees.insert_summary(
                memtree.Summary(
                    f"c{j * 5:02d}-s",
                    tree.id,
                    1,
                    f"summary {j}",
                    BASE_MS,
                    BASE_MS + j * 60_000,
                    sealed_at=BASE_MS,
                    deleted=j == 4,
                    embedding=[float(x) for x in m[30 + j]],
                )
            )


def file_ranking(db: Path, q: list[float], owner: str | None) -> list[tuple[str, str, float]]:
    """The search's answer computed from the file: dot product, then id,
    then chunk before summary; summaries only without an owner filter."""
    conn = sqlite3.connect(db)
    try:
        rows = [
            (i, "chunk", b)
            for i, b, o in conn.execute(
                "SELECT id, embedding, owner FROM mem_tree_chunks WHERE embedding IS NOT NULL"
            )
            if owner is None or o == owner
        ]
        if owner is None:
            rows += [
                (i, "summary", b)
                for i, b in conn.execute(
                    "SELECT id, embedding FROM mem_tree_summaries"
                    " WHERE deleted = 0 AND embedding IS NOT NULL"
                )
            ]
    finally:
        conn.close()
    qv = np.array(q, dtype=np.float64)
    scored = [
        (i, kind, float(np.frombuffer(b, "<f4").astype(np.float64) @ qv))
        for i, kind, b in rows
        if len(b) == 4 * DIM
    ]
    scored.sort(key=lambda r: (-r[2], r[0], r[1]))
    return scored[:K]


def agrees(store: memtree.Store, db: Path) -> None:
    """Every query, unfiltered and filtered by owner, equals the brute force."""
    for q in QUERIES:
        for owner in (None, "o1"):
            hits = store.search_vector(
                q, K, metric="dot", owner=owner, include_summaries=owner is None
            )
            got = [(h.id, h.kind, h.score) for h in hits]
            assert got == file_ranking(db, q, owner), (q, owner)


def reads_during(store: memtree.Store, db: Path) -> int:
    """Snapshots read by one round of searches that agree with the file."""
    before = testing.vector_cache_reads()
    agrees(store, db)
    return testing.vector_cache_reads() - before


def other_process(db: Path, code: str) -> None:
    """Runs ``code`` with ``store`` (memtree) and ``conn`` (stdlib sqlite3)
    open on ``db`` in a new Python process."""
    script = "import sqlite3, sys, memtree\n" + (
        "store = memtree.Store(sys.argv[1])\nconn = sqlite3.connect(sys.argv[1])\n"
        + textwrap.dedent(code)
        + "\nconn.commit()\nconn.close()\nstore.close()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(db)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def plain_sql(db: Path, sql: str, params: tuple[Any, ...] = ()) -> None:
    """One statement through the stdlib's own SQLite build, as OpenHuman's
    code would write the file, in its own connection and transaction."""
    conn = sqlite3.connect(db)
    try:
        with conn:
            conn.execute(sql, params)
    finally:
        conn.close()


def versions(db: Path) -> list[tuple[str, int]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT table_name, version FROM memtree_vector_versions ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


def schema_cookie(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("PRAGMA schema_version").fetchone()[0])
    finally:
        conn.close()


# --- writes that leave the searched vectors alone ---------------------------


def test_job_traffic_and_other_writes_keep_the_copy(tmp_path: Path) -> None:
    db = tmp_path / "chunks.db"
    build(db)
    with memtree.Store(db) as store:
        assert reads_during(store, db) == 2, "the first search reads both tables"
        at_start = versions(db)
        jobs = store.jobs

        def claim_and_settle() -> None:
            for n in range(3):
                jobs.enqueue("embed", {"n": n})
            done = jobs.claim_next(kinds=["embed"])
            assert done is not None
            jobs.mark_done(done)
            failed = jobs.claim_next(kinds=["embed"])
            assert failed is not None
            jobs.mark_failed(failed, "boom")
            last = jobs.claim_next(kinds=["embed"])
            assert last is not None
            assert jobs.mark_done_and_claim_next(last, kinds=["embed"]) is None

        writes: list[tuple[str, Callable[[], object]]] = [
            ("enqueue, claim, settle", claim_and_settle),
            ("purge", lambda: jobs.purge(timedelta(0))),
            (
                "jobs of another process",
                lambda: other_process(
                    db,
                    """
                    jobs = store.jobs
                    jobs.enqueue("seal", {})
                    jobs.mark_done(jobs.claim_next())
                    """,
                ),
            ),
            # Re-ingest through the upsert's DO UPDATE: new content and a new
            # owner (a filter column), the embedding kept. The owner filter
            # still agrees: a search reads its rowids from the table.
            (
                "re-ingest with a new owner",
                lambda: store.upsert_chunks([chunk(4, owner="o1", content="new words")]),
            ),
            ("lifecycle", lambda: store.set_lifecycle_status(["c01", "c02"], "archived")),
            ("a tree", lambda: store.trees.create("topic", "x", created_at=BASE_MS)),
            (
                "OpenHuman's SQL moving a chunk to another owner",
                lambda: plain_sql(db, "UPDATE mem_tree_chunks SET owner = 'o1' WHERE id = 'c00'"),
            ),
            (
                "a summary's score",
                lambda: plain_sql(db, "UPDATE mem_tree_summaries SET score = 0.5"),
            ),
        ]
        for what, write in writes:
            write()
            assert reads_during(store, db) == 0, what
        assert versions(db) == at_start
        conn = sqlite3.connect(db)
        try:
            # The writes did commit (each moved the data version, the old key).
            done = conn.execute("SELECT kind FROM mem_tree_jobs WHERE status = 'done'")
            assert done.fetchall() == [("seal",)], "the purge took this process's two"
            owners = conn.execute("SELECT owner FROM mem_tree_chunks WHERE id IN ('c00', 'c04')")
            assert owners.fetchall() == [("o1",), ("o1",)]
        finally:
            conn.close()


def test_searches_beside_a_worker_reuse_the_copy(tmp_path: Path) -> None:
    """The agent workload: a Worker claims and settles jobs while the app
    searches; the matrix is read once."""
    db = tmp_path / "chunks.db"
    build(db)
    # The brute force reads the file before the worker starts: a second
    # SQLite library in this process (the stdlib's) must not open the file
    # while memtree's threads write it (closing its descriptor would drop
    # memtree's POSIX locks; SQLite's "How To Corrupt", 2.2.1).
    expected = {tuple(q): file_ranking(db, q, None) for q in QUERIES}

    def search_all(store: memtree.Store) -> None:
        for q in QUERIES:
            hits = store.search_vector(q, K, metric="dot", include_summaries=True)
            assert [(h.id, h.kind, h.score) for h in hits] == expected[tuple(q)]

    handled: list[str] = []
    with memtree.Store(db) as store:
        search_all(store)
        before = testing.vector_cache_reads()
        worker = memtree.Worker(
            store, {"extract": lambda job: handled.append(job.id)}, concurrency=2
        )
        with worker:
            for n in range(40):
                store.jobs.enqueue("extract", {"n": n})
                search_all(store)
            deadline = time.monotonic() + 60
            while store.jobs.counts().get("done", 0) < 40 and time.monotonic() < deadline:
                search_all(store)
                time.sleep(0.01)
        assert store.jobs.counts()["done"] == 40
        assert len(handled) >= 40
        assert testing.vector_cache_reads() == before


# --- writes that change them -------------------------------------------------


@dataclass(frozen=True)
class Write:
    name: str
    #: (store, db, tmp_path) -> None
    run: Callable[[memtree.Store, Path, Path], object]
    #: Snapshots the next round of searches must read: 1 per table changed,
    #: 2 when the contents were replaced wholesale (the schema cookie moved).
    reads: int


def restore_equal_versions(store: memtree.Store, db: Path, tmp: Path) -> None:
    """Restores a backup of ANOTHER file written by the same calls with other
    vectors: its versions equal this file's, only the cookie tells them
    apart."""
    other = tmp / "other.db"
    build(other, seed=99)
    assert versions(other) == versions(db)
    backup = tmp / "other.backup.db"
    with memtree.Store(other) as o:
        o.backup(backup)
    cookie = schema_cookie(db)
    memtree.restore(backup, db)
    assert versions(db) == versions(other), "equal versions, other contents"
    assert schema_cookie(db) != cookie


def quarantine_and_salvage(store: memtree.Store, db: Path, tmp: Path) -> None:
    """Damages the last page of a chunk index (every row stays readable),
    then a full check quarantines the file and salvages its rows."""
    conn = sqlite3.connect(db)
    pages = [
        r[0]
        for r in conn.execute(
            "SELECT pageno FROM dbstat WHERE name LIKE 'idx_mem_tree_chunks%' ORDER BY pageno"
        )
    ]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    data = bytearray(db.read_bytes())
    target = pages[-1] - 1
    data[target * page_size : (target + 1) * page_size] = b"\xa5" * page_size
    # The file change counter moves, so open connections drop their pages.
    data[24:28] = (int.from_bytes(data[24:28], "big") + 1).to_bytes(4, "big")
    with open(db, "r+b") as f:  # same inode: written in place
        f.write(bytes(data))
    with pytest.raises(memtree.CorruptDatabaseError) as info:
        store.check(full=True)
    assert info.value.quarantined_path is not None, "the salvage ran"
    assert store.count_chunks() == 30


OPENHUMAN_INSERT = (
    "INSERT INTO mem_tree_chunks (id, source_kind, source_id, source_ref, owner, timestamp_ms,"
    " time_range_start_ms, time_range_end_ms, tags_json, content, token_count, seq_in_source,"
    " created_at_ms, embedding)"
    " VALUES (?, 'chat', 's9', NULL, 'o1', ?, ?, ?, '[]', 'x', 1, 0, ?, ?)"
)

WRITES = [
    Write(
        "upsert batch, new chunks",
        lambda s, db, t: s.upsert_chunks(
            [chunk(40, embedding=[9.0, 0, 0, 0]), chunk(41, owner="o1", embedding=[0, 0, 9.0, 0])]
        ),
        1,
    ),
    # Any insert reads again, even one without an embedding: an INSERT OR
    # REPLACE (a foreign writer's) can remove an embedded row without firing
    # a delete trigger.
    Write(
        "upsert of a chunk without an embedding", lambda s, db, t: s.upsert_chunks([chunk(42)]), 1
    ),
    Write(
        "set_chunk_embeddings",
        lambda s, db, t: s.set_chunk_embeddings(["c01", "c03", "c05"], vectors(3, 7) * 2),
        1,
    ),
    Write("set_chunk_embedding cleared", lambda s, db, t: s.set_chunk_embedding("c02", None), 1),
    Write("delete_chunk", lambda s, db, t: s.delete_chunk("c05"), 1),
    Write("delete_source", lambda s, db, t: s.delete_source("chat", "s1"), 1),
    Write("delete_owner", lambda s, db, t: s.delete_owner("o1"), 1),
    Write(
        "delete_chunks (retention)",
        lambda s, db, t: s.delete_chunks(BASE + timedelta(minutes=10)),
        1,
    ),
    Write(
        "replace_source_chunks",
        lambda s, db, t: s.replace_source_chunks(
            "chat", "s2", [chunk(2, embedding=[0, 5.0, 0, 0])]
        ),
        1,
    ),
    Write(
        "set_summary_embedding",
        lambda s, db, t: s.trees.set_summary_embedding("c05-s", [0, 0, 0, 7.0]),
        1,
    ),
    Write("delete_summary", lambda s, db, t: s.trees.delete_summary("c10-s"), 1),
    Write(
        "another process: set_chunk_embeddings",
        lambda s, db, t: other_process(
            db, 'store.set_chunk_embeddings(["c06", "c07"], [[4.0, 4, 4, 4], [-4.0, 0, 0, 1]])'
        ),
        1,
    ),
    Write(
        "another process: OpenHuman's insert",
        lambda s, db, t: other_process(
            db,
            f"conn.execute({OPENHUMAN_INSERT!r}, "
            f"('oh1', {BASE_MS}, {BASE_MS}, {BASE_MS}, {BASE_MS}, bytes(16)))",
        ),
        1,
    ),
    Write(
        "plain SQL: an embedding's bytes",
        lambda s, db, t: plain_sql(
            db,
            "UPDATE mem_tree_chunks SET embedding = ? WHERE id = 'c08'",
            (np.array([8, 0, 0, 0], "<f4").tobytes(),),
        ),
        1,
    ),
    Write(
        "plain SQL: INSERT OR REPLACE without the embedding",
        lambda s, db, t: plain_sql(
            db,
            OPENHUMAN_INSERT.replace("INSERT", "INSERT OR REPLACE"),
            ("c09", BASE_MS, BASE_MS, BASE_MS, BASE_MS, None),
        ),
        1,
    ),
    Write(
        "plain SQL: delete",
        lambda s, db, t: plain_sql(db, "DELETE FROM mem_tree_chunks WHERE id = 'c12'"),
        1,
    ),
    Write(
        "plain SQL: a new rowid",
        lambda s, db, t: plain_sql(
            db, "UPDATE mem_tree_chunks SET rowid = rowid + 1000 WHERE id = 'c11'"
        ),
        1,
    ),
    Write(
        "plain SQL: a summary soft-deleted",
        lambda s, db, t: plain_sql(
            db, "UPDATE mem_tree_summaries SET deleted = 1 WHERE id = 'c00-s'"
        ),
        1,
    ),
    Write("compact (VACUUM)", lambda s, db, t: s.compact(), 2),
    Write("restore of a file with equal versions", restore_equal_versions, 2),
    Write("quarantine salvage", quarantine_and_salvage, 2),
]


@pytest.mark.parametrize("write", WRITES, ids=[w.name for w in WRITES])
def test_every_vector_write_is_seen_by_the_next_search(tmp_path: Path, write: Write) -> None:
    db = tmp_path / "chunks.db"
    build(db)
    with memtree.Store(db) as store:
        agrees(store, db)
        assert reads_during(store, db) == 0, "warm: nothing read"
        before = file_ranking(db, QUERIES[0], None), versions(db), schema_cookie(db)
        write.run(store, db, tmp_path)
        after = file_ranking(db, QUERIES[0], None), versions(db), schema_cookie(db)
        assert after != before, "the write changed the file"
        assert reads_during(store, db) == write.reads
        assert reads_during(store, db) == 0, "and the new copy is kept"


def test_a_file_without_the_triggers_falls_back_to_every_commit(tmp_path: Path) -> None:
    """A tool that dropped a trigger: the versions are no longer trusted, so
    any commit (a job's too) reads the copy again, and no write is missed."""
    db = tmp_path / "chunks.db"
    build(db)
    plain_sql(db, "DROP TRIGGER memtree_vectors_chunks_update")
    with memtree.Store(db) as store:
        agrees(store, db)
        store.jobs.enqueue("embed", {})
        assert reads_during(store, db) == 2, "every commit, as before the versions"
        plain_sql(db, "UPDATE mem_tree_chunks SET embedding = ? WHERE id = 'c04'", (bytes(16),))
        assert reads_during(store, db) == 2
