"""SQLite's I/O-error loop over quarantine and explicit adoption (issue 18).

For N = 1, 2, … until no fault fires, call N of one VFS method of the live
database's files fails — once, or from then on — during

* **quarantine**: ``check(full=True)`` of a database with a damaged index
  page, which copies the file aside and rebuilds it in place with the rows
  still readable (see ``rust/recovery/quarantine.rs``);
* **adoption**: ``memtree recover --adopt`` of a ``-wal`` an earlier release
  moved aside (``_native.adopt_file``).

The invariant after each fault point (every handle closed): every committed
row is in the live database or, while it is not, in a file beside it (the
copy aside, or the file being adopted, which is never removed before its
rows are in); after a fault-free retry every committed row is live.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import memtree
import pytest
from memtree import ResultCode, _native, testing
from support import (
    LEGACY_WAL,
    copy_database,
    loop_over_fault_points,
    ram_folder,
    stranded_wal_layout,
)

METHODS: list[testing.VfsMethod] = [
    "xOpen",
    "xRead",
    "xWrite",
    "xSync",
    "xTruncate",
    "xFileSize",
    "xLock",
    "xDelete",
    "xAccess",
]
# Methods a path never calls (``test_the_paths_never_call``): a loop over
# them would pass with no fault fired, so each path loops over the others.
NOT_ON_PATH: dict[str, testing.VfsMethod] = {"quarantine": "xTruncate", "adoption": "xDelete"}
QUARANTINE_METHODS = [m for m in METHODS if m != NOT_ON_PATH["quarantine"]]
ADOPTION_METHODS = [m for m in METHODS if m != NOT_ON_PATH["adoption"]]
CODES = [ResultCode.IOERR_WRITE, ResultCode.FULL, ResultCode.IOERR_FSYNC, ResultCode.CANTOPEN]
MAX_N = 5_000
ROWS = 40


def ids_in(db: Path, scratch: Path) -> set[str]:
    """The chunk ids readable from ``db`` (with its ``-journal``, rolled back
    on a copy as any reader would), by a table scan that needs no index;
    empty when the file cannot be read at all."""
    shutil.rmtree(scratch, ignore_errors=True)
    copy = copy_database(db, scratch)
    try:
        conn = sqlite3.connect(copy)
        try:
            return {r[0] for r in conn.execute("SELECT id FROM mem_tree_chunks NOT INDEXED")}
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return set()


def copies_aside(db: Path) -> list[Path]:
    return sorted(
        p
        for p in db.parent.glob(db.name + ".corrupt-*")
        if not p.name.endswith(("-journal", "-wal", "-shm"))
    )


@pytest.fixture
def work() -> Iterator[Path]:
    with ram_folder("memtree-quarantine-faults-") as folder:
        yield folder


@pytest.fixture(scope="module")
def damaged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str]]:
    folder = tmp_path_factory.mktemp("damaged")
    db = folder / "chunks.db"
    with memtree.Store(db) as s:
        s.upsert_chunks(
            [memtree.Chunk(f"c{i:03d}", "words " * 30, "chat", "s", "o", i) for i in range(ROWS)]
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


def check(db: Path) -> str:
    try:
        with memtree.Store(db) as s:
            s.check(full=True)
        return "ok"
    except memtree.CorruptDatabaseError as e:
        return "quarantined" if e.quarantined_path else f"corrupt {e.name}"
    except memtree.MemtreeError as e:
        assert e.name, "every failure carries a code name"
        return f"failed {e.name}"


@pytest.mark.parametrize("persistent", [False, True], ids=["once", "persistent"])
@pytest.mark.parametrize("method", QUARANTINE_METHODS)
def test_fault_during_quarantine_loses_no_row(
    damaged: tuple[Path, set[str]], work: Path, method: testing.VfsMethod, persistent: bool
) -> None:
    template, committed = damaged
    # Without a fault the check quarantines: the loop tests that path.
    run_without_a_fault(template, work, quarantine, "quarantined", committed)

    def rows_kept(case: Path, n: int, outcome: str) -> list[str]:
        violations = []
        db, scratch = case / "chunks.db", work / "scratch"
        beside: set[str] = set()
        for aside in copies_aside(db):
            beside |= ids_in(aside, scratch)
        if not committed <= ids_in(db, scratch) | beside:
            violations.append(f"#{n} [{outcome}]: rows neither live nor beside it")
        # A fault-free check finishes the job: every row is live.
        again = check(db)
        final = check(db)
        live = ids_in(db, scratch)
        if final != "ok" or live != committed:
            violations.append(
                f"#{n} [{outcome}, then {again}, {final}]: {len(committed - live)} rows not live"
            )
        return violations

    points, violations = loop_faults_over(template, work, method, persistent, quarantine, rows_kept)
    assert points >= 1, f"no {method} fault fired: the loop tested nothing"
    assert not violations, "\n".join(violations[:20])


def quarantine(case: Path) -> str:
    """The quarantine path: a full check of the damaged copy in ``case``."""
    return check(case / "chunks.db")


def run_without_a_fault(
    template: Path, work: Path, run: Callable[[Path], str], expected: str, committed: set[str]
) -> Path:
    """``run`` the path once, with no fault, on a copy of ``template``: it
    ends ``expected`` with every committed row live (so the loop tests that
    path). Returns the copy's folder."""
    probe = work / "probe"
    shutil.copytree(template, probe)
    assert run(probe) == expected
    assert ids_in(probe / "chunks.db", work / "probe-scratch") == committed
    return probe


