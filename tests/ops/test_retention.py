"""`Store.delete_chunks`: retention by age and the list filters, with the
cascade of `delete_source`, in transactions of at most 500 chunks. An I/O
error at any write or sync leaves whole batches deleted (never a chunk
without its cascade, never a dependent of a kept chunk gone), and a rerun
finishes."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import memtree
import pytest
from memtree import ResultCode, testing
from support import add_dependents, ram_folder

BASE = datetime(2026, 1, 1, tzinfo=timezone.utc)
CUTOFF = BASE + timedelta(days=10)
# rust/ops/retention.rs: BATCH, the chunks deleted per transaction.
BATCH = 500


def chunk(i: int, day: int, owner: str = "o") -> memtree.Chunk:
    return memtree.Chunk(
        id=f"c-{i:05d}",
        source_kind="chat" if i % 2 else "document",
        source_id=f"s{i % 7}",
        owner=owner,
        timestamp=BASE + timedelta(days=day),
        content=f"chunk {i}",
        seq_in_source=i,
    )


def filled(db: Path, old: int, new: int) -> tuple[set[str], set[str]]:
    """`old` chunks before the cutoff, `new` at or after it, each with a
    score row and two entity rows; returns both id sets."""
    chunks = [chunk(i, i % 10) for i in range(old)]
    chunks += [chunk(old + i, 10 + i % 5) for i in range(new)]
    with memtree.Store(db) as store:
        store.upsert_chunks(chunks)
    ids = [c.id for c in chunks]
    add_dependents(db, ids)
    return set(ids[:old]), set(ids[old:])


def rows(db: Path) -> tuple[set[str], set[str], set[str]]:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return (
            {r[0] for r in conn.execute("SELECT id FROM mem_tree_chunks")},
            {r[0] for r in conn.execute("SELECT chunk_id FROM mem_tree_score")},
            {r[0] for r in conn.execute("SELECT node_id FROM mem_tree_entity_index")},
        )
    finally:
        conn.close()


def test_old_chunks_go_with_their_cascade_and_new_ones_stay(tmp_path: Path) -> None:
    db = tmp_path / "chunks.db"
    _, new = filled(db, 1200, 300)
    with memtree.Store(db) as store:
        assert store.delete_chunks(older_than=CUTOFF) == 1200
        assert store.delete_chunks(older_than=CUTOFF) == 0
    chunks, scores, entities = rows(db)
    assert chunks == scores == entities == new


def test_filters_narrow_the_deletion(tmp_path: Path) -> None:
    db = tmp_path / "chunks.db"
    old, new = filled(db, 100, 20)
    with memtree.Store(db) as store:
        store.upsert_chunks([chunk(9000, 1, owner="bob")])
        assert store.delete_chunks(older_than=CUTOFF, owner="bob") == 1
        chats = {c for c in old if int(c[2:]) % 2}
        assert store.delete_chunks(older_than=CUTOFF, source_kind="chat") == len(chats)
        since = BASE + timedelta(days=5)
        late = {c for c in old - chats if int(c[2:]) % 10 >= 5}
        assert store.delete_chunks(older_than=CUTOFF, since=since) == len(late)
        assert store.delete_chunks(older_than=timedelta(days=365 * 100)) == 0
    assert rows(db)[0] == (old - chats - late) | new


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"older_than": 5}, TypeError),
        ({"older_than": datetime(2026, 1, 1)}, ValueError),
        ({"older_than": CUTOFF, "source_kind": "fax"}, ValueError),
    ],
)
def test_bad_arguments_change_nothing(
    tmp_path: Path, kwargs: dict[str, object], error: type[Exception]
) -> None:
    db = tmp_path / "chunks.db"
    filled(db, 10, 2)
    before = rows(db)
    with memtree.Store(db) as store, pytest.raises(error):
        store.delete_chunks(**kwargs)  # type: ignore[arg-type]
    assert rows(db) == before


@pytest.fixture
def work() -> Iterator[Path]:
    """Where the fault loops run (RAM-backed where possible, see
    ``ram_folder``): the xWrite loop runs the deletion ~600 times at
    ``synchronous=FULL``; the injected faults sit above the file system."""
    with ram_folder("memtree-retention-faults-") as folder:
        yield folder


# Old chunks of the fault loops: two batches, a full one and a part one, so
# a fault can land in either, between them, or in the loop's last check.
FAULT_OLD = BATCH + 100


@pytest.mark.parametrize("method", ["xWrite", "xSync"])
def test_a_fault_at_every_io_leaves_whole_batches(work: Path, method: testing.VfsMethod) -> None:
    base = work / "base.db"
    old, new = filled(base, FAULT_OLD, 50)
    fired_points = 0
    partial = 0
    for n in range(1, 5000):
        db = work / f"run-{n}.db"
        shutil.copy2(base, db)
        with memtree.Store(db) as store:
            testing.inject_fault(db, method, n, ResultCode.IOERR)
            try:
                store.delete_chunks(older_than=CUTOFF)
            except memtree.MemtreeError as e:
                assert e.code is not None
            fired = testing.clear_fault(db)
            chunks, scores, entities = rows(db)
            assert new <= chunks and chunks == scores == entities, f"{method} at {n}"
            assert len(old - chunks) in (0, BATCH, FAULT_OLD), "whole batches"
            partial += len(old - chunks) == BATCH
            store.delete_chunks(older_than=CUTOFF)
            assert rows(db)[0] == new
        db.unlink()
        Path(f"{db}-journal").unlink(missing_ok=True)
        if fired == 0:
            break
        fired_points += 1
    else:
        pytest.fail("still firing at call 4999")
    assert fired_points >= 2 and partial >= 1
