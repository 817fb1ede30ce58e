"""``AsyncWorker``: runs ``async def`` handlers on the caller's event loop.

The same queue semantics as :class:`memtree.Worker`: a handler that returns
settles its job ``done``; one that returns or raises :class:`memtree.Defer`
puts it back until then without spending an attempt; any other exception
fails the attempt (back-off by the kind's :class:`memtree.RetryPolicy`).
While a handler runs its lease is extended every third of the lease; when
the job is cancelled (:meth:`memtree.Jobs.cancel`) that heartbeat gets
``JobCancelledError`` and the handler's task is cancelled (``CancelledError``
inside the handler), and the job stays ``cancelled``. Store calls run in a
thread (``asyncio.to_thread``), never blocking the loop.

:meth:`AsyncWorker.run_until_idle` runs up to ``concurrency`` handlers at a
time until no job of the handled kinds is ready or running;
:meth:`AsyncWorker.run` keeps working until its ``stop`` event is set.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Mapping
from datetime import timedelta
from typing import Callable, Union

from memtree._native import Job, Store
from memtree.errors import JobCancelledError, LeaseLostError
from memtree.worker import (
    Defer,
    RetryPolicy,
    checked_worker_arguments,
    describe_error,
)

__all__ = ["AsyncHandler", "AsyncWorker"]

logger = logging.getLogger("memtree.worker")

AsyncHandler = Callable[[Job], Awaitable[Union[Defer, object]]]


class AsyncWorker:
    """Runs jobs of the handled kinds with ``async def`` handlers, up to
    ``concurrency`` at a time, on the running event loop.

    Args:
        store: the store whose queue to work.
        handlers: ``{kind: async handler}``; only these kinds are claimed.
        concurrency: handlers running at once.
        poll_interval: seconds between looks for work while idle.
        lease: the lease each claim takes; extended while the handler runs.
        priorities: ``{kind: priority}`` as for :class:`memtree.Worker`.
        retry: ``{kind: RetryPolicy}`` as for :class:`memtree.Worker`.
    """

    def __init__(
        self,
        store: Store,
        handlers: Mapping[str, AsyncHandler],
        *,
        concurrency: int = 4,
        poll_interval: float = 1.0,
        lease: timedelta = timedelta(minutes=5),
        priorities: Mapping[str, int] | None = None,
        retry: Mapping[str, RetryPolicy] | None = None,
    ) -> None:
        self._priorities, self._retry = checked_worker_arguments(
            handlers, concurrency, poll_interval, lease, priorities, retry
        )
        for kind, handler in handlers.items():
            if not asyncio.iscoroutinefunction(handler):
                raise TypeError(f"handlers[{kind!r}]: expected an async def function")
        self._jobs = store.jobs
        self._handlers = dict(handlers)
        self._kinds = sorted(self._handlers)
        self._concurrency = concurrency
        self._poll_interval = poll_interval
        self._lease = lease

    def _idle(self) -> bool:
        return not any(
            self._jobs.list(status=status, kind=kind, limit=1)
            for kind in self._kinds
            for status in ("ready", "running")
        )

    async def idle(self) -> bool:
        """True when no job of the handled kinds is ready or running."""
        return await asyncio.to_thread(self._idle)

    async def run_until_idle(self, timeout: float | None = None) -> int:
        """Runs jobs until none of the handled kinds is ready or running;
        returns how many ran. ``TimeoutError`` after ``timeout`` seconds
        (None: no limit): the handlers still running are cancelled and
        their jobs handed back (attempt refunded)."""
        if timeout is not None and not (timeout >= 0 and math.isfinite(timeout)):
            raise ValueError("timeout: must be a non-negative, finite number of seconds")
        return await self._work(until_idle=True, stop=None, timeout=timeout)

    async def run(self, stop: asyncio.Event) -> int:
        """Works until ``stop`` is set, then waits for the handlers running;
        returns how many jobs ran."""
        return await self._work(until_idle=False, stop=stop, timeout=None)

    async def _work(
        self, *, until_idle: bool, stop: asyncio.Event | None, timeout: float | None
    ) -> int:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        running: dict[asyncio.Task[None], Job] = {}
        ran = 0
        try:
            while True:
                stopping = stop is not None and stop.is_set()
                while not stopping and len(running) < self._concurrency:
                    job = await asyncio.to_thread(
                        self._jobs.claim_next,
                        lease=self._lease,
                        kinds=self._kinds,
                        priorities=self._priorities,
                    )
                    if job is None:
                        break
                    running[asyncio.ensure_future(self._run(job))] = job
                if not running:
                    if stopping or (until_idle and await self.idle()):
                        return ran
                    # A job whose holder died is claimable again after this.
                    await asyncio.to_thread(self._jobs.recover_stale_locks)
                pause = min(self._poll_interval, 0.05) if until_idle else self._poll_interval
                if deadline is not None:
                    left = deadline - loop.time()
                    if left <= 0:
                        raise TimeoutError(
                            f"run_until_idle: jobs of {self._kinds} still ready or running "
                            f"after {timeout} s"
                        )
                    pause = min(pause, left)
                if running:
                    done, _ = await asyncio.wait(
                        running, timeout=pause, return_when=asyncio.FIRST_COMPLETED
                    )
                    for task in done:
                        running.pop(task)
                        task.result()
                        ran += 1
                else:
                    await asyncio.sleep(pause)
        finally:
            if running:
                for task in running:
                    task.cancel()
                await asyncio.gather(*running, return_exceptions=True)
                handed_back = list(running.values())
                released = await asyncio.to_thread(self._jobs.release, handed_back)
                if released:
                    logger.warning("memtree async worker: handed %d job(s) back", released)

    async def _run(self, job: Job) -> None:
        """Runs one job's handler beside its heartbeat and settles it."""
        handler_task = asyncio.ensure_future(self._handlers[job.kind](job))
        cancelled_by_queue = asyncio.Event()
        beat = asyncio.ensure_future(self._heartbeat(job, handler_task, cancelled_by_queue))
        try:
            try:
                outcome = await asyncio.shield(handler_task)
            except asyncio.CancelledError:
                if cancelled_by_queue.is_set():
                    logger.info("memtree async worker: job %s was cancelled", job.id)
                    return
                handler_task.cancel()
                raise
            except Defer as raised:
                outcome = raised
            except Exception as e:
                await self._settle(
                    self._jobs.mark_failed, job, describe_error(e), self._retry.get(job.kind)
                )
                return
            if isinstance(outcome, Defer):
                await self._settle(self._jobs.defer, job, outcome.until, outcome.reason)
            else:
                await self._settle(self._jobs.mark_done, job)
        finally:
            beat.cancel()

    async def _settle(self, settle: Callable[..., object], job: Job, *args: object) -> None:
        try:
            await asyncio.to_thread(settle, job, *args)
        except JobCancelledError:
            logger.info("memtree async worker: job %s was cancelled while it ran", job.id)
        except LeaseLostError:
            logger.warning("memtree async worker: lease lost on job %s", job.id)

    async def _heartbeat(
        self, job: Job, handler_task: asyncio.Future[object], cancelled: asyncio.Event
    ) -> None:
        every = self._lease.total_seconds() / 3
        while not handler_task.done():
            await asyncio.sleep(every)
            try:
                await asyncio.to_thread(self._jobs.heartbeat, job, self._lease)
            except JobCancelledError:
                cancelled.set()
                handler_task.cancel()
                return
            except LeaseLostError:
                logger.warning("memtree async worker: lease lost on running job %s", job.id)
                return
            except Exception as e:
                logger.warning("memtree async worker: heartbeat of %s failed: %s", job.id, e)
