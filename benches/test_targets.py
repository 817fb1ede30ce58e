"""The store's speed targets, as ratios measured in the same run.

Each test measures memtree and its baseline side by side, records the ratio
(see ``conftest.record``) and does not fail on a missed target: the figures
are a report, not a timed assertion. Only correctness (equal sync counts,
index plans) is asserted.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import memtree
import pytest
from conftest import (
    BASE_MS,
    INGEST_ROWS,
    READ_ROWS,
    SELECT_SQL,
    UPSERT_SQL,
    best_time,
    chunk_from_row,
    make_wal_database,
    median_time,
    memtree_schema,
    record,
    record_ratio,
    stdlib_connect,
)
from memtree import _native, testing

REPEATS = 9


def test_ingest_10k_vs_sql_and_stdlib(tmp_path: Path) -> None:
    chunks = _native.bench.chunks(0, INGEST_ROWS)
    rows = _native.bench.rows(0, INGEST_ROWS)
    counter = iter(range(10**6))

    def fresh(tag: str) -> Path:
        return tmp_path / f"{tag}-{next(counter)}.db"

    memtree_s, sql_s, stdlib_s = [], [], []
    memtree_cpu, sql_cpu, sql_setup_cpu = [], [], []
    for _ in range(REPEATS):
        # Interleaved so drift of the shared disk hits every contender alike.
        path = memtree_schema(fresh("memtree"))
        with memtree.Store(path) as store:
            cpu, started = time.thread_time(), time.perf_counter()
            store.upsert_chunks(chunks)
            memtree_s.append(time.perf_counter() - started)
            memtree_cpu.append(time.thread_time() - cpu)
        cpu = time.thread_time()
        sql_s.append(_native.bench.insert_select(fresh("sql"), 0, INGEST_ROWS) / 1e9)
        sql_cpu.append(time.thread_time() - cpu)
        # insert_select opens and migrates its own connection outside its
        # timed window (~5 ms of CPU, as much as the whole gap): a one-row
        # run measures that, and it is taken off the floor's CPU below.
        cpu = time.thread_time()
        _native.bench.insert_select(fresh("sql"), 0, 1)
        sql_setup_cpu.append(time.thread_time() - cpu)
        conn = stdlib_connect(memtree_schema(fresh("stdlib")))
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(UPSERT_SQL, rows)
        conn.execute("COMMIT")
        stdlib_s.append(time.perf_counter() - started)
        conn.close()
    # Best of interleaved runs: the three share one disk and the CPU with
    # other tenants, and only ever lose time to them.
    m, s, p = (min(x) for x in (memtree_s, sql_s, stdlib_s))
    record(
        "ingest 10k: memtree / pure-SQL INSERT…SELECT",
        m / s,
        at_most=1.15,
        memtree_ms=m * 1e3,
        sql_ms=s * 1e3,
        memtree_median_ms=statistics.median(memtree_s) * 1e3,
        sql_median_ms=statistics.median(sql_s) * 1e3,
    )
    setup = min(sql_setup_cpu)
    mc, sc = min(memtree_cpu), min(sql_cpu) - setup
    record(
        "  same, CPU time of the ingesting thread (info)",
        mc / sc,
        memtree_cpu_ms=mc * 1e3,
        sql_cpu_ms=sc * 1e3,
        sql_setup_cpu_ms=setup * 1e3,
    )
    record(
        "ingest 10k: stdlib executemany / memtree (speed-up)",
        p / m,
        at_least=1.4,
        memtree_ms=m * 1e3,
        stdlib_ms=p * 1e3,
        stdlib_median_ms=statistics.median(stdlib_s) * 1e3,
    )


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("list_chunks(source_kind=email, limit=100)", {"source_kind": "email", "limit": 100}),
        (
            "list_chunks(owner=owner-3, since=mid)",
            {
                "owner": "owner-3",
                "since": datetime.fromtimestamp(
                    (BASE_MS + READ_ROWS // 2 * 1000) / 1000, tz=timezone.utc
                ),
            },
        ),
    ],
)
def test_list_under_2ms(read_store: memtree.Store, name: str, kwargs: dict[str, object]) -> None:
    filters = {k: v for k, v in kwargs.items() if k != "limit"}
    plan = " ".join(read_store.explain_list_chunks(**filters))  # type: ignore[arg-type]
    assert "TEMP B-TREE" not in plan, plan
    assert "USING INDEX" in plan, plan
    for _ in range(20):
        read_store.list_chunks(**kwargs)  # type: ignore[arg-type]
    ms = median_time(lambda: read_store.list_chunks(**kwargs), 300) * 1e3  # type: ignore[arg-type]
    record(f"100k: {name} ms", ms, below=2, plan=plan)


def test_get_vs_stdlib(read_db: Path) -> None:
    ids = [f"bench-{i * 7919 % READ_ROWS:08d}" for i in range(2000)]
    batch = ids[:100]
    with memtree.Store(read_db) as store:
        mt_one = best_time(lambda: [store.get_chunk(i) for i in ids], 7) / len(ids)
        mt_many = best_time(lambda: store.get_chunks(batch), 50)
    # A second SQLite library must not open the file while memtree has it open.
    conn = stdlib_connect(read_db)
    try:

        def one(i: str) -> memtree.Chunk:
            return chunk_from_row(conn.execute(SELECT_SQL, (i,)).fetchone())

        def raw(i: str) -> tuple[object, ...]:
            row: tuple[object, ...] = conn.execute(SELECT_SQL, (i,)).fetchone()
            return row

        sl_one = best_time(lambda: [one(i) for i in ids], 7) / len(ids)
        sl_raw = best_time(lambda: [raw(i) for i in ids], 7) / len(ids)
        sl_many = best_time(lambda: [one(i) for i in batch], 50)
    finally:
        conn.close()
    record_ratio(
        "get_chunk: stdlib+Chunk / memtree",
        sl_one,
        mt_one,
        {"memtree": mt_one, "stdlib": sl_one},
        at_least=1.5,
        unit="us",
    )
    record_ratio(
        "get_chunks(100): stdlib+Chunk / memtree",
        sl_many,
        mt_many,
        {"memtree": mt_many, "stdlib": sl_many},
        at_least=1.5,
        unit="us",
    )
    record_ratio(
        "get_chunk: stdlib raw tuple / memtree (info)",
        sl_raw,
        mt_one,
        {"memtree": mt_one, "stdlib": sl_raw},
        unit="us",
    )


def test_single_chunk_durable_commit(tmp_path: Path) -> None:
    commits = 60
    chunks = _native.bench.chunks(0, commits + 1)
    rows = _native.bench.rows(0, commits + 1)
    store_path = memtree_schema(tmp_path / "memtree.db")
    conn = stdlib_connect(memtree_schema(tmp_path / "stdlib.db"))
    mt, sl, syncs = [], [], []
    with memtree.Store(store_path) as store:
        store.upsert_chunks([chunks[0]])
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(UPSERT_SQL, rows[0])
        conn.execute("COMMIT")
        for i in range(1, commits + 1):
            before = testing.io_stats(store_path)["syncs_total"]
            started = time.perf_counter()
            store.upsert_chunks([chunks[i]])
            mt.append(time.perf_counter() - started)
            syncs.append(testing.io_stats(store_path)["syncs_total"] - before)
            started = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(UPSERT_SQL, rows[i])
            conn.execute("COMMIT")
            sl.append(time.perf_counter() - started)
    conn.close()
    # SQLite's own commit (same library, no memtree layer) through the VFS.
    _, samples = _native.bench.commits(tmp_path / "core.db", "truncate", "full", 1, 10)
    core_syncs = {sum(s[1:6]) for s in samples}
    assert set(syncs) == core_syncs == {5}, (syncs, core_syncs)
    m, s = statistics.median(mt), statistics.median(sl)
    record(
        "1-chunk durable commit: memtree / stdlib - 1",
        m / s - 1,
        at_most=0.05,
        memtree_ms=m * 1e3,
        stdlib_ms=s * 1e3,
        syncs_per_commit=5,
    )


def test_python_thread_keeps_its_rate(tmp_path: Path) -> None:
    """A pure-Python thread's rate alone, during a 10k ``upsert_chunks``, and
    during the same rows inserted by SQLite alone (GIL released throughout):
    the last is the control that separates the GIL from CPU contention."""
    chunks = _native.bench.chunks(0, INGEST_ROWS)
    files = iter(range(10**6))

    def rate(work: Callable[[], object]) -> float:
        stop = threading.Event()
        counts: list[tuple[int, float]] = []

        def spin() -> None:
            n, started = 0, time.perf_counter()
            while not stop.is_set():
                sum(range(200))
                n += 1
            counts.append((n, time.perf_counter() - started))

        t = threading.Thread(target=spin)
        t.start()
        work()
        stop.set()
        t.join()
        n, elapsed = counts[0]
        return n / elapsed

    def ingest() -> None:
        with memtree.Store(tmp_path / f"m{next(files)}.db") as store:
            store.upsert_chunks(chunks)

    def control() -> None:
        _native.bench.insert_select(tmp_path / f"c{next(files)}.db", 0, INGEST_ROWS)

    solo, during, native = [], [], []
    for _ in range(5):
        solo.append(rate(lambda: time.sleep(0.2)))
        during.append(rate(ingest))
        native.append(rate(control))
    s, d, c = (statistics.median(x) for x in (solo, during, native))
    record(
        "Python thread rate during 10k ingest / solo",
        d / s,
        at_least=0.8,
        solo_per_s=s,
        during_per_s=d,
        control_per_s=c,
    )
    record(
        "  same, relative to a GIL-free SQLite-only ingest (info)",
        d / c,
    )


def test_cold_open_and_wal_migration(tmp_path: Path, read_db: Path) -> None:
    opens = []
    for _ in range(5):
        started = time.perf_counter()
        store = memtree.Store(read_db)
        store.count_chunks()
        opens.append(time.perf_counter() - started)
        store.close()
    open_ms = statistics.median(opens) * 1e3
    record("cold open of 100k db, ms per 10k rows", open_ms / 10, note="(report)", open_ms=open_ms)
    migrations = []
    for i in range(2):
        path = tmp_path / f"wal-{i}.db"
        make_wal_database(path, READ_ROWS)
        started = time.perf_counter()
        with memtree.Store(path) as store:
            migrations.append(time.perf_counter() - started)
            assert store.journal_mode == "truncate"
            assert store.count_chunks() == READ_ROWS
        assert not Path(str(path) + "-wal").exists()
    ms = statistics.median(migrations) * 1e3
    record(
        "WAL→TRUNCATE migration of 100k db, ms per 10k rows",
        ms / 10,
        note="(report)",
        migration_ms=ms,
    )
