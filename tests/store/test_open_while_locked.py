"""An open waits for another process's write lock, and gets the file once
the lock is released: its first reads (the checks that the file is
memtree's, the schema version) wait like every later statement."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import memtree
from memtree import testing
from support import ChunkFactory, write_lock_in_another_process


def test_an_open_waits_for_another_process_s_write_lock(
    db_path: Path, make_chunk: ChunkFactory
) -> None:
    with memtree.Store(db_path) as store:
        store.upsert_chunks([make_chunk(i) for i in range(10)])
    outcome: dict[str, Any] = {}

    def open_and_count() -> None:
        try:
            with memtree.Store(db_path) as store:
                outcome["count"] = store.count_chunks()
        except memtree.MemtreeError as e:
            outcome["error"] = e

    with write_lock_in_another_process(db_path) as release:
        retries_before = testing.method_calls(db_path, "xLock")
        opener = threading.Thread(target=open_and_count)
        opener.start()
        # The open retries the lock (a BusyError would end the thread):
        # watched, not timed, then the lock is released.
        while testing.method_calls(db_path, "xLock") < retries_before + 3:
            assert opener.is_alive(), outcome
            time.sleep(0.001)
        assert opener.is_alive(), "the open waits for the lock"
        release()
    opener.join(timeout=60)
    assert outcome == {"count": 10}
