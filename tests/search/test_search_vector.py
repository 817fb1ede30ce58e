"""Exact vector search: ``search_vector`` against numpy brute force, always on
the committed state (this thread, another thread, another process), all or
nothing under I/O faults, and bad input refused before any write."""

from __future__ import annotations

import array
import hashlib
import math
import sqlite3
import subprocess
import sys
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import memtree
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from memtree import ResultCode, testing
from support import fault_loop, file_digest, wait_for_a_write_lock_in_native_code

np = pytest.importorskip("numpy")

BASE = datetime(2026, 11, 1, tzinfo=timezone.utc)
BASE_MS = int(BASE.timestamp() * 1000)
DIM = 8
KINDS = ["chat", "email", "document"]
OWNERS = ["o0", "o1", "o2", "o3"]
SOURCES = [f"s{i}" for i in range(7)]


@dataclass
class Row:
    """One stored row as the reference sees it."""

    id: str
    kind: str  # "chunk" or "summary"
    vector: Any | None  # float64 numpy vector or None
    source_kind: str = ""
    source_id: str = ""
    owner: str = ""
    ts_ms: int = 0
    deleted: bool = False


def chunk_rows(n: int, seed: int) -> list[Row]:
    """Integer-valued vectors (exact in float32), some repeated (ties), some
    zero, some of another dimension and some missing; metadata spread over
    every filter."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        if i % 11 == 5:
            vector = None
        elif i % 13 == 7:
            vector = rng.integers(-3, 4, size=5).astype(np.float64)
        elif i % 17 == 3 and rows and rows[0].vector is not None:
            vector = rows[0].vector.copy()  # a tie with chunk 0
        elif i == 9:
            vector = np.zeros(DIM)
        else:
            vector = rng.integers(-3, 4, size=DIM).astype(np.float64)
        rows.append(
            Row(
                id=f"c{(i * 7919) % 1000:03d}-{i}",
                kind="chunk",
                vector=vector,
                source_kind=KINDS[i % 3],
                source_id=SOURCES[i % 7],
                owner=OWNERS[(i // 3) % 4],
                # Pairs share a timestamp.
                ts_ms=BASE_MS + (i // 2) * 60_000,
            )
        )
    return rows


def summary_rows(n: int, seed: int, chunks: list[Row]) -> list[Row]:
    """Live and deleted summaries; the first shares the first chunk's id and
    vector (a tie across kinds), the others' ids interleave the chunks'."""
    rng = np.random.default_rng(seed)
    rows = [
        Row(
            id=f"c{(i * 31) % 1000:03d}-s{i}",
            kind="summary",
            vector=rng.integers(-3, 4, size=DIM).astype(np.float64),
            ts_ms=BASE_MS + i * 300_000,
            deleted=i % 5 == 4,
        )
        for i in range(n)
    ]
    rows[0].id, rows[0].vector = chunks[0].id, chunks[0].vector
    return rows


def write_rows(db: Path, chunks: list[Row], summaries: list[Row]) -> None:
    with memtree.Store(db) as store:
        store.upsert_chunks(
            [
                memtree.Chunk(
                    r.id,
                    f"text {r.id}",
                    r.source_kind,
                    r.source_id,
                    r.owner,
                    r.ts_ms,
                    created_at=BASE_MS,
                )
                for r in chunks
            ]
        )
        assert store.set_chunk_embeddings(
            [r.id for r in chunks],
            [None if r.vector is None else array.array("f", r.vector) for r in chunks],
        ) == len(chunks)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "INSERT INTO mem_tree_trees (id, kind, scope, created_at_ms) VALUES ('t', 'k', 's', 0)"
        )
        conn.executemany(
            "INSERT INTO mem_tree_summaries (id, tree_id, tree_kind, level, content, token_count,"
            " time_range_start_ms, time_range_end_ms, sealed_at_ms, deleted, embedding)"
            " VALUES (?, 't', 'k', 1, 'summary', 1, ?, ?, ?, ?, ?)",
            [
                (r.id, r.ts_ms, r.ts_ms, r.ts_ms, int(r.deleted), r.vector.astype("<f4").tobytes())
                for r in summaries
            ],
        )
    conn.close()


@dataclass(frozen=True)
class Filter:
    source_kind: str | None = None
    source_id: str | None = None
    owner: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def kwargs(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v is not None}

    def admits(self, row: Row) -> bool:
        since = None if self.since is None else int(self.since.timestamp() * 1000)
        until = None if self.until is None else int(self.until.timestamp() * 1000)
        if since is not None and row.ts_ms < since:
            return False
        if until is not None and row.ts_ms >= until:
            return False
        if row.kind == "summary":
            return not row.deleted and (
                self.source_kind is None and self.source_id is None and self.owner is None
            )
        return (
            (self.source_kind is None or row.source_kind == self.source_kind)
            and (self.source_id is None or row.source_id == self.source_id)
            and (self.owner is None or row.owner == self.owner)
        )


def reference_scores(
    rows: list[Row], query: Any, metric: str, flt: Filter, include_summaries: bool
) -> dict[tuple[str, str], float]:
    """numpy brute force in float64 over the rows the filter admits."""
    out = {}
    for r in rows:
        if r.vector is None or len(r.vector) != len(query) or not flt.admits(r):
            continue
        if r.kind == "summary" and not include_summaries:
            continue
        if metric == "dot":
            score = float(r.vector @ query)
        elif metric == "l2":
            score = -float(np.linalg.norm(r.vector - query))
        else:
            norm = float(np.linalg.norm(r.vector))
            score = 0.0 if norm == 0 else float(r.vector @ query) / (norm * np.linalg.norm(query))
        out[(r.id, r.kind)] = score
    return out


def assert_same_ranking(hits: list[memtree.Hit], ref: dict[tuple[str, str], float], k: int) -> None:
    """``hits`` is numpy's top ``k``: same length, same scores (float32
    rounding), same order; positions may differ only where numpy's own scores
    are equal to float32 precision, and equal scores come in id order."""
    k = max(1, min(k, 10_000))
    want = sorted(ref, key=lambda key: (-ref[key], key[0], key[1] == "summary"))[:k]
    got = [(h.id, h.kind) for h in hits]
    assert len(got) == len(want)
    assert len(set(got)) == len(got)
    tol = 1e-5
    for h in hits:
        assert (h.id, h.kind) in ref
        assert h.score == pytest.approx(ref[(h.id, h.kind)], rel=tol, abs=tol)
    for g, w in zip(got, want):
        assert abs(ref[g] - ref[w]) <= tol * max(1.0, abs(ref[w])), (g, w)
    for rank, (a, b) in enumerate(zip(hits, hits[1:]), start=1):
        assert a.vector_rank == rank and b.vector_rank == rank + 1
        assert a.text_rank is None
        assert a.score > b.score or (
            a.score == b.score and (a.id, a.kind == "summary") < (b.id, b.kind == "summary")
        )


CHUNKS = chunk_rows(240, seed=1)
SUMMARIES = summary_rows(24, seed=2, chunks=CHUNKS)
ROWS = CHUNKS + SUMMARIES


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> Any:
    db = tmp_path_factory.mktemp("search") / "chunks.db"
    write_rows(db, CHUNKS, SUMMARIES)
    with memtree.Store(db) as store:
        yield store


times = st.sampled_from([None, *(BASE + timedelta(minutes=m) for m in (0, 30, 61, 119, 500))])
filters = st.builds(
    Filter,
    source_kind=st.sampled_from([None, *KINDS]),
    source_id=st.sampled_from([None, *SOURCES, "nope"]),
    owner=st.sampled_from([None, *OWNERS]),
    since=times,
    until=times,
)
queries = st.one_of(
    st.lists(st.integers(-3, 3), min_size=DIM, max_size=DIM),
    st.lists(st.integers(-3, 3), min_size=5, max_size=5),
    st.lists(st.integers(-3, 3), min_size=3, max_size=3),  # no row has it
).filter(any)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    query=queries,
    metric=st.sampled_from(["cosine", "dot", "l2"]),
    flt=filters,
    k=st.sampled_from([1, 2, 10, 1000, 20_000]),
    include_summaries=st.booleans(),
    as_buffer=st.booleans(),
)
def test_matches_numpy_brute_force(
    searched: memtree.Store,
    query: list[int],
    metric: str,
    flt: Filter,
    k: int,
    include_summaries: bool,
    as_buffer: bool,
) -> None:
    q = np.array(query, dtype=np.float64)
    vector: Any = q.astype(np.float32) if as_buffer else [float(x) for x in query]
    hits = searched.search_vector(
        vector, k, metric=metric, include_summaries=include_summaries, **flt.kwargs()
    )
    assert_same_ranking(hits, reference_scores(ROWS, q, metric, flt, include_summaries), k)


def test_the_fixture_has_ties_zero_rows_and_summaries_that_win(searched: memtree.Store) -> None:
    # The property test is only as good as its data: check it has what the
    # ranking rules are about.
    q = CHUNKS[0].vector
    copies = [r for r in CHUNKS if r.vector is not None and np.array_equal(r.vector, q)]
    assert len(copies) >= 3
    assert any(r.vector is not None and not r.vector.any() for r in CHUNKS)
    hits = searched.search_vector(q, len(copies), metric="cosine")
    assert [h.id for h in hits] == sorted(r.id for r in copies)
    assert len({h.score for h in hits}) == 1 and hits[0].score == pytest.approx(1.0)
    mixed = searched.search_vector(q, 50, include_summaries=True)
    assert {"chunk", "summary"} <= {h.kind for h in mixed}
    # A summary sharing a chunk's id: both come back, the chunk first.
    same = [h for h in mixed if h.id == CHUNKS[0].id]
    assert [h.kind for h in same] == ["chunk", "summary"]


def test_k_rows_whenever_k_match_and_a_filter_of_few_rows(searched: memtree.Store) -> None:
    matching = [r for r in CHUNKS if r.source_id == "s3" and r.vector is not None]
    matching = [r for r in matching if len(r.vector) == DIM]
    hits = searched.search_vector([1.0] * DIM, 10_000, metric="l2", source_id="s3")
    assert sorted(h.id for h in hits) == sorted(r.id for r in matching)
    assert len(searched.search_vector([1.0] * DIM, 3, source_id="s3")) == 3
    assert searched.search_vector([1.0] * 3, 10) == []


def test_hit_is_a_frozen_value(tmp_path: Path) -> None:
    with memtree.Store(tmp_path / "h.db") as store:
        store.upsert_chunks([memtree.Chunk("a", "t", "chat", "s", "o", 0, embedding=[1.0, 0.0])])
        (hit,) = store.search_vector([1.0, 0.0])
    assert (hit.id, hit.kind, hit.score, hit.vector_rank, hit.text_rank) == (
        "a",
        "chunk",
        1.0,
        1,
        None,
    )
    assert (
        repr(hit)
        == "Hit(id='a', kind='chunk', score=1.0, vector_rank=1, text_rank=None, snippet=None)"
    )
    assert hit == hit and hash(hit) == hash(hit)
    with pytest.raises(AttributeError):
        hit.score = 2.0  # type: ignore[misc]
    assert isinstance(hit, memtree.Hit)


# --- bad input ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda s: s.search_vector([]), ValueError, r"^vector: must not be empty"),
        (lambda s: s.search_vector([1.0, math.nan]), ValueError, r"^vector: value at index 1"),
        (lambda s: s.search_vector([math.inf]), ValueError, r"^vector: value at index 0"),
        (lambda s: s.search_vector([0.0, 0.0]), ValueError, r"^vector: a zero vector"),
        (lambda s: s.search_vector("ab"), TypeError, r"^vector: expected a sequence"),
        (lambda s: s.search_vector(b"\0\0\0\0"), TypeError, r'memoryview\(b\)\.cast\("f"\)'),
        (lambda s: s.search_vector(None), TypeError, r"^vector: expected a sequence"),
        (lambda s: s.search_vector([1.0], True), TypeError, r"^k: expected int, got bool"),
        (lambda s: s.search_vector([1.0], 2.0), TypeError, r"^k: expected int, got float"),
        (lambda s: s.search_vector([1.0], "3"), TypeError, r"^k: expected int, got str"),
        (lambda s: s.search_vector([1.0], metric="cos"), ValueError, r"^metric: expected"),
        (lambda s: s.search_vector([1.0], metric=1), TypeError, r"^metric: expected str"),
        (lambda s: s.search_vector([1.0], source_kind="fax"), ValueError, r"^source_kind"),
        (lambda s: s.search_vector([1.0], since=datetime(2026, 1, 1)), ValueError, r"^since"),
        (
            lambda s: s.set_chunk_embeddings(["a", "b"], [[1.0]]),
            ValueError,
            r"^matrix: has 1 rows for 2 ids",
        ),
        (
            lambda s: s.set_chunk_embeddings(["a", "b"], [[1.0], [math.nan]]),
            ValueError,
            r"^matrix\[1\]: value at index 0",
        ),
        (
            lambda s: s.set_chunk_embeddings(["a"], [[]]),
            ValueError,
            r"^matrix\[0\]: must not be empty",
        ),
        (
            lambda s: s.set_chunk_embeddings(["a", ""], [[1.0], [1.0]]),
            ValueError,
            r"^ids\[1\]: must not be empty",
        ),
        (
            lambda s: s.set_chunk_embeddings(["a"], [["x"]]),
            TypeError,
            r"^matrix\[0\]\[0\]: expected a float",
        ),
        (
            lambda s: s.set_chunk_embeddings(["a"], b"\0\0\0\0"),
            TypeError,
            r"^matrix: expected a buffer",
        ),
        (
            lambda s: s.set_chunk_embeddings(["a"], [b"\0\0\0\0"]),
            TypeError,
            r"^matrix\[0\]: expected a buffer",
        ),
        (
            lambda s: s.set_chunk_embeddings(["a"], np.zeros((1, 2, 2), np.float32)),
            ValueError,
            r"^matrix: expected a 2-dim",
        ),
        (
            lambda s: s.set_chunk_embeddings(["a"], np.zeros((1, 2), np.int32)),
            TypeError,
            r"^matrix: expected a buffer of float32",
        ),
        (
            lambda s: s.set_chunk_embeddings(["a"], np.full((1, 2), 1e300)),
            ValueError,
            r"^matrix\[0\]: value at index 0",
        ),
        (lambda s: s.set_chunk_embeddings("ab", [[1.0], [1.0]]), TypeError, r"^ids"),
        (lambda s: s.set_chunk_embeddings(["a"], 3), TypeError, r"^matrix: expected a 2-dim"),
        (lambda s: s.get_chunk_embeddings([1]), TypeError, r"^ids\[0\]"),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(
    tmp_path: Path, call: Any, error: type, message: str
) -> None:
    db = tmp_path / "chunks.db"
    with memtree.Store(db) as store:
        store.upsert_chunks([memtree.Chunk(i, "t", "chat", "s", "o", 0) for i in "ab"])
        store.set_chunk_embeddings(["a", "b"], [[1.0, 2.0], [3.0, 4.0]])
        before = file_digest(db)
        with pytest.raises(error, match=message):
            call(store)
        assert file_digest(db) == before
        assert store.get_chunk_embeddings(["a", "b"]).to_numpy().tolist() == [[1, 2], [3, 4]]


def test_chunk_embedding_from_bytes_names_the_field_and_hints() -> None:
    with pytest.raises(TypeError, match=r'^embedding: .*got bytes .*memoryview\(b\)\.cast\("f"\)'):
        memtree.Chunk("a", "t", "chat", "s", "o", 0, embedding=b"\0\0\x80?")
    with pytest.raises(TypeError, match=r"^embedding: .*got bytearray"):
        memtree.Chunk("a", "t", "chat", "s", "o", 0, embedding=bytearray(8))
    ok = memtree.Chunk("a", "t", "chat", "s", "o", 0, embedding=memoryview(b"\0\0\x80?").cast("f"))
    assert ok.embedding == (1.0,)


# --- embeddings in and out -------------------------------------------------------


def test_embeddings_round_trip_as_arrays(tmp_path: Path) -> None:
    m = np.arange(12, dtype=np.float32).reshape(4, 3) / 4
    with memtree.Store(tmp_path / "e.db") as store:
        store.upsert_chunks(
            [memtree.Chunk(f"c{i}", "t", "chat", "s", "o", i, embedding=m[i]) for i in range(3)]
        )
        assert store.get_chunk_embeddings(["c2", "c0"]).to_numpy().tolist() == [
            m[2].tolist(),
            m[0].tolist(),
        ]
        # A float64 matrix, rows for a missing id, None clears.
        assert store.set_chunk_embeddings(["c1", "zz", "c2"], m[1:4].astype(np.float64)) == 2
        assert store.set_chunk_embeddings(["c0"], [None]) == 1
        e = store.get_chunk_embeddings(["c2", "zz", "c0", "c1", "c2"])
        assert e.ids == ["c2", "c1", "c2"] and e.dim == 3 and len(e) == 3
        assert e.data == np.stack([m[3], m[1], m[3]]).astype("<f4").tobytes()
        arr = e.to_numpy()
        assert arr.shape == (3, 3) and arr.dtype == np.float32
        got = store.get_chunk_embedding("c1")
        assert isinstance(got, array.array) and got.typecode == "f"
        assert np.asarray(got).tolist() == m[1].tolist()
        assert store.get_chunk_embedding("c0") is None
        empty = store.get_chunk_embeddings([])
        assert (empty.ids, empty.dim, empty.data, empty.to_numpy().shape) == ([], 0, b"", (0, 0))
        store.set_chunk_embedding("c0", [1.0])
        with pytest.raises(ValueError, match=r"^ids: embeddings of different dimensions"):
            store.get_chunk_embeddings(["c1", "c0"])


def test_set_chunk_embeddings_is_one_transaction(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with memtree.Store(db) as store:
        store.upsert_chunks([memtree.Chunk(f"c{i}", "t", "chat", "s", "o", i) for i in range(50)])
        testing.reset_io_stats(db)
        store.set_chunk_embeddings([f"c{i}" for i in range(50)], np.ones((50, 16), np.float32))
        # One commit: the journal is synced twice and the database once.
        stats = testing.io_stats(db)
        assert stats["syncs_db"] == 1, stats


# --- always the committed state --------------------------------------------------

CHILD = """
import sqlite3, sys
import memtree
db, action = sys.argv[1], sys.argv[2]
if action == "set-top":
    with memtree.Store(db) as s:
        assert s.set_chunk_embedding("c5", [100.0, 0.0, 0.0, 0.0])
