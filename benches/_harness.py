"""Pieces the bench scripts and the pytest benches share, kept free of
pytest and of ``conftest`` so that a plain script (``bench_jobs.py``) can
import them too: the clock around a threaded run, and persist-queue on the
same journal settings as every other contender."""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any

import persistqueue


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


class TruncateFullAckQueue(persistqueue.SQLiteAckQueue):  # type: ignore[misc]
    """persist-queue's ack queue with the connection on TRUNCATE + FULL: the
    library's factory sets ``journal_mode=WAL``; this one sets the same
    settings as every other contender."""

    def _new_db_connection(self, path: str, multithreading: bool, timeout: float) -> Any:
        conn = sqlite3.connect(
            f"{path}/{self.db_file_name}", timeout=timeout, check_same_thread=not multithreading
        )
        assert conn.execute("PRAGMA journal_mode = TRUNCATE").fetchone()[0] == "truncate"
        conn.execute("PRAGMA synchronous = FULL")
        return conn