def loop_faults_over(
    template: Path,
    work: Path,
    method: testing.VfsMethod,
    persistent: bool,
    run: Callable[[Path], str],
    violations_after: Callable[[Path, int, str], list[str]],
) -> tuple[int, list[str]]:
    """For N = 1, 2, … until no fault fires (``loop_over_fault_points``): on a
    fresh copy of ``template``, ``run(case)`` the path with call N of
    ``method`` of ``case/chunks.db``'s files failing, with a code rotating
    through ``CODES``; after each fault that fired,
    ``violations_after(case, n, outcome)`` checks the invariant. Returns the
    fault points and every violation."""
    violations: list[str] = []

    def run_point(n: int) -> bool:
        code = CODES[n % len(CODES)]
        case = work / f"n{n}"
        shutil.copytree(template, case)
        db = case / "chunks.db"
        testing.inject_faults(db, testing.Fault(method, n, code, persistent=persistent))
        try:
            outcome = run(case)
        finally:
            fired = testing.clear_fault(db)
        if fired:
            violations.extend(violations_after(case, n, outcome))
        shutil.rmtree(case)
        return fired > 0

    points = loop_over_fault_points(run_point, method, limit=MAX_N)
    print(f"{method} {'persistent' if persistent else 'once'}: {points} fault points")
    return points, violations


@pytest.fixture(scope="module")
def stranded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str]]:
    folder = tmp_path_factory.mktemp("stranded")
    return folder, stranded_wal_layout(folder)


def _adopt(db: Path, file: Path) -> str:
    try:
        _native.adopt_file(db, file, False)
        return "adopted"
    except memtree.MemtreeError as e:
        assert e.name, "every failure carries a code name"
        return f"failed {e.name}"


def adopt(case: Path) -> str:
    """The adoption path: ``case``'s stranded ``-wal`` adopted."""
    return _adopt(case / "chunks.db", case / LEGACY_WAL)


@pytest.mark.parametrize("persistent", [False, True], ids=["once", "persistent"])
@pytest.mark.parametrize("method", ADOPTION_METHODS)
def test_fault_during_adoption_loses_no_row(
    stranded: tuple[Path, set[str]], work: Path, method: testing.VfsMethod, persistent: bool
) -> None:
    template, committed = stranded
    probe = run_without_a_fault(template, work, adopt, "adopted", committed)
    assert not (probe / LEGACY_WAL).exists()

    def rows_kept(case: Path, n: int, outcome: str) -> list[str]:
        violations = []
        db, legacy, scratch = case / "chunks.db", case / LEGACY_WAL, work / "scratch"
        live = ids_in(db, scratch)
        if not legacy.exists() and live != committed:
            violations.append(f"#{n} [{outcome}]: the -wal is gone with rows not live")
        if legacy.exists():
            again = _adopt(db, legacy)
            live = ids_in(db, scratch)
            if again != "adopted" or live != committed:
                violations.append(f"#{n} [{outcome}, then {again}]: rows not live")
        leftovers = [p.name for p in case.iterdir() if ".adopting" in p.name]
        if leftovers:
            violations.append(f"#{n} [{outcome}]: private copies left: {leftovers}")
        return violations

    points, violations = loop_faults_over(template, work, method, persistent, adopt, rows_kept)
    assert points >= 1, f"no {method} fault fired: the loop tested nothing"
    assert not violations, "\n".join(violations[:20])


@pytest.mark.parametrize("path", sorted(NOT_ON_PATH))
def test_the_paths_never_call(
    damaged: tuple[Path, set[str]],
    stranded: tuple[Path, set[str]],
    work: Path,
    path: str,
) -> None:
    """Why each loop leaves one method out: its path, run to the end, makes
    no call of it (counted from a fault armed past any call it makes)."""
    template, run, expected = {
        "quarantine": (damaged[0], quarantine, "quarantined"),
        "adoption": (stranded[0], adopt, "adopted"),
    }[path]
    method = NOT_ON_PATH[path]
    case = work / "case"
    shutil.copytree(template, case)
    db = case / "chunks.db"
    testing.inject_faults(db, testing.Fault(method, MAX_N, ResultCode.IOERR))
    try:
        assert run(case) == expected
        calls = testing.method_calls(db, method)
        reads = testing.method_calls(db, "xRead")
    finally:
        fired = testing.clear_fault(db)
    assert fired == 0
    assert reads > 0, "the counters count this path's calls"
    assert calls == 0, f"{path} called {method} {calls} times: loop over it again"