elif action == "clear":
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE mem_tree_chunks SET embedding = NULL WHERE id = 'c5'")
elif action == "rolled-back":
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE mem_tree_chunks SET embedding = ? WHERE id = 'c1'",
                 (memoryview(b"\\0\\0\\xc8\\x42" + b"\\0" * 12),))
    conn.execute("ROLLBACK")
elif action == "delete":
    with memtree.Store(db) as s:
        assert s.delete_chunk("c1")
elif action == "reingest":
    with memtree.Store(db) as s:
        s.upsert_chunks([memtree.Chunk("c2", "new text", "chat", "s", "o", 2)])
elif action == "replace-raw":
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE mem_tree_chunks SET embedding = ? WHERE id = 'c3'",
                     (bytes.fromhex("0000c842") + bytes(12),))
"""


def child(db: Path, action: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(db), action], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


def top(store: memtree.Store, k: int = 3) -> list[tuple[str, float]]:
    return [(h.id, h.score) for h in store.search_vector([1.0, 0.0, 0.0, 0.0], k, metric="dot")]


def test_writes_of_another_process_are_seen_by_the_next_search(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    with memtree.Store(db) as store:
        store.upsert_chunks([memtree.Chunk(f"c{i}", "t", "chat", "s", "o", i) for i in range(6)])
        store.set_chunk_embeddings(
            [f"c{i}" for i in range(6)], [[float(i), 1.0, 0.0, 0.0] for i in range(6)]
        )
        assert top(store) == [("c5", 5.0), ("c4", 4.0), ("c3", 3.0)]
        reads = testing.vector_cache_reads()
        assert top(store) == [("c5", 5.0), ("c4", 4.0), ("c3", 3.0)]
        assert testing.vector_cache_reads() == reads, "no commit: the copy in memory is reused"

        child(db, "set-top")
        assert top(store, 1) == [("c5", 100.0)]
        assert testing.vector_cache_reads() == reads + 1, "another process committed: read again"
        child(db, "clear")
        assert top(store) == [("c4", 4.0), ("c3", 3.0), ("c2", 2.0)]
        child(db, "rolled-back")
        assert top(store) == [("c4", 4.0), ("c3", 3.0), ("c2", 2.0)]
        child(db, "replace-raw")  # same size, same rows: only the bytes change
        assert top(store) == [("c3", 100.0), ("c4", 4.0), ("c2", 2.0)]
        child(db, "reingest")  # re-ingest keeps the embedding
        assert top(store) == [("c3", 100.0), ("c4", 4.0), ("c2", 2.0)]
        child(db, "delete")
        assert [h for h, _ in top(store, 10)] == ["c3", "c4", "c2", "c0"]


def test_this_and_other_threads_commits_are_seen(tmp_path: Path) -> None:
    with memtree.Store(tmp_path / "t.db") as store:
        store.upsert_chunks([memtree.Chunk(f"c{i}", "t", "chat", "s", "o", i) for i in range(4)])
        store.set_chunk_embeddings([f"c{i}" for i in range(4)], np.eye(4, dtype=np.float32))
        assert top(store, 1) == [("c0", 1.0)]
        store.set_chunk_embedding("c0", [0.5, 0, 0, 0])
        store.set_chunk_embedding("c3", [2.0, 0, 0, 0])
        assert top(store, 2) == [("c3", 2.0), ("c0", 0.5)]
        other = memtree.Store(store.path)  # another handle, same connection
        t = threading.Thread(target=lambda: other.delete_chunk("c3"))
        t.start()
        t.join()
        other.close()
        assert top(store, 1) == [("c0", 0.5)]
        # Re-ingest through replace_source_chunks drops the source's other rows.
        store.replace_source_chunks("chat", "s", [memtree.Chunk("c0", "t", "chat", "s", "o", 0)])
        assert top(store, 5) == [("c0", 0.5)]


def test_concurrent_searches_in_threads_agree_with_numpy(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    m = rng.standard_normal((4000, 64)).astype(np.float32)
    rows = [Row(f"c{i:05d}", "chunk", m[i].astype(np.float64)) for i in range(len(m))]
    with memtree.Store(tmp_path / "g.db") as store:
        ids = [r.id for r in rows]
        store.upsert_chunks([memtree.Chunk(i, "t", "chat", "s", "o", 0) for i in ids])
        store.set_chunk_embeddings(ids, m)
        queries = rng.standard_normal((8, 64)).astype(np.float32)
        expected = [store.search_vector(q, 10) for q in queries]
        for q, hits in zip(queries, expected):
            ref = reference_scores(rows, q.astype(np.float64), "cosine", Filter(), False)
            assert_same_ranking(hits, ref, 10)
        results: dict[int, list[list[memtree.Hit]]] = {}

        def worker(t: int) -> None:
            results[t] = [store.search_vector(q, 10) for q in queries]

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(results[t] == expected for t in range(4))


def test_a_search_releases_the_gil(tmp_path: Path) -> None:
    m = np.random.default_rng(5).standard_normal((2_000, 16)).astype(np.float32)
    db = tmp_path / "g.db"
    with memtree.Store(db) as store:
        ids = [f"c{i:05d}" for i in range(len(m))]
        store.upsert_chunks([memtree.Chunk(i, "t", "chat", "s", "o", 0) for i in ids])
        store.set_chunk_embeddings(ids, m)
        expected = store.search_vector(m[1], 10)  # the copy in memory is built
        hits = wait_for_a_write_lock_in_native_code(db, lambda: store.search_vector(m[1], 10))
        assert hits == expected


# --- I/O faults ------------------------------------------------------------------


def embedding_state(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = conn.execute("SELECT id, embedding FROM mem_tree_chunks ORDER BY id").fetchall()
    finally:
        conn.close()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def file_ranking(db: Path, q: Any) -> list[str]:
    """Top 10 by dot product, computed from the file with the stdlib."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT id, embedding FROM mem_tree_chunks WHERE embedding IS NOT NULL"
        ).fetchall()
    finally:
        conn.close()
    scores = {i: float(np.frombuffer(b, "<f4").astype(np.float64) @ q) for i, b in rows}
    return sorted(scores, key=lambda i: (-scores[i], i))[:10]


