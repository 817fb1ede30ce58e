"""Shared workloads for the pytest-benchmark suites and the target ratios.

Run with ``make bench`` (release build of the core, pytest-benchmark
installed). Every ratio test records its figures in ``TARGETS``; the session
prints them as a table at the end and writes ``.benchmarks/targets.json``.
"""

from __future__ import annotations

import json
import operator
import os
import sqlite3
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import memtree
import pytest
from memtree import _native

#: Rows in the read-benchmark database.
READ_ROWS = 100_000
#: Rows in one ingest.
INGEST_ROWS = 10_000
#: `timestamp_ms` of generated row 0 (matches the Rust generator).
BASE_MS = 1_767_225_600_000

TARGETS: list[dict[str, Any]] = []

UPSERT_SQL = _native.bench.upsert_sql()
#: The chunk columns, from the core's one list.
CHUNK_COLUMNS = _native.bench.chunk_columns()
SELECT_SQL = f"SELECT {', '.join(CHUNK_COLUMNS)} FROM mem_tree_chunks WHERE id = ?"
#: Where ``chunk_from_row`` finds each column, looked up once so the timed
#: stdlib baseline indexes its tuples as a hand-written one would.
_AT = {name: i for i, name in enumerate(CHUNK_COLUMNS)}


def record(
    name: str,
    value: float,
    *,
    at_least: float | None = None,
    at_most: float | None = None,
    below: float | None = None,
    note: str = "(info)",
    **details: Any,
) -> None:
    """Adds one measured value to the session's table: a target when one
    bound is given (``value >= at_least``, ``<= at_most`` or ``< below``),
    otherwise a figure reported under ``note`` that always counts as met."""
    bounds = [
        (text, limit, check)
        for text, limit, check in (
            (">=", at_least, operator.ge),
            ("<=", at_most, operator.le),
            ("<", below, operator.lt),
        )
        if limit is not None
    ]
    if len(bounds) > 1:
        raise TypeError("record() takes at most one of at_least, at_most and below")
    if bounds:
        text, limit, check = bounds[0]
        target, met = f"{text} {limit:g}", bool(check(value, limit))
    else:
        target, met = note, True
    TARGETS.append({"name": name, "value": value, "target": target, "met": met, **details})


_SECONDS_IN = {"ms": 1e3, "us": 1e6}


def record_ratio(
    name: str,
    top: float,
    bottom: float,
    times: dict[str, float],
    *,
    at_least: float | None = None,
    at_most: float | None = None,
    unit: str = "ms",
) -> None:
    """``record(name, top / bottom, ...)`` for a ratio of two measured times
    (in seconds), reporting each of ``times`` beside it in ``unit`` as
    ``<key>_<unit>`` (in the order given)."""
    scale = _SECONDS_IN[unit]
    details = {f"{key}_{unit}": seconds * scale for key, seconds in times.items()}
    record(name, top / bottom, at_least=at_least, at_most=at_most, **details)


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn`` in seconds."""
    return statistics.median(times_of(fn, repeats))


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Best (minimum) wall time of ``fn`` in seconds: CPU-bound work on a
    shared machine is only ever slowed down by other tenants."""
    return min(times_of(fn, repeats))


def times_of(fn: Callable[[], object], repeats: int) -> list[float]:
    """Wall times of ``repeats`` calls of ``fn`` in seconds."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def stdlib_connect(path: Path) -> sqlite3.Connection:
    """Python's sqlite3 with memtree's pragmas (TRUNCATE + FULL, fullfsync,
    foreign keys, 5 s busy timeout) and explicit transactions."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA fullfsync = ON")
    mode = conn.execute("PRAGMA journal_mode = TRUNCATE").fetchone()[0]
    assert mode == "truncate", mode
    conn.execute("PRAGMA synchronous = FULL")
    return conn


def memtree_schema(path: Path) -> Path:
    """Creates an empty database with memtree's schema (connection closed)."""
    with memtree.Store(path):
        pass
    return path


def chunk_from_row(
    row: tuple[Any, ...],
    *,
    _id: int = _AT["id"],
    _content: int = _AT["content"],
    _kind: int = _AT["source_kind"],
    _source_id: int = _AT["source_id"],
    _source_ref: int = _AT["source_ref"],
    _owner: int = _AT["owner"],
    _ts: int = _AT["timestamp_ms"],
    _start: int = _AT["time_range_start_ms"],
    _end: int = _AT["time_range_end_ms"],
    _tags: int = _AT["tags_json"],
    _tokens: int = _AT["token_count"],
    _seq: int = _AT["seq_in_source"],
    _created: int = _AT["created_at_ms"],
    _status: int = _AT["lifecycle_status"],
) -> memtree.Chunk:
    """What a stdlib user builds to get memtree's objects from a row (the
    positions are bound once, as defaults, from ``CHUNK_COLUMNS``)."""

    def dt(ms: int) -> datetime:
        return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)

    return memtree.Chunk(
        row[_id],
        row[_content],
        row[_kind],
        row[_source_id],
        row[_owner],
        dt(row[_ts]),
        source_ref=row[_source_ref],
        time_range=(dt(row[_start]), dt(row[_end])),
        tags=json.loads(row[_tags]),
        token_count=row[_tokens],
        seq_in_source=row[_seq],
        created_at=dt(row[_created]),
        lifecycle_status=row[_status],
    )


@pytest.fixture(scope="session")
def read_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 100,000-chunk database (written by SQLite alone, memtree's schema)."""
    path = tmp_path_factory.mktemp("read") / "chunks.db"
    _native.bench.insert_select(path, 0, READ_ROWS)
    return path


@pytest.fixture
def read_store(read_db: Path) -> Iterator[memtree.Store]:
    with memtree.Store(read_db) as store:
        yield store


def make_wal_database(path: Path, rows: int) -> None:
    """A database a prior release left in WAL mode: memtree's schema, then
    ``rows`` chunks committed by another process into the ``-wal`` only (no
    checkpoint; the process exits without closing)."""
    memtree_schema(path)
    script = textwrap.dedent(
        f"""
        import os, sqlite3
        from memtree import _native
        conn = sqlite3.connect({str(path)!r}, isolation_level=None)
        assert conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal"
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        conn.execute("BEGIN")
        conn.executemany({UPSERT_SQL!r}, _native.bench.rows(0, {rows}))
        conn.execute("COMMIT")
        os._exit(0)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    assert Path(str(path) + "-wal").stat().st_size > 0


#: The 1-minute load average when the session started: the figures of a run
#: on a shared machine mean little without it.
_LOAD_AT_START = os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not TARGETS:
        return
    if _LOAD_AT_START is not None:
        record(
            "load average (1 min)",
            os.getloadavg()[0],
            note="(machine)",
            at_start=_LOAD_AT_START,
            cpus=os.cpu_count(),
        )
    tr = terminalreporter
    tr.section("memtree targets (ratios measured in this run)")
    width = max(len(t["name"]) for t in TARGETS)
    for t in TARGETS:
        verdict = "met" if t["met"] else "MISSED"
        tr.write_line(
            f"{t['name']:<{width}} {t['value']:>10.3f}  target {t['target']:<12} {verdict}"
        )
    out = Path(".benchmarks")
    out.mkdir(exist_ok=True)
    (out / "targets.json").write_text(json.dumps(TARGETS, indent=2) + "\n")
    tr.write_line("Performance rows: python benches/readme_table.py .benchmarks/targets.json")
