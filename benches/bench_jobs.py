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


def report(label: str, n: int, commits: int, runs: list[tuple[float, dict[str, int]]]) -> None:
    """Median throughput over the runs; syncs from the median run."""
    runs = sorted(runs, key=lambda r: r[0])
    elapsed, stats = runs[len(runs) // 2]
    rates = ", ".join(f"{n / e:.0f}" for e, _ in runs)
    print(
        f"{label:<24} median {n / elapsed:8.0f} jobs/s (runs: {rates})  "
        f"per commit: {stats['sync_calls'] / commits:.2f} xSync, "
        f"{stats['syncs_total'] / commits:.2f} syncs incl. directory; "
        f"per job: {stats['syncs_total'] / n:.3f} syncs"
    )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    with tempfile.TemporaryDirectory() as tmp:
        with memtree.Store(Path(tmp) / "jobs.db") as store:
            settings = store.connection_settings()
            print(
                f"memtree {memtree.__version__}, SQLite {memtree.sqlite_version()}, "
                f"journal_mode={settings['journal_mode']}, "
                f"synchronous={settings['synchronous']} (2 = FULL), {n} jobs x {repeats} runs"
            )
            # Two commits per job: the claim and the settle.
            runs = [one_per_commit(store, n) for _ in range(repeats)]
            report("one job per commit", n, 2 * n, runs)
            runs = [batched(store, n, batch) for _ in range(repeats)]
            report(f"batched ({batch} per commit)", n, 2 * -(-n // batch), runs)


if __name__ == "__main__":
    main()
