"""The writes of issue 10 items 5, 6 and 8 are one transaction each: an I/O
error at any write or sync leaves the file exactly before or exactly after
the call (SQLite's I/O-error loop, as in test_fault_tolerance.py)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Callable

import memtree
import pytest
from memtree import testing
from support import ChunkFactory, add_dependents, fault_loop

TARGET = "chunk-00003"

Operation = Callable[[memtree.Store], object]

OPERATIONS: dict[str, Operation] = {
    "delete_chunk": lambda s: s.delete_chunk(TARGET),
    "set_chunk_embedding": lambda s: s.set_chunk_embedding(TARGET, [0.5] * 4096),
    "set_chunk_raw_refs": lambda s: s.set_chunk_raw_refs(
        TARGET, [memtree.RawRef(f"raw/{i:04d}.md", i, None) for i in range(300)]
    ),
}


def state(db: Path) -> tuple[object, ...]:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return tuple(
            tuple(conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2"))
            for table in ("mem_tree_chunks", "mem_tree_score", "mem_tree_entity_index")
        )
    finally:
        conn.close()


@pytest.mark.parametrize("method", ["xWrite", "xSync"])
@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_fault_at_every_io_leaves_before_or_after(
    tmp_path: Path, make_chunk: ChunkFactory, operation: str, method: testing.VfsMethod
) -> None:
    base = tmp_path / "base.db"
    with memtree.Store(base) as store:
        store.upsert_chunks([make_chunk(i) for i in range(40)])
        store.set_chunk_embedding(TARGET, [1.0] * 8)
    add_dependents(base, [make_chunk(i).id for i in range(40)])
    before = state(base)
    done = tmp_path / "done.db"
    shutil.copy2(base, done)
    with memtree.Store(done) as store:
        OPERATIONS[operation](store)
    after = state(done)
    assert after != before
    fired_points, rolled_back = fault_loop(
        tmp_path,
        base,
        method,
        False,
        OPERATIONS[operation],
        state=state,
        outcomes={before, after},
        before=before,
    )
    assert fired_points >= 1, "the loop must have injected at least one fault"
    assert rolled_back >= 1, "at least one fault must have hit inside the transaction"
