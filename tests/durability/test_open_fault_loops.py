"""SQLite's I/O-error loop over the open-time paths (issue 9).

For N = 1, 2, … until no fault fires, call N of one VFS method fails — once,
or from then on — during

* **migration**: the first open of a WAL database whose newest rows exist
  only as frames in its ``-wal`` (the reference layout after a crash);
* **recovery**: the same open, made to fail once at its first step (so the
  side-file recovery runs), with call N counted from the call after that
  first failure — i.e. call N of the recovery and the retry it leads to.

(Stranded ``-wal`` files are no longer merged on open; their explicit
adoption has its own loop in ``test_quarantine_fault_loops``.)

After each fault point (every handle closed) the contract of the recovery
protocol is checked on copies of the files (see ``support``): the open
either succeeded or raised a ``MemtreeError`` with a code and a name; every
committed row is readable from the live database with its ``-wal`` — or, for
a persistent fault only (or rows that started stranded), from a side file;
then a fault-free open leaves every row live, no ``-wal`` and no unmerged
side file.
Reading every row back at every point is also what proves that no ``-wal``
holding frames was deleted.

Each case starts from a copy of one template (built once per module).
``make test`` runs every N of every method, once and persistent, with one
result code per N, rotating through the five; ``make soak``
(``MEMTREE_SOAK_SCALE`` > 1) runs every code at every N, on a template with a
longer ``-wal``, and a second way of failing the first open (``xTruncate``).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import memtree
import pytest
from memtree import ResultCode, testing
from support import (
    SOAK_SCALE,
    Rows,
    check_after_clean_reopen,
    check_after_fault,
    loop_over_fault_points,
    open_outcome,
    ram_folder,
    wal_only_template,
)

METHODS: list[testing.VfsMethod] = [
    "xOpen",
    "xRead",
    "xWrite",
    "xSync",
    "xTruncate",
]
# Methods the open (migration, or recovery after a failed open) never calls,
# so a loop over them would pass with no fault fired: left out of METHODS,
# and ``test_the_open_never_calls`` holds that no call of them happens.
NOT_ON_PATH: list[testing.VfsMethod] = ["xDelete", "xShmMap", "xShmLock"]
CODES = [
    ResultCode.FULL,
    ResultCode.IOERR_WRITE,
    ResultCode.IOERR_FSYNC,
    ResultCode.IOERR_TRUNCATE,
    ResultCode.CANTOPEN,
]
# The first open fails once, the way the reference's crash reports did: the
# file cannot be opened (an antivirus handle), or the checkpoint cannot
# truncate the -wal (the same handle, half-way through leaving WAL).
TRIGGERS = {
    "cantopen": testing.Fault("xOpen", 1, ResultCode.CANTOPEN, file_role="main_db"),
    "truncate": testing.Fault("xTruncate", 1, ResultCode.IOERR_TRUNCATE),
}
MAX_N = 10_000


@dataclass(frozen=True)
class Template:
    """A reference database with rows only in its ``-wal``, and what it holds."""

    folder: Path
    committed: Rows
    # The rows start in a -wal an earlier release moved aside.
    stranded: bool = False


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    folder = tmp_path_factory.mktemp("template")
    # The soak also checkpoints a longer -wal (more pages, more calls).
    scale = min(SOAK_SCALE, 4)
    committed = wal_only_template(
        folder / "chunks.db",
        tmp_path_factory.mktemp("template-checks"),
        chunks=6 * scale,
        wal_frames_only=3 * scale,
    )
    return Template(folder, committed)


@pytest.fixture
def work() -> Iterator[Path]:
    """Where the cases run (RAM-backed where possible, see ``ram_folder``)."""
    with ram_folder("memtree-open-faults-") as folder:
        yield folder


def codes_at(method: testing.VfsMethod, n: int, persistent: bool) -> list[int]:
    """Every code in the soak; otherwise one per N, rotating so each method
    meets every code across neighbouring N, once and persistent differently."""
    if SOAK_SCALE > 1:
        return list(CODES)
    return [CODES[(n + METHODS.index(method) + 2 * persistent) % len(CODES)]]


def run_point(
    template: Template, work: Path, chain: list[testing.Fault], *, persistent: bool
) -> tuple[bool, list[str]]:
    """One fault point from a fresh copy of the template: arms ``chain``,
    opens, checks the contract, reopens fault-free, checks again. Returns
    whether the last fault of the chain fired, and the contract's violations."""
    shutil.copytree(template.folder, work)
    db = work / "chunks.db"
    testing.inject_faults(db, *chain)
    try:
        outcome, problems = open_outcome(db)
    finally:
        fired = testing.clear_fault(db)
    # A one-shot link fires exactly once before handing over, so the last
    # link fired iff the total exceeds the links before it.
    assert fired >= len(chain) - 1, f"the first open did not fail as arranged (fired {fired})"
    fault_fired = fired >= len(chain)
    scratch = work.parent / (work.name + "-check")
    problems += check_after_fault(
        db, template.committed, scratch, persistent=persistent, stranded_before=template.stranded
    )
    reopened, reopen_problems = open_outcome(db)
    if reopened != "opened":
        problems.append(f"the fault-free reopen raised {reopened}")
    problems += reopen_problems
    problems += check_after_clean_reopen(db, template.committed, scratch)
    if problems:
        problems = [f"[{outcome}] {p}" for p in problems]
    shutil.rmtree(work)
    shutil.rmtree(scratch, ignore_errors=True)
    return fault_fired, problems


