"""``memtree.aio``: the store for asyncio.

:class:`AsyncStore` mirrors :class:`memtree.Store` with coroutine methods.
Each call runs the native method in a worker thread (``asyncio.to_thread``);
the native layer releases the GIL for the whole database operation, so the
event loop keeps running while SQLite works. Iterable arguments are
materialised on the loop's thread first, so a generator is never consumed from
a worker::

    async with memtree.aio.AsyncStore.open(workspace) as store:
        await store.upsert_chunks(chunks)
        newest = await store.list_chunks(limit=10)
        job_id = await store.jobs.enqueue("summarise", {"source": "s1"})

Calls on one store are serialised by its connection mutex, as for the
synchronous store; concurrency helps the loop, not SQLite.
"""

from __future__ import annotations

import asyncio
import builtins
import itertools
import operator
import os
from collections.abc import AsyncIterator, Generator, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Literal, Union

from memtree._aio_scores import AsyncScheduler, AsyncScores
from memtree._aio_trees import AsyncTrees
from memtree._native import (
    Chunk,
    CompactReport,
    CopyReport,
    Embeddings,
    ErasureReport,
    FileSweep,
    Hit,
    Job,
    JobBatch,
    Jobs,
    Store,
)
from memtree._types import JobStatus, RawRef, SourceInfo, SourceKind

if TYPE_CHECKING:
    # Only for annotations: typing_extensions is not a runtime dependency.
    import array

    from typing_extensions import Buffer

    from memtree.worker import RetryPolicy

__all__ = [
    "AsyncJobBatch",
    "AsyncJobs",
    "AsyncScheduler",
    "AsyncScores",
    "AsyncStore",
    "AsyncTrees",
]

_Kind = Union[SourceKind, str]
_PathLike = Union[str, "os.PathLike[str]"]
_JobStatusArg = Union[JobStatus, Literal["ready", "running", "done", "failed", "cancelled"]]


class _Opening:
    """What :meth:`AsyncStore.open` returns: await it for the store, or use it
    directly as ``async with`` (the store is closed on exit)."""

    def __init__(self, opener: Callable[[], Store]) -> None:
        self._opener = opener
        self._store: AsyncStore | None = None

    async def _open(self) -> AsyncStore:
        return AsyncStore(await asyncio.to_thread(self._opener))

    def __await__(self) -> Generator[object, None, AsyncStore]:
        return self._open().__await__()

    async def __aenter__(self) -> AsyncStore:
        self._store = await self._open()
        return self._store

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._store is not None:
            await self._store.close()


def _next_page(pages: Iterator[Chunk]) -> list[Chunk]:
    """The next page of a native ``Store.iter_chunks`` iterator: its first
    row reads the page (one SQLite read), the rest are the rows it buffered
    (``operator.length_hint``), so the page size is the one the native
    iterator clamped. Empty at the end."""
    first = next(pages, None)
    if first is None:
        return []
    return [first, *itertools.islice(pages, operator.length_hint(pages))]


