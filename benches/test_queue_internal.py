"""The job queue's own costs, memtree against itself (no peers).

- A claim after a batch enqueue: 5,000 ready jobs sharing one
  ``available_at`` (one batch, so one ``created_at`` too) against 5,000 with
  distinct times. A claim that sorted its candidates would pay for the
  whole batch on every call; an index walk in claim order pays the same in
  both.
- The pages one enqueue, claim and settle write (the VFS's counters).
- The Python-side cost of one enqueue with a small and a ~4 KB payload.

Figures are recorded with ``conftest.record``; nothing here is a timed
assertion (the index plans are asserted in ``tests/jobs/test_job_priorities.py``).
"""

from __future__ import annotations

import statistics
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import memtree
from conftest import record
from memtree import testing

JOBS = 5_000
CLAIMS = 200
ROUNDS = 5
BASE = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _fill(store: memtree.Store, same_time: bool) -> None:
    with store.jobs.batch() as b:
        for i in range(JOBS):
            at = BASE if same_time else BASE + timedelta(milliseconds=i)
            b.enqueue("bench", {"i": i}, available_at=at)


def _claim_seconds(path: Path, same_time: bool) -> float:
    """Median seconds of one ``claim_next`` over ``CLAIMS`` claims."""
    with memtree.Store(path) as store:
        _fill(store, same_time)
        times = []
        for _ in range(CLAIMS):
            started = time.perf_counter()
            job = store.jobs.claim_next()
            times.append(time.perf_counter() - started)
            assert job is not None
    return statistics.median(times)


def test_claim_cost_same_time_vs_distinct_times(tmp_path: Path) -> None:
    same, distinct = [], []
    for r in range(ROUNDS):
        # Interleaved: drift of the shared disk hits both alike.
        same.append(_claim_seconds(tmp_path / f"same-{r}.db", True))
        distinct.append(_claim_seconds(tmp_path / f"distinct-{r}.db", False))
    s, d = statistics.median(same), statistics.median(distinct)
    record(
        f"queue: claim with {JOBS:,} same-time jobs / distinct times",
        s / d,
        at_most=1.2,
        same_time_us=s * 1e6,
        distinct_us=d * 1e6,
    )


def _pages(path: Path) -> dict[str, tuple[float, float]]:
    """Writes and bytes written per enqueue, claim, done and done+claim."""
    n = 50
    out: dict[str, tuple[float, float]] = {}
    with memtree.Store(path) as store:
        jobs = store.jobs
        # A table that has seen some life: done rows, ready rows.
        with jobs.batch() as b:
            for i in range(500):
                b.enqueue("bench", {"i": i})
        for _ in range(250):
            job = jobs.claim_next()
            assert job is not None
            jobs.mark_done(job)

        def per_op(label: str, op: object) -> None:
            testing.reset_io_stats(path)
            for _ in range(n):
                op()  # type: ignore[operator]
            st = testing.io_stats(path)
            out[label] = (st["writes"] / n, st["bytes_written"] / n)

        per_op("enqueue", lambda: jobs.enqueue("bench", {"i": 0}))
        held: list[memtree.Job] = []
        per_op("claim", lambda: held.append(jobs.claim_next()))  # type: ignore[arg-type]
        settle = iter(held)
        per_op("done", lambda: jobs.mark_done(next(settle)))
        current = [jobs.claim_next()]

        def done_and_claim() -> None:
            job = current[0]
            assert job is not None
            current[0] = jobs.mark_done_and_claim_next(job)

        per_op("done+claim", done_and_claim)
    return out


def test_pages_written_per_queue_operation(tmp_path: Path) -> None:
    for label, (writes, written) in _pages(tmp_path / "pages.db").items():
        record(f"queue: writes per {label}", writes, bytes_per_op=written)
        record(f"queue: KiB written per {label}", written / 1024)


def test_enqueue_cost_by_payload_size(tmp_path: Path) -> None:
    """The conversion half of an enqueue: ``JobBatch.enqueue`` checks and
    encodes the payload when it is called and writes nothing until the
    commit, so timing it isolates the Python-to-JSON cost from the fsyncs."""
    small = {"ids": ["c1", "c2"], "n": 1}
    large = {"text": "x" * 3_000, "ids": [f"chunk-{i}" for i in range(60)], "f": 0.5}
    with memtree.Store(tmp_path / "enqueue.db") as store:
        for label, payload in (("small", small), ("~4 KB", large)):
            times = []
            for _ in range(ROUNDS):
                b = store.jobs.batch()
                started = time.perf_counter()
                for _ in range(1_000):
                    b.enqueue("bench", payload)
                times.append((time.perf_counter() - started) / 1_000)
                b.discard()
            record(f"queue: µs to check and encode one enqueue, {label} payload", min(times) * 1e6)
