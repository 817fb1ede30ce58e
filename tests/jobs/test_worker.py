"""The worker: outcomes, wake-ups, graceful stop, at-least-once across a
killed process, exclusive execution under contention, loop back-off."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import memtree
import pytest
from memtree import ResultCode, testing

WAIT = 60.0  # a generous upper bound for events, never a speed assertion


def wait_until(predicate: object, timeout: float = WAIT) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def run_child(script: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), *args])


@pytest.fixture
def quiet_worker_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.INFO, logger="memtree.worker")
    yield caplog


def test_outcomes_done_failed_with_causes_and_deferred(store: memtree.Store) -> None:
    def ok(job: memtree.Job) -> None:
        assert job.payload == {"n": 1}

    def broken(job: memtree.Job) -> None:
        try:
            raise KeyError("missing chunk")
        except KeyError as e:
            raise RuntimeError("summary failed") from e

    def later(job: memtree.Job) -> memtree.Defer:
        return memtree.Defer(timedelta(hours=1), "quota")

    def later_raised(job: memtree.Job) -> None:
        raise memtree.Defer(timedelta(hours=1), "quota raised")

    handlers = {"ok": ok, "broken": broken, "later": later, "later_raised": later_raised}
    ids = {kind: store.jobs.enqueue(kind, {"n": 1}) for kind in handlers}
    worker = memtree.Worker(store, handlers)
    processed = [worker.run_once() for _ in range(4)]
    assert all(j is not None for j in processed)
    assert worker.run_once() is None

    def row(kind: str) -> memtree.Job:
        job = store.jobs.get(ids[kind] or "")
        assert job is not None
        return job

    assert row("ok").status == "done"
    failed = row("broken")
    assert (failed.status, failed.attempts) == ("ready", 1)
    assert failed.last_error == (
        "RuntimeError: summary failed\ncaused by: KeyError: 'missing chunk'"
    )
    for kind, reason in [("later", "quota"), ("later_raised", "quota raised")]:
        deferred = row(kind)
        assert (deferred.status, deferred.attempts) == ("ready", 0)
        # As OpenHuman's mark_deferred: the reason as given, no start time.
        assert deferred.last_error == reason and deferred.started_at is None


def test_an_invalid_deferral_is_a_failed_attempt(store: memtree.Store) -> None:
    job_id = store.jobs.enqueue("k", {})
    naive = datetime(2030, 1, 1)
    memtree.Worker(store, {"k": lambda job: memtree.Defer(naive, "oops")}).run_once()
    row = store.jobs.get(job_id or "")
    assert row is not None and (row.status, row.attempts) == ("ready", 1)
    assert row.last_error is not None and "naive" in row.last_error


def test_describe_error_walks_implicit_context() -> None:
    try:
        try:
            raise ValueError("inner")
        except ValueError:
            raise OSError("outer")  # noqa: B904
    except OSError as e:
        assert memtree.worker.describe_error(e) == ("OSError: outer\ncaused by: ValueError: inner")


def test_only_handled_kinds_are_claimed(store: memtree.Store) -> None:
    store.jobs.enqueue("other", {})
    worker = memtree.Worker(store, {"mine": lambda job: None})
    assert worker.run_once() is None
    assert store.jobs.counts()["ready"] == 1


def test_enqueue_in_process_wakes_an_idle_worker_at_once(store: memtree.Store) -> None:
    done = threading.Event()
    # A poll interval far beyond the wait below: only the wake-up can explain
    # the job running in time.
    with memtree.Worker(store, {"k": lambda job: done.set()}, poll_interval=3600):
        time.sleep(0.2)  # let every thread go idle
        store.jobs.enqueue("k", {})
        assert done.wait(WAIT)
        # Cleared before the enqueue: the job may run (and set it) before the
        # batch's `with` has even returned here, as the worker's settle of
        # the first job can share the batch's commit and claim the second.
        done.clear()
        with store.jobs.batch() as b:
            b.enqueue("k", {})
        assert done.wait(WAIT)


def test_other_processes_work_is_found_by_polling(store: memtree.Store) -> None:
    done = threading.Event()
    with memtree.Worker(store, {"k": lambda job: done.set()}, poll_interval=0.1):
        time.sleep(0.2)
        child = run_child(
            """
            import sys, memtree
            with memtree.Store(sys.argv[1]) as s:
                s.jobs.enqueue("k", {"from": "child"})
            """,
            str(store.path),
        )
        assert child.wait(WAIT) == 0
        assert done.wait(WAIT)


def test_stop_hands_running_jobs_back(
    store: memtree.Store, quiet_worker_logs: pytest.LogCaptureFixture
) -> None:
    started, release = threading.Event(), threading.Event()

    def stuck(job: memtree.Job) -> None:
        started.set()
        release.wait(WAIT)

    job_id = store.jobs.enqueue("k", {})
    worker = memtree.Worker(store, {"k": stuck}, concurrency=1)
    worker.start()
    assert started.wait(WAIT)
    assert worker.stop(timeout=0.1) == 1
    row = store.jobs.get(job_id or "")
    assert row is not None and (row.status, row.attempts) == ("ready", 0)
    release.set()
    # The stray handler's settle is refused: its lease was handed back.
    wait_until(lambda: "lease lost" in quiet_worker_logs.text)
    row = store.jobs.get(job_id or "")
    assert row is not None and row.status == "ready"


def test_heartbeat_keeps_a_long_job_leased(store: memtree.Store) -> None:
    finished = threading.Event()
    recovered: list[int] = []

    def long_job(job: memtree.Job) -> None:
        deadline = time.monotonic() + 3.5
        while time.monotonic() < deadline:
            time.sleep(0.1)
            recovered.append(store.jobs.recover_stale_locks())
        finished.set()

    job_id = store.jobs.enqueue("k", {})
    with memtree.Worker(store, {"k": long_job}, concurrency=1, lease=timedelta(seconds=3)):
        assert finished.wait(WAIT)
        wait_until(lambda: store.jobs.counts()["done"] == 1)
    row = store.jobs.get(job_id or "")
    assert row is not None and row.attempts == 1
    assert sum(recovered) == 0


KILLED_CHILD = """
    import sys, time, pathlib, memtree
    from datetime import datetime, timedelta

    def handler(job):
        pathlib.Path(sys.argv[2]).write_text(job.id)
        time.sleep(3600)

    store = memtree.Store(sys.argv[1])
    memtree.Worker(store, {"k": handler}, concurrency=1, lease=timedelta(seconds=1)).start()
    time.sleep(3600)
