"""Group commit (issue 14, item 3): concurrent write calls share commits.

Each call returns only once its own writes are durable; a call that fails
rolls back alone; a failed commit fails every call it carried. Proved here
with the VFS's counters (calls share commits, a lone call pays the usual
five syncs), SQLite's I/O-error loop over concurrent calls, and power loss
at every sync and write of a group commit, in child processes. The protocol
itself (order, isolation, a reader never seeing an uncommitted group) is
tested beside the code (``rust/db/group_commit.rs``, ``rust/db/store.rs``).

Every call writes several chunks, so a call partly present is detectable."""

from __future__ import annotations

import functools
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime, timedelta, timezone
from pathlib import Path

import memtree
import pytest
from memtree import ResultCode, testing
from support import (
    SOAK_SCALE,
    ChildRunner,
    child_runner,
    loop_over_fault_points,
    ram_folder,
    read_back,
    run_child,
)

BASE = datetime(2026, 11, 1, tzinfo=timezone.utc)
CHUNKS_PER_CALL = 3


def call_chunks(call: str) -> list[memtree.Chunk]:
    return [
        memtree.Chunk(
            f"{call}-{j}",
            f"group commit {call} {j} " * 10,
            "chat",
            "src",
            "alice",
            BASE + timedelta(seconds=j),
            seq_in_source=j,
        )
        for j in range(CHUNKS_PER_CALL)
    ]


def call_ids(call: str) -> set[str]:
    return {c.id for c in call_chunks(call)}


def run_concurrently(
    store: memtree.Store, threads: int, calls: int, tag: str, *, hold_first_group: bool = False
) -> dict[str, object]:
    """``threads`` threads, released together, each making ``calls``
    one-call upserts; returns each call's outcome: "ok" or the exception.
    With ``hold_first_group`` the first group stays open until every thread
    has made its first call (see :func:`hold_the_first_group_open`)."""
    start = threading.Barrier(threads)
    outcomes: dict[str, object] = {}
    calling = [threading.Event() for _ in range(threads)]

    def worker(t: int) -> None:
        start.wait()
        for k in range(calls):
            call = f"{tag}-t{t}-k{k}"
            calling[t].set()
            try:
                store.upsert_chunks(call_chunks(call))
                outcomes[call] = "ok"
            except Exception as e:  # not a MemtreeError: check_calls fails the test
                outcomes[call] = e

    workers = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    with hold_the_first_group_open(store.path, calling) if hold_first_group else nullcontext():
        for w in workers:
            w.start()
    for w in workers:
        w.join()
    assert len(outcomes) == threads * calls
    return outcomes


@contextmanager
def hold_the_first_group_open(db: Path, calling: list[threading.Event]) -> Iterator[None]:
    """Until every thread has set its ``calling`` event (just before its
    first call) the first group's leader meets BUSY at its lock (an injected
    fault, which the busy handler retries), so the other calls queue behind
    it and share its commit. Left to the scheduler, a loaded single core
    often ran every call alone (up to 190 commits for 200 calls here; every
    call alone in 30 runs of 30 of the crash loop's workload): a RAM disk's
    commit can end before the next thread arrives."""
    testing.inject_fault(db, "xLock", 1, ResultCode.BUSY, persistent=True)
    try:
        yield
        for event in calling:
            assert event.wait(60), "a thread never made its first call"
        # A few more of the leader's retries: the others, past their
        # events, reach the queue meanwhile.
        retries = testing.method_calls(db, "xLock") + 5
        deadline = time.monotonic() + 60  # a hang guard, not a measure
        while testing.method_calls(db, "xLock") < retries:
            assert time.monotonic() < deadline, "the first group's leader stopped retrying"
            time.sleep(0.0005)
    finally:
        testing.clear_fault(db)


