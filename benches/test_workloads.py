"""pytest-benchmark suites: the ``memtree bench`` commit matrix and the reads."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import memtree
import pytest
from conftest import BASE_MS, READ_ROWS
from memtree import _native, bench

COMMITS_PER_ROUND = 10


@pytest.mark.parametrize("batch", bench.BATCHES)
@pytest.mark.parametrize(("label", "journal", "sync"), bench.MODES, ids=[m[0] for m in bench.MODES])
def test_commit_matrix(
    benchmark: Any, tmp_path: Path, label: str, journal: str, sync: str, batch: int
) -> None:
    """One round = a fresh file, one warm-up commit, then 10 timed commits in
    the Rust core; the exact per-commit figures go into ``extra_info``."""
    rounds = itertools.count()
    latencies: list[float] = []
    syncs: list[int] = []

    def one_round() -> None:
        path = tmp_path / f"{next(rounds)}.db"
        _, samples = _native.bench.commits(path, journal, sync, batch, COMMITS_PER_ROUND)
        latencies.extend(s[0] / 1e6 for s in samples)
        syncs.extend(sum(s[1:6]) for s in samples)

    benchmark.pedantic(one_round, rounds=3 if batch < 1000 else 2, iterations=1)
    benchmark.extra_info.update(
        mode=label,
        batch=batch,
        commit_median_ms=statistics.median(latencies),
        per_chunk_us=statistics.median(latencies) * 1e3 / batch,
        syncs_per_commit_median=statistics.median(syncs),
    )


@pytest.mark.parametrize("batch", bench.BATCHES)
def test_store_upsert_commit(benchmark: Any, tmp_path: Path, batch: int) -> None:
    """memtree's own path: ``Store.upsert_chunks`` of ``batch`` prebuilt chunks."""
    counter = itertools.count(1)
    with memtree.Store(tmp_path / "store.db") as store:
        store.upsert_chunks(_native.bench.chunks(0, batch))

        def setup() -> tuple[tuple[list[memtree.Chunk]], dict[str, Any]]:
            return (_native.bench.chunks(next(counter) * batch, batch),), {}

        benchmark.pedantic(store.upsert_chunks, setup=setup, rounds=30 if batch < 1000 else 8)
    benchmark.extra_info.update(batch=batch)


@pytest.fixture
def ids() -> Iterator[str]:
    return (f"bench-{i * 7919 % READ_ROWS:08d}" for i in itertools.count())


def test_read_get_chunk(benchmark: Any, read_store: memtree.Store, ids: Iterator[str]) -> None:
    found = benchmark(lambda: read_store.get_chunk(next(ids)))
    assert found is not None


def test_read_get_chunks_100(benchmark: Any, read_store: memtree.Store) -> None:
    batch = [f"bench-{i * 997 % READ_ROWS:08d}" for i in range(100)]
    assert len(benchmark(read_store.get_chunks, batch)) == 100


def test_read_list_by_source_kind(benchmark: Any, read_store: memtree.Store) -> None:
    rows = benchmark(read_store.list_chunks, source_kind="email", limit=100)
    assert len(rows) == 100


def test_read_list_by_owner_since(benchmark: Any, read_store: memtree.Store) -> None:
    since = datetime.fromtimestamp((BASE_MS + READ_ROWS // 2 * 1000) / 1000, tz=timezone.utc)
    rows = benchmark(read_store.list_chunks, owner="owner-3", since=since)
    assert len(rows) == 100


def test_read_list_by_source(benchmark: Any, read_store: memtree.Store) -> None:
    rows = benchmark(read_store.list_chunks, source_kind="chat", source_id="source-00420")
    assert rows and all(r.source_id == "source-00420" for r in rows)
