"""Small value types of the public API."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import NamedTuple

__all__ = ["JobStatus", "RawRef", "SourceInfo", "SourceKind", "TreeKind", "TreeStatus"]


class SourceKind(str, enum.Enum):
    """Where a chunk's text came from. Members compare equal to their strings,
    and every API that takes a kind also accepts the plain string."""

    CHAT = "chat"
    EMAIL = "email"
    DOCUMENT = "document"

    def __str__(self) -> str:
        return self.value


class RawRef(NamedTuple):
    """A chunk's reference into the raw archive: bytes ``start`` to ``end``
    of the file at ``path`` (``end=None``: to the end of the file). Stored in
    ``raw_refs_json`` as the reference's ``{"path", "start", "end"}`` object;
    see :meth:`memtree.Store.set_chunk_raw_refs`."""

    path: str
    start: int = 0
    end: int | None = None


class SourceInfo(NamedTuple):
    """One source's aggregate over its chunks, as :meth:`memtree.Store.list_sources`
    returns it: the chunk count, the sum of their token counts and the
    oldest and newest chunk ``timestamp`` (aware UTC datetimes)."""

    source_kind: SourceKind
    source_id: str
    chunk_count: int
    token_total: int
    oldest: datetime
    newest: datetime


class JobStatus(str, enum.Enum):
    """Where a job is in its life (``Job.status``). Members compare equal to
    their strings, and every API that takes a status also accepts the plain
    string."""

    READY = "ready"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """No worker will claim the job again: ``done``, ``failed`` (only
        :meth:`memtree.Jobs.retry` revives it) or ``cancelled``."""
        return self in (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)

    def __str__(self) -> str:
        return self.value


class TreeKind(str, enum.Enum):
    """What a tree groups. Members compare equal to their strings, and every
    API that takes a kind also accepts the plain string."""

    SOURCE = "source"
    """One tree per ingest source (a chat channel, a mailbox)."""
    TOPIC = "topic"
    """One tree per entity or topic."""
    GLOBAL = "global"
    """The cross-source daily digest tree."""

    def __str__(self) -> str:
        return self.value


class TreeStatus(str, enum.Enum):
    """Whether a tree still takes new leaves (``Tree.status``)."""

    ACTIVE = "active"
    """Takes new leaves."""
    ARCHIVED = "archived"
    """Kept and readable; takes no new leaves."""

    def __str__(self) -> str:
        return self.value
