"""Hybrid search: ``search(text=, vector=)`` is reciprocal rank fusion
(constant 60) of the two searches over the same filtered rows, each read to
depth ``max(k, 100)``; with one argument it is that search alone."""

from __future__ import annotations

import array
import asyncio
import math
import random
from pathlib import Path
from typing import Any

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


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Any:
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
    s = memtree.Store(tmp_path_factory.mktemp("hybrid") / "h.db")
    s.upsert_chunks(chunks)
    yield s
    s.close()


def reference(
    text_hits: list[memtree.Hit], vector_hits: list[memtree.Hit], k: int
) -> list[tuple[str, float, int | None, int | None]]:
    scores: dict[str, float] = {}
    ranks: dict[str, list[int | None]] = {}
    for hit in text_hits:
        assert hit.text_rank is not None
        scores[hit.id] = scores.get(hit.id, 0.0) + 1 / (60 + hit.text_rank)
        ranks.setdefault(hit.id, [None, None])[0] = hit.text_rank
    for hit in vector_hits:
        assert hit.vector_rank is not None
        scores[hit.id] = scores.get(hit.id, 0.0) + 1 / (60 + hit.vector_rank)
        ranks.setdefault(hit.id, [None, None])[1] = hit.vector_rank
    best = sorted(scores, key=lambda i: (-scores[i], i))[:k]
    return [(i, scores[i], ranks[i][0], ranks[i][1]) for i in best]


FILTERS = st.fixed_dictionaries(
    {},
    optional={
        "source_kind": st.sampled_from(KINDS),
        "owner": st.sampled_from(OWNERS),
        "source_id": st.sampled_from([f"s{i}" for i in range(4)]),
    },
)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    words=st.lists(st.sampled_from(WORDS), min_size=1, max_size=2),
    seed=st.integers(0, 10_000),
    k=st.sampled_from([1, 5, 10, 150]),
    flt=FILTERS,
)
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
