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
    chunk_from_row,
    make_wal_database,
    median_time,
    memtree_schema,
    record,
    stdlib_connect,
)
from memtree import _native, testing

REPEATS = 5


def test_ingest_10k_vs_sql_and_stdlib(tmp_path: Path) -> None:
    chunks = _native.bench_chunks(0, INGEST_ROWS)
    rows = _native.bench_rows(0, INGEST_ROWS)
    counter = iter(range(10**6))

    def fresh(tag: str) -> Path:
        return tmp_path / f"{tag}-{next(counter)}.db"

    memtree_s, sql_s, stdlib_s = [], [], []
    for _ in range(REPEATS):
        # Interleaved so drift of the shared disk hits every contender alike.
        path = memtree_schema(fresh("memtree"))
        with memtree.Store(path) as store:
            started = time.perf_counter()
            store.upsert_chunks(chunks)
            memtree_s.append(time.perf_counter() - started)
        sql_s.append(_native.bench_insert_select(fresh("sql"), 0, INGEST_ROWS) / 1e9)
        conn = stdlib_connect(memtree_schema(fresh("stdlib")))
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(UPSERT_SQL, rows)
        conn.execute("COMMIT")
        stdlib_s.append(time.perf_counter() - started)
        conn.close()
    m, s, p = (statistics.median(x) for x in (memtree_s, sql_s, stdlib_s))
    record(
        "ingest 10k: memtree / pure-SQL INSERT…SELECT",
        m / s,
        "<= 1.15",
        m / s <= 1.15,
        memtree_ms=m * 1e3,
        sql_ms=s * 1e3,
    )
    record(
        "ingest 10k: stdlib executemany / memtree (speed-up)",
        p / m,
        ">= 1.4",
        p / m >= 1.4,
        memtree_ms=m * 1e3,
        stdlib_ms=p * 1e3,
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
    record(f"100k: {name} ms", ms, "< 2", ms < 2, plan=plan)


def test_get_vs_stdlib(read_db: Path) -> None:
    ids = [f"bench-{i * 7919 % READ_ROWS:08d}" for i in range(2000)]
    batch = ids[:100]
    with memtree.Store(read_db) as store:
        mt_one = median_time(lambda: [store.get_chunk(i) for i in ids], 5) / len(ids)
        mt_many = median_time(lambda: store.get_chunks(batch), 50)
    # A second SQLite library must not open the file while memtree has it open.
    conn = stdlib_connect(read_db)
    try:

        def one(i: str) -> memtree.Chunk:
            return chunk_from_row(conn.execute(SELECT_SQL, (i,)).fetchone())

        def raw(i: str) -> tuple[object, ...]:
            row: tuple[object, ...] = conn.execute(SELECT_SQL, (i,)).fetchone()
            return row

        sl_one = median_time(lambda: [one(i) for i in ids], 5) / len(ids)
        sl_raw = median_time(lambda: [raw(i) for i in ids], 5) / len(ids)
        sl_many = median_time(lambda: [one(i) for i in batch], 50)
    finally:
        conn.close()
    record(
        "get_chunk: stdlib+Chunk / memtree",
        sl_one / mt_one,
        ">= 1.5",
        sl_one / mt_one >= 1.5,
        memtree_us=mt_one * 1e6,
        stdlib_us=sl_one * 1e6,
    )
    record(
        "get_chunks(100): stdlib+Chunk / memtree",
        sl_many / mt_many,
        ">= 1.5",
        sl_many / mt_many >= 1.5,
        memtree_us=mt_many * 1e6,
        stdlib_us=sl_many * 1e6,
    )
    record(
        "get_chunk: stdlib raw tuple / memtree (info)",
        sl_raw / mt_one,
        "(info)",
        True,
        memtree_us=mt_one * 1e6,
        stdlib_us=sl_raw * 1e6,
    )


def test_single_chunk_durable_commit(tmp_path: Path) -> None:
    commits = 60
    chunks = _native.bench_chunks(0, commits + 1)
    rows = _native.bench_rows(0, commits + 1)
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
    _, samples = _native.bench_commits(tmp_path / "core.db", "truncate", "full", 1, 10)
    core_syncs = {sum(s[1:6]) for s in samples}
    assert set(syncs) == core_syncs == {5}, (syncs, core_syncs)
    m, s = statistics.median(mt), statistics.median(sl)
    record(
        "1-chunk durable commit: memtree / stdlib - 1",
        m / s - 1,
        "<= 0.05",
        m / s - 1 <= 0.05,
        memtree_ms=m * 1e3,
        stdlib_ms=s * 1e3,
        syncs_per_commit=5,
    )


def test_python_thread_keeps_its_rate(tmp_path: Path) -> None:
    chunks = _native.bench_chunks(0, INGEST_ROWS)
    stop = threading.Event()
    go = threading.Event()
    counts: list[tuple[int, float]] = []

    def spin() -> None:
        go.wait()
        n, started = 0, time.perf_counter()
        while not stop.is_set():
            sum(range(200))
            n += 1
        counts.append((n, time.perf_counter() - started))

    def rate(during: bool) -> float:
        t = threading.Thread(target=spin)
        t.start()
        go.set()
        if during:
            with memtree.Store(tmp_path / f"c{len(counts)}.db") as store:
                store.upsert_chunks(chunks)
        else:
            time.sleep(0.3)
        stop.set()
        t.join()
        go.clear()
        stop.clear()
        n, elapsed = counts[-1]
        return n / elapsed

    solo = statistics.median(rate(False) for _ in range(3))
    during = statistics.median(rate(True) for _ in range(3))
    record(
        "Python thread rate during 10k ingest / solo",
        during / solo,
        ">= 0.8",
        during / solo >= 0.8,
        solo_per_s=solo,
        during_per_s=during,
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
    record("cold open of 100k db, ms per 10k rows", open_ms / 10, "(report)", True, open_ms=open_ms)
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
        "(report)",
        True,
        migration_ms=ms,
    )
