"""persist-queue as a peer: its ack queue on the same journal settings as
every other contender (TRUNCATE + FULL), for ``bench_jobs.py`` and
``test_peers.py``; apart from ``_harness`` so that benches that do not race
persist-queue do not need it installed."""

from __future__ import annotations

import sqlite3
from typing import Any

import persistqueue


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
