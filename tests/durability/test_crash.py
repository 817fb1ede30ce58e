"""Power loss and process kills, in child processes.

Power loss is simulated by memtree's VFS in the manner of SQLite's crash
tests: unsynced writes stay pending; at the Nth sync each pending write is
written, dropped or torn sector by sector at random, and the child exits at
once. The parent then reopens: integrity must be ok and the content must equal
the state before or after the interrupted commit. The harness's ability to
catch loss is shown in the Rust tests (`synchronous=OFF` control)."""

from __future__ import annotations

import functools
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest
from reference_db import create_reference_db
from support import (
    CHILD_PRELUDE,
    SOAK_SCALE,
    ChildRunner,
    child_runner,
    chunk_ids,
    content_digest,
    loop_over_fault_points,
    ram_folder,
    read_back,
    run_child,
)

CRASH_EXIT = 77


@pytest.fixture
def work() -> Iterator[Path]:
    """Where the power-loss loops run: RAM-backed where possible (see
    ``ram_folder``). The crash simulation keeps and drops writes in the VFS,
    above the file system; on a disk the children's real fsyncs (some 46
    per WAL migration) took the time."""
    with ram_folder("memtree-crash-") as folder:
        yield folder


@pytest.fixture
def run(work: Path) -> Iterator[ChildRunner]:
    """``run_child``, forked from one process that imported memtree once
    (``support.child_runner``): a crash point costs a fork, not a start."""
    outputs = work / "outputs"
    outputs.mkdir()
    with child_runner(outputs) as runner:
        yield runner


INGEST_UNDER_CRASH = """
db, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = memtree.Store(db)
testing.arm_crash(db, seed=seed, at_sync=n, exit_code=77)
store.upsert_chunks([chunk(i, "rewritten " * 30) for i in range(20, 70)])
print("completed", testing.crash_state(db)[1], flush=True)
"""


def build_base(path: Path) -> None:
    out = run_child(
        "store = memtree.Store(sys.argv[1])\nstore.upsert_chunks([chunk(i) for i in range(40)])\n",
        str(path),
    )
    assert out.returncode == 0, out.stderr


def expected_after(base: Path, work: Path) -> str:
    """The content after the ingest commit: the same child, never crashing
    (a plan armed at sync 0 never fires)."""
    target = work / "after.db"
    shutil.copy2(base, target)
    out = run_child(INGEST_UNDER_CRASH, str(target), "0", "0")
    assert out.returncode == 0, out.stderr
    return content_digest(target)


def lost_power(result: subprocess.CompletedProcess[str]) -> bool:
    """Whether the child lost power (exited ``CRASH_EXIT``) rather than
    completing; any other ending fails the test."""
    if result.returncode == 0:
        return False
    assert result.returncode == CRASH_EXIT, result.stderr
    return True


def power_loss_points(seeds: int, crash_at: Callable[[int, int], bool]) -> int:
    """For each seed, the crash loop (``support.loop_over_fault_points``):
    ``crash_at(seed, n)`` runs the path losing power at sync N, for N = 1,
    2, … until a run completes, checks the invariant and returns whether
    the power was lost. Returns the crash points of every seed."""
    return sum(
        loop_over_fault_points(
            functools.partial(crash_at, seed), f"power loss, seed {seed}", limit=100
        )
        for seed in range(seeds)
    )


def test_power_loss_during_ingest_keeps_before_or_after(work: Path, run: ChildRunner) -> None:
    base = work / "base.db"
    build_base(base)
    before, after = content_digest(base), expected_after(base, work)
    outcomes_after = 0

    def crash_at(seed: int, n: int) -> bool:
        nonlocal outcomes_after
        db = work / f"crash-{seed}-{n}.db"
        shutil.copy2(base, db)
        result = run(INGEST_UNDER_CRASH, str(db), str(n), str(seed))
        if not lost_power(result):
            assert "completed" in result.stdout
            assert content_digest(db) == after
            return False
        digest = content_digest(db)  # asserts integrity_check == ok
        assert digest in {before, after}, f"seed {seed}, crash at sync {n}"
        outcomes_after += digest == after
        return True

    crashes = power_loss_points(3 * SOAK_SCALE, crash_at)
    print(f"power-loss points: {crashes}, after-state outcomes: {outcomes_after}")
    assert crashes >= 3 * SOAK_SCALE * 4, "every sync of the commit is a crash point"


MIGRATE_UNDER_CRASH = """
db, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
testing.arm_crash(db, seed=seed, at_sync=n, exit_code=77)
store = memtree.Store(db)
print("completed", store.journal_mode, flush=True)
"""


