"""The GIL is released for database calls."""

from __future__ import annotations

from pathlib import Path

import memtree
from support import ChunkFactory, wait_for_a_write_lock_in_native_code


def test_python_thread_progresses_while_a_batch_waits_in_native_code(
    db_path: Path, make_chunk: ChunkFactory
) -> None:
    batch = [make_chunk(i) for i in range(2_000)]
    with memtree.Store(db_path) as store:
        written = wait_for_a_write_lock_in_native_code(db_path, lambda: store.upsert_chunks(batch))
        assert written == len(batch)
        assert store.count_chunks() == len(batch)
