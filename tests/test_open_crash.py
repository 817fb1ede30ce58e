"""Power loss at every sync of the open-time paths (issue 9).

The crash VFS keeps a database's unsynced writes pending and, at sync N,
loses power: each pending write is kept, dropped or torn at random (seeded),
and the process exits at once. N runs over every sync of

* **migration**: the first open of a WAL database whose newest rows exist
  only as frames in its ``-wal``;
* **recovery**: the same open made to fail once (CANTOPEN at its first
  ``xOpen``), so the sync counts run through the side-file recovery and the
  retried open;
* **stranded rows**: ``memtree recover --adopt`` (``_native.adopt_file``)
  of a ``-wal`` an earlier release moved aside, holding the newest rows
  (no open merges it on its own any more).

After each crash the contract of ``faults_support`` holds (checked on
copies): every committed row is readable from the live database with its
``-wal`` and integrity is ok — no fault is persistent here, so no row may
have gone to a side bundle (rows that started stranded may still be in
theirs); then a fault-free open in this process leaves
every row live, no ``-wal`` and no unmerged bundle.

Speed: one driver process imports memtree once and forks one child per crash
point (the child is what loses power); the driver itself never opens a
database, so nothing it holds can leak into a child.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from faults_support import (
    SOAK_SCALE,
    Rows,
    check_after_clean_reopen,
    check_after_fault,
    legacy_stranded_wals,
    open_outcome,
    ram_folder,
    unrecovered_bundles,
    wal_only_template,
)
from memtree import _native

CRASH_EXIT = 77

DRIVER = r"""
import json, os, shutil, sys
import memtree
from memtree import ResultCode, testing

template, work, mode, seeds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

def child(db, n, seed):
    if mode == "recovery":
        testing.inject_fault(db, "xOpen", 1, ResultCode.CANTOPEN, file_role="main_db")
    testing.arm_crash(db, seed=seed, at_sync=n, exit_code=77)
    try:
        with memtree.Store(db):
            if mode == "stranded":
                memtree._native.adopt_file(db, db + "-wal.unrecovered-1700000000000", False)
            outcome = "opened"
    except memtree.MemtreeError as e:
        outcome = f"{type(e).__name__}({e.name})"
    except BaseException as e:
        outcome = f"bare {type(e).__name__}: {e}"
    report = {"outcome": outcome, "fired": testing.faults_fired(db),
              "syncs": testing.crash_state(db)[1]}
    # No power loss: what is still pending reaches the disk, as it would.
    testing.disarm_crash(db)
    print(json.dumps({"child": report}), flush=True)

for seed in range(seeds):
    for n in range(1, 1000):
        case = os.path.join(work, f"s{seed}-n{n}")
        shutil.copytree(template, case)
        db = os.path.join(case, "chunks.db")
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            try:
                child(db, n, seed)
            finally:
                os._exit(0)
        status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        print(json.dumps({"seed": seed, "n": n, "exit": status, "db": db}), flush=True)
        if status != 77:
            break
"""


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], Rows]:
    """The WAL template (migration, recovery) and the stranded one: the same
    database with its -wal moved aside the way releases before the recovery
    protocol did (``<db>-wal.unrecovered-<ms>``)."""
    folder = tmp_path_factory.mktemp("template")
    committed = wal_only_template(folder / "chunks.db", tmp_path_factory.mktemp("template-checks"))
    stranded = tmp_path_factory.mktemp("stranded")
    shutil.copyfile(folder / "chunks.db", stranded / "chunks.db")
    shutil.copyfile(folder / "chunks.db-wal", stranded / "chunks.db-wal.unrecovered-1700000000000")
    return {"migration": folder, "recovery": folder, "stranded": stranded}, committed


def rows_outside_the_database(db: Path) -> bool:
    """Some rows are still only in a side file: a -wal with frames, a
    stranded -wal, or a bundle."""
    wal = db.with_name(db.name + "-wal")
    has_frames = wal.exists() and wal.stat().st_size > 0
    return has_frames or bool(legacy_stranded_wals(db) or unrecovered_bundles(db))


@pytest.mark.skipif(sys.platform == "win32", reason="fork")
@pytest.mark.parametrize("mode", ["migration", "recovery", "stranded"])
def test_power_loss_at_every_open_time_sync_keeps_every_row(
    templates: tuple[dict[str, Path], Rows], mode: str
) -> None:
    folders, committed = templates
    folder = folders[mode]
    seeds = 2 * SOAK_SCALE
    with ram_folder("memtree-open-crash-") as work:
        check_crash_points(folder, committed, work, mode, seeds)


def check_crash_points(folder: Path, committed: Rows, work: Path, mode: str, seeds: int) -> None:
    driver = subprocess.run(
        [sys.executable, "-c", DRIVER, str(folder), str(work), mode, str(seeds)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert driver.returncode == 0, driver.stderr
    lines = [json.loads(line) for line in driver.stdout.splitlines() if line.startswith("{")]
    points = [p for p in lines if "exit" in p]
    finals = [p["child"] for p in lines if "child" in p]
    crashes = in_window = 0
    failures: list[str] = []
    for point in points:
        db = Path(point["db"])
        where = f"seed {point['seed']}, sync {point['n']}"
        if point["exit"] == CRASH_EXIT:
            crashes += 1
            in_window += rows_outside_the_database(db)
        elif point["exit"] != 0:
            failures.append(f"{where}: the child died with {point['exit']}, not by power loss")
        scratch = db.parent.parent / (db.parent.name + "-check")
        problems = check_after_fault(
            db, committed, scratch, persistent=False, stranded_before=mode == "stranded"
        )
        reopened, reopen_problems = open_outcome(db)
        if reopened != "opened":
            problems.append(f"the fault-free reopen raised {reopened}")
        legacy = db.with_name(db.name + "-wal.unrecovered-1700000000000")
        if mode == "stranded" and legacy.exists():
            # Not merged yet: the explicit adoption, fault-free, finishes it.
            _native.adopt_file(db, legacy, False)
        problems += reopen_problems + check_after_clean_reopen(db, committed, scratch)
        failures += [f"{where}: {p}" for p in problems]
    # Each seed's loop ends with a run that saw every sync and did not crash.
    assert len(finals) == seeds, f"runs that completed: {finals}"
    for final in finals:
        assert final["outcome"] == "opened", final
        assert final["fired"] == (1 if mode == "recovery" else 0), final
    syncs = finals[0]["syncs"]
    assert syncs >= 3, f"the {mode} path synced only {syncs} times"
    assert crashes == sum(f["syncs"] for f in finals), "a power loss at every sync, every seed"
    # Some crashes must land while rows are still only in a side file, or the
    # loop never tested the window where a loss could happen.
    assert in_window > 0, "no power loss left rows outside the database file"
    print(
        f"{mode}: {crashes} crash points ({seeds} seeds, {syncs} syncs; "
        f"{in_window} left rows in a side file), {len(failures)} violations"
    )
    assert not failures, f"{len(failures)} contract violations:\n" + "\n".join(failures[:25])
