"""``memtree doctor`` and ``memtree migrate`` refuse another application's
database with the rule ``memtree.Store()`` applies (issue 10 item 11): tables
of its own and no ``mem_tree_chunks`` is "not a memtree database", exit 4,
and every file is left byte for byte, with no side file created."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import memtree
import pytest
from memtree.doctor import EXIT_NOT_MEMTREE

EXE = Path(sys.executable).parent / ("memtree.exe" if os.name == "nt" else "memtree")


def memtree_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    assert EXE.exists(), f"the console script is not installed at {EXE}"
    return subprocess.run(
        [str(EXE), *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def files_beside(db: Path) -> dict[str, tuple[bytes, int]]:
    """Bytes and modification time of every file in the database's folder
    (so a new side file or backup shows up too)."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(db.parent.iterdir())}


def users_db(folder: Path, *, wal_frames: bool) -> Path:
    """A WAL database holding only a ``users`` table. With ``wal_frames``, its
    rows are still in the ``-wal`` (copied while the writer held it open)."""
    folder.mkdir(parents=True)
    db = folder / "chunks.db"
    work = folder.parent / (folder.name + "-work")
    work.mkdir()
    src = work / "chunks.db"
    conn = sqlite3.connect(src)
    try:
        assert conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal"
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        conn.execute("PRAGMA user_version = 7")
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.executemany("INSERT INTO users (name) VALUES (?)", [("ada",), ("bob",)])
        conn.commit()
        if wal_frames:
            shutil.copyfile(src, db)
            shutil.copyfile(Path(str(src) + "-wal"), Path(str(db) + "-wal"))
    finally:
        conn.close()
    if not wal_frames:
        shutil.copyfile(src, db)
    shutil.rmtree(work)
    return db


@pytest.mark.parametrize("wal_frames", [False, True], ids=["wal-header", "wal-frames"])
def test_doctor_and_migrate_refuse_a_foreign_wal_database(tmp_path: Path, wal_frames: bool) -> None:
    db = users_db(tmp_path / "memory_tree", wal_frames=wal_frames)
    assert db.read_bytes()[18:20] == b"\x02\x02"  # the header records WAL mode
    assert Path(str(db) + "-wal").exists() is wal_frames
    before = files_beside(db)

    doc = memtree_cli("doctor", db)
    assert doc.returncode == EXIT_NOT_MEMTREE == 4, doc.stdout + doc.stderr
    assert "not a memtree database" in doc.stdout
    assert "needs migration" not in doc.stdout
    assert files_beside(db) == before

    doc_json = json.loads(memtree_cli("doctor", "--json", db).stdout)
    assert doc_json["status"] == "not_memtree"
    assert doc_json["exit_code"] == 4
    assert "no mem_tree_chunks" in doc_json["error"]
    assert files_beside(db) == before

    for args in (["migrate", "--backup", db], ["migrate", db]):
        mig = memtree_cli(*args)
        assert mig.returncode == 4, mig.stdout + mig.stderr
        assert "not a memtree database" in mig.stdout
        assert files_beside(db) == before

    mig_json: dict[str, Any] = json.loads(memtree_cli("migrate", "--json", "--backup", db).stdout)
    assert mig_json["exit_code"] == 4
    assert mig_json["action"] == "none"
    assert files_beside(db) == before

    # The rows are all there, unchanged (read from a copy).
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in before:
        shutil.copyfile(db.parent / name, copy / name)
    with sqlite3.connect(copy / "chunks.db") as conn:
        assert conn.execute("SELECT name FROM users ORDER BY id").fetchall() == [("ada",), ("bob",)]
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 7
    conn.close()

    # The CLI's rule is Store()'s rule: the library refuses the same file.
    with pytest.raises(memtree.NotMemtreeDatabaseError):
        memtree.Store(db)


def test_a_foreign_rollback_database_is_refused_too(tmp_path: Path) -> None:
    folder = tmp_path / "app"
    folder.mkdir()
    db = folder / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE mem_tree_jobs (id TEXT)")  # a lookalike name is not enough
    conn.close()
    before = files_beside(db)
    assert memtree_cli("doctor", db).returncode == 4
    assert memtree_cli("migrate", "--backup", db).returncode == 4
    assert files_beside(db) == before


def test_files_memtree_may_initialise_are_not_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    assert memtree_cli("doctor", empty).returncode == 3
    # Nothing there (the one exit-status table): nothing to migrate or create.
    assert memtree_cli("migrate", empty).returncode == 3
    assert memtree_cli("stats", empty).returncode == 3
    assert memtree_cli("recover", empty).returncode == 3
    assert empty.read_bytes() == b""

    # A SQLite file with no tables (only a user_version) may be initialised as well.
    bare = tmp_path / "bare.db"
    with sqlite3.connect(bare) as conn:
        conn.execute("PRAGMA user_version = 0")
        conn.execute("CREATE TABLE t (x)")
        conn.execute("DROP TABLE t")
    conn.close()
    proc = memtree_cli("doctor", "--json", bare)
    assert json.loads(proc.stdout)["status"] != "not_memtree"
    with memtree.Store(bare):
        pass


@pytest.mark.parametrize("command", ["doctor", "migrate"])
def test_help_lists_exit_4(command: str) -> None:
    text = " ".join(memtree_cli(command, "--help").stdout.split())
    assert "4 not a memtree database" in text or "4  not a memtree database" in text, text
