"""Group commit (issue 14, item 3): durable chunks/s of concurrent writers.

Eight threads each upsert one chunk per call, every call durable when it
returns. Measured in one run, in interleaved rounds on fresh files:

- the same eight threads with a group-commit limit of 1
  (``memtree.testing.set_group_commit_limit``): each call commits alone,
  which is how memtree wrote before group commit;
- one thread making the same calls;
- a single stdlib ``sqlite3`` writer on WAL + ``synchronous=FULL`` making
  the same one-row commits (same upsert SQL, separate file) — the durable
  rate the rollback journal gave up.

Targets: eight threads at least 4 times the one-commit-per-call rate, and
at least the WAL+FULL writer. The ratios are recorded with
``conftest.record``; nothing here is a timed assertion. The sync counts are
asserted: a commit costs its 5 syncs, shared by the calls of its group.
"""

from __future__ import annotations

import sqlite3
import statistics
import threading
import time
from pathlib import Path

import memtree
from _harness import time_threads
from conftest import UPSERT_SQL, memtree_schema, record
from memtree import _native, testing

THREADS = 8
CALLS_PER_THREAD = 40
ROUNDS = 5


def memtree_rate(path: Path, threads: int, calls_per_thread: int) -> tuple[float, dict[str, int]]:
    """Durable chunks/s of ``threads`` threads upserting one chunk per call;
    with the store's I/O and group-commit counters of the timed calls."""
    chunks = _native.bench.chunks(0, threads * calls_per_thread + 1)
    with memtree.Store(path) as store:
        store.upsert_chunks([chunks[-1]])
        testing.reset_io_stats(path)
        start = threading.Barrier(threads + 1)

        def worker(t: int) -> None:
            mine = chunks[t * calls_per_thread : (t + 1) * calls_per_thread]
            start.wait()
            for chunk in mine:
                store.upsert_chunks([chunk])

        workers = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
        elapsed = time_threads(workers, start)
        stats = dict(testing.io_stats(path))
        assert store.count_chunks() == threads * calls_per_thread + 1
    return threads * calls_per_thread / elapsed, stats


def wal_full_rate(path: Path, commits: int) -> float:
    """One-row commits/s of a single stdlib writer on WAL + FULL."""
    memtree_schema(path)
    rows = _native.bench.rows(0, commits + 1)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        assert conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal"
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(UPSERT_SQL, rows[-1])
        conn.execute("COMMIT")
        began = time.perf_counter()
        for row in rows[:commits]:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(UPSERT_SQL, row)
            conn.execute("COMMIT")
        return commits / (time.perf_counter() - began)
    finally:
        conn.close()


def test_group_commit_chunks_per_second(tmp_path: Path) -> None:
    grouped, alone, single, wal = [], [], [], []
    sharing = []
    calls = THREADS * CALLS_PER_THREAD
    for r in range(ROUNDS):
        previous = testing.set_group_commit_limit(1)
        try:
            rate, stats = memtree_rate(tmp_path / f"alone-{r}.db", THREADS, CALLS_PER_THREAD)
        finally:
            testing.set_group_commit_limit(previous)
        assert (stats["commits"], stats["commit_syncs"]) == (calls, 5 * calls), stats
        alone.append(rate)

        rate, stats = memtree_rate(tmp_path / f"grouped-{r}.db", THREADS, CALLS_PER_THREAD)
        assert stats["committed_calls"] == calls
        assert stats["commit_syncs"] == 5 * stats["commits"] == stats["syncs_total"], stats
        grouped.append(rate)
        sharing.append(stats)

        rate, stats = memtree_rate(tmp_path / f"single-{r}.db", 1, calls // 2)
        assert stats["commit_syncs"] == 5 * stats["commits"] == 5 * (calls // 2), stats
        single.append(rate)

        wal.append(wal_full_rate(tmp_path / f"wal-{r}.db", calls // 2))

    g, a, s, w = (statistics.median(x) for x in (grouped, alone, single, wal))
    commits = sum(st["commits"] for st in sharing)
    syncs_per_call = sum(st["commit_syncs"] for st in sharing) / (calls * ROUNDS)
    largest = max(st["largest_group"] for st in sharing)
    figures = {
        "grouped_chunks_per_s": round(g),
        "one_commit_per_call_chunks_per_s": round(a),
        "single_thread_chunks_per_s": round(s),
        "wal_full_single_writer_commits_per_s": round(w),
        "syncs_per_call": round(syncs_per_call, 3),
        "mean_group": round(calls * ROUNDS / commits, 2),
        "largest_group": largest,
    }
    record(
        "group commit: 8 threads / 8 threads committing each call alone",
        g / a,
        at_least=4,
        **figures,
    )
    record("group commit: 8 threads / one WAL+FULL writer", g / w, at_least=1, **figures)
    record("group commit: 8 threads / 1 thread", g / s, note="(report)", **figures)
    record("group commit: syncs per call, 8 threads", syncs_per_call, note="(report)")
