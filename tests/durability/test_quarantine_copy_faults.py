"""Faults in the quarantine's copy aside: plain file I/O, not the VFS's.

A quarantine copies the damaged file, byte for byte, to
``<db>.corrupt-<ms>`` (create the file, write it in 64 KiB chunks, fsync
it, sync the folder) under the write lock of its rebuild, before the
rebuild commits (``rust/recovery/quarantine.rs``). The VFS fault loops
never reach those calls, so ``memtree.testing.inject_copy_fault`` fails
them: for N = 1, 2, … until no fault fires, operation N fails — once, or
from then on — with EIO or ENOSPC, during ``check(full=True)`` of a
database with a damaged index page.

After each fault point (every handle closed): the quarantine failed with a
typed error carrying its code; the live file is whole — byte for byte the
file it was, since the rebuild never began, so every committed row is
still in it — and no partial copy is left (a copy left would have to be
byte-exact). A fault-free retry then quarantines, salvaging every row, and
keeps one byte-exact copy.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import memtree
import pytest
from memtree import ResultCode, testing
from support import copy_database, ram_folder

ROWS = 300
COPY_CHUNK = 64 * 1024
EIO, ENOSPC = 5, 28
#: The code each injected errno reaches Python with.
CODE_OF = {EIO: ResultCode.IOERR, ENOSPC: ResultCode.FULL}


def ids_in(db: Path, scratch: Path) -> set[str]:
    """The chunk ids readable from ``db`` (with its ``-journal``, rolled back
    on a copy as any reader would), by a table scan that needs no index."""
    shutil.rmtree(scratch, ignore_errors=True)
    copy = copy_database(db, scratch)
    conn = sqlite3.connect(copy)
    try:
        return {r[0] for r in conn.execute("SELECT id FROM mem_tree_chunks NOT INDEXED")}
    finally:
        conn.close()


def copies_aside(db: Path) -> list[Path]:
    return sorted(
        p
        for p in db.parent.glob(db.name + ".corrupt-*")
        if not p.name.endswith(("-journal", "-wal", "-shm"))
    )


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def work() -> Iterator[Path]:
    with ram_folder("memtree-copy-faults-") as folder:
        yield folder


@pytest.fixture(scope="module")
def damaged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str]]:
    """A database of ``ROWS`` chunks (several copy chunks long) whose first
    chunk index page is overwritten: ``check(full=True)`` quarantines it,
    and every row is still readable by a table scan."""
    folder = tmp_path_factory.mktemp("damaged")
    db = folder / "chunks.db"
    with memtree.Store(db) as s:
        s.upsert_chunks(
            [memtree.Chunk(f"c{i:03d}", "words " * 60, "chat", "s", "o", i) for i in range(ROWS)]
        )
    conn = sqlite3.connect(db)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    root = conn.execute(
        "SELECT rootpage FROM sqlite_master WHERE type = 'index' "
        "AND tbl_name = 'mem_tree_chunks' AND sql IS NOT NULL ORDER BY rootpage LIMIT 1"
    ).fetchone()[0]
    conn.close()
    with open(db, "r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xa5" * page_size)
    return folder, {f"c{i:03d}" for i in range(ROWS)}


def check(db: Path) -> tuple[str, int | None]:
    """What ``check(full=True)`` did: ``("quarantined", None)``, or the
    failure's class name and extended code."""
    try:
        with memtree.Store(db) as s:
            s.check(full=True)
        return "ok", None
    except memtree.CorruptDatabaseError as e:
        if e.quarantined_path:
            return "quarantined", None
        return type(e).__name__, e.extended_code
    except memtree.MemtreeError as e:
        return type(e).__name__, e.extended_code


@pytest.mark.parametrize("persistent", [False, True], ids=["once", "persistent"])
def test_a_fault_in_the_copy_aside_loses_no_row_and_leaves_the_file_whole(
    damaged: tuple[Path, set[str]], work: Path, persistent: bool
) -> None:
    template, committed = damaged
    original = digest(template / "chunks.db")
    size = (template / "chunks.db").stat().st_size
    # Create, one write per 64 KiB chunk, the copy's fsync, the folder's.
    operations = 1 + -(-size // COPY_CHUNK) + 2
    assert operations >= 6, "the file is several copy chunks long"
    # Without a fault the check quarantines: the loop tests that path.
    probe = work / "probe"
    shutil.copytree(template, probe)
    assert check(probe / "chunks.db") == ("quarantined", None)
    assert ids_in(probe / "chunks.db", work / "scratch") == committed

    points = 0
    for n in range(1, 10 * operations):
        errno = (EIO, ENOSPC)[n % 2]
        case = work / f"n{n}"
        shutil.copytree(template, case)
        db = case / "chunks.db"
        testing.inject_copy_fault(db, n, persistent=persistent, errno=errno)
        try:
            outcome = check(db)
        finally:
            seen, fired = testing.clear_copy_fault(db)
        if not fired:
            # Every operation ran and none failed: the quarantine is whole.
            assert outcome == ("quarantined", None), (n, outcome)
            assert seen == operations, (seen, operations)
            break
        points += 1
        assert fired == (seen - n + 1 if persistent else 1), (n, seen, fired)
        # A typed failure with the code the OS error stands for.
        assert outcome[1] == CODE_OF[errno], (n, outcome)
        # The live file is whole: untouched, every committed row in it.
        assert digest(db) == original, f"N={n}: the live file changed"
        assert ids_in(db, work / "scratch") == committed, f"N={n}"
        # No partial copy is left; a copy left would be byte-exact.
        for aside in copies_aside(db):
            assert digest(aside) == original, f"N={n}: a partial copy was left: {aside.name}"
        # A fault-free retry quarantines, salvages every row and keeps one
        # byte-exact copy.
        assert check(db) == ("quarantined", None), n
        assert ids_in(db, work / "scratch") == committed, f"N={n}: rows lost after the retry"
        kept = copies_aside(db)
        assert len(kept) == 1 and digest(kept[0]) == original, (n, kept)
        shutil.rmtree(case)
    else:
        pytest.fail("the fault still fired at the last N tried")
    assert points == operations, (points, operations)


def test_the_copy_fault_hook_refuses_n_zero(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nth"):
        testing.inject_copy_fault(tmp_path / "chunks.db", 0)
    assert testing.clear_copy_fault(tmp_path / "chunks.db") == (0, 0)
