"""``memtree recover --adopt FILE`` bounds its checks of the file in time.

A planted file can carry a schema whose checks are slow on purpose: an
expensive CHECK constraint on every row of a large table is evaluated by
``quick_check``, and with ``trusted_schema`` off every built-in function
still is. The check runs under a deadline (``sqlite3_progress_handler``);
past it the statement is interrupted and the file refused, with the
refused-file exit status, nothing merged and the file byte for byte as it
was.

The real budget is 10 s; the test sets a small one through
``memtree.testing.set_adopt_check_budget`` in the CLI's process instead of
waiting it out, and asserts no duration: only that the command returned,
what it said, and what is on disk. The subprocess timeout is a hang guard,
far below what the planted check would take without the deadline (minutes),
so a deadline that never fires fails the test.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import memtree
import pytest
from memtree._exit import EXIT_OK, EXIT_REFUSED_PATH
from support import ChunkFactory

#: The hang guard: the planted check takes minutes without the deadline.
HANG = 120
#: The budget the CLI process runs with: far above what checking a normal
#: file of this size takes (milliseconds), far below the planted check.
BUDGET = 2.0
#: Rows of the planted table: with the expensive CHECK below, a few
#: milliseconds each, several minutes in all.
ROWS = 100_000
#: Evaluated per row by quick_check: builds a ~200 KB string from the row's
#: value (built-in functions only, so trusted_schema=OFF still runs it; it
#: depends on the row, so SQLite cannot evaluate it once for all rows).
EXPENSIVE_CHECK = "length(replace(hex(zeroblob(100000 + x)), '0', 'ab')) > 0"
CHEAP_CHECK = "x >= 0"

RUN_CLI = """
import sys
import memtree.testing
memtree.testing.set_adopt_check_budget(float(sys.argv[1]))
from memtree.cli import main
sys.exit(main(sys.argv[2:]))
"""


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def folder_state(folder: Path) -> dict[str, str]:
    return {p.name: digest(p) for p in sorted(folder.iterdir()) if p.is_file()}


def planted_bundle(folder: Path, chunks: list[memtree.Chunk], check: str) -> Path:
    """A memtree database holding ``chunks`` and a table of ``ROWS`` rows
    whose CHECK constraint is ``check`` (the rows are written with checks
    off, so building it is quick)."""
    folder.mkdir()
    path = folder / "bundle.db"
    with memtree.Store(path) as store:
        store.upsert_chunks(chunks)
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA ignore_check_constraints = ON")
        with conn:
            conn.execute(f"CREATE TABLE padding (x INTEGER CHECK ({check}))")
            conn.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
                "INSERT INTO padding SELECT i FROM n",
                (ROWS,),
            )
    finally:
        conn.close()
    return path


def adopt(db: Path, file: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    args = [str(BUDGET), "recover", str(db), "--adopt", str(file), "--json", *extra]
    try:
        return subprocess.run(
            [sys.executable, "-c", RUN_CLI, *args],
            capture_output=True,
            text=True,
            timeout=HANG,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"recover --adopt ran past the {HANG} s hang guard: the deadline never fired")


def test_a_file_whose_check_is_too_slow_is_interrupted_and_refused(
    tmp_path: Path, make_chunk: ChunkFactory
) -> None:
    live = tmp_path / "live"
    live.mkdir()
    db = live / "chunks.db"
    with memtree.Store(db) as store:
        store.upsert_chunks([make_chunk(i) for i in range(10)])
    planted = planted_bundle(
        tmp_path / "planted", [make_chunk(i) for i in range(10, 20)], EXPENSIVE_CHECK
    )
    planted_before = digest(planted)
    live_before = folder_state(live)

    proc = adopt(db, planted)

    assert proc.returncode == EXIT_REFUSED_PATH, (proc.stdout, proc.stderr)
    report = json.loads(proc.stdout)
    # The deadline fired: only the progress handler's interrupt is
    # reported as the budget running out.
    assert report["code"] == "SQLITE_INTERRUPT", report
    assert "longer than its time budget" in report["error"], report
    # Nothing merged, nothing left behind, the planted file as it was.
    assert folder_state(live) == live_before
    assert digest(planted) == planted_before
    assert sorted(p.name for p in planted.parent.iterdir()) == ["bundle.db"]
    with memtree.Store(db) as store:
        assert store.count_chunks() == 10
        assert store.get_chunk(make_chunk(15).id) is None


def test_the_same_budget_checks_an_ordinary_file_in_full(
    tmp_path: Path, make_chunk: ChunkFactory
) -> None:
    # The control: the same shape with a cheap CHECK passes its checks
    # within the same budget and merges, so the refusal above is the
    # expensive check's, not a budget too small for any file.
    live = tmp_path / "live"
    live.mkdir()
    db = live / "chunks.db"
    with memtree.Store(db) as store:
        store.upsert_chunks([make_chunk(i) for i in range(10)])
    planted = planted_bundle(
        tmp_path / "planted", [make_chunk(i) for i in range(10, 20)], CHEAP_CHECK
    )
    dry = adopt(db, planted, "--dry-run")
    assert dry.returncode == EXIT_OK, (dry.stdout, dry.stderr)
    assert json.loads(dry.stdout)["chunk_rows"] == 10
    merged = adopt(db, planted)
    assert merged.returncode == EXIT_OK, (merged.stdout, merged.stderr)
    assert json.loads(merged.stdout)["file_removed"] is True
    with memtree.Store(db) as store:
        assert store.count_chunks() == 20


def test_the_budget_hook_refuses_a_bad_value_and_returns_the_previous_one() -> None:
    from memtree import testing

    previous = testing.set_adopt_check_budget(1.5)
    try:
        assert testing.set_adopt_check_budget(2.5) == 1.5
        with pytest.raises(ValueError, match="seconds"):
            testing.set_adopt_check_budget(-1)
        with pytest.raises(ValueError, match="seconds"):
            testing.set_adopt_check_budget(3601)
        with pytest.raises(TypeError, match="seconds"):
            testing.set_adopt_check_budget("1")  # type: ignore[arg-type]
        assert testing.set_adopt_check_budget(2.5) == 2.5
    finally:
        testing.set_adopt_check_budget(previous)
    assert previous == 10.0
