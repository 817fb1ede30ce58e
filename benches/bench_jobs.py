"""Claim+settle throughput of the job queue under TRUNCATE + synchronous=FULL.

Not a test: run ``python benches/bench_jobs.py [jobs] [batch]`` (after
``make build``). It measures, on a fresh database in a temporary folder:

- one job per commit: ``claim_next`` then ``mark_done`` (two commits a job);
- batched: ``claim_many(batch)`` then ``mark_done_many`` (two commits a batch);

and reports jobs/s with the VFS's sync counts per settle from
``memtree.testing.io_stats``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import memtree
from memtree import testing


def enqueue(store: memtree.Store, n: int) -> None:
    with store.jobs.batch() as b:
        for i in range(n):
            b.enqueue("bench", {"i": i})


def one_per_commit(store: memtree.Store, n: int) -> tuple[float, dict[str, int]]:
    enqueue(store, n)
    testing.reset_io_stats(store.path)
    start = time.perf_counter()
    done = 0
    while (job := store.jobs.claim_next()) is not None:
        store.jobs.mark_done(job)
        done += 1
    elapsed = time.perf_counter() - start
    assert done == n
    return elapsed, testing.io_stats(store.path)


def batched(store: memtree.Store, n: int, batch: int) -> tuple[float, dict[str, int]]:
    enqueue(store, n)
    testing.reset_io_stats(store.path)
    start = time.perf_counter()
    done = 0
    while jobs := store.jobs.claim_many(batch):
        store.jobs.mark_done_many(jobs)
        done += len(jobs)
    elapsed = time.perf_counter() - start
    assert done == n
    return elapsed, testing.io_stats(store.path)


def report(label: str, n: int, settles: int, elapsed: float, stats: dict[str, int]) -> None:
    print(
        f"{label:<22} {n / elapsed:10.0f} jobs/s  "
        f"{stats['sync_calls'] / settles:6.2f} xSync/settle-commit  "
        f"{stats['syncs_total'] / settles:6.2f} syncs incl. dir/settle-commit  "
        f"({elapsed:.2f}s for {n})"
    )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    with tempfile.TemporaryDirectory() as tmp:
        with memtree.Store(Path(tmp) / "one.db") as store:
            print(
                f"memtree {memtree.__version__}, SQLite {memtree.sqlite_version()}, "
                f"journal_mode={store.journal_mode}, "
                f"synchronous={store.connection_settings()['synchronous']}"
            )
            elapsed, stats = one_per_commit(store, n)
            # Two commits per job: the claim and the settle.
            report("one job per commit", n, 2 * n, elapsed, stats)
        with memtree.Store(Path(tmp) / "batched.db") as store:
            elapsed, stats = batched(store, n, batch)
            commits = 2 * -(-n // batch)
            report(f"batched ({batch}/commit)", n, commits, elapsed, stats)


if __name__ == "__main__":
    main()
