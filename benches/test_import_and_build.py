"""Import time and the cost of building a `Chunk`, as ratios measured in one
run (recorded through ``conftest.record``; nothing here fails on a missed
target).

- ``import memtree`` against ``import sqlite3`` and ``import apsw``: each in
  a fresh interpreter, timed around the import statement alone (the
  interpreter's own start-up is the same for all three), median of 20, the
  three interleaved. Bytecode is cached for all three (a first, untimed round
  writes it under a private ``PYTHONPYCACHEPREFIX``), as an installed wheel
  has it.
- ``Chunk(...)`` against the tuple a plain-SQLite user builds to insert the
  same values (times as integer milliseconds, tags as JSON text), from the
  same inputs; median of interleaved rounds in this process.
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import memtree
from conftest import CHUNK_COLUMNS, record
from memtree import _native

IMPORT_RUNS = 20
_TIMED_IMPORT = "import time; t = time.perf_counter(); import {0}; print(time.perf_counter() - t)"

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ONE_MS = timedelta(milliseconds=1)
BUILD_ROWS = 2000
BUILD_ROUNDS = 15


def test_import_time_vs_sqlite3_and_apsw() -> None:
    modules = ["memtree", "sqlite3"]
    if importlib.util.find_spec("apsw") is not None:
        modules.append("apsw")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    times: dict[str, list[float]] = {m: [] for m in modules}
    with tempfile.TemporaryDirectory() as cache:
        env["PYTHONPYCACHEPREFIX"] = cache
        for run in range(IMPORT_RUNS + 1):
            for module in modules:
                out = subprocess.run(
                    [sys.executable, "-c", _TIMED_IMPORT.format(module)],
                    capture_output=True,
                    text=True,
                    check=True,
                    env=env,
                ).stdout
                if run:  # the first round writes the bytecode caches
                    times[module].append(float(out))
    median_ms = {m: statistics.median(t) * 1e3 for m, t in times.items()}
    record("import memtree, ms (median of 20)", median_ms["memtree"], below=10)
    for peer in modules[1:]:
        record(
            f"import memtree / import {peer}",
            median_ms["memtree"] / median_ms[peer],
            memtree_ms=median_ms["memtree"],
            **{f"{peer}_ms": median_ms[peer]},
        )


def _inputs() -> list[tuple[Any, ...]]:
    """What an application holds before it stores a chunk: text, a kind, a
    tag list and four aware datetimes (from the generator's rows)."""
    at = {name: i for i, name in enumerate(CHUNK_COLUMNS)}

    def dt(ms: int) -> datetime:
        return EPOCH + ms * ONE_MS

    return [
        (
            r[at["id"]],
            r[at["content"]],
            r[at["source_kind"]],
            r[at["source_id"]],
            r[at["source_ref"]],
            r[at["owner"]],
            dt(r[at["timestamp_ms"]]),
            dt(r[at["time_range_start_ms"]]),
            dt(r[at["time_range_end_ms"]]),
            json.loads(r[at["tags_json"]]),
            r[at["token_count"]],
            r[at["seq_in_source"]],
            dt(r[at["created_at_ms"]]),
            r[at["lifecycle_status"]],
        )
        for r in _native.bench.rows(0, BUILD_ROWS)
    ]


def _chunk(v: tuple[Any, ...]) -> memtree.Chunk:
    return memtree.Chunk(
        v[0],
        v[1],
        v[2],
        v[3],
        v[5],
        v[6],
        source_ref=v[4],
        time_range=(v[7], v[8]),
        tags=v[9],
        token_count=v[10],
        seq_in_source=v[11],
        created_at=v[12],
        lifecycle_status=v[13],
    )


def _insert_tuple(v: tuple[Any, ...], *, _epoch: datetime = EPOCH) -> tuple[Any, ...]:
    # The row a plain-SQLite user binds for the same values: datetimes as
    # exact milliseconds, tags as JSON, the other values as given.
    def ms(t: Any) -> Any:
        return t if isinstance(t, int) else (t - _epoch) // ONE_MS

    return (
        v[0],
        v[1],
        v[2],
        v[3],
        v[4],
        v[5],
        ms(v[6]),
        ms(v[7]),
        ms(v[8]),
        json.dumps(v[9]),
        v[10],
        v[11],
        ms(v[12]),
        v[13],
    )


def _per_item_us(
    cases: dict[str, tuple[Callable[[Any], object], Sequence[Any]]],
) -> dict[str, float]:
    """Median over interleaved rounds of the mean µs per item of each case."""
    rounds: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(BUILD_ROUNDS):
        for name, (build, items) in cases.items():
            started = time.perf_counter()
            for item in items:
                build(item)
            rounds[name].append((time.perf_counter() - started) / len(items) * 1e6)
    return {name: statistics.median(r) for name, r in rounds.items()}


def test_chunk_build_vs_insert_tuple() -> None:
    with_datetimes = _inputs()
    with_ms = [
        (
            *v[:6],
            *((t - EPOCH) // ONE_MS for t in v[6:9]),
            *v[9:12],
            (v[12] - EPOCH) // ONE_MS,
            v[13],
        )
        for v in with_datetimes
    ]
    us = _per_item_us(
        {
            "chunk": (_chunk, with_datetimes),
            "tuple": (_insert_tuple, with_datetimes),
            "chunk_ms": (_chunk, with_ms),
            "tuple_ms": (_insert_tuple, with_ms),
        }
    )
    record(
        "Chunk(...) / insert tuple, same values (4 datetimes)",
        us["chunk"] / us["tuple"],
        at_most=1.0,
        chunk_us=us["chunk"],
        tuple_us=us["tuple"],
    )
    record(
        "Chunk(...) / insert tuple, same values (int ms)",
        us["chunk_ms"] / us["tuple_ms"],
        chunk_us=us["chunk_ms"],
        tuple_us=us["tuple_ms"],
    )