"""


@pytest.mark.posix_only  # SIGKILL
def test_at_least_once_when_the_worker_process_is_killed(
    store: memtree.Store, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    job_id = store.jobs.enqueue("k", {"important": True})
    child = run_child(KILLED_CHILD, str(store.path), str(marker))
    try:
        # write_text creates the file before it writes: wait for the id.
        wait_until(lambda: marker.exists() and marker.read_text() != "")
        assert marker.read_text() == job_id
        running = store.jobs.get(job_id or "")
        assert running is not None and running.status == "running"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(WAIT)
    if sys.platform == "linux":
        # The holder is provably dead: taken back at once (tests/test_leases.py).
        assert store.jobs.recover_stale_locks() == 1
    else:
        assert store.jobs.claim_next() is None, "leased to the dead worker until it expires"
        wait_until(lambda: store.jobs.recover_stale_locks() == 1)
    ran: list[str] = []
    worker = memtree.Worker(store, {"k": lambda job: ran.append(job.id)})
    again = worker.run_once()
    assert again is not None and again.attempts == 2
    assert ran == [job_id]
    row = store.jobs.get(job_id or "")
    assert row is not None and row.status == "done"
    assert store.check(full=True) == ["ok"]


CONTENDING_CHILD = """
    import json, sys, threading, time, memtree

    records, lock = [], threading.Lock()

    def handler(job):
        start = time.monotonic_ns()
        time.sleep(0.001)
        with lock:
            records.append((job.id, start, time.monotonic_ns()))

    store = memtree.Store(sys.argv[1])
    with memtree.Worker(store, {"work": handler}, concurrency=2, poll_interval=0.05):
        while True:
            counts = store.jobs.counts()
            if counts["ready"] == 0 and counts["running"] == 0:
                break
            time.sleep(0.2)
    with open(sys.argv[2], "w") as f:
        json.dump(records, f)
