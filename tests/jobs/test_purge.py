"""`Jobs.purge`: finished jobs older than a cutoff go, in short transactions;
ready and running jobs never do, and a bad argument changes nothing. An I/O
error at any write or sync of the purge leaves every active job and a
prefix of the purge (whole transactions) in place, and a rerun finishes it."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import memtree
import pytest
from memtree import ResultCode, testing
from support import ram_folder

LEASE = timedelta(minutes=5)


def fill(store: memtree.Store, finished: int, ready_every: int = 10) -> tuple[set[str], str]:
    """`finished` done jobs with a ready job after every `ready_every`
    (interleaved, so every window of the purge holds both), one cancelled,
    and one running; returns the ready ids and the running id."""
    waiting: list[int] = []
    with store.jobs.batch() as b:
        for i in range(finished):
            b.enqueue("done", {"i": i})
            if i % ready_every == 0:
                waiting.append(b.enqueue("wait", {"i": i}, available_at=_far()))
    ready = {b.job_ids[k] or "" for k in waiting}
    while True:
        claimed = store.jobs.claim_many(1000, lease=LEASE, kinds=["done"])
        if not claimed:
            break
        store.jobs.mark_done_many(claimed)
    cancelled = store.jobs.enqueue("gone", {})
    assert cancelled is not None and store.jobs.cancel(cancelled)
    running = store.jobs.enqueue("busy", {})
    held = store.jobs.claim_next(lease=LEASE, kinds=["busy"])
    assert held is not None and held.id == running
    return ready, running


def _far() -> datetime:
    return datetime.now(timezone.utc) + timedelta(days=365)


def rows(db: Path) -> dict[str, str]:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return dict(conn.execute("SELECT id, status FROM mem_tree_jobs"))
    finally:
        conn.close()


def test_purge_deletes_only_finished_jobs_older_than_the_cutoff(tmp_path: Path) -> None:
    store = memtree.Store(tmp_path / "chunks.db")
    ready, running = fill(store, 300)
    assert store.jobs.purge(older_than=timedelta(hours=1)) == 0, "all finished just now"
    assert store.jobs.purge(older_than=datetime.now(timezone.utc) + timedelta(seconds=1)) == 301
    counts = store.jobs.counts()
    assert counts["done"] == counts["cancelled"] == 0
    assert counts["ready"] == len(ready) and counts["running"] == 1
    still = store.jobs.get(running)
    assert still is not None and still.status == "running"
    assert store.jobs.purge(older_than=timedelta(0)) == 0


def test_a_job_finished_at_the_cutoff_is_purged(tmp_path: Path) -> None:
    """The cutoff is inclusive: `older_than=timedelta(0)` takes a job finished
    within the same millisecond, and a datetime equal to a job's completion
    takes that job (both kept it when the boundary was strict)."""
    store = memtree.Store(tmp_path / "chunks.db")
    for _ in range(2):
        store.jobs.enqueue("extract", {})
    first, second = store.jobs.claim_many(2, lease=LEASE)
    store.jobs.mark_done(first)
    done = store.jobs.get(first.id)
    assert done is not None and done.completed_at is not None
    assert store.jobs.purge(older_than=done.completed_at - timedelta(milliseconds=1)) == 0
    assert store.jobs.purge(older_than=done.completed_at) == 1
    store.jobs.mark_done(second)
    assert store.jobs.purge(older_than=timedelta(0)) == 1
    store.close()


def test_purge_by_status(tmp_path: Path) -> None:
    store = memtree.Store(tmp_path / "chunks.db")
    fill(store, 20)
    later = datetime.now(timezone.utc) + timedelta(seconds=1)
    assert store.jobs.purge(older_than=later, statuses=["cancelled"]) == 1
    assert store.jobs.counts()["done"] == 20
    assert store.jobs.purge(older_than=later, statuses=("done", "done")) == 20


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"statuses": ["ready"]}, ValueError),
        ({"statuses": ["done", "running"]}, ValueError),
        ({"statuses": []}, ValueError),
        ({"statuses": ["finished"]}, ValueError),
        ({"statuses": "done"}, TypeError),
    ],
)
def test_bad_statuses_change_nothing(
    tmp_path: Path, kwargs: dict[str, object], error: type[Exception]
) -> None:
    db = tmp_path / "chunks.db"
    store = memtree.Store(db)
    fill(store, 5)
    before = rows(db)
    with pytest.raises(error, match="statuses"):
        store.jobs.purge(timedelta(0), **kwargs)  # type: ignore[arg-type]
    assert rows(db) == before


@pytest.mark.parametrize(
    ("older_than", "error"),
    [
        (timedelta(seconds=-1), ValueError),
        (datetime(2026, 1, 1), ValueError),  # naive
        (3600, TypeError),
    ],
)
def test_bad_cutoffs_change_nothing(tmp_path: Path, older_than: object, error: type) -> None:
    db = tmp_path / "chunks.db"
    store = memtree.Store(db)
    fill(store, 5)
    before = rows(db)
    with pytest.raises(error, match="older_than"):
        store.jobs.purge(older_than)  # type: ignore[arg-type]
    assert rows(db) == before


def test_enqueues_go_on_while_a_purge_runs(tmp_path: Path) -> None:
    """The purge commits many short transactions with the GIL released, so
    an enqueue in another thread is not held up until it ends. Up to three
    purges: a loaded machine may not schedule the enqueuing thread at all
    while one runs (0.6 s here), where a purge that held the write lock or
    the GIL throughout would let none through in any of them."""
    store = memtree.Store(tmp_path / "chunks.db")
    for _purge in range(3):
        during = _enqueues_during_a_purge(store)
        if during:
            break
    assert during, "no enqueue completed while any of three purges ran"
    assert store.jobs.counts()["ready"] >= len(during)
    print(f"{len(during)} enqueues during the purge, slowest {max(during) * 1000:.1f} ms")


def _enqueues_during_a_purge(store: memtree.Store) -> list[float]:
    """Purges 30,000 done jobs while another thread enqueues; the times of
    the enqueues that completed before the purge returned."""
    for start in range(0, 30_000, 1000):
        with store.jobs.batch() as b:
            for i in range(start, start + 1000):
                b.enqueue("done", {"i": i})
        claimed = store.jobs.claim_many(1000, lease=LEASE, kinds=["done"])
        store.jobs.mark_done_many(claimed)
    purging = threading.Event()
    finished = threading.Event()
    during: list[float] = []

    def enqueue_meanwhile() -> None:
        purging.wait()
        while not finished.is_set():
            started = time.monotonic()
            store.jobs.enqueue("new", {})
            if not finished.is_set():
                during.append(time.monotonic() - started)

    t = threading.Thread(target=enqueue_meanwhile)
    t.start()
    purging.set()
    deleted = store.jobs.purge(older_than=datetime.now(timezone.utc) + timedelta(seconds=1))
    finished.set()
    t.join()
    assert deleted == 30_000
    return during


@pytest.fixture
def work() -> Iterator[Path]:
    """Where the fault loops run: RAM-backed where possible (see
    ``ram_folder``); the injected faults sit above the file system, and on a
    disk the purges' fsyncs took the time."""
    with ram_folder("memtree-purge-faults-") as folder:
        yield folder


