"""The full-text index is kept in step with the rows by every write, in the
writing transaction: an I/O fault at any call of an upsert (per-row and
one-statement paths), a power loss during the schema step that builds the
index, salvage and merge all leave index and tables in agreement
(``INSERT INTO fts(fts) VALUES('integrity-check')`` after every iteration)."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import memtree
import pytest
from memtree import ResultCode, testing
from support import (
    SOAK_SCALE,
    content_digest,
    corrupt_last_index_page,
    fault_loop,
    reference_connection,
    run_child,
    strand_a_wal_as_the_last_release_did,
)

BASE = datetime(2026, 11, 1, tzinfo=timezone.utc)
INDEXES = ("memtree_chunks_fts", "memtree_summaries_fts")
#: The schema version before the step that builds the index.
BEFORE_INDEX_VERSION = 106


def chunk(i: int, content: str | None = None) -> memtree.Chunk:
    return memtree.Chunk(
        f"c{i:05d}",
        content or f"word{i} common text {i % 7}",
        "chat",
        f"s{i % 3}",
        "alice",
        BASE + timedelta(seconds=i),
        seq_in_source=i,
    )


def check_index(db: Path) -> dict[str, list[str]]:
    """Asserts both indexes agree with their tables (content compared too);
    returns, per probe word, the chunk ids the index finds."""
    conn = reference_connection(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        for fts in INDEXES:
            conn.execute(f"INSERT INTO {fts}({fts}) VALUES ('integrity-check')")
            conn.execute(f"INSERT INTO {fts}({fts}, rank) VALUES ('integrity-check', 1)")
        found = {}
        for word in ("common", "rewritten", "word3"):
            found[word] = [
                r[0]
                for r in conn.execute(
                    "SELECT c.id FROM memtree_chunks_fts f JOIN mem_tree_chunks c "
                    "ON c.rowid = f.rowid WHERE memtree_chunks_fts MATCH ? ORDER BY c.id",
                    (word,),
                )
            ]
        conn.commit()
    finally:
        conn.close()
    return found


def test_the_index_exists_on_a_fresh_store_and_follows_writes(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with memtree.Store(db) as store:
        store.upsert_chunks([chunk(i) for i in range(10)])
        assert check_index(db)["word3"] == ["c00003"]
        store.upsert_chunks([chunk(3, "rewritten")])
        store.delete_chunk("c00004")
    found = check_index(db)
    assert found["word3"] == [] and found["rewritten"] == ["c00003"]
    assert len(found["common"]) == 8


@pytest.mark.parametrize("batch", [20, 300], ids=["per-row", "one-statement"])
@pytest.mark.parametrize("persistent", [False, True])
@pytest.mark.parametrize("method", ["xWrite", "xSync", "xRead", "xTruncate", "xFileSize"])
def test_io_fault_loop_over_upsert_keeps_the_index_in_step(
    tmp_path: Path, method: testing.VfsMethod, persistent: bool, batch: int
) -> None:
    base = tmp_path / "base.db"
    with memtree.Store(base) as store:
        store.upsert_chunks([chunk(i) for i in range(batch)])
    # Half the batch rewritten (the update trigger), half new rows.
    work = [chunk(i, f"rewritten {i}") for i in range(batch // 2, batch + batch // 2)]
    before = content_digest(base)
    done = tmp_path / "done.db"
    shutil.copy2(base, done)
    with memtree.Store(done) as store:
        store.upsert_chunks(work)
    after = content_digest(done)
    expected = {before: check_index(base), after: check_index(done)}

    def index_agrees(db: Path, seen: object, _found: object, n: int) -> None:
        assert check_index(db) == expected[seen], f"index after a {method} fault at call {n}"

    fired_points, rolled_back = fault_loop(
        tmp_path,
        base,
        method,
        persistent,
        lambda store: store.upsert_chunks(work),
        state=content_digest,
        outcomes=set(expected),
        before=before,
        codes=(ResultCode.IOERR, ResultCode.CANTOPEN),
        primary_code=True,
        verify=index_agrees,
        limit=3000,
    )
    print(f"{method} persistent={persistent} batch={batch}: {fired_points} fault points")
    assert fired_points >= 1, "the loop must have injected at least one fault"
    if method in ("xWrite", "xSync"):
        assert rolled_back >= 1, "at least one fault must have hit inside the transaction"


def make_pre_index_file(db: Path, n: int) -> None:
    """A file as the release before the index left it: rows, no index, no
    triggers, ``user_version`` one step back."""
    with memtree.Store(db) as store:
        store.upsert_chunks([chunk(i) for i in range(n)])
    conn = reference_connection(db)
    try:
        for fts in INDEXES:
            for trigger in ("insert", "delete", "update"):
                conn.execute(f"DROP TRIGGER {fts}_{trigger}")
            conn.execute(f"DROP TABLE {fts}")
        conn.execute(f"PRAGMA user_version = {BEFORE_INDEX_VERSION}")
        conn.commit()
    finally:
        conn.close()


def version_and_index(db: Path) -> tuple[int, bool]:
    conn = reference_connection(db)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        has = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE name = 'memtree_chunks_fts'"
        ).fetchone()[0]
    finally:
        conn.close()
    return int(version), bool(has)


@pytest.mark.parametrize("persistent", [False, True])
@pytest.mark.parametrize("method", ["xWrite", "xSync", "xRead", "xTruncate", "xFileSize", "xOpen"])
def test_io_fault_loop_over_the_index_step(
    tmp_path: Path, method: testing.VfsMethod, persistent: bool
) -> None:
    base = tmp_path / "base.db"
    make_pre_index_file(base, 300)
    rows = content_digest(base)
    fired_points = redone = 0
    for n in range(1, 3000):
        db = tmp_path / f"run-{n}.db"
        shutil.copy2(base, db)
        testing.inject_fault(db, method, n, ResultCode.IOERR, persistent=persistent)
        try:
            with memtree.Store(db):
                pass
        except memtree.MemtreeError as e:
            assert e.code & 0xFF in (ResultCode.IOERR, ResultCode.CANTOPEN), e
        finally:
            fired = testing.clear_fault(db)
            memtree.Store.invalidate(db)
        assert content_digest(db) == rows, f"rows changed: {method} fault at call {n}"
        version, has_index = version_and_index(db)
        # The step and its version commit together, or neither does.
        assert has_index == (version > BEFORE_INDEX_VERSION), (method, n, version)
        redone += not has_index
        with memtree.Store(db):
            pass
        memtree.Store.invalidate(db)
        found = check_index(db)
        assert len(found["common"]) == 300 and found["word3"] == ["c00003"], (method, n)
        db.unlink()
        Path(str(db) + "-journal").unlink(missing_ok=True)
        if fired == 0:
            break
        fired_points += 1
    else:
        pytest.fail("the fault still fired at call 2999")
    print(f"{method} persistent={persistent}: {fired_points} fault points, {redone} redone")
    assert fired_points >= 1, "the loop must have injected at least one fault"
    if method in ("xWrite", "xSync"):
        assert redone >= 1, "at least one fault must have hit inside the step"


OPEN_UNDER_CRASH = """
db, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
testing.arm_crash(db, seed=seed, at_sync=n, exit_code=77)
store = memtree.Store(db)
print("completed", flush=True)
"""


def test_power_loss_during_the_index_step_redoes_it_on_the_next_open(tmp_path: Path) -> None:
    base = tmp_path / "base.db"
    make_pre_index_file(base, 300)
    rows = content_digest(base)
    crashes = redone = 0
    for seed in range(2 * SOAK_SCALE):
        for n in range(1, 100):
            db = tmp_path / f"m-{seed}-{n}.db"
            shutil.copy2(base, db)
            result = run_child(OPEN_UNDER_CRASH, str(db), str(n), str(seed))
            if result.returncode == 0:
                assert "completed" in result.stdout
                break
            assert result.returncode == 77, result.stderr
            crashes += 1
            assert content_digest(db) == rows, f"rows changed: seed {seed}, sync {n}"
            version, has_index = version_and_index(db)
            # The step and its version commit together, or neither does.
            assert has_index == (version > BEFORE_INDEX_VERSION), (seed, n, version)
            redone += not has_index
            with memtree.Store(db):
                pass
            assert version_and_index(db)[1]
            found = check_index(db)
            assert len(found["common"]) == 300 and found["word3"] == ["c00003"]
            db.unlink()
            Path(str(db) + "-journal").unlink(missing_ok=True)
    print(f"index-step crash points: {crashes}, redone on the next open: {redone}")
    assert crashes >= 2 and redone >= 1


def test_a_newer_file_is_refused_unchanged(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with memtree.Store(db) as store:
        store.upsert_chunks([chunk(1)])
    conn = reference_connection(db)
    conn.execute("PRAGMA user_version = 999")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    with pytest.raises(memtree.MemtreeError):
        memtree.Store(db)
    assert db.read_bytes() == before


def test_salvage_of_a_quarantined_file_indexes_every_row_it_brings_back(tmp_path: Path) -> None:

    db = tmp_path / "chunks.db"
    with memtree.Store(db) as store:
        store.upsert_chunks([chunk(i) for i in range(60)])
    corrupt_last_index_page(db)
    with memtree.Store(db) as store:
        with pytest.raises(memtree.CorruptDatabaseError) as info:
            store.check(full=True)
        assert info.value.quarantined_path is not None, "the salvage ran"
        assert store.count_chunks() == 60
        assert [h.id for h in store.search_text("word7")] == ["c00007"]
    found = check_index(db)
    assert len(found["common"]) == 60


def test_adopted_stranded_rows_are_indexed(tmp_path: Path) -> None:
    from reference_db import create_reference_db

    db = tmp_path / "chunks.db"
    ids = set(create_reference_db(db, chunks=6, wal_frames_only=3))
    stranded = strand_a_wal_as_the_last_release_did(db)
    with memtree.Store(db) as store:
        assert store.count_chunks() == 3, "an open merges nothing by itself"
    memtree._native.adopt_file(db, stranded, False)
    with memtree.Store(db) as store:
        assert {c.id for c in store.get_chunks(sorted(ids))} == ids, "the adoption ran"
        contents = {c.id: c.content for c in store.get_chunks(sorted(ids))}
        for chunk_id, content in contents.items():
            # Every word of its own content: the row matches itself.
            assert chunk_id in {h.id for h in store.search_text(content, 100)}
    check_index(db)


OPENHUMAN_UPSERT = """INSERT INTO mem_tree_chunks (
    id, source_kind, source_id, source_ref, owner,
    timestamp_ms, time_range_start_ms, time_range_end_ms,
    tags_json, content, token_count, seq_in_source, created_at_ms
) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
ON CONFLICT(id) DO UPDATE SET
    source_kind = excluded.source_kind,
    source_id = excluded.source_id,
    source_ref = excluded.source_ref,
    owner = excluded.owner,
    timestamp_ms = excluded.timestamp_ms,
    time_range_start_ms = excluded.time_range_start_ms,
    time_range_end_ms = excluded.time_range_end_ms,
    tags_json = excluded.tags_json,
    content = excluded.content,
    token_count = excluded.token_count,
    seq_in_source = excluded.seq_in_source,
    created_at_ms = excluded.created_at_ms"""


def test_openhuman_sql_through_another_sqlite_build_keeps_the_index(tmp_path: Path) -> None:
    """OpenHuman's upsert, lifecycle update and delete, run by Python's own
    sqlite3 (another SQLite build, with FTS5) in another connection while a
    store is open: the next search sees exactly its commits."""
    db = tmp_path / "chunks.db"
    with memtree.Store(db) as store:
        store.upsert_chunks([chunk(i) for i in range(5)])
        conn = reference_connection(db)
        try:
            row = ("oh-1", "chat", "s", None, "me", 9, 9, 9, "[]", "walrus tusk", 2, 0, 9)
            conn.execute(OPENHUMAN_UPSERT, row)
            conn.commit()
            assert [h.id for h in store.search_text("walrus")] == ["oh-1"]
            conn.execute(OPENHUMAN_UPSERT, (*row[:9], "narwhal tusk", *row[10:]))
            conn.execute(
                "UPDATE mem_tree_chunks SET lifecycle_status = ?1 WHERE id = ?2", ("sealed", "oh-1")
            )
            conn.commit()
            assert store.search_text("walrus") == []
            assert [h.id for h in store.search_text("narwhal")] == ["oh-1"]
            conn.execute("DELETE FROM mem_tree_chunks WHERE id = ?", ("c00002",))
            conn.commit()
        finally:
            conn.close()
        assert store.search_text("word2") == []
    found = check_index(db)
    assert len(found["common"]) == 4
