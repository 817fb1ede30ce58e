"""A batch of 256 chunks or more is upserted by ONE ``INSERT … SELECT`` from
the batch's virtual table (``rust/chunks/batch_rows.rs``): it must end exactly as
the per-row path does, be all-or-nothing under I/O faults, share group
commits, and work on every connection memtree opens (fresh, after leaving
WAL, after a quarantine)."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from pathlib import Path

import memtree
import pytest
from memtree import ResultCode, testing
from reference_db import create_reference_db
from support import ChunkFactory, after_digest, content_digest

# BATCH_STATEMENT_MIN_ROWS in rust/chunks/mod.rs: the smallest one-statement batch.
LARGE = 256


def every_row(db: Path) -> list[tuple[object, ...]]:
    """Every column of every chunk row (the derived ones included), by id."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT * FROM mem_tree_chunks ORDER BY id").fetchall()
    conn.close()
    return rows


def derive_everything(db: Path) -> None:
    """Sets every derived column of every row, as the app's later stages would."""
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "UPDATE mem_tree_chunks SET raw_refs_json = '[]', parent_summary_id = 's-' || id, "
            "lifecycle_status = 'sealed', embedding = x'0000803f', "
            "content_path = 'p/' || id, content_sha256 = 'h'"
        )
    conn.close()


def upsert_per_row(db: Path, chunks: list[memtree.Chunk]) -> None:
    """The same chunks in calls below the threshold: the per-row path."""
    with memtree.Store(db) as store:
        for i in range(0, len(chunks), LARGE - 1):
            part = chunks[i : i + LARGE - 1]
            assert store.upsert_chunks(part) == len(part)


def test_a_large_batch_ends_as_the_per_row_path_does(
    tmp_path: Path, make_chunk: ChunkFactory
) -> None:
    one, rows = tmp_path / "one.db", tmp_path / "rows.db"
    first = [make_chunk(i, tags=["t", str(i)] if i % 2 else []) for i in range(LARGE + 30)]
    # An id repeated in the batch: its later row's ingest fields win.
    first.append(make_chunk(7, content="the later row", lifecycle_status="other"))
    with memtree.Store(one) as store:
        assert store.upsert_chunks(first) == len(first)
        later = store.get_chunk(first[7].id)
        assert later is not None and later.content == "the later row"
    upsert_per_row(rows, first)
    assert every_row(one) == every_row(rows)
    # Re-ingest over derived state, mixed with new ids: the derived columns stay.
    derive_everything(one)
    derive_everything(rows)
    second = [make_chunk(i, content=f"again {i}") for i in range(100, LARGE + 200)]
    with memtree.Store(one) as store:
        assert store.upsert_chunks(second) == len(second)
    upsert_per_row(rows, second)
    got = every_row(one)
    assert got == every_row(rows)
    assert len(got) == LARGE + 200
    with memtree.Store(one) as store:
        kept = store.get_chunk(second[0].id)
        assert kept is not None
        assert (kept.content, kept.lifecycle_status) == ("again 100", "sealed")
        assert kept.content_path == f"p/{kept.id}"


def test_two_threads_upserting_large_batches_both_land(
    db_path: Path, make_chunk: ChunkFactory
) -> None:
    batches = [[make_chunk(t * 10_000 + i) for i in range(LARGE + 50)] for t in range(2)]
    start = threading.Barrier(2)
    results: list[object] = [None, None]
    with memtree.Store(db_path) as store:

        def worker(t: int) -> None:
            start.wait()
            try:
                results[t] = store.upsert_chunks(batches[t])
            except Exception as e:  # reported below, with its thread
                results[t] = e

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert results == [LARGE + 50, LARGE + 50]
        ids = [c.id for batch in batches for c in batch]
        assert store.get_chunks(ids) == [c for batch in batches for c in batch]
        assert store.check(full=True) == ["ok"]


def test_a_large_batch_after_leaving_wal(tmp_path: Path, make_chunk: ChunkFactory) -> None:
    db = tmp_path / "chunks.db"
    ids = create_reference_db(db, chunks=8, wal_frames_only=3)
    batch = [make_chunk(i) for i in range(LARGE + 1)]
    with memtree.Store(db) as store:
        assert store.journal_mode == "truncate"
        assert store.upsert_chunks(batch) == len(batch)
        assert store.count_chunks() == len(ids) + len(batch)


def test_a_large_batch_after_a_quarantine(db_path: Path, make_chunk: ChunkFactory) -> None:
    db_path.write_bytes(b"SQLite format 3\x00" + b"not a database at all " * 300)
    with pytest.raises(memtree.CorruptDatabaseError):
        memtree.Store(db_path)
    batch = [make_chunk(i) for i in range(LARGE + 1)]
    with memtree.Store(db_path) as store:
        assert store.upsert_chunks(batch) == len(batch)
        assert store.get_chunks([c.id for c in batch]) == batch


@pytest.mark.parametrize("persistent", [False, True])
@pytest.mark.parametrize("method", ["xWrite", "xSync", "xRead", "xTruncate", "xFileSize", "xOpen"])
def test_io_error_loop_on_a_large_batch_is_all_or_nothing(
    tmp_path: Path, make_chunk: ChunkFactory, method: testing.VfsMethod, persistent: bool
) -> None:
    """SQLite's I/O-error loop: fail the Nth call of one VFS method (once,
    or from then on) for N = 1, 2, … until a run hits no fault; each run
    leaves the file as before or after the whole batch, integrity ok."""
    base = tmp_path / "base.db"
    with memtree.Store(base) as store:
        store.upsert_chunks([make_chunk(i) for i in range(60)])
    # Existing ids 50..59 and new ones, content long enough to spill the cache.
    batch = [
        make_chunk(i, content=f"rewritten {i} " + "x" * 400) for i in range(50, 50 + LARGE + 50)
    ]
    before = content_digest(base)
    after = after_digest(base, batch)
    assert before != after
    fired_points = failed_calls = 0
    for n in range(1, 10_000):
        db = tmp_path / f"run-{n}.db"
        shutil.copy2(base, db)
        with memtree.Store(db) as store:
            testing.inject_fault(db, method, n, ResultCode.IOERR, persistent=persistent)
            try:
                store.upsert_chunks(batch)
            except memtree.MemtreeError:
                failed_calls += 1
            fired = testing.clear_fault(db)
        assert content_digest(db) in {before, after}, f"{method} fault at call {n}"
        db.unlink()
        Path(str(db) + "-journal").unlink(missing_ok=True)
        if fired == 0:
            break
        fired_points += 1
    print(f"{method} persistent={persistent}: {fired_points} fault points, {failed_calls} failed")
    assert fired_points >= 1, "the loop must have injected at least one fault"