def test_a_lone_writer_pays_one_commit_of_five_syncs_per_call(store: memtree.Store) -> None:
    store.upsert_chunks(call_chunks("warm-up"))
    testing.reset_io_stats(store.path)
    for i in range(10):
        store.upsert_chunks(call_chunks(f"lone-{i}"))
    stats = testing.io_stats(store.path)
    assert (stats["commits"], stats["committed_calls"], stats["largest_group"]) == (10, 10, 1)
    assert stats["commit_syncs"] == stats["syncs_total"] == 50
    assert (stats["failed_groups"], stats["rolled_back_calls"]) == (0, 0)


def test_eight_concurrent_writers_share_commits(store: memtree.Store) -> None:
    store.upsert_chunks(call_chunks("warm-up"))
    testing.reset_io_stats(store.path)
    outcomes = run_concurrently(store, threads=8, calls=25, tag="share", hold_first_group=True)
    assert set(outcomes.values()) == {"ok"}
    assert store.count_chunks() == (1 + 8 * 25) * CHUNKS_PER_CALL
    stats = testing.io_stats(store.path)
    assert stats["committed_calls"] == 200
    # Sharing: fewer commits than calls, and fewer syncs per call than the
    # five a commit of its own costs. Every commit still costs its five.
    assert stats["commits"] < 200 and 2 <= stats["largest_group"] <= 8, stats
    assert stats["commit_syncs"] == 5 * stats["commits"] == stats["syncs_total"], stats
    assert (stats["failed_groups"], stats["rolled_back_calls"]) == (0, 0)
    per_call = stats["commit_syncs"] / stats["committed_calls"]
    print(
        f"8 threads x 25 calls: {stats['commits']} commits, largest group "
        f"{stats['largest_group']}, {per_call:.2f} syncs per call"
    )


def test_a_limit_of_one_commits_every_call_alone(store: memtree.Store) -> None:
    previous = testing.set_group_commit_limit(1)
    try:
        assert previous == 64
        testing.reset_io_stats(store.path)
        outcomes = run_concurrently(store, threads=8, calls=5, tag="alone", hold_first_group=True)
    finally:
        assert testing.set_group_commit_limit(previous) == 1
    assert set(outcomes.values()) == {"ok"}
    stats = testing.io_stats(store.path)
    assert (stats["commits"], stats["committed_calls"], stats["largest_group"]) == (40, 40, 1)
    assert stats["commit_syncs"] == 5 * 40


@pytest.mark.parametrize("bad", [0, 65, -1, 2**70])
def test_group_commit_limit_out_of_range_is_a_value_error(bad: int) -> None:
    with pytest.raises(ValueError, match="calls"):
        testing.set_group_commit_limit(bad)
    assert testing.set_group_commit_limit(64) == 64, "unchanged"


@pytest.mark.parametrize("bad", [True, 2.0, "8", None])
def test_group_commit_limit_of_another_type_is_a_type_error(bad: object) -> None:
    with pytest.raises(TypeError, match="calls"):
        testing.set_group_commit_limit(bad)  # type: ignore[arg-type]
    assert testing.set_group_commit_limit(64) == 64, "unchanged"


def check_calls(db: Path, outcomes: dict[str, object]) -> tuple[int, int, int]:
    """Every call returned success and all its rows are there, or raised a
    memtree exception and none of its rows are there — with one exception
    SQLite makes: a commit's last step is syncing the truncated journal,
    after the database file holds the commit. If that sync fails, SQLite
    reports the error (a power loss could still bring the old journal back
    and undo the commit), while the live file keeps the rows. Then every
    call of that commit raised ``SQLITE_IOERR_FSYNC`` and has *all* its rows.
    No call is ever partly present. Integrity asserted.
    Returns (succeeded, failed with no rows, failed at the last sync)."""
    present = read_back(db)[1]
    ok = failed = late = 0
    for call, outcome in outcomes.items():
        mine = call_ids(call) & present
        if outcome == "ok":
            assert mine == call_ids(call), f"{call} acknowledged, rows missing: {mine}"
            ok += 1
            continue
        assert isinstance(outcome, memtree.MemtreeError), f"{call}: {outcome!r}"
        assert outcome.name.startswith("SQLITE_"), outcome
        if not mine:
            failed += 1
        else:
            assert mine == call_ids(call), f"{call} partly present: {sorted(mine)}"
            assert outcome.extended_code == ResultCode.IOERR_FSYNC, (
                f"{call} raised {outcome!r} but left its rows"
            )
            late += 1
    return ok, failed, late


