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

Calls on one store are serialised by its connection mutex, as for the
synchronous store; concurrency helps the loop, not SQLite.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Generator, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Callable, Union

from memtree._native import Chunk, Store
from memtree._types import SourceKind

__all__ = ["AsyncStore"]

_Kind = Union[SourceKind, str]
_PathLike = Union[str, "os.PathLike[str]"]


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
    ) -> list[Chunk]:
        """Newest-first chunks matching every filter given."""
        return await asyncio.to_thread(
            self._store.list_chunks,
            source_kind=source_kind,
            source_id=source_id,
            owner=owner,
            since=since,
            until=until,
            limit=limit,
        )

    async def explain_list_chunks(
        self,
        *,
        source_kind: _Kind | None = None,
        source_id: str | None = None,
        owner: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[str]:
        """SQLite's query plan for :meth:`list_chunks` with these filters."""
        return await asyncio.to_thread(
            self._store.explain_list_chunks,
            source_kind=source_kind,
            source_id=source_id,
            owner=owner,
            since=since,
            until=until,
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

    async def check(self, *, full: bool = False) -> list[str]:
        """``quick_check`` (or ``integrity_check`` with ``full``)."""
        return await asyncio.to_thread(self._store.check, full=full)