class AsyncStore:
    """An asyncio face on a :class:`memtree.Store` (see the module docs)."""

    def __init__(self, store: Store) -> None:
        """Wraps an open store; :meth:`open` and :meth:`connect` open one
        without blocking the loop."""
        self._store = store

    @classmethod
    def open(cls, workspace: _PathLike) -> _Opening:
        """Opens ``<workspace>/memory_tree/chunks.db`` off the loop (awaitable,
        or an async context manager)."""
        return _Opening(lambda: Store.open(workspace))

    @classmethod
    def connect(cls, path: _PathLike) -> _Opening:
        """Opens the database file at ``path`` off the loop (like ``Store(path)``)."""
        return _Opening(lambda: Store(path))

    @property
    def store(self) -> Store:
        """The synchronous store underneath."""
        return self._store

    @property
    def path(self) -> Path:
        """The canonical path of the database file."""
        return self._store.path

    @property
    def journal_mode(self) -> str:
        """The journal mode SQLite reports (``"truncate"`` normally)."""
        return self._store.journal_mode

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._store.closed

    @property
    def jobs(self) -> AsyncJobs:
        """The job queue stored in this database, as coroutines."""
        return AsyncJobs(self._store.jobs)

    @property
    def scheduler(self) -> AsyncScheduler:
        """The periodic side of the job queue, as coroutines."""
        return AsyncScheduler(self._store.scheduler)

    @property
    def scores(self) -> AsyncScores:
        """The scores, entity index and hotness in this database, as coroutines."""
        return AsyncScores(self._store.scores)

    @property
    def trees(self) -> AsyncTrees:
        """The summary trees in this database, as coroutines."""
        return AsyncTrees(self._store.trees)

    async def close(self) -> None:
        """Releases this handle; the connection closes with the last one."""
        await asyncio.to_thread(self._store.close)

    async def __aenter__(self) -> AsyncStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncStore({self._store!r})"

    async def upsert_chunks(self, chunks: Iterable[Chunk]) -> int:
        """Inserts or replaces chunks by id in one transaction; all or none."""
        return await asyncio.to_thread(self._store.upsert_chunks, list(chunks))

    async def get_chunk(self, id: str) -> Chunk | None:
        """The chunk with this id, or None."""
        return await asyncio.to_thread(self._store.get_chunk, id)

    async def get_chunks(self, ids: Iterable[str]) -> list[Chunk]:
        """The chunks with these ids in the order asked; missing ids skipped."""
        # A bare str goes through as is: the native layer raises its TypeError.
        return await asyncio.to_thread(
            self._store.get_chunks, ids if isinstance(ids, str) else list(ids)
        )

    async def list_chunks(
        self,
        *,
        source_kind: _Kind | None = None,
        source_id: str | None = None,
        owner: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        after: Chunk | None = None,
    ) -> list[Chunk]:
        """Newest-first chunks matching every filter given (see ``Store.list_chunks``)."""
        return await asyncio.to_thread(
            self._store.list_chunks,
            source_kind=source_kind,
            source_id=source_id,
            owner=owner,
            since=since,
            until=until,
            limit=limit,
            after=after,
        )

    async def iter_chunks(
        self,
        *,
        source_kind: _Kind | None = None,
        source_id: str | None = None,
        owner: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        page_size: int = 1000,
    ) -> AsyncIterator[Chunk]:
        """Every chunk matching the filters, once each, one page per read off
        the loop (see ``Store.iter_chunks``: the same arguments, checked and
        clamped by it, with the same errors at the first step)."""
        pages = self._store.iter_chunks(
            source_kind=source_kind,
            source_id=source_id,
            owner=owner,
            since=since,
            until=until,
            page_size=page_size,
        )
        while True:
            page = await asyncio.to_thread(_next_page, pages)
            if not page:
                return
            for chunk in page:
                yield chunk

    async def explain_list_chunks(
        self,
        *,
        source_kind: _Kind | None = None,
        source_id: str | None = None,
        owner: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after: Chunk | None = None,
    ) -> list[str]:
        """SQLite's query plan for :meth:`list_chunks` with these filters."""
        return await asyncio.to_thread(
            self._store.explain_list_chunks,
            source_kind=source_kind,
            source_id=source_id,
            owner=owner,
            since=since,
            until=until,
            after=after,
        )

    async def count_chunks(self) -> int:
        """Number of chunks stored."""
        return await asyncio.to_thread(self._store.count_chunks)

    async def get_lifecycle_status(self, id: str) -> str | None:
        """A chunk's lifecycle status, or None if it does not exist."""
        return await asyncio.to_thread(self._store.get_lifecycle_status, id)

    async def set_lifecycle_status(self, ids: Iterable[str], status: str) -> int:
        """Sets the status of existing chunks in one transaction; returns how many."""
        return await asyncio.to_thread(
            self._store.set_lifecycle_status, ids if isinstance(ids, str) else list(ids), status
        )

    async def count_by_lifecycle_status(self) -> dict[str, int]:
        """Chunk counts per lifecycle status."""
        return await asyncio.to_thread(self._store.count_by_lifecycle_status)

    async def is_source_ingested(self, source_kind: _Kind, source_id: str) -> bool:
        """True when the source has been claimed."""
        return await asyncio.to_thread(self._store.is_source_ingested, source_kind, source_id)

    async def claim_source(self, source_kind: _Kind, source_id: str) -> bool:
        """The ingest gate: True for the one caller that claims the source."""
        return await asyncio.to_thread(self._store.claim_source, source_kind, source_id)

    async def delete_source(self, source_kind: _Kind, source_id: str) -> int:
        """Deletes a source's chunks (cascading) and its ingest claim."""
        return await asyncio.to_thread(self._store.delete_source, source_kind, source_id)

    async def delete_owner(self, owner: str) -> int:
        """Deletes an owner's chunks with their score and entity-index rows."""
        return await asyncio.to_thread(self._store.delete_owner, owner)

    async def replace_source_chunks(
        self, source_kind: _Kind, source_id: str, chunks: Sequence[Chunk]
    ) -> tuple[int, int]:
        """Makes ``chunks`` the whole content of the source; ``(upserted, removed)``."""
        return await asyncio.to_thread(
            self._store.replace_source_chunks, source_kind, source_id, list(chunks)
        )

    async def connection_settings(self) -> dict[str, str]:
        """The pragmas in force on the shared connection."""
        return await asyncio.to_thread(self._store.connection_settings)

    async def backup(self, dest: str | os.PathLike[str]) -> CopyReport:
        """An online, verified copy of the store at ``dest`` (never over an
        existing file); see :meth:`memtree.Store.backup`."""
        return await asyncio.to_thread(self._store.backup, dest)

    async def delete_chunks(
        self,
        older_than: timedelta | datetime,
        *,
        source_kind: SourceKind | str | None = None,
        source_id: str | None = None,
        owner: str | None = None,
        since: datetime | None = None,
    ) -> int:
        """Retention in bounded batches; see :meth:`memtree.Store.delete_chunks`."""
        return await asyncio.to_thread(
            self._store.delete_chunks,
            older_than,
            source_kind=source_kind,
            source_id=source_id,
            owner=owner,
            since=since,
        )

    async def erase_owner(
        self, owner: str, *, content_root: _PathLike | None = None
    ) -> ErasureReport:
        """Erases an owner's rows, then the content files they name; see
        :meth:`memtree.Store.erase_owner`."""
        return await asyncio.to_thread(self._store.erase_owner, owner, content_root=content_root)

    async def sweep_erased_files(self, *, content_root: _PathLike | None = None) -> FileSweep:
        """Finishes logged file removals; see :meth:`memtree.Store.sweep_erased_files`."""
        return await asyncio.to_thread(self._store.sweep_erased_files, content_root=content_root)

    async def compact(self) -> CompactReport:
        """``VACUUM`` in place after a free-space check; see
        :meth:`memtree.Store.compact`."""
        return await asyncio.to_thread(self._store.compact)

    async def check(self, *, full: bool = False) -> list[str]:
        """``quick_check`` (or ``integrity_check`` with ``full``)."""
        return await asyncio.to_thread(self._store.check, full=full)

    async def set_chunk_embedding(self, id: str, vector: Iterable[float] | Buffer | None) -> bool:
        """Sets (or with None clears) a chunk's embedding; whether it exists."""
        return await asyncio.to_thread(self._store.set_chunk_embedding, id, vector)

    async def get_chunk_embedding(self, id: str) -> array.array[float] | None:
        """A chunk's embedding as an ``array.array("f")``, or None."""
        return await asyncio.to_thread(self._store.get_chunk_embedding, id)

    async def set_chunk_embeddings(
        self, ids: Iterable[str], matrix: Buffer | Iterable[Iterable[float] | Buffer | None]
    ) -> int:
        """Sets many chunks' embeddings in one transaction; how many chunks exist."""
        rows = matrix if _passes_as_is(matrix) else [_vector(r) for r in matrix]  # type: ignore[union-attr]
        return await asyncio.to_thread(self._store.set_chunk_embeddings, _strs(ids), rows)

    async def get_chunk_embeddings(self, ids: Iterable[str]) -> Embeddings:
        """The embeddings of these chunks (``memtree.Embeddings``)."""
        return await asyncio.to_thread(self._store.get_chunk_embeddings, _strs(ids))

    async def search(
        self,
        *,
        text: str | None = None,
        vector: Iterable[float] | Buffer | None = None,
        k: int = 10,
        source_kind: _Kind | None = None,
        source_id: str | None = None,
        owner: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        include_summaries: bool = False,
    ) -> builtins.list[Hit]:
        """Text and vector search fused by RRF, or either alone (see ``Store.search``)."""
        return await asyncio.to_thread(
            self._store.search,
            text=text,
            vector=None if vector is None else _vector(vector),
            k=k,
            source_kind=source_kind,
            source_id=source_id,
            owner=owner,
            since=since,
            until=until,
            include_summaries=include_summaries,
        )

    async def search_text(
        self,
        query: str,
        k: int = 10,
        *,
        source_kind: _Kind | None = None,
        source_id: str | None = None,
        owner: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        include_summaries: bool = False,
        syntax: Literal["words", "fts5"] = "words",
    ) -> builtins.list[Hit]:
        """The ``k`` chunks whose content best matches ``query`` (see ``Store.search_text``)."""
        return await asyncio.to_thread(
            self._store.search_text,
            query,
            k,
            source_kind=source_kind,
            source_id=source_id,
            owner=owner,
            since=since,
            until=until,
            include_summaries=include_summaries,
            syntax=syntax,
        )

    async def search_vector(
        self,
        vector: Iterable[float] | Buffer,
        k: int = 10,
        *,
        source_kind: _Kind | None = None,
        source_id: str | None = None,
        owner: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        metric: Literal["cosine", "dot", "l2"] = "cosine",
        include_summaries: bool = False,
    ) -> builtins.list[Hit]:
        """The ``k`` stored embeddings nearest ``vector`` (see ``Store.search_vector``)."""
        return await asyncio.to_thread(
            self._store.search_vector,
            _vector(vector),
            k,
            source_kind=source_kind,
            source_id=source_id,
            owner=owner,
            since=since,
            until=until,
            metric=metric,
            include_summaries=include_summaries,
        )

    async def set_chunk_raw_refs(self, id: str, refs: Iterable[RawRef] | None) -> bool:
        """Sets (or with None clears) a chunk's raw refs; whether it exists."""
        return await asyncio.to_thread(self._store.set_chunk_raw_refs, id, refs)

    async def get_chunk_raw_refs(self, id: str) -> list[RawRef] | None:
        """A chunk's raw refs, or None."""
        return await asyncio.to_thread(self._store.get_chunk_raw_refs, id)

    async def get_chunk_content_pointers(self, id: str) -> tuple[str, str] | None:
        """A chunk's ``(content_path, content_sha256)`` when both are set."""
        return await asyncio.to_thread(self._store.get_chunk_content_pointers, id)

    async def get_chunk_content_path(self, id: str) -> str | None:
        """A chunk's ``content_path``, or None."""
        return await asyncio.to_thread(self._store.get_chunk_content_path, id)

    async def get_summary_content_pointers(self, id: str) -> tuple[str, str] | None:
        """A summary's ``(content_path, content_sha256)`` when both are set."""
        return await asyncio.to_thread(self._store.get_summary_content_pointers, id)

    async def list_summaries_with_content_path(self) -> list[tuple[str, str, str]]:
        """``(id, path, sha)`` of live summaries with both pointers set."""
        return await asyncio.to_thread(self._store.list_summaries_with_content_path)

    async def delete_chunk(self, id: str) -> bool:
        """Deletes one chunk with its score and entity rows; whether it existed."""
        return await asyncio.to_thread(self._store.delete_chunk, id)

    async def list_sources(self) -> list[SourceInfo]:
        """Per-source aggregates (:class:`memtree.SourceInfo`), by kind and id."""
        return await asyncio.to_thread(self._store.list_sources)

    async def explain_list_sources(self) -> list[str]:
        """SQLite's query plan for :meth:`list_sources`."""
        return await asyncio.to_thread(self._store.explain_list_sources)


