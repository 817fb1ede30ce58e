"""Issue 9's cases 1 to 5 as regression tests: faults during leaving WAL or
recovery lose nothing, an unwritable ``-shm`` does not block, a refused file
is left byte for byte, and nothing memtree creates goes through a link."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import memtree
import pytest
from memtree import ResultCode, testing
from reference_db import create_reference_db
from support import corrupt_last_index_page, side_files, strand_a_wal_as_the_last_release_did

SUFFIXES = ("", "-wal", "-journal")


def rows_in_live_pair(db: Path, scratch: Path) -> set[str]:
    """Chunk ids readable from ``db`` with its ``-wal``/``-journal``, read on
    a copy so the check itself never checkpoints or rolls anything back."""
    scratch.mkdir(exist_ok=True)
    copy = scratch / db.name
    for suffix in SUFFIXES:
        side = Path(str(db) + suffix)
        target = Path(str(copy) + suffix)
        if target.exists():
            target.unlink()
        if side.exists():
            shutil.copyfile(side, target)
    conn = sqlite3.connect(copy)
    try:
        assert [r[0] for r in conn.execute("PRAGMA integrity_check")] == ["ok"]
        return {r[0] for r in conn.execute("SELECT id FROM mem_tree_chunks")}
    finally:
        conn.close()


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: (p.read_bytes() if p.is_file() else b"<dir>") for p in sorted(folder.iterdir())}


@pytest.mark.parametrize(
    ("method", "code", "role"),
    [
        ("xWrite", ResultCode.FULL, "main_db"),
        ("xWrite", ResultCode.IOERR_WRITE, "main_db"),
        ("xSync", ResultCode.IOERR_FSYNC, "main_db"),
        ("xTruncate", ResultCode.IOERR_TRUNCATE, "wal"),
    ],
)
@pytest.mark.parametrize("persistent", [False, True])
def test_one_fault_while_leaving_wal_loses_no_row(
    tmp_path: Path, method: testing.VfsMethod, code: int, role: testing.FileRole, persistent: bool
) -> None:
    # Case 1: the reference's close-then-restore lost the WAL-only rows here.
    db = tmp_path / "chunks.db"
    ids = set(create_reference_db(db, chunks=6, wal_frames_only=3))
    with testing.fault(db, method, 1, code, persistent=persistent, file_role=role):
        try:
            memtree.Store(db).close()
            opened = True
        except memtree.MemtreeError as e:
            opened = False
            assert e.path is not None and e.name.startswith("SQLITE_")
        assert testing.faults_fired(db) >= 1, "the fault really fired"
    assert opened or persistent or code != ResultCode.IOERR_TRUNCATE
    assert rows_in_live_pair(db, tmp_path / "scratch") == ids
    memtree.Store.invalidate(db)
    with memtree.Store(db) as store:
        assert {c.id for c in store.get_chunks(sorted(ids))} == ids
        assert store.journal_mode == "truncate"
        assert store.check(full=True) == ["ok"]
    assert not side_files(db) & {"-wal", "-shm"}
    assert not [p for p in tmp_path.iterdir() if ".unrecovered" in p.name]


def test_full_disk_while_leaving_wal_strands_nothing(tmp_path: Path) -> None:
    # Case 2: the disk stays full for several opens, then space is freed.
    db = tmp_path / "chunks.db"
    ids = set(create_reference_db(db, chunks=5, wal_frames_only=2))
    testing.inject_fault(db, "xWrite", 1, ResultCode.FULL, persistent=True, file_role="main_db")
    try:
        for _ in range(3):
            memtree.Store.invalidate(db)
            with pytest.raises(memtree.DiskFullError):
                memtree.Store(db)
    finally:
        fired = testing.clear_fault(db)
    assert fired >= 3
    assert rows_in_live_pair(db, tmp_path / "scratch") == ids
    memtree.Store.invalidate(db)
    with memtree.Store(db) as store:
        assert store.count_chunks() == len(ids)
    # Nothing stranded beside it: the database and at most its journal.
    left = {p.name for p in tmp_path.iterdir() if p.name.startswith("chunks.db")}
    assert "chunks.db" in left and left <= {"chunks.db", "chunks.db-journal"}, left


def test_shm_that_is_a_directory_does_not_block(tmp_path: Path) -> None:
    # Case 3: a -shm memtree cannot write (here a directory of that name).
    db = tmp_path / "chunks.db"
    ids = set(create_reference_db(db, chunks=4, wal_frames_only=2))
    shm = Path(str(db) + "-shm")
    shm.unlink()
    shm.mkdir()
    with memtree.Store(db) as store:
        assert {c.id for c in store.get_chunks(sorted(ids))} == ids
        assert store.journal_mode == "truncate"
    assert shm.is_dir(), "not ours to remove"
    assert not Path(str(db) + "-wal").exists()


TOO_NEW = """
import os, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA journal_mode=WAL")
conn.execute("CREATE TABLE mem_tree_chunks (id TEXT PRIMARY KEY)")
conn.execute("PRAGMA wal_autocheckpoint=0")
conn.execute("INSERT INTO mem_tree_chunks VALUES ('a')")
conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
conn.execute("PRAGMA user_version = 9999")
conn.execute("INSERT INTO mem_tree_chunks VALUES ('b')")
os._exit(0)
"""


def test_too_new_wal_file_is_left_byte_for_byte(tmp_path: Path) -> None:
    # Case 4: the refusal is decided before anything writes.
    db = tmp_path / "chunks.db"
    subprocess.run([sys.executable, "-c", TOO_NEW, str(db)], check=True)
    assert Path(str(db) + "-wal").stat().st_size > 0
    before = snapshot(tmp_path)
    with pytest.raises(memtree.SchemaVersionError):
        memtree.Store(db)
    assert snapshot(tmp_path) == before


def test_foreign_database_is_refused_unchanged(tmp_path: Path) -> None:
    db = tmp_path / "chunks.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    before = snapshot(tmp_path)
    with pytest.raises(memtree.NotMemtreeDatabaseError) as info:
        memtree.Store(db)
    assert "mem_tree_chunks" in str(info.value)
    assert snapshot(tmp_path) == before


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links need privileges")
def test_quarantine_never_writes_through_a_planted_link(tmp_path: Path) -> None:
    # Case 5: names beside the database are predictable; links planted at
    # every name memtree could pick in the next seconds must be left alone.
    # A damaged header is quarantined only at a workspace's canonical name
    # (an explicit path without the SQLite header is refused unchanged).
    workspace = tmp_path / "ws"
    outside = tmp_path / "outside"
    outside.mkdir()
    with memtree.Store.open(workspace) as store:
        store.upsert_chunks([])
        db = store.path
    db.write_bytes(b"this is not a database" * 500)
    now = int(time.time() * 1000)
    planted = []
    for ms in range(now - 50, now + 5000):
        link = db.parent / f"chunks.db.corrupt-{ms}"
        os.symlink(outside / f"copy-{ms}", link)
        planted.append(link)
    with pytest.raises(memtree.CorruptDatabaseError) as info:
        memtree.Store.open(workspace)
    assert info.value.quarantined_path is not None
    moved = Path(info.value.quarantined_path)
    assert not moved.is_symlink() and moved.read_bytes().startswith(b"this is not")
    assert list(outside.iterdir()) == [], "nothing was written outside the workspace"
    assert all(link.is_symlink() for link in planted)


def test_stranded_rows_are_reported_not_merged_then_adopted_on_request(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Case 2, as earlier releases left it: rows only in a moved-aside -wal.
    # An open merges nothing it cannot prove it wrote; it keeps a copy of the
    # base the -wal was written against and says what to run.
    db = tmp_path / "chunks.db"
    ids = set(create_reference_db(db, chunks=6, wal_frames_only=3))
    stranded = strand_a_wal_as_the_last_release_did(db)
    stranded_bytes = stranded.read_bytes()
    caplog.set_level("WARNING", logger="memtree")
    with memtree.Store(db) as store:
        assert store.count_chunks() == 3
    assert any("recover --adopt" in r.getMessage() for r in caplog.records)
    assert stranded.read_bytes() == stranded_bytes
    assert testing.open_counters(db)["stranded_merged"] == 0
    dry = subprocess.run(
        [
            sys.executable,
            "-m",
            "memtree",
            "recover",
            str(db),
            "--adopt",
            str(stranded),
            "--dry-run",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert json.loads(dry.stdout)["chunk_rows"] == 3
    assert stranded.read_bytes() == stranded_bytes, "a dry run writes nothing"
    with memtree.Store(db) as store:
        assert store.count_chunks() == 3
    done = subprocess.run(
        [sys.executable, "-m", "memtree", "recover", str(db), "--adopt", str(stranded)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    with memtree.Store(db) as store:
        assert {c.id for c in store.get_chunks(sorted(ids))} == ids
        assert store.check(full=True) == ["ok"]
    assert not [p for p in tmp_path.iterdir() if "unrecovered" in p.name or "adopting" in p.name]


def test_unreadable_stranded_wal_is_kept_and_reported_every_open(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "chunks.db"
    create_reference_db(db, chunks=3)
    stranded = db.with_name(f"{db.name}-wal.unrecovered-1700000000000")
    garbage = b"not a wal header" * 300
    stranded.write_bytes(garbage)
    caplog.set_level("WARNING", logger="memtree")
    for _ in range(2):
        memtree.Store.invalidate(db)
        with memtree.Store(db) as store:
            assert store.count_chunks() == 3
    warnings = [r for r in caplog.records if "not merged automatically" in r.getMessage()]
    assert len(warnings) == 2, "every open says so"
    assert stranded.read_bytes() == garbage, "kept byte for byte"
    with pytest.raises(memtree.MemtreeError):
        memtree._native.adopt_file(db, stranded, False)
    assert stranded.read_bytes() == garbage, "a refused file stays"


def test_recover_command_lists_stranded_files_and_merges_none(tmp_path: Path) -> None:
    db = tmp_path / "memory_tree" / "chunks.db"
    create_reference_db(db, chunks=4, wal_frames_only=2)
    stranded = strand_a_wal_as_the_last_release_did(db)
    listed = memtree._native.stranded_files(db)
    assert len(listed) == 1 and listed[0][1] is None and "earlier release" in listed[0][2]
    done = subprocess.run(
        [sys.executable, "-m", "memtree", "recover", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert stranded.exists()
    assert "--adopt" in done.stdout


def test_quarantine_brings_readable_rows_back(tmp_path: Path) -> None:
    # A file moved aside is not kept until the next open has its rows back.
    db = tmp_path / "chunks.db"
    ids = set(create_reference_db(db, chunks=40))
    with memtree.Store(db) as store:
        assert store.count_chunks() == 40
    # Damage the header's page-size field: the whole file no longer opens.
    data = bytearray(db.read_bytes())
    original = bytes(data)
    data[16:18] = (3).to_bytes(2, "big")
    db.write_bytes(bytes(data))
    with pytest.raises(memtree.CorruptDatabaseError) as info:
        memtree.Store(db)
    moved = Path(str(info.value.quarantined_path))
    assert moved.read_bytes() == bytes(data), "the quarantined file is kept as it was"
    # Nothing readable without its header: the fresh file starts empty, and
    # once the damage is mended by hand the rows are there to be read.
    moved.write_bytes(original)
    assert len(rows_in_live_pair(moved, tmp_path / "scratch")) == len(ids)


def test_quarantine_of_a_damaged_index_salvages_every_row(tmp_path: Path) -> None:
    db = tmp_path / "chunks.db"
    ids = set(create_reference_db(db, chunks=60))
    with memtree.Store(db) as store:
        assert store.count_chunks() == 60
    corrupt_last_index_page(db)
    with memtree.Store(db) as store:
        with pytest.raises(memtree.CorruptDatabaseError) as info:
            store.check(full=True)
        assert info.value.quarantined_path is not None
        assert {c.id for c in store.get_chunks(sorted(ids))} == ids
        assert store.check(full=True) == ["ok"]
    assert Path(str(info.value.quarantined_path)).exists(), "kept"


def test_doctor_lists_stranded_files_read_only(tmp_path: Path) -> None:
    db = tmp_path / "chunks.db"
    create_reference_db(db, chunks=4, wal_frames_only=2)
    strand_a_wal_as_the_last_release_did(db)
    before = snapshot(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "memtree", "doctor", str(db), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert snapshot(tmp_path) == before, "doctor changed nothing"
    report = json.loads(done.stdout)
    assert [
        Path(s["file"]).name.startswith("chunks.db-wal.unrecovered-") for s in report["stranded"]
    ] == [True]
    assert any("memtree recover" in a for a in report["advice"])


def test_side_file_calls_refuse_an_unencodable_path(tmp_path: Path) -> None:
    # PyO3's own path extraction panics on a lone surrogate; these go through
    # the same converter as every other path argument.
    bad = str(tmp_path / "bad \ud800.db")
    with pytest.raises(ValueError, match="path"):
        memtree._native.stranded_files(bad)
    with pytest.raises(ValueError, match="path"):
        testing.inject_faults(bad, testing.Fault("xWrite", 1, ResultCode.IOERR_WRITE))
