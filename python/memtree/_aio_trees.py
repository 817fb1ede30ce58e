"""The asyncio face on :class:`memtree.Trees` (``AsyncStore.trees``): each
call runs the native method in a worker thread (``asyncio.to_thread``), which
releases the GIL for the whole database operation. Iterable arguments are
materialised on the loop's thread first."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Literal, Union

from memtree._native import Chunk, Summary, Tree, TreeBuffer, Trees
from memtree._types import TreeKind

if TYPE_CHECKING:
    import array

    # Only for annotations: typing_extensions is not a runtime dependency.
    from typing_extensions import Buffer

__all__ = ["AsyncTrees"]

_TreeKind = Union[TreeKind, Literal["source", "topic", "global"]]


class AsyncTrees:
    """An asyncio face on :class:`memtree.Trees`: the same calls as coroutines."""

    def __init__(self, trees: Trees) -> None:
        self._trees = trees

    @property
    def sync(self) -> Trees:
        """The synchronous trees underneath."""
        return self._trees

    async def create(
        self,
        kind: _TreeKind,
        scope: str,
        *,
        id: str | None = None,
        created_at: datetime | int | None = None,
    ) -> Tree:
        """Creates an active tree; a duplicate kind and scope is a ConstraintError."""
        return await asyncio.to_thread(
            self._trees.create, kind, scope, id=id, created_at=created_at
        )

    async def get(self, id: str) -> Tree | None:
        """The tree with this id."""
        return await asyncio.to_thread(self._trees.get, id)

    async def get_by_scope(self, kind: _TreeKind, scope: str) -> Tree | None:
        """The tree of ``kind`` over ``scope``."""
        return await asyncio.to_thread(self._trees.get_by_scope, kind, scope)

    async def get_or_create(self, kind: _TreeKind, scope: str) -> Tree:
        """The tree of ``kind`` over ``scope``, created when missing."""
        return await asyncio.to_thread(self._trees.get_or_create, kind, scope)

    async def list(self, kind: _TreeKind) -> builtins.list[Tree]:
        """Every tree of ``kind``, in creation order."""
        return await asyncio.to_thread(self._trees.list, kind)

    async def insert_summary(self, summary: Summary) -> bool:
        """Inserts a summary; False when its id exists."""
        return await asyncio.to_thread(self._trees.insert_summary, summary)

    async def get_summary(self, id: str) -> Summary | None:
        """One summary, soft-deleted ones flagged."""
        return await asyncio.to_thread(self._trees.get_summary, id)

    async def list_summaries(self, tree_id: str, level: int) -> builtins.list[Summary]:
        """The live summaries of a tree at ``level``, in seal order."""
        return await asyncio.to_thread(self._trees.list_summaries, tree_id, level)

    async def count_summaries(self, tree_id: str) -> int:
        """How many live summaries a tree has."""
        return await asyncio.to_thread(self._trees.count_summaries, tree_id)

    async def delete_summary(self, id: str) -> bool:
        """Soft-deletes a summary; True when it was live."""
        return await asyncio.to_thread(self._trees.delete_summary, id)

    async def set_summary_embedding(self, id: str, vector: Iterable[float] | Buffer | None) -> bool:
        """Sets or (None) clears a summary's embedding."""
        return await asyncio.to_thread(self._trees.set_summary_embedding, id, vector)

    async def get_summary_embedding(self, id: str) -> array.array[float] | None:
        """A summary's embedding; None when it is missing or has none."""
        return await asyncio.to_thread(self._trees.get_summary_embedding, id)

    async def get_buffer(self, tree_id: str, level: int) -> TreeBuffer:
        """The buffer of a tree at ``level`` (empty when there is none)."""
        return await asyncio.to_thread(self._trees.get_buffer, tree_id, level)

    async def list_stale_buffers(self, older_than: datetime | int) -> builtins.list[TreeBuffer]:
        """The stale level-0 buffers, oldest first."""
        return await asyncio.to_thread(self._trees.list_stale_buffers, older_than)

    async def append_to_buffer(
        self,
        tree_id: str,
        level: int,
        item_ids: Sequence[str],
        tokens: Sequence[int],
        oldest: datetime | int,
    ) -> TreeBuffer:
        """Appends items to a buffer in one transaction (idempotent per item)."""
        return await asyncio.to_thread(
            self._trees.append_to_buffer,
            tree_id,
            level,
            builtins.list(item_ids),
            builtins.list(tokens),
            oldest,
        )

    async def walk(
        self, summary_id: str, depth: int | None = None
    ) -> builtins.list[Summary | Chunk]:
        """The subtree under a summary, depth first, in one statement."""
        return await asyncio.to_thread(self._trees.walk, summary_id, depth)

    async def ancestors(self, id: str) -> builtins.list[Summary]:
        """The summaries above a chunk or summary, nearest first."""
        return await asyncio.to_thread(self._trees.ancestors, id)
