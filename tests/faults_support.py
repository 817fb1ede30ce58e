"""Helpers shared by the fault-tolerance tests: snapshots of a database's
content and child processes that run memtree until they crash or finish."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

# CI runs a short version; `make soak` raises this.
SOAK_SCALE = int(os.environ.get("MEMTREE_SOAK_SCALE", "1"))


def read_back(db: Path) -> tuple[str, set[str]]:
    """A digest of every chunk row and the set of chunk ids, after asserting
    ``integrity_check`` is ok. Read-write: after a kill or a crash a hot
    journal may need rolling back first, as any reader would. Callers have
    closed every memtree handle on ``db``."""
    conn = sqlite3.connect(db)
    try:
        integrity = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        rows = conn.execute(
            "SELECT id, content, lifecycle_status, timestamp_ms FROM mem_tree_chunks ORDER BY id"
        ).fetchall()
    finally:
        conn.close()
    assert integrity == ["ok"], f"integrity_check: {integrity}"
    return hashlib.sha256(repr(rows).encode()).hexdigest(), {r[0] for r in rows}


def content_digest(db: Path) -> str:
    """The digest half of :func:`read_back` (integrity asserted)."""
    return read_back(db)[0]


def chunk_ids(db: Path) -> set[str]:
    """The chunk ids half of :func:`read_back` (integrity asserted)."""
    return read_back(db)[1]


def side_files(db: Path) -> set[str]:
    """The suffixes (``-journal``, ``-wal``, ``-shm``) of db's side files present."""
    return {p.name[len(db.name) :] for p in db.parent.glob(db.name + "-*")}


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


CHILD_PRELUDE = """
import sys
from datetime import datetime, timedelta, timezone
import memtree
from memtree import testing

BASE = datetime(2026, 11, 1, tzinfo=timezone.utc)

def chunk(i, content=None):
    return memtree.Chunk(
        f"chunk-{i:05d}", content or f"content {i} " * 20, "chat", f"src-{i % 4}",
        "alice", BASE + timedelta(seconds=i), token_count=5, seq_in_source=i)
"""


HOLD_READ_TRANSACTION = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN")
conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
print("holding", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
conn.close()
"""


@contextmanager
def read_transaction_in_another_process(db: Path) -> Iterator[Callable[[], None]]:
    """Another *process* holds a read transaction on ``db`` (so SQLite cannot
    leave WAL) until the yielded ``release()`` is called or the block ends.
    It must be a process: two SQLite libraries in one process do not see
    each other's POSIX locks."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLD_READ_TRANSACTION, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "holding"
        stdin = holder.stdin

        def release() -> None:
            if holder.poll() is None:
                stdin.write("\n")
                stdin.flush()
                assert holder.wait(timeout=30) == 0

        yield release
        release()


def run_child(body: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHILD_PRELUDE + body, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
