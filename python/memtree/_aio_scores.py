"""The asyncio face on :class:`memtree.Scores` (``AsyncStore.scores``): each
call runs the native method in a worker thread (``asyncio.to_thread``), which
releases the GIL for the whole database operation. Iterable arguments are
materialised on the loop's thread first."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from memtree._native import Scheduler, Scores
from memtree._types import Entity, EntityHit, Hotness, Score

__all__ = ["AsyncScheduler", "AsyncScores"]


class AsyncScores:
    """An asyncio face on :class:`memtree.Scores`: the same calls as coroutines."""

    def __init__(self, scores: Scores) -> None:
        self._scores = scores

    @property
    def sync(self) -> Scores:
        """The synchronous scores underneath."""
        return self._scores

    async def upsert_score(self, score: Score) -> None:
        """Writes a chunk's score row, replacing any earlier one."""
        await asyncio.to_thread(self._scores.upsert_score, score)

    async def get_score(self, chunk_id: str) -> Score | None:
        """A chunk's score row."""
        return await asyncio.to_thread(self._scores.get_score, chunk_id)

    async def count_scores(self) -> int:
        """How many score rows there are."""
        return await asyncio.to_thread(self._scores.count_scores)

    async def replace_score(
        self,
        score: Score,
        entities: Iterable[Entity],
        *,
        timestamp: datetime | int,
        tree_id: str | None = None,
    ) -> int:
        """Writes a score and replaces its chunk's entities in one transaction."""
        return await asyncio.to_thread(
            self._scores.replace_score, score, list(entities), timestamp=timestamp, tree_id=tree_id
        )

    async def index_entities(
        self,
        node_id: str,
        entities: Iterable[Entity],
        *,
        timestamp: datetime | int,
        node_kind: str = "leaf",
        tree_id: str | None = None,
    ) -> int:
        """Indexes entities against a node, idempotent per (entity, node)."""
        return await asyncio.to_thread(
            self._scores.index_entities,
            node_id,
            list(entities),
            timestamp=timestamp,
            node_kind=node_kind,
            tree_id=tree_id,
        )

    async def lookup_entity(self, entity_id: str, limit: int = 100) -> list[EntityHit]:
        """The nodes indexed against an entity, newest first."""
        return await asyncio.to_thread(self._scores.lookup_entity, entity_id, limit)

    async def node_entities(self, node_id: str) -> list[str]:
        """A node's entity ids, highest score first."""
        return await asyncio.to_thread(self._scores.node_entities, node_id)

    async def clear_entities(self, node_id: str) -> int:
        """Deletes a node's index rows; returns how many."""
        return await asyncio.to_thread(self._scores.clear_entities, node_id)

    async def count_entities(self) -> int:
        """How many index rows there are."""
        return await asyncio.to_thread(self._scores.count_entities)

    async def get_hotness(self, entity_id: str) -> Hotness | None:
        """An entity's hotness counters."""
        return await asyncio.to_thread(self._scores.get_hotness, entity_id)

    async def get_or_fresh_hotness(self, entity_id: str) -> Hotness:
        """An entity's counters, or a zero row (not stored)."""
        return await asyncio.to_thread(self._scores.get_or_fresh_hotness, entity_id)

    async def upsert_hotness(self, hotness: Hotness) -> None:
        """Writes an entity's counters."""
        await asyncio.to_thread(self._scores.upsert_hotness, hotness)

    async def distinct_trees(self, entity_id: str) -> int:
        """How many distinct trees an entity is indexed in."""
        return await asyncio.to_thread(self._scores.distinct_trees, entity_id)

    async def count_hotness(self) -> int:
        """How many entities have counters."""
        return await asyncio.to_thread(self._scores.count_hotness)


class AsyncScheduler:
    """An asyncio face on :class:`memtree.Scheduler`: the same calls as coroutines."""

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler

    @property
    def sync(self) -> Scheduler:
        """The synchronous scheduler underneath."""
        return self._scheduler

    async def schedule(
        self,
        kind: str,
        every: timedelta,
        payload: object = None,
        key: str | None = None,
        now: datetime | int | None = None,
    ) -> str | None:
        """Fires a schedule for the slot holding ``now``, once per slot."""
        return await asyncio.to_thread(self._scheduler.schedule, kind, every, payload, key, now)

    async def trigger_digest(self, date: date | str) -> str | None:
        """Enqueues the digest of a day unless one is ready or running."""
        return await asyncio.to_thread(self._scheduler.trigger_digest, date)

    async def backfill_missing_digests(
        self, days_back: int, today: datetime | int | None = None
    ) -> int:
        """A digest for each of the last ``days_back`` days; how many were new."""
        return await asyncio.to_thread(self._scheduler.backfill_missing_digests, days_back, today)

    async def run_daily(self, now: datetime | int | None = None) -> tuple[str | None, str | None]:
        """The daily digest and flush, once per UTC day."""
        return await asyncio.to_thread(self._scheduler.run_daily, now)

    async def next_daily_run_in(self, now: datetime | int | None = None) -> timedelta:
        """The time until the next daily run."""
        return await asyncio.to_thread(self._scheduler.next_daily_run_in, now)
