"""An open waits for another process's write lock, and gets the file once
the lock is released: its first reads (the checks that the file is
memtree's, the schema version) wait like every later statement."""

from __future__ import annotations

from pathlib import Path

import memtree
from support import ChunkFactory, wait_for_a_write_lock_in_native_code


def test_an_open_waits_for_another_process_s_write_lock(
    db_path: Path, make_chunk: ChunkFactory
) -> None:
    with memtree.Store(db_path) as store:
        store.upsert_chunks([make_chunk(i) for i in range(10)])

    def open_and_count() -> int:
        with memtree.Store(db_path) as store:
            return store.count_chunks()

    assert wait_for_a_write_lock_in_native_code(db_path, open_and_count) == 10