FAULTS: list[tuple[testing.VfsMethod, int]] = [
    ("xWrite", ResultCode.IOERR_WRITE),
    ("xSync", ResultCode.IOERR_FSYNC),
    ("xTruncate", ResultCode.IOERR_TRUNCATE),
    ("xRead", ResultCode.IOERR_READ),
    ("xFileSize", ResultCode.IOERR_FSTAT),
    ("xOpen", ResultCode.CANTOPEN),
]


@pytest.mark.parametrize(("method", "code"), FAULTS, ids=[m for m, _ in FAULTS])
def test_io_error_loop_over_concurrent_calls(method: testing.VfsMethod, code: int) -> None:
    """For N = 1, 2, … until no fault fires, call N of ``method`` fails —
    once, or from then on — while 4 threads make 2 calls each."""
    points = largest = failed_calls = late_calls = 0
    with ram_folder("memtree-group-faults-") as folder:
        base = folder / "base.db"
        with memtree.Store(base) as store:
            store.upsert_chunks(call_chunks("base"))

        def run_point(persistent: bool, n: int) -> bool:
            nonlocal largest, failed_calls, late_calls
            db = folder / f"{method}-{persistent}-{n}.db"
            shutil.copyfile(base, db)
            with memtree.Store(db) as store:
                testing.inject_fault(db, method, n, code, persistent=persistent)
                try:
                    outcomes = run_concurrently(store, threads=4, calls=2, tag=f"n{n}")
                finally:
                    fired = testing.clear_fault(db)
                largest = max(largest, testing.io_stats(db)["largest_group"])
            ok, failed, late = check_calls(db, outcomes)
            if fired == 0:
                assert ok == len(outcomes), "no fault fired, yet a call failed"
                return False
            failed_calls += failed
            late_calls += late
            # A fault that fired failed at least one call, or SQLite
            # rode it out (e.g. a failed read it retried) and every
            # call's rows are there — both checked above.
            with memtree.Store(db) as store:  # and the file works on
                store.upsert_chunks(call_chunks("after"))
            assert call_ids("after") <= read_back(db)[1]
            db.unlink()
            return True

        for persistent in (False, True):
            fired_here = loop_over_fault_points(
                functools.partial(run_point, persistent), method, limit=10_000
            )
            assert fired_here >= 1, f"no {method} fault fired (persistent={persistent})"
            points += fired_here
    print(
        f"{method}: {points} fault points, {failed_calls} calls failed with no rows, "
        f"{late_calls} at the last sync with all rows, largest group {largest}"
    )
    assert points >= 2, "once and persistent each fired at least once"
    assert failed_calls > 0
    # Not asserted: that these faults met a shared commit. On a RAM disk a
    # commit can end before the next thread arrives, so how large a group
    # gets is left to the scheduler (4 in nearly every run here, 1 in one CI
    # run of xOpen's 16 points). test_eight_concurrent_writers_share_commits
    # holds grouping itself; the printed largest group shows what this run met.


CRASH_EXIT = 77

