"""The GIL is released for database calls."""

from __future__ import annotations

import threading
import time

import memtree
from support import ChunkFactory


def test_python_thread_progresses_during_a_long_batch(
    store: memtree.Store, make_chunk: ChunkFactory
) -> None:
    batch = [make_chunk(i) for i in range(20_000)]
    ticks = 0
    in_native = threading.Event()
    done = threading.Event()

    def ticker() -> None:
        nonlocal ticks
        in_native.wait()
        while not done.is_set():
            ticks += 1
            time.sleep(0)

    t = threading.Thread(target=ticker)
    t.start()
    in_native.set()
    store.upsert_chunks(batch)
    ticks_during = ticks
    done.set()
    t.join()
    assert store.count_chunks() == len(batch)
    # Counted, not timed: with the GIL held for the whole batch the ticker
    # could only run at the interpreter's switch points before and after it.
    assert ticks_during > 100, ticks_during