@pytest.mark.parametrize("persistent", [False, True])
@pytest.mark.parametrize("method", ["xWrite", "xSync"])
def test_a_fault_at_every_io_keeps_active_jobs_and_a_rerun_finishes(
    work: Path, method: testing.VfsMethod, persistent: bool
) -> None:
    tmp_path = work
    base = tmp_path / "base.db"
    with memtree.Store(base) as store:
        ready, running = fill(store, 1500)
    before = rows(base)
    finished = {i for i, s in before.items() if s in ("done", "cancelled")}
    cutoff = datetime.now(timezone.utc) + timedelta(seconds=1)
    fired_points = 0
    partial = 0
    for n in range(1, 2000):
        db = tmp_path / f"run-{n}.db"
        shutil.copy2(base, db)
        with memtree.Store(db) as store:
            testing.inject_fault(db, method, n, ResultCode.IOERR, persistent=persistent)
            try:
                store.jobs.purge(older_than=cutoff)
            except memtree.MemtreeError as e:
                assert e.code is not None
            fired = testing.clear_fault(db)
            seen = rows(db)
            # Active jobs all there and unchanged; only finished ones gone.
            assert {i: s for i, s in seen.items() if i not in finished} == {
                i: s for i, s in before.items() if i not in finished
            }, f"{method} fault at call {n}"
            partial += 0 < len(finished - seen.keys()) < len(finished)
            # A rerun finishes the purge.
            store.jobs.purge(older_than=cutoff)
            assert set(rows(db)) == ready | {running}
        db.unlink()
        Path(str(db) + "-journal").unlink(missing_ok=True)
        if fired == 0:
            break
        fired_points += 1
    else:
        pytest.fail(f"{method}: still firing at call 1999")
    assert fired_points >= 2, "the loop must have injected faults"
    if not persistent:
        assert partial >= 1, "a fault between two transactions left a prefix purged"
