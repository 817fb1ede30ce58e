"""A thread-pool worker that runs queued jobs with their handlers.

``Worker(store, handlers={kind: handler})`` claims jobs of the handled kinds
(:meth:`memtree.Jobs.claim_next`), runs ``handler(job)`` and settles the job:

- the handler returns normally → ``done``;
- it raises → a failed attempt, with the message and the chained causes in
  ``last_error`` (retried with back-off, dead-lettered after the last attempt);
- it returns or raises :class:`Defer` → back to ``ready`` at ``until``
  without spending an attempt.

A handler's ``BaseException`` that is not an ``Exception`` (for instance
``asyncio.CancelledError`` or ``GeneratorExit``) fails that attempt like any
other exception. ``KeyboardInterrupt`` and ``SystemExit`` instead stop the
worker: the job is handed back to the queue (attempt refunded), no thread
claims anything more, :attr:`Worker.running` turns False, and the exception
is re-raised from the next :meth:`Worker.join` or :meth:`Worker.stop` (once).
Any other error that would end a worker thread stops the worker the same
way, so a worker never looks alive with dead threads.

A worker thread settles a done or failed job and claims its next job in
one commit (:meth:`memtree.Jobs.mark_done_and_claim_next`,
:meth:`memtree.Jobs.mark_failed_and_claim_next`), so in steady state a job
costs two commits: its enqueue and that one.

Delivery is at least once: a worker that dies mid-job leaves a lease that
the next claim or :meth:`memtree.Jobs.recover_stale_locks` takes back at once
when the holder process is provably dead on this host, and once it expires
otherwise (the worker recovers leases at start and whenever it is idle). Handlers must be
idempotent. While a handler runs, its lease is extended every third of the
lease, so a long job is not recovered from under a live worker.

An enqueue in the same process wakes idle workers at once (a process-wide
native signal); jobs enqueued by other processes are found within
``poll_interval``. When the store itself fails, the loop backs off by the
error's class (:class:`LoopBackoff`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import Callable, TypeVar, Union

from memtree import _native
from memtree._native import Job, Store
from memtree.errors import (
    BusyError,
    DiskFullError,
    JobCancelledError,
    LeaseLostError,
    TransientIOError,
)

__all__ = ["Defer", "Handler", "LoopBackoff", "RetryPolicy", "Worker", "describe_error"]

logger = logging.getLogger("memtree.worker")

#: The most characters of an error chain kept in ``last_error``.
MAX_ERROR_CHARS = 8_000

#: Handler exceptions that stop the whole worker instead of failing the job.
_FATAL = (KeyboardInterrupt, SystemExit)

#: Store errors that pass by themselves: a settle retries through them, the
#: loop logs them and backs off without calling ``on_error``.
_RETRYABLE = (BusyError, TransientIOError, DiskFullError)


class Defer(Exception):
    """Put the job back until ``until`` (a time, or a delay from now) without
    spending an attempt. A handler may return it or raise it."""

    def __init__(self, until: datetime | timedelta, reason: str = "") -> None:
        super().__init__(reason)
        self.until = until
        self.reason = reason


Handler = Callable[[Job], Union[Defer, object]]
_T = TypeVar("_T")
ErrorHook = Callable[[BaseException], None]


@dataclass(frozen=True)
class RetryPolicy:
    """The back-off of a failed job of one kind (``Worker(retry={kind:
    policy})``, or ``retry=`` of :meth:`memtree.Jobs.mark_failed`): ready
    again ``base`` after the first failed attempt, doubling, at most ``cap``;
    with ``max_attempts``, a failure after that many attempts is final even
    if the job was enqueued with more (never later than the job's own
    ``max_attempts``). The defaults are the queue's own (60 s doubling to
    1 h). Checked at the first failure: a negative ``base``, a ``cap`` below
    it or a ``max_attempts`` below 1 is a ``ValueError``."""

    base: timedelta = timedelta(seconds=60)
    cap: timedelta = timedelta(hours=1)
    max_attempts: int | None = None


@dataclass(frozen=True)
class LoopBackoff:
    """Seconds the worker loop pauses after the store itself failed, by the
    error's class (the classes come from the core's classifier)."""

    busy: float = 1.0
    """:class:`memtree.BusyError`: another connection holds the lock."""
    transient_io: float = 30.0
    """:class:`memtree.TransientIOError` and :class:`memtree.CircuitOpenError`."""
    disk_full: float = 300.0
    """:class:`memtree.DiskFullError`."""
    other: float = 1.0
    """Anything else (after the ``on_error`` hook)."""


def describe_error(exc: BaseException) -> str:
    """``Type: message`` for ``exc`` and each exception it was raised from or
    during, one per line, as recorded in ``last_error``."""
    lines: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        name = type(current).__qualname__
        text = f"{name}: {current}" if str(current) else name
        lines.append(text if not lines else f"caused by: {text}")
        if current.__cause__ is not None:
            current = current.__cause__
        elif current.__suppress_context__:
            current = None
        else:
            current = current.__context__
    out = "\n".join(lines)
    return out if len(out) <= MAX_ERROR_CHARS else out[: MAX_ERROR_CHARS - 1] + "…"


def _log_error(exc: BaseException) -> None:
    logger.error("memtree worker: unexpected error", exc_info=exc)


def check_loop_settings(
    handlers: Mapping[str, object], concurrency: int, poll_interval: float
) -> None:
    """The loop settings every worker refuses at construction, each a
    ``ValueError`` naming its argument: no handler, a concurrency below 1, a
    poll interval that is not a positive, finite number of seconds."""
    if not handlers:
        raise ValueError("handlers: at least one {kind: handler} is needed")
    if concurrency < 1:
        raise ValueError("concurrency: must be at least 1")
    if not (poll_interval > 0 and math.isfinite(poll_interval)):
        raise ValueError("poll_interval: must be a positive, finite number of seconds")


def checked_retry_policies(retry: Mapping[str, RetryPolicy] | None) -> dict[str, RetryPolicy]:
    """A copy of ``retry``, refused now (``TypeError`` naming the kind) when
    a value is not a :class:`RetryPolicy`."""
    policies = dict(retry or {})
    for kind, policy in policies.items():
        if not isinstance(policy, RetryPolicy):
            raise TypeError(
                f"retry[{kind!r}]: expected a memtree.RetryPolicy, got {type(policy).__name__}"
            )
    return policies


def _check_priorities(priorities: Mapping[str, int] | None) -> dict[str, int]:
    """A copy of ``priorities``, refused now (not at every claim) when a kind
    is not a non-empty str or a priority not an int within 64 bits."""
    if priorities is None:
        return {}
    if not isinstance(priorities, Mapping):
        raise TypeError(
            f"priorities: expected a mapping of kind to int, got {type(priorities).__name__}"
        )
    out: dict[str, int] = {}
    for kind, priority in priorities.items():
        if not isinstance(kind, str):
            raise TypeError(f"priorities: a kind must be a str, got {type(kind).__name__}")
        if not kind:
            raise ValueError("priorities: a kind must not be empty")
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise TypeError(f"priorities[{kind!r}]: expected an int, got {type(priority).__name__}")
        if not -(2**63) <= priority < 2**63:
            raise ValueError(f"priorities[{kind!r}]: past 64 bits")
        out[str(kind)] = priority
    return out


def _check_lease(lease: timedelta) -> None:
    """Refuses a lease no claim could take: not a timedelta (``TypeError``),
    under a millisecond, or ending past the last representable time."""
    if not isinstance(lease, timedelta):
        raise TypeError(f"lease: expected a timedelta, got {type(lease).__name__}")
    if lease < timedelta(milliseconds=1):
        raise ValueError("lease: must be at least 1 millisecond")
    try:
        datetime.now(timezone.utc) + lease
    except OverflowError:
        # Every claim would be refused for it; say so now, not per loop.
        raise ValueError("lease: would end after 9999-12-31T23:59:59.999Z") from None


def checked_worker_arguments(
    handlers: Mapping[str, object],
    concurrency: int,
    poll_interval: float,
    lease: timedelta,
    priorities: Mapping[str, int] | None,
    retry: Mapping[str, RetryPolicy] | None,
) -> tuple[dict[str, int], dict[str, RetryPolicy]]:
    """The one check of the arguments :class:`Worker` and
    :class:`memtree.AsyncWorker` share, so both refuse the same input with
    the same exception and message (each names its argument). Returns
    checked copies of ``priorities`` and ``retry``."""
    check_loop_settings(handlers, concurrency, poll_interval)
    _check_lease(lease)
    return _check_priorities(priorities), checked_retry_policies(retry)


class Worker:
    """Runs jobs of the handled kinds on ``concurrency`` threads.

    Use as a context manager (``start`` on entry, ``stop`` on exit), or call
    :meth:`start` and :meth:`stop`; :meth:`run_once` processes one job in the
    calling thread without starting anything.

    Args:
        store: the store whose queue to work.
        handlers: ``{kind: handler}``; only these kinds are claimed.
        concurrency: worker threads.
        poll_interval: seconds between looks for work enqueued by other
            processes (work enqueued in this process wakes the worker at once).
        lease: the lease each claim takes; extended while the handler runs.
        priorities: ``{kind: priority}``; a claim takes the highest priority
            first (e.g. digest and seal work before extraction), oldest first
            within a priority; kinds not listed have priority 0. Default: FIFO
            across every handled kind.
        retry: ``{kind: RetryPolicy}``: the back-off (``base``, ``cap``) and
            ``max_attempts`` of a failed job of that kind; kinds not listed
            keep the queue's default (60 s doubling to 1 h).
        backoff: loop pauses by error class.
        on_error: called with any store error that is not busy, transient
            I/O or disk full (default: logged with its traceback).
    """

    def __init__(
        self,
        store: Store,
        handlers: Mapping[str, Handler],
        *,
        concurrency: int = 4,
        poll_interval: float = 1.0,
        lease: timedelta = timedelta(minutes=5),
        priorities: Mapping[str, int] | None = None,
        backoff: LoopBackoff | None = None,
        on_error: ErrorHook | None = None,
        retry: Mapping[str, RetryPolicy] | None = None,
    ) -> None:
        self._priorities, self._retry = checked_worker_arguments(
            handlers, concurrency, poll_interval, lease, priorities, retry
        )
        self._jobs = store.jobs
        self._handlers = dict(handlers)
        self._kinds = sorted(self._handlers)
        self._concurrency = concurrency
        self._poll_interval = poll_interval
        self._lease = lease
        self._backoff = backoff or LoopBackoff()
        self._on_error = on_error or _log_error
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._inflight: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._last_recovery = float("-inf")
        self._fatal: BaseException | None = None

    # -- lifecycle ---------------------------------------------------------

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop` while every thread is
        alive; False as soon as a ``KeyboardInterrupt``/``SystemExit`` (or any
        error that ends a thread) stopped the worker."""
        return (
            bool(self._threads)
            and not self._stopping.is_set()
            and all(t.is_alive() for t in self._threads)
        )

    @property
    def failure(self) -> BaseException | None:
        """The exception that stopped the worker by itself, until
        :meth:`join` or :meth:`stop` re-raises it; None otherwise."""
        return self._fatal

    def start(self) -> None:
        """Recovers expired leases, then starts the threads."""
        if self._threads:
            raise RuntimeError("the worker is already started")
        self._stopping.clear()
        self._fatal = None
        # Never waits out a back-off here: a failed recovery is reported and
        # the loop retries it.
        self._recover(wait=False)
        for i in range(self._concurrency):
            t = threading.Thread(
                target=self._guarded, args=(self._loop,), name=f"memtree-worker-{i}", daemon=True
            )
            self._threads.append(t)
        self._threads.append(
            threading.Thread(
                target=self._guarded,
                args=(self._heartbeat_loop,),
                name="memtree-heartbeat",
                daemon=True,
            )
        )
        for t in self._threads:
            t.start()

    def stop(self, timeout: float | None = None) -> int:
        """Stops claiming, waits up to ``timeout`` seconds (None: forever) for
        running handlers, then hands the leases of jobs still running back to
        the queue at once. Returns how many were handed back; a handler still
        running after that cannot settle its job (its lease is gone).

        Raises the ``KeyboardInterrupt``/``SystemExit`` (or thread-ending
        error) that stopped the worker by itself, if any, after the hand-back.
        """
        self._stopping.set()
        _native.notify_job_signal()
        return self.join(timeout)

    def join(self, timeout: float | None = None) -> int:
        """Waits up to ``timeout`` seconds (None: forever) for the worker to
        stop (by :meth:`stop` from another thread, or by itself after a
        ``KeyboardInterrupt``/``SystemExit`` in a handler), then hands back
        the jobs still in flight. Returns how many were handed back, or
        re-raises the exception that stopped the worker (once; the hand-back
        happens first)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self._threads:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if not self._stopping.is_set():
            return 0  # timed out while the worker still runs
        self._threads = []
        with self._lock:
            left = list(self._inflight.values())
        released = self._jobs.release(left) if left else 0
        if released:
            logger.warning("memtree worker: handed %d running job(s) back at stop", released)
        fatal, self._fatal = self._fatal, None
        if fatal is not None:
            raise fatal
        return released

    def _guarded(self, loop: Callable[[], None]) -> None:
        """Runs a thread's loop; anything that ends it early stops the whole
        worker and is kept for :meth:`join` to re-raise."""
        try:
            loop()
        except BaseException as e:  # the thread would die unseen otherwise
            self._fail(e)

    def _fail(self, exc: BaseException) -> None:
        """Stops the worker because of ``exc`` (the first one is kept)."""
        with self._lock:
            if self._fatal is exc:
                return  # already reported where the handler raised it
            if self._fatal is None:
                self._fatal = exc
        if not isinstance(exc, _FATAL):
            logger.error("memtree worker: a worker thread failed; stopping", exc_info=exc)
        else:
            logger.warning("memtree worker: %s in a handler; stopping", type(exc).__name__)
        self._stopping.set()
        _native.notify_job_signal()

    def __enter__(self) -> Worker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- one job -----------------------------------------------------------

    def run_once(self) -> Job | None:
        """Claims and runs one job in this thread; returns the job as claimed,
        or None if none was available. Store errors propagate."""
        job = self._jobs.claim_next(
            lease=self._lease, kinds=self._kinds, priorities=self._priorities
        )
        if job is not None:
            self._run(job, in_worker_thread=False)
        return job

    def idle(self) -> bool:
        """True when no job of the handled kinds is ``ready`` (whenever it
        is due) or ``running``, in any process."""
        return not any(
            self._jobs.list(status=status, kind=kind, limit=1)
            for kind in self._kinds
            for status in ("ready", "running")
        )

    def run_until_idle(self, timeout: float | None = None) -> int:
        """Returns once no job of the handled kinds is ready or running
        (:meth:`idle`); returns how many jobs this call ran itself.

        A started worker's threads do the work and this call waits for
        them; an unstarted worker runs the jobs here, in the calling thread.
        Either way a job that is ready but not yet due (a retry's back-off,
        ``available_at``) is waited for, and a running job of another
        process until it settles (or its holder dies: see
        :meth:`memtree.Jobs.recover_stale_locks`). ``TimeoutError`` after
        ``timeout`` seconds (None: no limit) with jobs still there; the jobs
        are left as they are. Store errors propagate."""
        if timeout is not None and not (timeout >= 0 and math.isfinite(timeout)):
            raise ValueError("timeout: must be a non-negative, finite number of seconds")
        deadline = None if timeout is None else time.monotonic() + timeout
        ran = 0
        while True:
            seen = _native.job_signal()
            if not self._threads and self.run_once() is not None:
                ran += 1
                continue
            if self.idle():
                return ran
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(
                    f"run_until_idle: jobs of {self._kinds} still ready or running "
                    f"after {timeout} s"
                )
            if not self._threads:
                # A job whose holder died is claimable again after this.
                self._recover(wait=False)
            # Settles do not signal: poll briefly while jobs are in flight.
            pause = min(self._poll_interval, 0.05)
            _native.wait_job_signal(seen, pause if left is None else min(pause, left))

    def _run(self, job: Job, *, in_worker_thread: bool = True) -> Job | None:
        """Runs ``job`` and settles it. In a worker thread a done or failed
        settle also claims the next job in the same commit (two commits a
        job in steady state: the enqueue and this); that job is returned,
        already in flight, for the loop to run next."""
        handler = self._handlers[job.kind]
        with self._lock:
            self._inflight[job.id] = job
        finished = True
        next_job: Job | None = None

        def chain() -> bool:
            # Claim with the settle only while the worker runs: a stopping
            # worker settles and claims nothing more.
            return in_worker_thread and not self._stopping.is_set()

        try:
            try:
                outcome = handler(job)
            except Defer as raised:
                outcome = raised
            except _FATAL as e:
                if in_worker_thread:
                    # Stop claiming first, so no other thread picks up the
                    # job handed back below (and runs into the same interrupt).
                    self._fail(e)
                # Hand the job back now (attempt refunded) rather than leave
                # it to stop(): the caller may never get that far.
                try:
                    self._jobs.release([job])
                except Exception:
                    # Still in flight, so join()/stop() retry the hand-back.
                    finished = False
                    logger.exception("memtree worker: handing job %s back failed", job.id)
                raise
            except BaseException as e:  # CancelledError and kin fail the attempt
                logger.warning(
                    "memtree worker: job %s (%s) attempt %d/%d failed",
                    job.id,
                    job.kind,
                    job.attempts,
                    job.max_attempts,
                    exc_info=e,
                )
                finished, next_job = self._settle_failed(job, describe_error(e), chain())
                return next_job
            if isinstance(outcome, Defer):
                until, reason = outcome.until, outcome.reason
                try:
                    finished, _ = self._settle(job, lambda: self._jobs.defer(job, until, reason))
                except (TypeError, ValueError) as e:
                    # A Defer the queue cannot take (a naive datetime, say) is
                    # the handler's bug: a failed attempt, not a stuck lease.
                    finished, next_job = self._settle_failed(job, describe_error(e), chain())
            elif chain():
                finished, next_job = self._settle(
                    job,
                    lambda: self._jobs.mark_done_and_claim_next(
                        job, lease=self._lease, kinds=self._kinds, priorities=self._priorities
                    ),
                )
            else:
                finished, _ = self._settle(job, lambda: self._jobs.mark_done(job))
            return next_job
        finally:
            # A job left unsettled stays in flight so stop() hands it back;
            # the job claimed with the settle is in flight from the start.
            with self._lock:
                if finished:
                    self._inflight.pop(job.id, None)
                if next_job is not None:
                    self._inflight[next_job.id] = next_job

    def _settle_failed(self, job: Job, message: str, chain: bool) -> tuple[bool, Job | None]:
        """Records a failed attempt (and, with ``chain``, claims the next job
        in the same commit)."""
        if not chain:
            finished, _ = self._settle(
                job,
                lambda: self._jobs.mark_failed(job, message, retry=self._retry.get(job.kind)),
            )
            return finished, None
        finished, outcome = self._settle(
            job,
            lambda: self._jobs.mark_failed_and_claim_next(
                job,
                message,
                lease=self._lease,
                kinds=self._kinds,
                priorities=self._priorities,
                retry=self._retry.get(job.kind),
            ),
        )
        return finished, None if outcome is None else outcome[1]

    def _settle(self, job: Job, settle: Callable[[], _T]) -> tuple[bool, _T | None]:
        """Settles ``job``, retrying while the store is busy or briefly
        unavailable: the handler's work is done and must not be redone just
        because one commit met a lock. Returns whether it is finished (False
        if the worker stopped first) and what ``settle`` returned (None
        when the lease was lost: nothing was settled or claimed)."""
        while True:
            try:
                return True, settle()
            except LeaseLostError:
                # Another worker holds (or finished) the job now; its outcome wins.
                logger.warning("memtree worker: lease lost on job %s; result dropped", job.id)
                return True, None
            except _RETRYABLE as e:
                delay = self.backoff_for(e)
                logger.warning(
                    "memtree worker: settling job %s failed (%s: %s); retrying in %.1fs",
                    job.id,
                    type(e).__name__,
                    e,
                    delay,
                )
                if self._stopping.wait(delay):
                    return False, None

    # -- loops -------------------------------------------------------------

    def backoff_for(self, exc: BaseException) -> float:
        """Seconds the loop pauses after the store raised ``exc``."""
        if isinstance(exc, BusyError):
            return self._backoff.busy
        if isinstance(exc, TransientIOError):  # CircuitOpenError included
            return self._backoff.transient_io
        if isinstance(exc, DiskFullError):
            return self._backoff.disk_full
        return self._backoff.other

    def _store_failed(self, exc: Exception, *, wait: bool = True) -> None:
        """Reports a store error, then (if ``wait``) pauses by its class."""
        delay = self.backoff_for(exc)
        if isinstance(exc, BusyError):
            logger.info("memtree worker: database busy; retrying in %.1fs", delay)
        elif isinstance(exc, _RETRYABLE):
            logger.warning(
                "memtree worker: %s: %s; retrying in %.1fs", type(exc).__name__, exc, delay
            )
        else:
            try:
                self._on_error(exc)
            except Exception:
                logger.exception("memtree worker: on_error hook failed")
        if wait:
            self._stopping.wait(delay)

    def _recover(self, *, wait: bool = True) -> None:
        # Idle threads look for expired leases at most once per poll interval.
        with self._lock:
            now = time.monotonic()
            if now - self._last_recovery < self._poll_interval:
                return
            self._last_recovery = now
        try:
            recovered = self._jobs.recover_stale_locks()
        except Exception as e:
            if not wait:
                # Let the first idle loop try again instead of a poll later.
                with self._lock:
                    self._last_recovery = float("-inf")
            self._store_failed(e, wait=wait)
            return
        if recovered:
            logger.warning("memtree worker: requeued %d job(s) with expired leases", recovered)

    def _loop(self) -> None:
        # The job claimed with the last settle, already in flight.
        job: Job | None = None
        while not self._stopping.is_set():
            seen = _native.job_signal()
            try:
                if job is None:
                    job = self._jobs.claim_next(
                        lease=self._lease, kinds=self._kinds, priorities=self._priorities
                    )
                if job is None:
                    self._recover()
                    _native.wait_job_signal(seen, self._poll_interval)
                    continue
                with self._lock:
                    self._inflight[job.id] = job
                if self._stopping.is_set():
                    # Claimed while the worker was stopping: hand it back
                    # unrun (join/stop retry it if this fails).
                    self._jobs.release([job])
                    with self._lock:
                        self._inflight.pop(job.id, None)
                    return
                current, job = job, None
                job = self._run(current)
            except Exception as e:
                self._store_failed(e)

    def _heartbeat_loop(self) -> None:
        every = self._lease.total_seconds() / 3
        while not self._stopping.wait(every):
            with self._lock:
                jobs = list(self._inflight.values())
            for job in jobs:
                try:
                    self._jobs.heartbeat(job, self._lease)
                except JobCancelledError:
                    # The handler learns it at its own heartbeat or settle.
                    logger.info("memtree worker: running job %s was cancelled", job.id)
                except LeaseLostError:
                    logger.warning("memtree worker: lease lost on running job %s", job.id)
                except Exception as e:
                    logger.warning("memtree worker: heartbeat of %s failed: %s", job.id, e)