def test_power_loss_during_wal_migration_loses_no_row(work: Path, run: ChildRunner) -> None:
    source = work / "source" / "chunks.db"
    source.parent.mkdir()
    ids = set(create_reference_db(source, chunks=12, wal_frames_only=5))

    def crash_at(seed: int, n: int) -> bool:
        case = work / f"m-{seed}-{n}"
        case.mkdir()
        for f in source.parent.iterdir():
            shutil.copy2(f, case / f.name)
        db = case / "chunks.db"
        result = run(MIGRATE_UNDER_CRASH, str(db), str(n), str(seed))
        if not lost_power(result):
            assert "completed truncate" in result.stdout
            assert chunk_ids(db) == ids
            return False
        # Integrity ok, reading through any -wal left behind.
        assert chunk_ids(db) == ids, f"rows lost: seed {seed}, sync {n}"
        return True

    crashes = power_loss_points(2 * SOAK_SCALE, crash_at)
    print(f"migration crash points: {crashes}")
    assert crashes >= 2 * SOAK_SCALE * 3, "power must be lost at several syncs of every seed"
    assert crashes >= 2


KILLABLE_INGEST = """
db, i = sys.argv[1], int(sys.argv[2])
store = memtree.Store(db)
while True:
    store.upsert_chunks([chunk(i)])
    print(f"chunk-{i:05d}", flush=True)  # acknowledged only after the commit
    i += 1
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_sigkill_never_loses_an_acknowledged_row(tmp_path: Path) -> None:
    db = tmp_path / "kill.db"
    rng = random.Random(20261125)
    kills = 0
    acked: set[str] = set()
    for round_no in range(4 * SOAK_SCALE):
        # Each round writes rows of its own: a row an earlier round had
        # already committed would be present whether or not this round's
        # acknowledged commit of it survived.
        first_row = str(round_no * 100_000)
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD_PRELUDE + KILLABLE_INGEST, str(db), first_row],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        # Two acknowledged commits before the kill's random moment, so every
        # round has rows to lose even when a loaded machine does not
        # schedule the child again before the kill (the check below used to
        # need some round to get past row 4 in its sleep).
        first = child.stdout.readline() + child.stdout.readline()
        time.sleep(rng.uniform(0.02, 0.3))
        os.kill(child.pid, signal.SIGKILL)
        rest = child.stdout.read()
        # The kill really landed: the child did not end any other way.
        assert child.wait() == -signal.SIGKILL
        child.stdout.close()
        kills += 1
        acked |= {line for line in (first + rest).split() if line}
        present = chunk_ids(db)  # integrity ok
        assert acked <= present, f"lost: {sorted(acked - present)[:5]}"
    print(f"kills: {kills}, acknowledged rows: {len(acked)}, lost: 0")
    assert kills == 4 * SOAK_SCALE and len(acked) >= 2 * kills


CONCURRENT_WRITER = """
db, offset = sys.argv[1], int(sys.argv[2])
store = memtree.Store(db)
for i in range(offset, offset + 150):
    store.upsert_chunks([chunk(i)])
print("done", flush=True)
"""


def test_two_processes_writing_one_file_lose_nothing(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    build_base(db)  # 40 rows, schema in place
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD_PRELUDE + CONCURRENT_WRITER, str(db), str(offset)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for offset in (1_000, 2_000)
    ]
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0 and "done" in out, err
    ids = chunk_ids(db)  # integrity ok
    assert len(ids) == 40 + 300


SETTLE_UNDER_CRASH = """
db, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = memtree.Store(db)
job = store.jobs.claim_next()
assert job is not None
testing.arm_crash(db, seed=seed, at_sync=n, exit_code=77)
store.jobs.mark_done(job)
print("completed", flush=True)
"""


def job_status(db: Path, job_id: str) -> tuple[str, int]:
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        row = conn.execute(
            "SELECT status, attempts FROM mem_tree_jobs WHERE id = ?", (job_id,)
        ).fetchone()
        return str(row[0]), int(row[1])
    finally:
        conn.close()


def test_power_loss_during_a_job_settle_keeps_before_or_after(work: Path, run: ChildRunner) -> None:
    base = work / "jobs.db"
    out = run_child(
        "store = memtree.Store(sys.argv[1])\n"
        "print(store.jobs.enqueue('summarise', {'source': 's1'}, dedupe_key='s1'))\n",
        str(base),
    )
    assert out.returncode == 0, out.stderr
    job_id = out.stdout.strip()

    def crash_at(seed: int, n: int) -> bool:
        db = work / f"settle-{seed}-{n}.db"
        shutil.copy2(base, db)
        result = run(SETTLE_UNDER_CRASH, str(db), str(n), str(seed))
        if not lost_power(result):
            assert job_status(db, job_id) == ("done", 1)
            return False
        read_back(db)  # integrity ok
        # Before the settle the claim had committed (running, attempt 1);
        # after it, done. Nothing in between, nothing lost.
        assert job_status(db, job_id) in {("running", 1), ("done", 1)}
        return True

    crashes = power_loss_points(3 * SOAK_SCALE, crash_at)
    print(f"job-settle crash points: {crashes}")
    assert crashes >= 3 * SOAK_SCALE * 4
