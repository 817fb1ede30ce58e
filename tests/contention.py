"""Measures lock waits under multi-process contention on one store.

``N`` processes x ``M`` threads each loop enqueue → ``claim_next`` →
``mark_done`` (every call a write transaction), while the parent process
polls ``jobs.counts()`` and ``count_chunks()`` as a reader. Every call is timed; a
:class:`memtree.BusyError` is counted (and the call retried) instead of
ending the run. Reports p50/p99/max wait per side and BusyErrors per
10,000 calls.

By hand (the figures in the README and CHANGELOG came from this)::

    python tests/contention.py --processes 4 --threads 4 --seconds 60

``tests/store/test_contention.py`` runs a short version in the suite.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import memtree


@dataclass
class Tally:
    """Call latencies (seconds) and BusyErrors of one side of the run."""

    waits: list[float] = field(default_factory=list)
    busy: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, fn: object) -> object:
        """Runs ``fn`` until it does not raise BusyError, timing each try."""
        while True:
            start = time.perf_counter()
            try:
                out = fn()  # type: ignore[operator]
            except memtree.BusyError:
                with self.lock:
                    self.busy += 1
                    self.waits.append(time.perf_counter() - start)
                continue
            with self.lock:
                self.waits.append(time.perf_counter() - start)
            return out


def _writer_process(db: str, threads: int, seconds: float, out: str) -> None:
    tally = Tally()
    store = memtree.Store(db)
    deadline = time.monotonic() + seconds

    def loop() -> None:
        while time.monotonic() < deadline:
            tally.call(lambda: store.jobs.enqueue("work", {}))
            job = tally.call(lambda: store.jobs.claim_next(kinds=["work"]))
            if isinstance(job, memtree.Job):
                tally.call(lambda held=job: store.jobs.mark_done(held))

    pool = [threading.Thread(target=loop) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    Path(out).write_text(json.dumps({"waits": tally.waits, "busy": tally.busy}))


@dataclass
class Report:
    """The outcome of one run: per side, ``(calls, busy, p50, p99, max)``."""

    writers: tuple[int, int, float, float, float]
    readers: tuple[int, int, float, float, float]

    @property
    def busy_total(self) -> int:
        return self.writers[1] + self.readers[1]

    def lines(self) -> list[str]:
        out = []
        for name, (calls, busy, p50, p99, worst) in (
            ("writers", self.writers),
            ("reader", self.readers),
        ):
            per_10k = 10_000 * busy / calls if calls else 0.0
            out.append(
                f"{name:8s} calls={calls:7d} busy={busy:4d} ({per_10k:.2f}/10k) "
                f"p50={p50 * 1e3:7.2f}ms p99={p99 * 1e3:8.2f}ms max={worst * 1e3:8.1f}ms"
            )
        return out


def _summary(waits: list[float], busy: int) -> tuple[int, int, float, float, float]:
    if not waits:
        return (0, busy, 0.0, 0.0, 0.0)
    s = sorted(waits)
    return (len(s), busy, s[len(s) // 2], s[min(len(s) - 1, int(len(s) * 0.99))], s[-1])


def run(db: Path, processes: int, threads: int, seconds: float, poll: float = 0.005) -> Report:
    """One measured run against the store at ``db`` (created if missing)."""
    store = memtree.Store(db)
    outs = [db.with_name(f"{db.name}.writer-{i}.json") for i in range(processes)]
    children = [
        subprocess.Popen(
            [sys.executable, __file__, "--child", str(db), str(threads), str(seconds), str(out)]
        )
        for out in outs
    ]
    reader = Tally()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        reader.call(store.jobs.counts)
        reader.call(store.count_chunks)
        time.sleep(poll)
    waits: list[float] = []
    busy = 0
    for child, out in zip(children, outs):
        if child.wait(seconds + 120) != 0:
            raise RuntimeError(f"writer process failed with {child.returncode}")
        data = json.loads(out.read_text())
        waits.extend(data["waits"])
        busy += data["busy"]
    store.close()
    return Report(_summary(waits, busy), _summary(reader.waits, reader.busy))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        db, threads, seconds, out = sys.argv[2:6]
        _writer_process(db, int(threads), float(seconds), out)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = run(Path(tmp) / "chunks.db", args.processes, args.threads, args.seconds)
    print(f"{args.processes} processes x {args.threads} threads, {args.seconds:.0f} s:")
    print("\n".join(report.lines()))


if __name__ == "__main__":
    main()
