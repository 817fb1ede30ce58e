"""The GIL is released for database calls."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import memtree
from memtree import testing
from support import ChunkFactory, write_lock_in_another_process


def test_python_thread_progresses_while_a_batch_waits_in_native_code(
    db_path: Path, make_chunk: ChunkFactory
) -> None:
    # Not timed: another process holds the write lock, so the batch waits
    # in native code (the busy handler retrying xLock) until this thread
    # releases it. Were the GIL held meanwhile, this thread could neither
    # watch the retries nor release the lock: the batch would end in
    # BusyError after the busy timeout, before the loop below saw it.
    batch = [make_chunk(i) for i in range(2_000)]
    outcome: dict[str, Any] = {}
    with memtree.Store(db_path) as store:

        def upsert() -> None:
            try:
                outcome["written"] = store.upsert_chunks(batch)
            except memtree.MemtreeError as e:  # BusyError, were the GIL held
                outcome["error"] = e

        with write_lock_in_another_process(db_path) as release:
            retries_before = testing.method_calls(db_path, "xLock")
            writer = threading.Thread(target=upsert)
            writer.start()
            while testing.method_calls(db_path, "xLock") < retries_before + 3:
                assert writer.is_alive(), outcome
                time.sleep(0.001)
            assert writer.is_alive(), "the batch waits for the lock"
            release()
        writer.join(timeout=60)
        assert outcome == {"written": len(batch)}
        assert store.count_chunks() == len(batch)
