"""Settle and claim the next job in one commit: ``Jobs.mark_done_and_claim_next``
and ``Jobs.mark_failed_and_claim_next``, and the worker that uses them."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import memtree
import pytest
from memtree import ResultCode, testing
from memtree.aio import AsyncStore
from support import SOAK_SCALE, ram_folder

LEASE = timedelta(minutes=1)
PAST = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _enqueue_script(store: memtree.Store) -> None:
    with store.jobs.batch() as b:
        for i in range(12):
            b.enqueue("xyz"[i % 3], {"i": i}, available_at=PAST, max_attempts=2)


def _rows(store: memtree.Store) -> list[tuple[str, object, str, int, str | None]]:
    return [
        (j.kind, j.payload, str(j.status), j.attempts, j.last_error)
        for j in store.jobs.list(limit=100)
    ]


@pytest.mark.parametrize("priorities", [None, {"y": 5}])
def test_results_equal_settle_then_claim(tmp_path: Path, priorities: dict[str, int] | None) -> None:
    """The same jobs and outcomes through both paths end in the same rows
    (but for the random ids and tokens) and were claimed in the same order."""

    def run(combined: bool) -> tuple[list[object], list[Any]]:
        with memtree.Store(tmp_path / f"combined-{combined}.db") as store:
            _enqueue_script(store)
            jobs, kinds = store.jobs, ["x", "y"]
            order: list[object] = []
            job = jobs.claim_next(LEASE, kinds, priorities)
            while job is not None:
                order.append(job.payload)
                fail = len(order) % 3 == 2
                if combined and fail:
                    status, job = jobs.mark_failed_and_claim_next(
                        job, "boom", LEASE, kinds, priorities
                    )
                    assert status is memtree.JobStatus.READY
                elif combined:
                    job = jobs.mark_done_and_claim_next(job, LEASE, kinds, priorities)
                else:
                    if fail:
                        jobs.mark_failed(job, "boom")
                    else:
                        jobs.mark_done(job)
                    job = jobs.claim_next(LEASE, kinds, priorities)
            return order, _rows(store)

    combined, separate = run(True), run(False)
    assert len(combined[0]) == 8, "every x and y job was claimed once"
    assert combined == separate


def test_a_lost_lease_settles_and_claims_nothing(store: memtree.Store) -> None:
    jobs = store.jobs
    jobs.enqueue("k", 1)
    jobs.enqueue("k", 2)
    first = jobs.claim_next(timedelta(milliseconds=1))
    assert first is not None
    time.sleep(0.01)
    assert jobs.recover_stale_locks() == 1
    before = _rows(store)
    with pytest.raises(memtree.LeaseLostError):
        jobs.mark_done_and_claim_next(first)
    with pytest.raises(memtree.LeaseLostError):
        jobs.mark_failed_and_claim_next(first, "boom")
    assert _rows(store) == before, "nothing settled, nothing claimed"
    assert jobs.counts()["running"] == 0


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"lease": 5}, TypeError),
        ({"lease": timedelta(0)}, ValueError),
        ({"lease": timedelta.max}, ValueError),
        ({"kinds": "k"}, TypeError),
        ({"kinds": [1]}, TypeError),
        ({"priorities": {"k": "high"}}, TypeError),
        ({"priorities": {"": 1}}, ValueError),
        ({"priorities": {f"k{i}": 1 for i in range(300)}}, ValueError),
    ],
)
def test_bad_claim_arguments_settle_nothing(
    db_path: Path, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with memtree.Store(db_path) as store:
        store.jobs.enqueue("k", 1)
        store.jobs.enqueue("k", 2)
        job = store.jobs.claim_next(LEASE)
        assert job is not None
        digest = (db_path.read_bytes(), _rows(store))
        with pytest.raises(error):
            store.jobs.mark_done_and_claim_next(job, **kwargs)
        with pytest.raises(error):
            store.jobs.mark_failed_and_claim_next(job, "boom", **kwargs)
        with pytest.raises(TypeError):
            store.jobs.mark_failed_and_claim_next(job, 42)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            store.jobs.mark_done_and_claim_next("job:x")  # type: ignore[arg-type]
        assert (db_path.read_bytes(), _rows(store)) == digest


def test_no_kinds_settles_and_claims_nothing_and_the_last_job_returns_none(
    store: memtree.Store,
) -> None:
    jobs = store.jobs
    first, second = jobs.enqueue("k", 1), jobs.enqueue("k", 2)
    job = jobs.claim_next()
    assert job is not None and job.id == first
    assert jobs.mark_done_and_claim_next(job, kinds=[]) is None
    assert [j.status for j in (jobs.get(first), jobs.get(second)) if j] == ["done", "ready"]
    job = jobs.claim_next()
    assert job is not None and job.id == second
    status, nxt = jobs.mark_failed_and_claim_next(job, "boom")
    assert (status, nxt) == (memtree.JobStatus.READY, None), "backing off: nothing to claim"


def test_async_face(db_path: Path) -> None:
    async def main() -> list[object]:
        async with AsyncStore.connect(db_path) as store:
            for i in range(3):
                await store.jobs.enqueue("k", i)
            job = await store.jobs.claim_next()
            assert job is not None
            seen = [job.payload]
            status, job = await store.jobs.mark_failed_and_claim_next(job, "boom", kinds=["k"])
            assert status == "ready" and job is not None
            seen.append(job.payload)
            job = await store.jobs.mark_done_and_claim_next(job, priorities={"k": 1})
            assert job is not None
            seen.append(job.payload)
            assert await store.jobs.mark_done_and_claim_next(job) is None
            return seen

    assert asyncio.run(main()) == [0, 1, 2]


# --- the combined write under I/O faults ---------------------------------------

# Every VFS method a TRUNCATE-journal commit calls (xDelete and
# xCheckReservedLock are not called by one; the xShm* methods only in WAL).
FAULT_METHODS: list[testing.VfsMethod] = [
    "xWrite",
    "xSync",
    "xRead",
    "xTruncate",
    "xFileSize",
    "xOpen",
    "xClose",
    "xLock",
    "xUnlock",
    "xAccess",
]


def _states(db: Path, ids: tuple[str, str]) -> tuple[str, str]:
    """The statuses of the settled job and the next one, read the way any
    reader would (a hot journal rolled back first), integrity checked."""
    conn = sqlite3.connect(db)
    try:
        assert [r[0] for r in conn.execute("PRAGMA integrity_check")] == ["ok"]
        got = dict(
            conn.execute("SELECT id, status FROM mem_tree_jobs WHERE id IN (?, ?)", ids).fetchall()
        )
    finally:
        conn.close()
    return got[ids[0]], got[ids[1]]


Combined = Callable[[memtree.Jobs, memtree.Job], object]

SETTLES: dict[str, tuple[Combined, str]] = {
    "done": (lambda jobs, job: jobs.mark_done_and_claim_next(job), "done"),
    "failed": (lambda jobs, job: jobs.mark_failed_and_claim_next(job, "boom"), "ready"),
}


@pytest.mark.parametrize("settle", sorted(SETTLES))
@pytest.mark.parametrize("persistent", [False, True])
@pytest.mark.parametrize("method", FAULT_METHODS)
def test_a_fault_in_the_combined_write_commits_both_or_neither(
    method: testing.VfsMethod, persistent: bool, settle: str
) -> None:
    """Every call of ``method`` during the combined write fails in turn,
    once or from then on, until a run meets no fault: afterwards the
    settle and the claim are both committed or both absent, a call that
    returned committed both, and the loop really fired."""
    combine, settled_status = SETTLES[settle]
    with ram_folder("memtree-settle-claim-") as folder:
        base = folder / "base.db"
        with memtree.Store(base) as store:
            _enqueue_script(store)
            job = store.jobs.claim_next(LEASE, ["x"])
            assert job is not None
            # The claim takes any kind: the oldest ready job.
            nxt = store.jobs.list(status="ready", limit=1)[0]
        ids = (job.id, nxt.id)
        before, after = ("running", "ready"), (settled_status, "running")
        assert _states(base, ids) == before
        fired_points = 0
        for n in range(1, 2_000 * SOAK_SCALE):
            db = folder / f"run-{n}.db"
            shutil.copy2(base, db)
            returned = False
            with memtree.Store(db) as store:
                testing.inject_fault(db, method, n, ResultCode.IOERR, persistent=persistent)
                try:
                    combine(store.jobs, job)
                    returned = True
                except memtree.MemtreeError:
                    pass
                fired = testing.clear_fault(db)
            state = _states(db, ids)
            assert state in (before, after), f"{method} fault at call {n}: {state}"
            if returned:
                assert state == after, f"{method} fault at call {n}: returned but {state}"
            for p in folder.glob(db.name + "*"):
                p.unlink()
            if fired == 0:
                assert returned and state == after, "the fault-free run commits both"
                break
            fired_points += 1
        else:
            pytest.fail(f"{method}: the loop never reached a call that does not fire")
    print(f"{method} persistent={persistent} {settle}: {fired_points} fault points")
    assert fired_points >= 1, "the loop must have injected at least one fault"


# --- the worker ------------------------------------------------------------------


def test_worker_steady_state_is_two_commits_a_job(db_path: Path) -> None:
    """Each job costs its enqueue and one commit that settles it and claims
    the next (the first claim is the only other), counted in syncs."""
    n = 10
    with memtree.Store(db_path) as store:
        jobs = store.jobs
        jobs.enqueue("probe", 0)
        probe = jobs.claim_next()
        assert probe is not None
        testing.reset_io_stats(db_path)
        jobs.mark_done(probe)
        per_commit = testing.io_stats(db_path)["syncs_total"]
        assert per_commit >= 1
        with store.jobs.batch() as b:
            for i in range(n):
                b.enqueue("k", i)
        done = threading.Event()
        handled: list[object] = []

        def handler(job: memtree.Job) -> None:
            handled.append(job.payload)
            if len(handled) == n:
                done.set()

        testing.reset_io_stats(db_path)
        # One thread and a lease far longer than the test: no heartbeat commit.
        with memtree.Worker(store, {"k": handler}, concurrency=1, lease=timedelta(hours=1)):
            assert done.wait(60)
            deadline = time.monotonic() + 60
            while store.jobs.counts()["done"] < n + 1:
                assert time.monotonic() < deadline
                time.sleep(0.01)
        syncs = testing.io_stats(db_path)["syncs_total"]
    assert handled == list(range(n))
    # The first claim, then one commit per job (its settle claims the next).
    assert syncs == per_commit * (n + 1), (syncs, per_commit)
