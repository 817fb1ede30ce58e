"""Small value types of the public API."""

from __future__ import annotations

import enum

__all__ = ["JobStatus", "SourceKind"]


class SourceKind(str, enum.Enum):
    """Where a chunk's text came from. Members compare equal to their strings,
    and every API that takes a kind also accepts the plain string."""

    CHAT = "chat"
    EMAIL = "email"
    DOCUMENT = "document"

    def __str__(self) -> str:
        return self.value


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