class AsyncJobs:
    """An asyncio face on :class:`memtree.Jobs` (``AsyncStore.jobs``): every
    queue call runs in a worker thread; :meth:`batch` buffers on the loop and
    commits off it."""

    def __init__(self, jobs: Jobs) -> None:
        self._jobs = jobs

    @property
    def sync(self) -> Jobs:
        """The synchronous queue underneath."""
        return self._jobs

    async def enqueue(
        self,
        kind: str,
        payload: object,
        dedupe_key: str | None = None,
        available_at: datetime | None = None,
        max_attempts: int = 5,
    ) -> str | None:
        """Queues a job; its id, or None when an active job has the ``dedupe_key``."""
        return await asyncio.to_thread(
            self._jobs.enqueue, kind, payload, dedupe_key, available_at, max_attempts
        )

    def batch(self) -> AsyncJobBatch:
        """Chunk writes and enqueues committed in one transaction at the end
        of an ``async with`` block (buffering costs no I/O, so it is not a
        coroutine)."""
        return AsyncJobBatch(self._jobs.batch())

    async def claim_next(
        self,
        lease: timedelta | None = None,
        kinds: Iterable[str] | None = None,
        priorities: Mapping[str, int] | None = None,
    ) -> Job | None:
        """Claims the available ready job (of ``kinds``) with the highest
        priority, oldest first; None if none."""
        return await asyncio.to_thread(
            self._jobs.claim_next,
            lease,
            None if kinds is None else _strs(kinds),
            None if priorities is None else dict(priorities),
        )

    async def claim_many(
        self,
        limit: int,
        lease: timedelta | None = None,
        kinds: Iterable[str] | None = None,
        priorities: Mapping[str, int] | None = None,
    ) -> builtins.list[Job]:
        """Claims up to ``limit`` available ready jobs in one statement."""
        return await asyncio.to_thread(
            self._jobs.claim_many,
            limit,
            lease,
            None if kinds is None else _strs(kinds),
            None if priorities is None else dict(priorities),
        )

    async def purge(
        self, older_than: timedelta | datetime, statuses: Iterable[str] | None = None
    ) -> int:
        """Deletes finished jobs older than ``older_than`` in short
        transactions; see :meth:`memtree.Jobs.purge`."""
        return await asyncio.to_thread(self._jobs.purge, older_than, statuses)

    async def cancel(self, job_id: str) -> bool:
        """Ends a ready, running or failed job as cancelled (a running job's
        next heartbeat or settle raises ``JobCancelledError``); False for a
        done, cancelled or unknown job (nothing changes)."""
        return await asyncio.to_thread(self._jobs.cancel, job_id)

    async def mark_done(self, job: Job) -> None:
        """Settles a claimed job as done."""
        await asyncio.to_thread(self._jobs.mark_done, job)

    async def mark_done_many(self, jobs: Iterable[Job]) -> None:
        """Settles claimed jobs as done in one transaction, all or none."""
        await asyncio.to_thread(self._jobs.mark_done_many, builtins.list(jobs))

    async def mark_failed(
        self, job: Job, error: str, retry: RetryPolicy | None = None
    ) -> JobStatus:
        """Records a failed attempt (``retry``: another back-off); returns
        the job's new status."""
        return await asyncio.to_thread(self._jobs.mark_failed, job, error, retry)

    async def mark_done_and_claim_next(
        self,
        job: Job,
        lease: timedelta | None = None,
        kinds: Iterable[str] | None = None,
        priorities: Mapping[str, int] | None = None,
    ) -> Job | None:
        """Settles a claimed job as done and claims the next one in one
        transaction; the job claimed, or None."""
        return await asyncio.to_thread(
            self._jobs.mark_done_and_claim_next,
            job,
            lease,
            None if kinds is None else _strs(kinds),
            None if priorities is None else dict(priorities),
        )

    async def mark_failed_and_claim_next(
        self,
        job: Job,
        error: str,
        lease: timedelta | None = None,
        kinds: Iterable[str] | None = None,
        priorities: Mapping[str, int] | None = None,
        retry: RetryPolicy | None = None,
    ) -> tuple[JobStatus, Job | None]:
        """Records a failed attempt and claims the next job in one
        transaction; the failed job's new status and the job claimed."""
        return await asyncio.to_thread(
            self._jobs.mark_failed_and_claim_next,
            job,
            error,
            lease,
            None if kinds is None else _strs(kinds),
            None if priorities is None else dict(priorities),
            retry,
        )

    async def defer(self, job: Job, until: datetime | timedelta, reason: str = "") -> None:
        """Puts a claimed job back until ``until`` without spending the attempt."""
        await asyncio.to_thread(self._jobs.defer, job, until, reason)

    async def heartbeat(self, job: Job, lease: timedelta | None = None) -> datetime:
        """Extends a held lease; returns the new expiry."""
        return await asyncio.to_thread(self._jobs.heartbeat, job, lease)

    async def release(self, jobs: Iterable[Job]) -> int:
        """Hands held leases back at once; returns how many were released."""
        return await asyncio.to_thread(self._jobs.release, builtins.list(jobs))

    async def release_running_locks(self) -> int:
        """Hands EVERY running job back (sole-worker use only)."""
        return await asyncio.to_thread(self._jobs.release_running_locks)

    async def recover_stale_locks(self) -> int:
        """Requeues running jobs whose lease expired, and at once those whose
        holder is provably dead on this host; returns how many."""
        return await asyncio.to_thread(self._jobs.recover_stale_locks)

    async def retry(self, job_id: str) -> bool:
        """Puts a dead-lettered job back to ready with attempts reset."""
        return await asyncio.to_thread(self._jobs.retry, job_id)

    async def get(self, id: str) -> Job | None:
        """The job with this id, or None."""
        return await asyncio.to_thread(self._jobs.get, id)

    async def list(
        self, *, status: _JobStatusArg | None = None, kind: str | None = None, limit: int = 100
    ) -> builtins.list[Job]:
        """Jobs oldest first, filtered in SQL."""
        return await asyncio.to_thread(self._jobs.list, status=status, kind=kind, limit=limit)

    async def counts(self) -> dict[str, int]:
        """Job counts for every status."""
        return await asyncio.to_thread(self._jobs.counts)

    async def schedule(
        self,
        kind: str,
        every: timedelta,
        payload: object = None,
        key: str | None = None,
        now: datetime | int | None = None,
    ) -> str | None:
        """Periodic enqueue, once per slot of ``every`` (``Scheduler.schedule``)."""
        return await asyncio.to_thread(self._jobs.schedule, kind, every, payload, key, now)