"""


def test_no_job_runs_twice_at_once_under_threads_and_processes(
    store: memtree.Store, tmp_path: Path
) -> None:
    n = 1000
    with store.jobs.batch() as b:
        for i in range(n):
            b.enqueue("work", {"i": i})
    ids = set(b.job_ids)
    records: list[tuple[str, int, int]] = []
    lock = threading.Lock()

    def handler(job: memtree.Job) -> None:
        start = time.monotonic_ns()
        time.sleep(0.001)
        with lock:
            records.append((job.id, start, time.monotonic_ns()))

    outs = [tmp_path / f"child-{i}.json" for i in range(2)]
    children = [run_child(CONTENDING_CHILD, str(store.path), str(out)) for out in outs]
    # The children are claiming before this process joins in.
    wait_until(lambda: store.jobs.counts()["done"] > 0)
    with memtree.Worker(store, {"work": handler}, concurrency=4, poll_interval=0.05):
        wait_until(lambda: store.jobs.counts()["done"] == n, timeout=600)
        time.sleep(0.2)
    for child in children:
        assert child.wait(WAIT) == 0
    from_children = 0
    for out in outs:
        child_records = json.loads(out.read_text())
        from_children += len(child_records)
        records.extend(tuple(r) for r in child_records)
    assert from_children > 0, "the other processes claimed jobs too"

    by_job: dict[str, list[tuple[int, int]]] = {}
    for job_id, start, end in records:
        by_job.setdefault(job_id, []).append((start, end))
    assert set(by_job) == ids
    assert all(len(runs) == 1 for runs in by_job.values()), "each job ran exactly once"
    assert store.jobs.counts() == {"ready": 0, "running": 0, "done": n, "failed": 0, "cancelled": 0}
    assert all(j.attempts == 1 for j in store.jobs.list(status="done", limit=n))


@pytest.mark.parametrize(
    ("error", "delay"),
    [
        (memtree.BusyError("locked", ResultCode.BUSY), 1.0),
        (memtree.TransientIOError("io", ResultCode.IOERR_SHMOPEN), 30.0),
        (memtree.CircuitOpenError("open", ResultCode.CANTOPEN), 30.0),
        (memtree.DiskFullError("full", ResultCode.FULL), 300.0),
        (memtree.PermanentError("other", ResultCode.IOERR_READ), 1.0),
        (RuntimeError("not even sqlite"), 1.0),
    ],
)
def test_backoff_for_raised_typed_errors(
    store: memtree.Store, error: BaseException, delay: float
) -> None:
    worker = memtree.Worker(store, {"k": lambda job: None})
    assert worker.backoff_for(error) == delay


FAST = memtree.LoopBackoff(busy=0.01, transient_io=0.01, disk_full=0.01, other=0.01)


@pytest.mark.parametrize(
    ("code", "cls", "level"),
    [
        # LOCKED is of the busy class and, unlike BUSY, is not retried by
        # SQLite's busy handler, so it arrives at once.
        (ResultCode.LOCKED, memtree.BusyError, logging.INFO),
        (ResultCode.IOERR_TRUNCATE, memtree.TransientIOError, logging.WARNING),
        (ResultCode.FULL, memtree.DiskFullError, logging.WARNING),
    ],
)
def test_loop_backs_off_on_real_injected_faults(
    store: memtree.Store,
    quiet_worker_logs: pytest.LogCaptureFixture,
    code: int,
    cls: type[memtree.MemtreeError],
    level: int,
) -> None:
    hook: list[BaseException] = []
    worker = memtree.Worker(
        store, {"k": lambda job: None}, concurrency=1, backoff=FAST, on_error=hook.append
    )
    with testing.fault(store.path, "xLock", 1, code, persistent=True):
        worker.start()
        wait_until(lambda: testing.faults_fired(store.path) >= 3)
        worker.stop(WAIT)
    records = [r for r in quiet_worker_logs.records if cls.__name__ in r.getMessage()]
    records += [r for r in quiet_worker_logs.records if "busy" in r.getMessage()]
    assert records and all(r.levelno == level for r in records)
    assert hook == [], "classified errors do not reach on_error"
    # The worker recovers by itself once the fault is gone.
    store.jobs.enqueue("k", {})
    assert worker.run_once() is not None


def test_start_does_not_wait_out_a_failed_recovery(
    store: memtree.Store, quiet_worker_logs: pytest.LogCaptureFixture
) -> None:
    # A back-off so long that start() waiting it out once is unmistakable.
    huge = 60.0
    slow = memtree.LoopBackoff(busy=huge, transient_io=huge, disk_full=huge, other=huge)
    hook: list[BaseException] = []
    worker = memtree.Worker(
        store, {"k": lambda job: None}, concurrency=1, backoff=slow, on_error=hook.append
    )
    code = ResultCode.IOERR_TRUNCATE
    with testing.fault(store.path, "xLock", 1, code, persistent=True):
        started = time.monotonic()
        worker.start()
        returned_after = time.monotonic() - started
        assert testing.faults_fired(store.path) >= 1, "the start-up recovery failed"
        assert "TransientIOError" in quiet_worker_logs.text, "and was reported"
        assert returned_after < huge / 4, "start() did not wait out the back-off"
        assert worker.running
        # stop() interrupts the loop's back-off too.
        worker.stop(WAIT)
    assert hook == [], "a classified error still skips on_error"


def test_unclassified_store_errors_go_to_on_error(store: memtree.Store) -> None:
    hook: list[BaseException] = []
    worker = memtree.Worker(
        store, {"k": lambda job: None}, concurrency=1, backoff=FAST, on_error=hook.append
    )
    with testing.fault(store.path, "xLock", 1, ResultCode.IOERR_READ, persistent=True):
        worker.start()
        wait_until(lambda: len(hook) >= 2)
        worker.stop(WAIT)
    assert all(isinstance(e, memtree.PermanentError) for e in hook)
    assert hook[0].extended_code == ResultCode.IOERR_READ  # type: ignore[attr-defined]


def test_real_busy_timeout_backs_off_as_busy(
    store: memtree.Store, quiet_worker_logs: pytest.LogCaptureFixture, short_busy_timeout: float
) -> None:
    # BUSY itself is retried by memtree's busy handler for the busy budget
    # (shortened from 5 s), then raised.
    worker = memtree.Worker(store, {"k": lambda job: None}, concurrency=1, backoff=FAST)
    worker.start()
    with testing.fault(store.path, "xLock", 1, ResultCode.BUSY, persistent=True):
        wait_until(lambda: "busy" in quiet_worker_logs.text)
        assert testing.faults_fired(store.path) > 1
    # Once the fault is gone the running worker carries on by itself.
    store.jobs.enqueue("k", {})
    wait_until(lambda: store.jobs.counts()["done"] == 1)
    worker.stop(WAIT)


def test_worker_arguments_are_checked(store: memtree.Store) -> None:
    with pytest.raises(ValueError):
        memtree.Worker(store, {})
    with pytest.raises(ValueError):
        memtree.Worker(store, {"k": print}, concurrency=0)
    with pytest.raises(ValueError):
        memtree.Worker(store, {"k": print}, poll_interval=0)


# -- issue 11: a worker that cannot die silently ----------------------------


class Custom(BaseException):
    """A BaseException that is neither an Exception nor a stop request."""


@pytest.mark.parametrize(
    "exc",
    [asyncio.CancelledError(), GeneratorExit(), Custom("odd")],
    ids=["CancelledError", "GeneratorExit", "custom-BaseException"],
)
def test_a_handler_base_exception_fails_the_attempt_and_the_worker_goes_on(
    store: memtree.Store, quiet_worker_logs: pytest.LogCaptureFixture, exc: BaseException
) -> None:
    raised: list[str] = []

    def handler(job: memtree.Job) -> None:
        if job.payload == "bad":
            raised.append(job.id)
            raise exc
        return None

    bad = store.jobs.enqueue("k", "bad", max_attempts=1)
    with memtree.Worker(store, {"k": handler}, concurrency=2, poll_interval=0.05) as worker:
        wait_until(lambda: store.jobs.counts()["failed"] == 1)
        assert worker.running
        later = [store.jobs.enqueue("k", i) for i in range(10)]
        wait_until(lambda: store.jobs.counts()["done"] == 10)
        assert worker.running, "every thread is still alive"
    row = store.jobs.get(bad or "")
    assert row is not None and row.status == "failed"
    assert type(exc).__name__ in (row.last_error or "")
    assert raised == [bad]
    assert all((store.jobs.get(i or "") or row).status == "done" for i in later)


@pytest.mark.parametrize(
    "exc", [KeyboardInterrupt(), SystemExit(3)], ids=["KeyboardInterrupt", "SystemExit"]
)
@pytest.mark.parametrize("how", ["join", "stop"])
def test_keyboard_interrupt_or_system_exit_stops_the_worker_cleanly(
    store: memtree.Store,
    quiet_worker_logs: pytest.LogCaptureFixture,
    exc: BaseException,
    how: str,
) -> None:
    calls: list[str] = []

    def handler(job: memtree.Job) -> None:
        calls.append(job.id)
        raise exc

    job_id = store.jobs.enqueue("k", {})
    job0 = store.jobs.get(job_id or "")
    assert job0 is not None
    worker = memtree.Worker(store, {"k": handler}, concurrency=3, poll_interval=0.05)
    worker.start()
    wait_until(lambda: not worker.running)
    assert worker.failure is exc
    # Handed back by the worker itself (attempt refunded): no join/stop yet.
    wait_until(lambda: (store.jobs.get(job_id or "") or job0).status == "ready")
    row = store.jobs.get(job_id or "")
    assert row is not None and (row.status, row.attempts) == ("ready", 0)
    # Nothing more is claimed: later jobs stay ready.
    later = store.jobs.enqueue("k", {"later": True})
    time.sleep(0.3)
    assert calls == [job_id]
    with pytest.raises(type(exc)) as info:
        worker.join(WAIT) if how == "join" else worker.stop(WAIT)
    assert info.value is exc
    assert not worker.running and worker.failure is None
    assert worker.stop(WAIT) == 0, "re-raised once"
    assert store.jobs.counts() == {"ready": 2, "running": 0, "done": 0, "failed": 0, "cancelled": 0}
    assert (store.jobs.get(later or "") or row).status == "ready"


def test_stop_hands_back_other_threads_jobs_after_a_keyboard_interrupt(
    store: memtree.Store, quiet_worker_logs: pytest.LogCaptureFixture
) -> None:
    slow_started, let_go = threading.Event(), threading.Event()

    def handler(job: memtree.Job) -> None:
        if job.payload == "slow":
            slow_started.set()
            let_go.wait(WAIT)
            return
        raise KeyboardInterrupt

    slow = store.jobs.enqueue("k", "slow")
    worker = memtree.Worker(store, {"k": handler}, concurrency=2, poll_interval=0.05)
    worker.start()
    assert slow_started.wait(WAIT)
    store.jobs.enqueue("k", "interrupt")
    wait_until(lambda: not worker.running)
    # The slow handler is still running; stop() gives up waiting and hands its
    # job back, then re-raises the interrupt.
    with pytest.raises(KeyboardInterrupt):
        worker.stop(timeout=0.2)
    row = store.jobs.get(slow or "")
    assert row is not None and row.status == "ready"
    let_go.set()


def test_a_dead_thread_never_looks_alive(
    store: memtree.Store, quiet_worker_logs: pytest.LogCaptureFixture
) -> None:
    worker = memtree.Worker(store, {"k": lambda job: None}, concurrency=2, poll_interval=0.05)
    # Not an Exception, so the loop's own error handling lets it through,
    # as it would a bug in the worker's bookkeeping.
    boom = Custom("bookkeeping bug")

    def broken_run(job: memtree.Job) -> None:
        raise boom

    worker._run = broken_run  # type: ignore[method-assign]
    worker.start()
    store.jobs.enqueue("k", {})
    wait_until(lambda: not worker.running)
    assert worker.failure is boom
    with pytest.raises(Custom, match="bookkeeping bug"):
        worker.stop(WAIT)
    assert "a worker thread failed" in quiet_worker_logs.text


def test_run_once_hands_the_job_back_on_keyboard_interrupt(store: memtree.Store) -> None:
    def handler(job: memtree.Job) -> None:
        raise KeyboardInterrupt

    job_id = store.jobs.enqueue("k", {})
    worker = memtree.Worker(store, {"k": handler})
    with pytest.raises(KeyboardInterrupt):
        worker.run_once()
    row = store.jobs.get(job_id or "")
    assert row is not None and (row.status, row.attempts) == ("ready", 0)


def test_worker_lease_and_poll_interval_are_checked_up_front(store: memtree.Store) -> None:
    with pytest.raises(ValueError, match="lease"):
        memtree.Worker(store, {"k": print}, lease=timedelta.max)
    with pytest.raises(ValueError, match="lease"):
        memtree.Worker(store, {"k": print}, lease=timedelta(microseconds=10))
    with pytest.raises(TypeError, match="lease"):
        memtree.Worker(store, {"k": print}, lease=300)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="poll_interval"):
        memtree.Worker(store, {"k": print}, poll_interval=float("nan"))
