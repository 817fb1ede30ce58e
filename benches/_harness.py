"""The clock around a threaded run, shared by the bench scripts and the
pytest benches: kept free of pytest and of ``conftest`` so that a plain
script (``bench_jobs.py``) can import it too."""

from __future__ import annotations

import threading
import time


def time_threads(workers: list[threading.Thread], start_line: threading.Barrier) -> float:
    """Starts ``workers`` and returns the seconds from the moment all of
    them stand at ``start_line`` (each waits on it; the caller is its last
    party, so setup in the threads is not timed) until the last has ended."""
    for w in workers:
        w.start()
    start_line.wait()
    started = time.perf_counter()
    for w in workers:
        w.join()
    return time.perf_counter() - started
