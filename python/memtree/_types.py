"""Small value types of the public API."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import NamedTuple

__all__ = [
    "Entity",
    "EntityHit",
    "Hotness",
    "JobKind",
    "JobStatus",
    "RawRef",
    "Score",
    "SourceInfo",
    "SourceKind",
    "TreeKind",
    "TreeStatus",
]


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


class Score(NamedTuple):
    """One chunk's score rationale: the 13 columns of ``mem_tree_score``
    (:meth:`memtree.Scores.upsert_score`). Floats must be finite;
    ``computed_at`` (an aware datetime or int milliseconds) defaults to now
    when written and reads back as an aware UTC datetime."""

    chunk_id: str
    total: float
    token_count_signal: float = 0.0
    unique_words_signal: float = 0.0
    metadata_weight: float = 0.0
    source_weight: float = 0.0
    interaction_weight: float = 0.0
    entity_density: float = 0.0
    llm_importance: float = 0.0
    llm_importance_reason: str | None = None
    dropped: bool = False
    reason: str | None = None
    computed_at: datetime | int | None = None


class Entity(NamedTuple):
    """An entity to index against a node (:meth:`memtree.Scores.index_entities`):
    its canonical id (``"<kind>:<value>"``), its kind (one of OpenHuman's
    entity kinds: ``email``, ``url``, ``handle``, ``hashtag``, ``person``,
    ``organization``, ``location``, ``event``, ``product``, ``datetime``,
    ``technology``, ``artifact``, ``quantity``, ``misc``, ``topic``), the text
    as it appeared, a finite score and whether it is the user."""

    entity_id: str
    entity_kind: str
    surface: str
    score: float = 1.0
    is_user: bool = False


class EntityHit(NamedTuple):
    """One row of the entity index, as :meth:`memtree.Scores.lookup_entity`
    returns it."""

    entity_id: str
    node_id: str
    node_kind: str
    entity_kind: str
    surface: str
    score: float
    timestamp: datetime
    tree_id: str | None
    is_user: bool


class Hotness(NamedTuple):
    """One entity's counters (``mem_tree_entity_hotness``), which decide when
    a topic tree is worth building. Counts fit OpenHuman's ``u32``; times are
    aware datetimes (or int milliseconds when written); ``last_updated``
    defaults to now when written."""

    entity_id: str
    mention_count_30d: int = 0
    distinct_sources: int = 0
    last_seen: datetime | int | None = None
    query_hits_30d: int = 0
    graph_centrality: float | None = None
    ingests_since_check: int = 0
    last_hotness: float | None = None
    last_updated: datetime | int | None = None


class JobKind(str, enum.Enum):
    """The job kinds of OpenHuman's memory tree. Members compare equal to
    their strings and are accepted wherever a job kind string is (they are
    ``str``); :class:`memtree.JobPayload` builds their payloads."""

    EXTRACT_CHUNK = "extract_chunk"
    """Score a chunk and extract its entities."""
    APPEND_BUFFER = "append_buffer"
    """Append a node to a tree's buffer."""
    SEAL = "seal"
    """Seal a buffer into a summary."""
    TOPIC_ROUTE = "topic_route"
    """Route a node to the topic trees of its entities."""
    DIGEST_DAILY = "digest_daily"
    """Build one day's global digest."""
    FLUSH_STALE = "flush_stale"
    """Seal the level-0 buffers that went stale."""

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, value: str) -> JobKind:
        """The kind stored as ``value``; ``ValueError`` for an unknown one."""
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"unknown job kind {value!r}") from None

    def as_str(self) -> str:
        """The stored form (``"extract_chunk"``, …)."""
        return self.value

    @property
    def is_llm_bound(self) -> bool:
        """Whether a job of this kind calls an LLM (OpenHuman throttles those)."""
        return self in _LLM_BOUND


_LLM_BOUND = frozenset(
    {JobKind.EXTRACT_CHUNK, JobKind.SEAL, JobKind.TOPIC_ROUTE, JobKind.DIGEST_DAILY}
)
