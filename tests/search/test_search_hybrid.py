"""Hybrid search: ``search(text=, vector=)`` is reciprocal rank fusion
(constant 60) of the two searches over the same filtered rows, each read to
depth ``max(k, 100)``; with one argument it is that search alone. The text
list is checked against SQLite's own ``bm25()`` over an independent FTS5
table of the same rows (the brute-force reference), as well as against
``search_text``."""

from __future__ import annotations

import array
import asyncio
import math
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import memtree
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from memtree.aio import AsyncStore

BASE_MS = 1_790_000_000_000
DIM = 6
WORDS = ["otter", "beaver", "heron", "pike", "reed", "willow", "stone", "moss"]
KINDS = ["chat", "email", "document"]
OWNERS = ["o0", "o1", "o2"]
DEPTH = 100


def vec(rng: random.Random) -> array.array[float]:
    return array.array("f", [float(rng.randint(-3, 3)) for _ in range(DIM)])


def make_chunks() -> list[memtree.Chunk]:
    """600 chunks of 2-8 words from 8: many share term counts and length,
    so bm25 ties run across every depth."""
    rng = random.Random(7)
    chunks = []
    for i in range(600):
        v = vec(rng)
        if not any(v):
            v[0] = 1.0
        chunks.append(
            memtree.Chunk(
                f"h{(i * 7919) % 1000:03d}-{i}",
                " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 8))),
                KINDS[i % 3],
                f"s{i % 4}",
                OWNERS[(i // 2) % 3],
                BASE_MS + i * 60_000,
                embedding=v,
            )
        )
    return chunks


CHUNKS = make_chunks()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[memtree.Store]:
    s = memtree.Store(tmp_path_factory.mktemp("hybrid") / "h.db")
    s.upsert_chunks(CHUNKS)
    yield s
    s.close()


@pytest.fixture(scope="module")
def peer() -> Iterator[sqlite3.Connection]:
    """stdlib sqlite3's FTS5 over the same rows (its own index, not
    memtree's), with the filter columns."""
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE VIRTUAL TABLE peer USING fts5(content, id UNINDEXED, source_kind UNINDEXED,"
        " source_id UNINDEXED, owner UNINDEXED, tokenize='unicode61 remove_diacritics 2')"
    )
    conn.executemany(
        "INSERT INTO peer (content, id, source_kind, source_id, owner) VALUES (?,?,?,?,?)",
        [(c.content, c.id, c.source_kind, c.source_id, c.owner) for c in CHUNKS],
    )
    yield conn
    conn.close()


def peer_text_ranks(
    peer: sqlite3.Connection, words: list[str], depth: int, flt: dict[str, str]
) -> dict[str, int]:
    """The text list by brute force: every matching row of the filter by
    SQLite's bm25, ties by id, cut at ``depth``; id -> 1-based rank."""
    where = "".join(f" AND {column} = ?" for column in flt)
    match = " ".join(f'"{w}"' for w in dict.fromkeys(words))
    rows = peer.execute(
        f"SELECT id FROM peer WHERE peer MATCH ?{where} ORDER BY bm25(peer), id LIMIT ?",
        (match, *flt.values(), depth),
    ).fetchall()
    return {row[0]: rank for rank, row in enumerate(rows, start=1)}


def brute_force_rrf(
    text_ranks: dict[str, int], vector_ranks: dict[str, int], k: int
) -> list[tuple[str, float, int | None, int | None]]:
    """RRF as documented: 1 / (60 + rank) summed over the lists holding a
    row (text first), best first, ties by id."""
    scores: dict[str, float] = {}
    for ranks in (text_ranks, vector_ranks):
        for i, rank in ranks.items():
            scores[i] = scores.get(i, 0.0) + 1 / (60 + rank)
    best = sorted(scores, key=lambda i: (-scores[i], i))[:k]
    return [(i, scores[i], text_ranks.get(i), vector_ranks.get(i)) for i in best]


def reference(
    text_hits: list[memtree.Hit], vector_hits: list[memtree.Hit], k: int
) -> list[tuple[str, float, int | None, int | None]]:
    text_ranks, vector_ranks = {}, {}
    for hit in text_hits:
        assert hit.text_rank is not None
        text_ranks[hit.id] = hit.text_rank
    for hit in vector_hits:
        assert hit.vector_rank is not None
        vector_ranks[hit.id] = hit.vector_rank
    return brute_force_rrf(text_ranks, vector_ranks, k)


FILTERS = st.fixed_dictionaries(
    {},
    optional={
        "source_kind": st.sampled_from(KINDS),
        "owner": st.sampled_from(OWNERS),
        "source_id": st.sampled_from([f"s{i}" for i in range(4)]),
    },
)


# The fusion properties' cases: one or two words, a query vector's seed,
# k from 1 to past the lists' depth, and the exact filters.
HYBRID_CASES = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
HYBRID_INPUTS = given(
    words=st.lists(st.sampled_from(WORDS), min_size=1, max_size=2),
    seed=st.integers(0, 10_000),
    k=st.sampled_from([1, 5, 10, 150]),
    flt=FILTERS,
)


@HYBRID_CASES
@HYBRID_INPUTS
def test_rrf_of_the_two_searches(
    store: memtree.Store, words: list[str], seed: int, k: int, flt: dict[str, str]
) -> None:
    q = vec(random.Random(seed))
    if not any(q):
        q[1] = 1.0
    text = " ".join(words)
    depth = max(k, DEPTH)
    want = reference(
        store.search_text(text, depth, **flt),  # type: ignore[arg-type]
        store.search_vector(q, depth, **flt),  # type: ignore[arg-type]
        k,
    )
    hits = store.search(text=text, vector=q, k=k, **flt)  # type: ignore[arg-type]
    got = [(h.id, h.text_rank, h.vector_rank) for h in hits]
    assert got == [(i, t, v) for i, _, t, v in want]
    for hit, (_, score, text_rank, _) in zip(hits, want):
        assert math.isclose(hit.score, score, rel_tol=1e-6)
        # Every hit whose content matches has its excerpt (one ranked below
        # the text list's depth too); one that does not match has none.
        if text_rank is not None:
            assert hit.snippet is not None
        if hit.snippet is None:
            assert hit.id not in {h.id for h in store.search_text(text, 10_000)}


@HYBRID_CASES
@HYBRID_INPUTS
def test_fusion_equals_rrf_over_sqlite_bm25_and_the_vector_list(
    store: memtree.Store,
    peer: sqlite3.Connection,
    words: list[str],
    seed: int,
    k: int,
    flt: dict[str, str],
) -> None:
    """The text list past the k-th row is ranked without the rows' ids (only
    its tie runs read them): the fused hits still equal RRF over SQLite's
    own bm25 ranking of the filtered rows to depth max(k, 100)."""
    q = vec(random.Random(seed))
    if not any(q):
        q[1] = 1.0
    depth = max(k, DEPTH)
    vector_ranks = {
        h.id: h.vector_rank or 0
        for h in store.search_vector(q, depth, **flt)  # type: ignore[arg-type]
    }
    want = brute_force_rrf(peer_text_ranks(peer, words, depth, flt), vector_ranks, k)
    hits = store.search(text=" ".join(words), vector=q, k=k, **flt)  # type: ignore[arg-type]
    assert [(h.id, h.text_rank, h.vector_rank) for h in hits] == [(i, t, v) for i, _, t, v in want]
    for hit, (_, score, _, _) in zip(hits, want):
        assert math.isclose(hit.score, score, rel_tol=1e-6)


def test_the_fixture_ties_past_k_and_fuses_rows_ranked_past_k(store: memtree.Store) -> None:
    """What the test above depends on: bm25 tie runs deep in the text list,
    and fused hits whose text rank is past k (rows ranked there carry no id
    until a vector rank names them)."""
    text = store.search_text("otter", DEPTH)
    scores = [h.score for h in text]
    assert len(text) == DEPTH
    assert any(scores[i] == scores[i + 1] for i in range(20, DEPTH - 1)), "ties past k"
    deep = 0
    for seed in range(30):
        q = vec(random.Random(seed))
        if any(q):
            hits = store.search(text="otter", vector=q, k=10)
            deep += sum(1 for h in hits if h.text_rank is not None and h.text_rank > 10)
    assert deep > 0, "some fused hit is ranked past k in the text list"


def test_one_argument_is_that_search_alone(store: memtree.Store) -> None:
    q = array.array("f", [1, 0, 2, 0, -1, 1])
    assert store.search(text="heron reed", k=7, owner="o1") == store.search_text(
        "heron reed", 7, owner="o1"
    )
    assert store.search(vector=q, k=7) == store.search_vector(q, 7)


def test_fusion_lets_a_hit_ranked_in_both_lists_win(store: memtree.Store) -> None:
    q = array.array("f", [3, -3, 3, -3, 3, -3])
    hits = store.search(text="otter", vector=q, k=10)
    both = [h for h in hits if h.text_rank is not None and h.vector_rank is not None]
    assert both, "the fixture has hits in both lists"
    assert hits[0].score >= 1 / 61, "at least a top hit of one list"
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)


def test_arguments_are_checked_before_either_search(store: memtree.Store) -> None:
    with pytest.raises(ValueError, match="text"):
        store.search()
    with pytest.raises(ValueError, match="query"):
        store.search(text="?!", vector=[1.0, 0.0])
    with pytest.raises(ValueError, match="vector"):
        store.search(text="otter", vector=[math.nan, 1.0])
    with pytest.raises(TypeError, match="text"):
        store.search(text=b"otter")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="k"):
        store.search(text="otter", k=2.0)  # type: ignore[arg-type]


def test_async_search(tmp_path: Path) -> None:
    async def run() -> list[memtree.Hit]:
        async with AsyncStore.connect(tmp_path / "a.db") as s:
            await s.upsert_chunks(
                [
                    memtree.Chunk("a", "otter", "chat", "s", "o", BASE_MS, embedding=[1.0, 0.0]),
                    memtree.Chunk("b", "heron", "chat", "s", "o", BASE_MS, embedding=[0.0, 1.0]),
                ]
            )
            return await s.search(text="otter", vector=[0.0, 1.0])

    hits = asyncio.run(run())
    assert [(h.id, h.text_rank, h.vector_rank) for h in hits] == [("a", 1, 2), ("b", None, 1)]
    assert hits[0].snippet == "otter" and hits[1].snippet is None