@pytest.mark.parametrize("persistent", [False, True])
@pytest.mark.parametrize("method", ["xWrite", "xSync", "xRead", "xTruncate", "xFileSize", "xOpen"])
def test_io_fault_loop_all_or_nothing_and_the_next_search_agrees(
    tmp_path: Path, method: testing.VfsMethod, persistent: bool
) -> None:
    n_chunks, dim = 40, 64
    rng = np.random.default_rng(4)
    base = tmp_path / "base.db"
    ids = [f"c{i:03d}" for i in range(n_chunks)]
    with memtree.Store(base) as store:
        store.upsert_chunks([memtree.Chunk(i, "t " * 50, "chat", "s", "o", 0) for i in ids])
        store.set_chunk_embeddings(ids, rng.standard_normal((n_chunks, dim)).astype(np.float32))
    new = rng.standard_normal((n_chunks, dim)).astype(np.float32) * 3
    rows: list[Any] = [None if i % 7 == 0 else new[i] for i in range(n_chunks)]
    q = rng.standard_normal(dim)
    before = embedding_state(base)
    done = tmp_path / "done.db"
    done.write_bytes(base.read_bytes())
    with memtree.Store(done) as store:
        store.set_chunk_embeddings(ids, rows)
    after = embedding_state(done)
    assert after != before

    def next_search_agrees(db: Path, _seen: object, hits: object, n: int) -> None:
        assert hits == file_ranking(db, q), f"search after a {method} fault at call {n}"

    fired_points, rolled_back = fault_loop(
        tmp_path,
        base,
        method,
        persistent,
        lambda store: store.set_chunk_embeddings(ids, rows),
        state=embedding_state,
        outcomes={before, after},
        before=before,
        codes=(ResultCode.IOERR, ResultCode.CANTOPEN),
        primary_code=True,
        # The copy in memory is built before the fault, and searched after.
        prepare=lambda store: store.search_vector(q, 10, metric="dot"),
        in_store=lambda store: [h.id for h in store.search_vector(q, 10, metric="dot")],
        verify=next_search_agrees,
        limit=2000,
    )
    print(
        f"{method} persistent={persistent}: {fired_points} fault points, {rolled_back} rolled back"
    )
    assert fired_points >= 1, "the loop must have injected at least one fault"
    if method in ("xWrite", "xSync"):
        assert rolled_back >= 1, "at least one fault must have hit inside the transaction"