def open_fault_loop(
    template: Template,
    work: Path,
    method: testing.VfsMethod,
    persistent: bool,
    trigger: testing.Fault | None,
) -> None:
    started = time.perf_counter()
    points = 0
    failures: list[str] = []

    def run_n(n: int) -> bool:
        nonlocal points
        fired_here = []
        for code in codes_at(method, n, persistent):
            fault = testing.Fault(method, n, code, persistent=persistent)
            chain = [trigger, fault] if trigger is not None else [fault]
            fired, problems = run_point(
                template, work / f"n{n}-{code}", chain, persistent=persistent
            )
            fired_here.append(fired)
            if fired:
                points += 1
            failures.extend(f"{method} #{n} {ResultCode(code).name}: {p}" for p in problems)
        # Whether call N happens does not depend on the code of the fault
        # that would fail it (calls 1..N-1 succeeded alike).
        assert len(set(fired_here)) == 1, f"{method} #{n}: fired for some codes only"
        return fired_here[0]

    ended_at = loop_over_fault_points(run_n, method, limit=MAX_N) + 1
    mode = "persistent" if persistent else "once"
    print(
        f"{method} {mode}: {points} fault points, loop ended at N = {ended_at}, "
        f"{len(failures)} violations, {time.perf_counter() - started:.1f} s"
    )
    assert points >= 1, f"no {method} fault fired: the loop tested nothing"
    assert not failures, f"{len(failures)} contract violations:\n" + "\n".join(failures[:25])


@pytest.mark.parametrize("persistent", [False, True], ids=["once", "persistent"])
@pytest.mark.parametrize("method", METHODS)
def test_fault_during_wal_migration_keeps_every_row(
    template: Template, work: Path, method: testing.VfsMethod, persistent: bool
) -> None:
    open_fault_loop(template, work, method, persistent, trigger=None)


@pytest.mark.parametrize("persistent", [False, True], ids=["once", "persistent"])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("trigger", ["cantopen", *(["truncate"] if SOAK_SCALE > 1 else [])])
def test_fault_during_recovery_after_a_failed_open_keeps_every_row(
    template: Template,
    work: Path,
    trigger: str,
    method: testing.VfsMethod,
    persistent: bool,
) -> None:
    first = TRIGGERS[trigger]
    # The trigger alone must make the open fail once and recover; otherwise
    # this loop would not be testing the recovery path at all.
    probe = work / "probe"
    shutil.copytree(template.folder, probe)
    with testing.fault_chain(probe / "chunks.db", first):
        outcome, problems = open_outcome(probe / "chunks.db")
        trigger_fired = testing.faults_fired(probe / "chunks.db")
    recoveries = testing.open_counters(probe / "chunks.db")["recoveries"]
    assert trigger_fired == 1 and recoveries == 1, (outcome, problems, trigger_fired, recoveries)
    open_fault_loop(template, work, method, persistent, trigger=first)


@pytest.mark.parametrize("trigger", ["none", "cantopen"])
def test_the_open_never_calls(template: Template, work: Path, trigger: str) -> None:
    """Why METHODS leaves NOT_ON_PATH out: the open, run to the end, makes no
    call of them (counted from a fault armed past any call it makes)."""
    case = work / "case"
    shutil.copytree(template.folder, case)
    db = case / "chunks.db"
    first = [TRIGGERS[trigger]] if trigger in TRIGGERS else []
    testing.inject_faults(db, *first, testing.Fault(NOT_ON_PATH[0], MAX_N, ResultCode.IOERR))
    try:
        outcome, problems = open_outcome(db)
        calls = {m: testing.method_calls(db, m) for m in [*NOT_ON_PATH, "xRead"]}
    finally:
        fired = testing.clear_fault(db)
    assert outcome == "opened" and not problems, (outcome, problems)
    assert fired == len(first)
    assert calls.pop("xRead") > 0, "the counters count this open's calls"
    assert calls == dict.fromkeys(NOT_ON_PATH, 0), f"loop over them again: {calls}"


# --- the fault chain the recovery loop relies on --------------------------------


def test_fault_chain_counts_from_the_call_after_the_first_fault(tmp_path: Path) -> None:
    db = tmp_path / "chain.db"
    with memtree.Store(db):
        pass
    # The open fails once; the 1st xRead after that (the retried open reading
    # the header) fails with IOERR_READ: two firings, and the second's code.
    testing.inject_faults(
        db,
        testing.Fault("xOpen", 1, ResultCode.CANTOPEN, file_role="main_db"),
        testing.Fault("xRead", 1, ResultCode.IOERR_READ),
    )
    try:
        with pytest.raises(memtree.MemtreeError) as info:
            memtree.Store(db)
    finally:
        fired = testing.clear_fault(db)
    assert fired == 2
    assert info.value.extended_code == ResultCode.IOERR_READ
    assert testing.open_counters(db)["recoveries"] == 1
    with memtree.Store(db) as store:
        assert store.check() == ["ok"]


@pytest.mark.parametrize(
    ("faults", "message"),
    [
        ((), "at least one fault"),
        ((testing.Fault("xRead", 0, ResultCode.IOERR),), "nth"),
        (
            (
                testing.Fault("xRead", 1, ResultCode.IOERR, persistent=True),
                testing.Fault("xSync", 1, ResultCode.IOERR),
            ),
            "only the last",
        ),
    ],
)
def test_fault_chain_rejects_what_could_never_fire(
    tmp_path: Path, faults: tuple[testing.Fault, ...], message: str
) -> None:
    db = tmp_path / "chain.db"
    with pytest.raises(ValueError, match=message):
        testing.inject_faults(db, *faults)
    assert testing.faults_fired(db) == 0
    assert not db.exists(), "nothing was opened or created"
