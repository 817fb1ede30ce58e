"""The journal: TRUNCATE on every open, WAL databases migrated in place, and a
refused switch reported, never silenced."""

from __future__ import annotations

import shutil
import sqlite3
import warnings
from pathlib import Path

import memtree
import pytest
from memtree import ResultCode, testing
from reference_db import create_reference_db
from support import ChunkFactory, read_transaction_in_another_process, side_files


def ids_visible_in_copy(db: Path, dest: Path, with_wal: bool) -> set[str]:
    """Chunk ids a reader sees in a copy of the files (never the originals, so
    the originals' -wal is not checkpointed by the inspection)."""
    dest.mkdir()
    shutil.copy2(db, dest / db.name)
    if with_wal:
        for suffix in ("-wal", "-shm"):
            shutil.copy2(str(db) + suffix, dest / (db.name + suffix))
    conn = sqlite3.connect(dest / db.name)
    try:
        return {row[0] for row in conn.execute("SELECT id FROM mem_tree_chunks")}
    finally:
        conn.close()


def test_wal_database_with_uncheckpointed_rows_is_migrated_losslessly(tmp_path: Path) -> None:
    db = tmp_path / "memory_tree" / "chunks.db"
    db.parent.mkdir()
    ids = create_reference_db(db, chunks=8, wal_frames_only=3)
    # Precondition: the last three rows exist only as frames in the -wal.
    wal = Path(str(db) + "-wal")
    assert wal.exists() and wal.stat().st_size > 0
    main_only = ids_visible_in_copy(db, tmp_path / "main-only", with_wal=False)
    with_wal = ids_visible_in_copy(db, tmp_path / "with-wal", with_wal=True)
    assert with_wal == set(ids)
    assert main_only == set(ids[:-3]), "the last rows must live only in the -wal"

    with memtree.Store.open(tmp_path) as store:
        assert store.journal_mode == "truncate"
        assert {c.id for c in store.get_chunks(ids)} == set(ids)
        assert store.check(full=True) == ["ok"]
    assert "-wal" not in side_files(db) and "-shm" not in side_files(db)
    assert testing.open_counters(db)["wal_migrations"] == 1

    # The main file alone now holds every row.
    assert ids_visible_in_copy(db, tmp_path / "after", with_wal=False) == set(ids)

    # Idempotent: later opens find nothing to migrate.
    with memtree.Store.open(tmp_path) as store:
        assert store.count_chunks() == len(ids)
    assert testing.open_counters(db)["wal_migrations"] == 1
    assert "-wal" not in side_files(db)


def test_refused_switch_warns_and_reports_the_real_mode(
    tmp_path: Path, short_busy_timeout: float
) -> None:
    # The switch waits the busy budget (shortened from 5 s) for the lock
    # before it gives up and warns.
    db = tmp_path / "chunks.db"
    create_reference_db(db, chunks=3, wal_frames_only=1)
    # Another process holds a read transaction: SQLite cannot leave WAL.
    with read_transaction_in_another_process(db) as release:
        with pytest.warns(memtree.JournalModeWarning, match="journal_mode=wal"):
            store = memtree.Store(db)
        assert store.journal_mode == "wal"
        assert store.count_chunks() == 3
        store.close()  # the last handle: memtree's connection closes
        # Reopening maps the -shm index again; make that fail persistently.
        # The recovery must leave the files of a database another process
        # holds alone, and the error reaches Python with exactly that code.
        with testing.fault(db, "xShmMap", 1, ResultCode.IOERR_SHMOPEN, persistent=True):
            with pytest.raises(memtree.TransientIOError) as info:
                memtree.Store(db)
            assert testing.faults_fired(db) >= 2, "the open and its one retry"
        assert info.value.extended_code == ResultCode.IOERR_SHMOPEN
        assert info.value.name == "SQLITE_IOERR_SHMOPEN"
        assert {"-wal", "-shm"} <= side_files(db), "a live WAL is not touched"
        memtree.Store.invalidate(db)
        release()
        # Once the other process let go, the next open completes the switch.
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            again = memtree.Store(db)
        assert again.journal_mode == "truncate"
        assert again.count_chunks() == 3
        again.close()
    assert "-wal" not in side_files(db)


def test_commit_costs_exactly_sqlites_syncs(store: memtree.Store, make_chunk: ChunkFactory) -> None:
    store.upsert_chunks([make_chunk(0)])
    testing.reset_io_stats(store.path)
    store.upsert_chunks([make_chunk(1)])
    stats = testing.io_stats(store.path)
    # TRUNCATE + FULL on unix: journal x3, database x1 and the directory
    # fsync of the re-created journal: 5 fsyncs per commit, as designed.
    assert (stats["syncs_journal"], stats["syncs_db"], stats["syncs_dir"]) == (3, 1, 1)
    assert stats["syncs_wal"] == 0
