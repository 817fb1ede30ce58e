"""A database moved away or deleted while a handle is open (issue 9, item 6).

The cache must not hand a new open the connection to a file that is no longer
at the path; handles already open keep their file and fail with a typed
memtree error, and the moved file is never deleted or rewritten.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import memtree
import pytest
from conftest import ChunkFactory
from faults_support import file_digest
from memtree.testing import open_counters

# Windows refuses to rename or delete a file SQLite holds open.
pytestmark = pytest.mark.posix_only

DBMOVED = 1032  # SQLITE_READONLY_DBMOVED


def _assert_old_handle_refuses_writes(old: memtree.Store, make_chunk: ChunkFactory) -> None:
    with pytest.raises(memtree.MemtreeError) as info:
        old.upsert_chunks([make_chunk(99)])
    err = info.value
    assert isinstance(err, memtree.PermanentError)
    assert err.extended_code == DBMOVED
    assert err.name == "SQLITE_READONLY_DBMOVED"
    assert err.path == str(old.path)
    # Reads stop too (issue 18): a read would look for a hot journal at the
    # path's name, which belongs to the file now there.
    for read in (old.count_chunks, lambda: old.get_chunks(["chunk-00001"])):
        with pytest.raises(memtree.PermanentError) as info:
            read()
        assert info.value.extended_code == DBMOVED


def test_renamed_database_new_open_gets_the_file_at_the_path(
    tmp_path: Path, make_chunk: ChunkFactory
) -> None:
    old = memtree.Store.open(tmp_path)
    old.upsert_chunks([make_chunk(1), make_chunk(2)])
    db = old.path
    moved = db.with_name("chunks.db.moved")
    os.rename(db, moved)
    moved_digest = file_digest(moved)
    opened_before = open_counters(db)["connections_opened"]

    with memtree.Store.open(tmp_path) as new:
        # A fresh, empty database at the path, through a new connection.
        assert db.exists()
        assert open_counters(db)["connections_opened"] == opened_before + 1
        assert new.count_chunks() == 0
        new.upsert_chunks([make_chunk(3)])
        assert [c.id for c in new.get_chunks(["chunk-00001", "chunk-00003"])] == ["chunk-00003"]
        # A second open joins the new connection, not the moved one.
        with memtree.Store.open(tmp_path) as again:
            assert again.count_chunks() == 1
            assert open_counters(db)["connections_opened"] == opened_before + 1

    _assert_old_handle_refuses_writes(old, make_chunk)
    old.close()
    # The moved file is neither deleted nor rewritten, and keeps its rows.
    assert file_digest(moved) == moved_digest
    with memtree.Store(moved) as s:
        assert s.count_chunks() == 2


def test_renamed_back_while_open_is_the_same_file_again(
    tmp_path: Path, make_chunk: ChunkFactory
) -> None:
    old = memtree.Store.open(tmp_path)
    old.upsert_chunks([make_chunk(1)])
    db = old.path
    aside = db.with_name("aside.db")
    os.rename(db, aside)
    os.rename(aside, db)
    opened_before = open_counters(db)["connections_opened"]
    with memtree.Store.open(tmp_path) as new:
        # The path names the cached file again, so the cache serves it.
        assert open_counters(db)["connections_opened"] == opened_before
        new.upsert_chunks([make_chunk(2)])
    assert old.count_chunks() == 2
    old.close()


def test_deleted_folder_new_open_creates_a_fresh_database(
    tmp_path: Path, make_chunk: ChunkFactory
) -> None:
    # The folder is moved aside rather than deleted, so the test can prove
    # memtree never touched the file afterwards; to the path it is the same.
    old = memtree.Store.open(tmp_path)
    old.upsert_chunks([make_chunk(1)])
    folder = old.path.parent
    kept = tmp_path / "kept"
    shutil.move(str(folder), str(kept))
    kept_digest = file_digest(kept / "chunks.db")

    with memtree.Store.open(tmp_path) as new:
        assert new.path == old.path
        assert new.count_chunks() == 0
        new.upsert_chunks([make_chunk(2)])
        assert new.count_chunks() == 1

    _assert_old_handle_refuses_writes(old, make_chunk)
    old.close()
    assert file_digest(kept / "chunks.db") == kept_digest


def test_deleted_folder_really_removed(tmp_path: Path, make_chunk: ChunkFactory) -> None:
    old = memtree.Store.open(tmp_path)
    old.upsert_chunks([make_chunk(1)])
    shutil.rmtree(old.path.parent)
    with memtree.Store.open(tmp_path) as new:
        assert new.count_chunks() == 0
        new.upsert_chunks([make_chunk(2)])
    _assert_old_handle_refuses_writes(old, make_chunk)
    old.close()
    with memtree.Store.open(tmp_path) as reopened:
        assert reopened.count_chunks() == 1
