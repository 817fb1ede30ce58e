"""Small value types of the public API."""

from __future__ import annotations

import enum

__all__ = ["SourceKind"]


class SourceKind(str, enum.Enum):
    """Where a chunk's text came from. Members compare equal to their strings,
    and every API that takes a kind also accepts the plain string."""

    CHAT = "chat"
    EMAIL = "email"
    DOCUMENT = "document"

    def __str__(self) -> str:
        return self.value
