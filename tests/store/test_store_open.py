"""Opening: paths, sharing one connection per file, settings, closing."""

from __future__ import annotations

import threading
from pathlib import Path

import memtree
import pytest
from memtree import testing
from support import ChunkFactory


def test_open_workspace_creates_folders_and_reports_path(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    with memtree.Store.open(workspace) as store:
        assert store.path == (workspace / "memory_tree" / "chunks.db").resolve()
        assert store.path.exists()
        assert store.journal_mode == "truncate"


def test_explicit_path_requires_existing_folder(tmp_path: Path) -> None:
    # A memtree error with SQLite's code for it, never a bare OSError.
    # Permanent (issue 18): a typo'd folder does not appear by retrying, so
    # a Worker must not back off and retry it for ever as a TransientIOError.
    with pytest.raises(memtree.PathRefusedError) as info:
        memtree.Store(tmp_path / "missing" / "chunks.db")
    assert info.value.name == "SQLITE_CANTOPEN"
    assert not info.value.transient and isinstance(info.value, memtree.PermanentError)
    assert not isinstance(info.value, memtree.TransientIOError)
    assert info.value.path == str(tmp_path / "missing" / "chunks.db")
    assert str(tmp_path / "missing") in str(info.value) and "does not exist" in str(info.value)
    assert not (tmp_path / "missing").exists()


def test_every_open_applies_memtree_settings(store: memtree.Store) -> None:
    assert store.connection_settings() == {
        "journal_mode": "truncate",
        "synchronous": "2",  # FULL
        "fullfsync": "1",
        "foreign_keys": "1",
        # memtree's own busy handler (rust/db/busy.rs) and its 5 s limit.
        "busy_timeout": "5000",
        "user_version": str(memtree.schema_version()),
    }


def test_stores_on_one_path_share_one_connection(db_path: Path, make_chunk: ChunkFactory) -> None:
    first = memtree.Store(db_path)
    # A different spelling of the same file still shares the connection.
    second = memtree.Store(db_path.parent / "." / db_path.name)
    first.upsert_chunks([make_chunk(1)])
    assert second.count_chunks() == 1
    assert testing.open_counters(db_path)["connections_opened"] == 1
    first.close()
    assert second.count_chunks() == 1, "closing one handle leaves the others working"
    second.close()
    with memtree.Store(db_path) as third:
        assert third.count_chunks() == 1
    assert testing.open_counters(db_path)["connections_opened"] == 2, (
        "the last close closed the connection"
    )


def test_closed_store_raises_typed_error(db_path: Path) -> None:
    store = memtree.Store(db_path)
    store.close()
    assert store.closed
    with pytest.raises(memtree.StoreClosedError) as info:
        store.count_chunks()
    assert info.value.name == "SQLITE_MISUSE"
    store.close()  # idempotent


def test_context_manager_closes(db_path: Path) -> None:
    with memtree.Store(db_path) as store:
        pass
    assert store.closed


def test_cold_open_by_many_threads_inits_schema_once(db_path: Path) -> None:
    threads = 16
    barrier = threading.Barrier(threads)
    stores: list[memtree.Store] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def opener() -> None:
        barrier.wait()
        try:
            s = memtree.Store(db_path)
        except BaseException as e:  # pragma: no cover - reported below
            with lock:
                errors.append(e)
            return
        with lock:
            stores.append(s)

    workers = [threading.Thread(target=opener) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    assert len(stores) == threads
    counters = testing.open_counters(db_path)
    assert (counters["connections_opened"], counters["schema_inits"]) == (1, 1)
    for s in stores:
        s.close()


def test_file_from_newer_memtree_is_refused_unchanged(db_path: Path) -> None:
    import sqlite3

    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {memtree.schema_version() + 1}")
    conn.close()
    before = db_path.read_bytes()
    with pytest.raises(memtree.SchemaVersionError):
        memtree.Store(db_path)
    assert db_path.read_bytes() == before