class AsyncJobBatch:
    """A :class:`memtree.JobBatch` for ``async with``: buffers on the loop,
    commits everything in one transaction off it when the block ends (and
    discards everything if the block raises)."""

    def __init__(self, batch: JobBatch) -> None:
        self._batch = batch

    def claim_source(self, source_kind: SourceKind | str, source_id: str) -> None:
        """The ingest gate, committed with the chunks and jobs (see
        :meth:`memtree.JobBatch.claim_source`)."""
        self._batch.claim_source(source_kind, source_id)

    def upsert_chunks(self, chunks: Iterable[Chunk]) -> int:
        """Buffers chunk upserts; returns how many."""
        return self._batch.upsert_chunks(chunks)

    def enqueue(
        self,
        kind: str,
        payload: object,
        dedupe_key: str | None = None,
        available_at: datetime | None = None,
        max_attempts: int = 5,
    ) -> int:
        """Buffers a job; returns its index in :attr:`job_ids`."""
        return self._batch.enqueue(kind, payload, dedupe_key, available_at, max_attempts)

    async def commit(self) -> builtins.list[str | None]:
        """Writes everything in one transaction off the loop; the job ids."""
        return await asyncio.to_thread(self._batch.commit)

    def discard(self) -> None:
        """Drops everything buffered."""
        self._batch.discard()

    @property
    def job_ids(self) -> builtins.list[str | None]:
        """After the commit: one id (or None) per enqueue, in order."""
        return self._batch.job_ids

    @property
    def claimed(self) -> bool | None:
        """After the commit: whether the batch's claim won (None: no claim)."""
        return self._batch.claimed

    async def __aenter__(self) -> AsyncJobBatch:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.commit()
        else:
            self.discard()


def _strs(items: Iterable[str]) -> builtins.list[str] | str:
    # Materialised on the loop's thread; a bare str goes through for the
    # native layer to reject with its TypeError.
    return items if isinstance(items, str) else builtins.list(items)


def _passes_as_is(value: object) -> bool:
    # A buffer (numpy, array, memoryview), None or a str goes to the native
    # layer unchanged: it reads a buffer in one piece and rejects a str or
    # bytes with its own TypeError.
    if value is None or isinstance(value, (str, bytes, bytearray)):
        return True
    try:
        memoryview(value).release()  # type: ignore[arg-type]
    except TypeError:
        return False
    return True


def _vector(values: Any) -> Any:
    # Any other iterable is materialised on the loop's thread.
    return values if _passes_as_is(values) else builtins.list(values)