GROUP_UNDER_CRASH = """
import threading, time
db, n, seed, point = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
THREADS, CALLS = 6, 2

def call_chunks(call):
    return [memtree.Chunk(f"{call}-{j}", f"group commit {call} {j} " * 10, "chat", "src",
                          "alice", BASE + timedelta(seconds=j), seq_in_source=j)
            for j in range(3)]

store = memtree.Store(db)
if point == "sync":
    testing.arm_crash(db, seed=seed, at_sync=n, exit_code=77)
else:
    testing.arm_crash(db, seed=seed, at_write=n, exit_code=77)
start = threading.Barrier(THREADS)
out = threading.Lock()  # one whole line per acknowledgement
# The first group is held open until every thread has made its first call:
# its leader's lock meets BUSY (an injected fault, retried by the busy
# handler) meanwhile, so the others queue behind it and share its commit.
# Left to the scheduler, a loaded single core ran every call alone (30 runs
# of 30), as a RAM disk's commit ends before the next thread arrives.
testing.inject_fault(db, "xLock", 1, memtree.ResultCode.BUSY, persistent=True)
calling = [threading.Event() for _ in range(THREADS)]

def worker(t):
    start.wait()
    for k in range(CALLS):
        call = f"c-t{t}-k{k}"
        calling[t].set()
        store.upsert_chunks(call_chunks(call))
        with out:  # acknowledged: the call returned. One write per line: a
            sys.stdout.write(f"ack {call}\\n")  # crash must not cut it up
            sys.stdout.flush()

workers = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
for w in workers:
    w.start()
for event in calling:
    event.wait()
# A few more of the leader's retries: the others, past their flags, queue.
retries = testing.method_calls(db, "xLock") + 5
while testing.method_calls(db, "xLock") < retries:
    time.sleep(0.0005)
testing.clear_fault(db)
for w in workers:
    w.join()
print("completed", testing.io_stats(db)["largest_group"], flush=True)
"""

CRASH_CALLS = [f"c-t{t}-k{k}" for t in range(6) for k in range(2)]


def crash_outcome(db: Path, stdout: str) -> tuple[set[str], set[str]]:
    """(acknowledged calls, calls whose rows are present); asserts integrity
    and that no call is partly present."""
    acked = {line[4:] for line in stdout.splitlines() if line.startswith("ack c-")}
    assert acked <= set(CRASH_CALLS), acked
    present_rows = read_back(db)[1]
    present = set()
    for call in CRASH_CALLS:
        mine = call_ids(call) & present_rows
        assert mine in (set(), call_ids(call)), f"{call} partly present: {sorted(mine)}"
        if mine:
            present.add(call)
    return acked, present


@pytest.mark.parametrize("point", ["sync", "write"])
def test_power_loss_during_group_commits_keeps_every_acknowledged_call(
    point: str,
) -> None:
    """Six threads, two 3-chunk calls each; power is lost at sync (or write)
    N, for every N until the run completes: every acknowledged call's rows
    are present, and no call is partly present. The runs are forks of one
    process that imported memtree once (``child_runner``), in a RAM folder
    (the crash simulation drops writes above the file system)."""
    with ram_folder("memtree-group-crash-") as work, child_runner(work) as run:
        power_loss_loop(work, run, point)


def power_loss_loop(tmp_path: Path, run: ChildRunner, point: str) -> None:
    base = tmp_path / "base.db"
    out = run_child("memtree.Store(sys.argv[1]).upsert_chunks([chunk(0)])\n", str(base))
    assert out.returncode == 0, out.stderr
    crashes = acked_total = 0
    seeds = range(2 * SOAK_SCALE) if point == "sync" else range(SOAK_SCALE)
    # A run writes ~150 times: every write point soaks; CI takes every 3rd.
    step = 1 if point == "sync" or SOAK_SCALE > 1 else 3
    completed_groups = []
    for seed in seeds:
        for n in range(1, 2_000, step):
            db = tmp_path / f"crash-{point}-{seed}-{n}.db"
            shutil.copy2(base, db)
            result = run(GROUP_UNDER_CRASH, str(db), str(n), str(seed), point)
            acked, present = crash_outcome(db, result.stdout)
            assert acked <= present, f"{point} {n}, seed {seed}: lost {acked - present}"
            if result.returncode == 0:
                assert present == set(CRASH_CALLS)
                completed_groups.append(int(result.stdout.split("completed")[1]))
                break
            assert result.returncode == CRASH_EXIT, result.stderr
            crashes += 1
            acked_total += len(acked)
            db.unlink()
        else:
            pytest.fail("the run never completed")
    print(
        f"power loss at {point}: {crashes} crash points, {acked_total} acknowledged "
        f"calls at crash time, 0 lost, 0 partly present; largest groups {completed_groups}"
    )
    assert crashes >= 10
    assert acked_total > 0, "some crashes came after acknowledged calls"
    assert max(completed_groups) >= 2, "calls shared commits"
