"""The Rust core of memtree (``memtree._native``), as seen from Python.

Every database call releases the GIL. SQLite failures raise subclasses of
:class:`memtree.errors.MemtreeError`.

Bad arguments follow one rule, checked before any transaction starts, so a
refused call writes nothing: a value of the wrong type raises ``TypeError``,
a value of the right type that memtree cannot take raises ``ValueError``, and
either message names the argument. In particular:

- an ``int`` argument must fit in a signed 64-bit integer (else ``ValueError``);
- a ``str`` argument must be encodable as UTF-8: a lone surrogate such as
  ``"\ud800"`` is a ``ValueError`` (an element of a list is named by index,
  e.g. ``ids[1]``);
- a path must not contain a NUL byte nor anything the file-system encoding
  refuses (else ``ValueError``);
- a ``datetime`` must be aware and lie within 0001-01-01T00:00:00Z ..
  9999-12-31T23:59:59.999Z once converted to UTC: the range that reads back
  as a ``datetime``. ``datetime.max`` at UTC-23:59 is past it (``ValueError``);
- a lease is a ``timedelta`` of at least 1 ms whose end (now + lease) stays
  within that range; a ``timedelta`` from now (``defer``) likewise;
- a job payload must be JSON-serialisable (else ``TypeError``), at most 127
  containers deep, with no NaN or infinity, no circular reference and no
  number beyond a float's range (else ``ValueError``).
"""

import array
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol, final

from typing_extensions import Buffer

from memtree._native import bench as bench
from memtree._native import testing as testing
from memtree._types import (
    Entity,
    EntityHit,
    Hotness,
    JobKind,
    JobStatus,
    RawRef,
    Score,
    SourceInfo,
    SourceKind,
    TreeKind,
    TreeStatus,
)
from memtree.errors import MemtreeError

__all__ = [
    "Chunk",
    "CompactReport",
    "CopyReport",
    "Embeddings",
    "ErasureReport",
    "FileSweep",
    "Hit",
    "Job",
    "JobBatch",
    "JobPayload",
    "Jobs",
    "Scheduler",
    "Scores",
    "Store",
    "Summary",
    "Tree",
    "TreeBuffer",
    "Trees",
    "__version__",
    "adopt_file",
    "bench",
    "check_path",
    "classify_code",
    "code_name",
    "error_from_code",
    "job_kinds",
    "job_signal",
    "notify_job_signal",
    "restore",
    "result_codes",
    "schema_version",
    "sqlite_version",
    "stranded_files",
    "testing",
    "wait_job_signal",
]

__version__: str

_Kind = SourceKind | str
_PathLike = str | os.PathLike[str]
_KeptReason = Literal[
    "changed", "still_named", "symlink", "not_regular", "unsafe_path", "no_sha256"
]

class _Retry(Protocol):
    """What ``retry=`` reads (``memtree.RetryPolicy`` has it)."""

    @property
    def base(self) -> timedelta: ...
    @property
    def cap(self) -> timedelta: ...
    @property
    def max_attempts(self) -> int | None: ...

_JobStatus = JobStatus | Literal["ready", "running", "done", "failed", "cancelled"]

@final
class Chunk:
    """One ingested piece of text; immutable and valid once constructed.

    ``timestamp``, ``time_range`` and ``created_at`` are aware datetimes or
    integer milliseconds since the epoch (an ``int``, not a ``bool``), within
    0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999Z in UTC; they are stored
    as integer milliseconds since the epoch (UTC; sub-millisecond digits of a
    datetime rounded down) and read back as UTC datetimes.
    ``time_range`` defaults to ``(timestamp, timestamp)`` and
    ``created_at`` to now. ``embedding`` is stored as a float32 vector and
    must be finite and non-empty: any iterable of floats, or a 1-D float32 or
    float64 buffer (a numpy row, ``array.array``, ``memoryview``) read as raw
    memory in one piece. ``bytes``/``bytearray`` are a ``TypeError`` (their
    items are bytes, not floats; wrap raw float32 bytes as
    ``memoryview(b).cast("f")``). ``content_path`` and ``content_sha256``
    point at the full body on disk when ``content`` holds a preview (
    OpenHuman's staged upsert); they are set together or not at all, the
    SHA-256 as 64 lowercase hex digits. Like the embedding and the lifecycle
    status, they are written when the id is new and kept by a re-ingest.

    Raises ``TypeError`` for a field of the wrong type and ``ValueError`` for
    a bad value (an empty ``id``/``source_id``/``lifecycle_status``, an
    unknown ``source_kind``, a naive or out-of-range time, a
    ``time_range`` that ends before it starts, a negative ``token_count`` or
    ``seq_in_source`` or one past 64 bits, a non-finite or empty
    ``embedding``, a content pointer without its pair or a malformed
    SHA-256), each naming the field.
    """

    def __new__(
        cls,
        id: str,
        content: str,
        source_kind: _Kind,
        source_id: str,
        owner: str,
        timestamp: datetime | int,
        *,
        source_ref: str | None = None,
        time_range: tuple[datetime | int, datetime | int] | None = None,
        tags: Iterable[str] | None = None,
        token_count: int = 0,
        seq_in_source: int = 0,
        created_at: datetime | int | None = None,
        lifecycle_status: str | None = None,
        embedding: Iterable[float] | Buffer | None = None,
        content_path: str | None = None,
        content_sha256: str | None = None,
    ) -> Chunk: ...
    @property
    def id(self) -> str:
        """Primary key; upserts are idempotent on it."""
    @property
    def content(self) -> str:
        """The text."""
    @property
    def source_kind(self) -> SourceKind:
        """Kind of the source the text came from."""
    @property
    def source_id(self) -> str:
        """Identifier of the source within its kind."""
    @property
    def source_ref(self) -> str | None:
        """Optional pointer into the source."""
    @property
    def owner(self) -> str:
        """Who the chunk belongs to."""
    @property
    def timestamp(self) -> datetime:
        """When the content happened (UTC)."""
    @property
    def timestamp_ms(self) -> int:
        """``timestamp`` as stored: milliseconds since the epoch."""
    @property
    def content_path(self) -> str | None:
        """Where the full body lives on disk, or None."""
    @property
    def content_sha256(self) -> str | None:
        """The SHA-256 of the body at ``content_path`` (hex), or None."""
    @property
    def time_range(self) -> tuple[datetime, datetime]:
        """The period the chunk covers (UTC)."""
    @property
    def tags(self) -> tuple[str, ...]:
        """Free-form labels."""
    @property
    def token_count(self) -> int:
        """Token count of ``content``."""
    @property
    def seq_in_source(self) -> int:
        """Position within its source."""
    @property
    def created_at(self) -> datetime:
        """When the chunk was created (UTC)."""
    @property
    def lifecycle_status(self) -> str:
        """Pipeline state: ``admitted`` by default."""
    @property
    def embedding(self) -> tuple[float, ...] | None:
        """The float32 embedding, or None."""
    def replace(
        self,
        *,
        id: str = ...,
        content: str = ...,
        source_kind: _Kind = ...,
        source_id: str = ...,
        owner: str = ...,
        timestamp: datetime | int = ...,
        source_ref: str | None = ...,
        time_range: tuple[datetime | int, datetime | int] | None = ...,
        tags: Iterable[str] | None = ...,
        token_count: int = ...,
        seq_in_source: int = ...,
        created_at: datetime | int | None = ...,
        lifecycle_status: str | None = ...,
        embedding: Iterable[float] | Buffer | None = ...,
    ) -> Chunk:
        """A copy with the given fields changed, validated like a new chunk."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Store:
    """A handle on one memtree database.

    Handles on the same file share one connection per process. Use as a
    context manager or call :meth:`close`; the connection closes with the
    last handle. Opening issues :class:`memtree.JournalModeWarning` when
    SQLite keeps a journal mode other than TRUNCATE.

    An open joins the shared connection only while the path still names the
    file it opened; if the file was renamed away or its folder deleted, the
    open gets the file now at the path, and the older handles keep the moved
    file (their writes raise :class:`memtree.PermanentError`
    SQLITE_READONLY_DBMOVED, 1032). After ``fork()`` a handle opened by the
    parent raises :class:`memtree.ForkedStoreError`; open the store again in
    the child.
    """

    def __new__(cls, path: _PathLike) -> Store:
        """Opens the database file at ``path`` (its folder must exist).
        ``TypeError`` if ``path`` is not a str or path-like, ``ValueError`` if
        it contains a NUL byte."""
    @classmethod
    def open(cls, workspace: _PathLike) -> Store:
        """Opens ``<workspace>/memory_tree/chunks.db``, creating the folders
        (``TypeError``/``ValueError`` for a bad ``workspace`` as for ``path``)."""
    @staticmethod
    def invalidate(path: _PathLike) -> None:
        """Clears the circuit breaker of ``path`` so the next open tries at once."""
    @property
    def path(self) -> Path:
        """The canonical path of the database file."""
    @property
    def journal_mode(self) -> str:
        """The journal mode SQLite reports (``"truncate"`` normally)."""
    @property
    def jobs(self) -> Jobs:
        """The job queue stored in this database."""
    @property
    def scheduler(self) -> Scheduler:
        """The periodic side of the job queue (``memtree.Scheduler``)."""
    @property
    def scores(self) -> Scores:
        """The scores, entity index and hotness in this database (``memtree.Scores``)."""
    @property
    def trees(self) -> Trees:
        """The summary trees in this database (``memtree.Trees``)."""
    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
    def close(self) -> None:
        """Releases this handle; later calls raise StoreClosedError."""
    def __enter__(self) -> Store: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    def upsert_chunks(self, chunks: Iterable[Chunk]) -> int:
        """Inserts chunks by id in one transaction; all or none. An id already
        stored is re-ingested: its ingest fields are replaced, its embedding,
        lifecycle status, raw refs, content pointers and parent summary id are
        kept (so are they by :meth:`replace_source_chunks` and a job batch)."""
    def get_chunk(self, id: str) -> Chunk | None:
        """The chunk with this id, or None."""
    def get_chunks(self, ids: Iterable[str]) -> list[Chunk]:
        """The chunks with these ids in the order asked; missing ids skipped,
        an id asked twice returned twice. One SQL statement (one read lock)
        for any number of ids."""
    def list_chunks(
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
        """Newest-first chunks matching every filter given (``since`` inclusive,
        ``until`` exclusive), in a total order: ``timestamp`` descending, then
        ``seq_in_source`` ascending (a document's chunks in reading order),
        then ``id`` ascending. ``limit`` is any ``int``, clamped to 1..10000
        however large or negative; a ``bool``, ``float`` or ``str`` raises
        ``TypeError`` naming ``limit``.

        ``after``: a chunk (usually the last of the previous page); only the
        rows that follow it in that order are listed, so pages never skip or
        repeat a row, whatever rows share its timestamp. It need not still be
        stored. :meth:`iter_chunks` pages this way for you."""
    def explain_list_chunks(
        self,
        *,
        source_kind: _Kind | None = None,
        source_id: str | None = None,
        owner: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after: Chunk | None = None,
    ) -> list[str]:
        """SQLite's query plan for :meth:`list_chunks` with these filters, one
        line per step: every combination of filters is one ``SEARCH`` on an
        index (no filter at all: a ``SCAN`` of the time index that ``limit``
        stops), never a ``TEMP B-TREE``."""
    def iter_chunks(
        self,
        *,
        source_kind: _Kind | None = None,
        source_id: str | None = None,
        owner: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        page_size: int = 1000,
    ) -> Iterator[Chunk]:
        """Every chunk matching the filters, once each, in :meth:`list_chunks`
        order, read ``page_size`` rows at a time (each page one read, the GIL
        released; ``page_size`` follows the ``limit`` rule).

        Pages follow one another by cursor, not by offset: each costs the
        same however far the walk has gone. Rows committed while iterating
        are seen when the walk reaches their place in the order (an older
        row inserted meanwhile comes up; a newer one, already behind the
        cursor, does not); no row is yielded twice."""
    def count_chunks(self) -> int:
        """Number of chunks stored."""
    def get_lifecycle_status(self, id: str) -> str | None:
        """A chunk's lifecycle status, or None if it does not exist."""
    def set_lifecycle_status(self, ids: Iterable[str], status: str) -> int:
        """Sets the status of existing chunks in one transaction; returns how many."""
    def count_by_lifecycle_status(self) -> dict[str, int]:
        """Chunk counts per lifecycle status."""
    def is_source_ingested(self, source_kind: _Kind, source_id: str) -> bool:
        """True when the source has been claimed."""
    def claim_source(self, source_kind: _Kind, source_id: str) -> bool:
        """The ingest gate: True for the one caller that claims the source."""
    def delete_source(self, source_kind: _Kind, source_id: str) -> int:
        """Deletes a source's chunks, their score and entity-index rows and its
        ingest claim, in one transaction; returns the chunks deleted."""
    def delete_owner(self, owner: str) -> int:
        """Deletes an owner's chunks with their score and entity-index rows."""
    def erase_owner(self, owner: str, *, content_root: _PathLike | None = None) -> ErasureReport:
        """Erases an owner: deletes its chunks with their score and
        entity-index rows in one transaction that also logs the content
        files their pointers name, then removes those files — each only if
        it lies under the content root (``content_root``, by default
        ``content/`` beside the database, as OpenHuman keeps
        ``memory_tree/content`` beside ``memory_tree/chunks.db``), is reached
        without a symbolic link, is a regular file, still has the recorded
        SHA-256 (of its body after the front matter, or of the whole file)
        and is named by no remaining chunk or summary. Any other file is
        kept and listed with why; folders stay. A crash after the commit
        leaves the log, which the next open (or :meth:`sweep_erased_files`)
        finishes. ``ValueError`` for an empty ``owner``, changing nothing."""
    def sweep_erased_files(self, *, content_root: _PathLike | None = None) -> FileSweep:
        """Removes the files an erasure logged under ``content_root`` (by
        default ``content/`` beside the database) and has not removed yet,
        with the checks of :meth:`erase_owner`. The open that makes this
        process's connection to the file does this for the default root; call
        it for a root of your own."""
    def replace_source_chunks(
        self, source_kind: _Kind, source_id: str, chunks: Sequence[Chunk]
    ) -> tuple[int, int]:
        """Makes ``chunks`` the whole content of the source in one transaction;
        returns ``(upserted, removed)``."""
    def connection_settings(self) -> dict[str, str]:
        """The pragmas in force on the shared connection, as SQLite reports them."""
    def delete_chunks(
        self,
        older_than: timedelta | datetime,
        *,
        source_kind: _Kind | None = None,
        source_id: str | None = None,
        owner: str | None = None,
        since: datetime | None = None,
    ) -> int:
        """Retention: deletes the chunks whose timestamp is more than
        ``older_than`` ago (a ``timedelta``) or before it (an aware
        ``datetime``), narrowed by the :meth:`list_chunks` filters, with
        their score and entity-index rows (the cascade of
        :meth:`delete_source`), in transactions of at most 500 chunks;
        returns how many. Ingest-gate rows stay (a source is not ingested
        again because its old chunks were dropped); content files named by
        content pointers are not removed."""
    def compact(self) -> CompactReport:
        """Gives free pages back to the file system with ``VACUUM``, in
        place (the same file, one transaction through its journal: a kill
        at any moment leaves the old contents or the compacted ones, whole).
        Checks first that the store's folder (and the temporary folder, if
        on another file system) has room for twice the database, raising
        ``DiskFullError`` with nothing changed otherwise. Other connections
        wait (busy timeout) while it runs."""
    def backup(self, dest: _PathLike) -> CopyReport:
        """Writes an online, consistent copy of this store to ``dest`` while
        other threads and processes keep using it: one snapshot (writers wait
        for its read lock, as for any reader), written under
        ``<dest>.partial``, synced, verified (``integrity_check``, schema
        version, every table's row count) and linked into place, the folder
        synced. ``PathRefusedError``, changing nothing, when anything exists
        at ``dest`` or its side-file names (a backup never replaces a file)
        or its folder is missing."""
    def check(self, *, full: bool = False) -> list[str]:
        """``quick_check`` (or ``integrity_check`` with ``full``); ``["ok"]`` if healthy."""
    def set_chunk_embedding(self, id: str, vector: Iterable[float] | Buffer | None) -> bool:
        """Sets a chunk's embedding without rewriting the chunk, in one
        transaction; returns whether the chunk exists (a missing id writes
        nothing). ``None`` clears it (re-ingest keeps an embedding, so this is
        how a caller drops one). ``vector`` is any iterable of floats or an
        object with the buffer protocol holding 1-D float32 or float64 values
        (``array.array('f')``, ``memoryview``, a numpy ``float32`` array: read
        as raw bytes, not element by element). Stored as OpenHuman's BLOB:
        little-endian ``f32``, 4 bytes per value, no header. An empty vector,
        NaN or infinity (also a float64 beyond float32's range) is a
        ``ValueError``, a non-float element or buffer format a ``TypeError``."""
    def get_chunk_embedding(self, id: str) -> array.array[float] | None:
        """A chunk's embedding as an ``array.array("f")`` (a buffer:
        ``numpy.asarray`` takes it without a copy), or None if it has none or
        does not exist."""
    def set_chunk_embeddings(
        self, ids: Iterable[str], matrix: Buffer | Iterable[Iterable[float] | Buffer | None]
    ) -> int:
        """Sets many chunks' embeddings in ONE transaction (all or none):
        row ``i`` of ``matrix`` goes to ``ids[i]``. ``matrix`` is a 2-D float32
        or float64 buffer (a numpy ``(n, d)`` array, read as raw memory) or a
        sequence of vectors, each ``None`` (clears), an iterable of floats or a
        1-D float buffer. Returns how many of the ids name a chunk (a missing
        id writes nothing). Every id and row is checked before the transaction:
        a row count other than the ids', an empty row, NaN or infinity is a
        ``ValueError`` naming it (``matrix[3]``)."""
    def get_chunk_embeddings(self, ids: Iterable[str]) -> Embeddings:
        """The embeddings of these chunks in one read: the ids that have one,
        in the order asked (missing ids and chunks without an embedding are
        skipped). Embeddings of different dimensions are a ``ValueError``."""
    def search_vector(
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
    ) -> list[Hit]:
        """The ``k`` stored embeddings nearest ``vector``, best first.

        Exact: every chunk that matches all the filters (those of
        :meth:`list_chunks`, applied first through its indexes) and has an
        embedding of the query's dimension is scored; ties are broken by id.
        ``k`` rows come back whenever at least ``k`` match. Rows without an
        embedding or of another dimension are skipped (a dimension no row has
        gives ``[]``). ``metric``: ``"cosine"`` (a stored zero vector scores
        0), ``"dot"`` or ``"l2"`` (the score is the negated distance); a
        higher score is better. With ``include_summaries`` live summaries with
        an embedding compete too (``kind="summary"``): ``since``/``until``
        compare their ``time_range_end``, and a ``source_kind``,
        ``source_id`` or ``owner`` filter excludes them.

        Always the committed state: a write committed by any thread or
        process is seen by the next search. The embeddings are kept in memory
        after the first search (about ``4 * rows * dim`` bytes), keyed on
        SQLite's change counter, and read again after any commit. The GIL is
        released for the whole search; searches in several threads run in
        parallel.

        ``vector``: a 1-D float buffer or an iterable of floats; an empty one,
        NaN or infinity (or a zero vector with cosine) is a ``ValueError``.
        ``k`` follows the ``limit`` rule (any int, clamped to 1..10000; a
        bool, float or str is a ``TypeError``); an unknown metric is a
        ``ValueError``."""
    def search_text(
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
    ) -> list[Hit]:
        """The ``k`` chunks whose content best matches ``query``, best first.

        Ranked by SQLite's ``bm25()`` over the full-text index of chunk
        content (tokenizer ``unicode61 remove_diacritics 2``: case and
        accents fold); the hit's ``score`` is the negated bm25 (higher is
        better), ties are broken by id, ``text_rank`` is the 1-based rank and
        ``snippet`` a short excerpt around the best match. The filters are
        those of :meth:`list_chunks`, exact and applied before the cut to
        ``k``: ``k`` rows come back whenever at least ``k`` match. With
        ``include_summaries`` live summaries compete too (``kind="summary"``,
        ranked in their own index): ``since``/``until`` compare their
        ``time_range_end``, and a ``source_kind``, ``source_id`` or ``owner``
        filter excludes them.

        ``syntax="words"`` (the default): any text is plain words, all of
        them required; quotes, ``AND``/``OR``/``NEAR``, ``*``, ``^``,
        parentheses and colons are only words, never a syntax error. Text
        without a single word (empty, only punctuation) is a ``ValueError``
        naming ``query``. ``syntax="fts5"``: the FTS5 query language as
        SQLite documents it (phrases, ``AND``/``OR``/``NOT``, ``NEAR``,
        prefixes); a query it cannot parse is a ``ValueError`` naming
        ``query`` with SQLite's message.

        The index is kept by triggers in the transaction of every write, so a
        search sees exactly the committed rows. ``k`` follows the ``limit``
        rule (any int, clamped to 1..10000; a bool, float or str is a
        ``TypeError``). The GIL is released for the whole search."""
    def search(
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
    ) -> list[Hit]:
        """Hybrid search: ``text`` (plain words, as :meth:`search_text`) and
        ``vector`` (cosine, as :meth:`search_vector`) fused by reciprocal
        rank fusion, best first.

        With both, each search ranks the rows matching the filters to a depth
        of ``max(k, 100)``, and a hit scores ``1 / (60 + rank)`` summed over
        the lists that hold it: ``score`` is that sum, ``text_rank`` and
        ``vector_rank`` its rank in each list (None when the list does not
        hold it), ``snippet`` the excerpt when its content matches the text.
        Ties are broken by id. With only one of them, that search alone
        (its own scores). Neither is a ``ValueError`` naming ``text``; the
        arguments are checked as the single searches check them, before
        either runs."""
    def set_chunk_raw_refs(self, id: str, refs: Iterable[RawRef] | None) -> bool:
        """Sets a chunk's raw-archive references (``raw_refs_json``,
        OpenHuman's JSON: ``[{"path": ..., "start": ..., "end": ...}]``) in one
        transaction; ``None`` clears them, ``[]`` stores an empty list. Returns
        whether the chunk exists. An empty path, ``start < 0`` or
        ``end < start`` is a ``ValueError`` naming the ref (``refs[1].end``)."""
    def get_chunk_raw_refs(self, id: str) -> list[RawRef] | None:
        """A chunk's raw refs, or None if it has none or does not exist."""
    def get_chunk_content_pointers(self, id: str) -> tuple[str, str] | None:
        """A chunk's ``(content_path, content_sha256)`` when both are set, else None."""
    def get_chunk_content_path(self, id: str) -> str | None:
        """A chunk's ``content_path`` (whether or not its hash is set), else None."""
    def get_summary_content_pointers(self, id: str) -> tuple[str, str] | None:
        """A summary's ``(content_path, content_sha256)`` when both are set, else None."""
    def list_summaries_with_content_path(self) -> list[tuple[str, str, str]]:
        """``(id, content_path, content_sha256)`` of every summary with both
        set and ``deleted = 0``, by id."""
    def delete_chunk(self, id: str) -> bool:
        """Deletes one chunk with its score and entity-index rows in one
        transaction; returns whether it existed (idempotent: a second call
        returns False and changes nothing)."""
    def list_sources(self) -> list[SourceInfo]:
        """One :class:`memtree.SourceInfo` per source with chunks, ordered by
        kind then id, aggregated along the ``(source_kind, source_id,
        seq_in_source)`` index (no sort of the chunk table)."""
    def explain_list_sources(self) -> list[str]:
        """SQLite's query plan for :meth:`list_sources`."""

@final
class Hit:
    """One search result (frozen; compared by value)."""

    @property
    def id(self) -> str:
        """The chunk's or summary's id."""
    @property
    def kind(self) -> Literal["chunk", "summary"]:
        """What the id names."""
    @property
    def score(self) -> float:
        """Higher is better: the cosine similarity, the dot product or the
        negated Euclidean distance."""
    @property
    def vector_rank(self) -> int | None:
        """1-based rank in the vector ranking, if the vector search found it."""
    @property
    def text_rank(self) -> int | None:
        """1-based rank in the text ranking (None for a vector search)."""
    @property
    def snippet(self) -> str | None:
        """A short excerpt of the content around the best text match, ``…``
        where text was cut (None for a vector search)."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Embeddings:
    """Many chunks' embeddings as one block of bytes
    (:meth:`Store.get_chunk_embeddings`)."""

    @property
    def ids(self) -> list[str]:
        """The chunk ids, in the order asked (those with an embedding)."""
    @property
    def dim(self) -> int:
        """The dimension of every vector (0 when there are none)."""
    @property
    def data(self) -> bytes:
        """``len(ids) * dim`` little-endian float32 values, row-major."""
    def to_numpy(self) -> Any:
        """A read-only ``numpy`` array of shape ``(len(ids), dim)`` and dtype
        float32 over :attr:`data` (no copy; numpy is imported on this call)."""
    def __len__(self) -> int: ...

@final
class Job:
    """One row of the job queue, as read or claimed; immutable.

    A job returned by :meth:`Jobs.claim_next` carries the claim's
    ``lease_token``; settling it (:meth:`Jobs.mark_done` and friends) only
    works while that token is the job's current lease.
    """

    @property
    def id(self) -> str:
        """``job:<uuid v4>``."""
    @property
    def kind(self) -> str:
        """What the job does; workers pick a handler by it."""
    @property
    def payload(self) -> Any:
        """The payload, decoded from JSON (a fresh copy on every access)."""
    @property
    def payload_json(self) -> str:
        """The payload as stored."""
    @property
    def dedupe_key(self) -> str | None:
        """At most one ready or running job carries a given key."""
    @property
    def status(self) -> JobStatus:
        """``ready``, ``running``, ``done``, ``failed`` (dead letter) or
        ``cancelled``; :attr:`JobStatus.is_terminal` says whether a worker
        can still claim it."""
    @property
    def attempts(self) -> int:
        """Claims that counted (deferrals and graceful releases do not)."""
    @property
    def max_attempts(self) -> int:
        """Attempts before the job is dead-lettered."""
    @property
    def available_at(self) -> datetime:
        """Not claimed before this time (UTC)."""
    @property
    def locked_until(self) -> datetime | None:
        """While running: when the lease expires (as of the read)."""
    @property
    def last_error(self) -> str | None:
        """The last failure (with its causes), deferral reason or recovery note."""
    @property
    def created_at(self) -> datetime:
        """When it was enqueued (UTC)."""
    @property
    def started_at(self) -> datetime | None:
        """When it was last claimed (UTC); ``None`` before the first claim and
        after a deferral (as OpenHuman's ``mark_deferred`` clears it)."""
    @property
    def completed_at(self) -> datetime | None:
        """When it became ``done`` or ``failed`` (UTC)."""
    @property
    def lease_token(self) -> str | None:
        """The token of the claim this job was read under (running jobs only)."""
    def __eq__(self, other: object, /) -> bool: ...

@final
class Jobs:
    """The job queue of a store (``store.jobs``): at-least-once, leased,
    deduplicated; every call is one transaction with the GIL released.

    Settles (:meth:`mark_done`, :meth:`mark_failed`, :meth:`defer`,
    :meth:`heartbeat`) need the job's current lease token and raise
    :class:`memtree.LeaseLostError`, changing nothing, when the lease was
    recovered, re-claimed or already settled.
    """

    def enqueue(
        self,
        kind: str,
        payload: object,
        dedupe_key: str | None = None,
        available_at: datetime | None = None,
        max_attempts: int = 5,
    ) -> str | None:
        """Queues a job; returns its id, or None when a ready or running job
        has the same ``dedupe_key`` (nothing is written).

        ``TypeError``: ``payload`` is not JSON-serialisable, or another
        argument has the wrong type. ``ValueError``: an empty ``kind`` or
        ``dedupe_key``; a payload more than 127 containers deep, circular, or
        holding NaN, an infinity or a number beyond a float's range; ``max_attempts`` below
        1 or past 64 bits; a naive or out-of-range ``available_at``."""
    def batch(self) -> JobBatch:
        """A buffer of chunk writes and enqueues committed in one transaction."""
    def claim_next(
        self,
        lease: timedelta | None = None,
        kinds: Iterable[str] | None = None,
        priorities: Mapping[str, int] | None = None,
    ) -> Job | None:
        """Claims an available ready job (of ``kinds``) for ``lease`` (default
        5 minutes), in one statement; None when there is none. The claim
        counts as an attempt. ``priorities`` (``{kind: priority}``, kinds not
        listed: 0): the highest priority first; oldest first within a
        priority (and across all kinds without ``priorities``). No claim
        sorts in a temp B-tree: each kind is an index SEARCH (a claim of
        any kind first finds the kinds with ready jobs; past 256 of them,
        the kinds without a priority are sorted together).

        ``TypeError``: ``lease`` is not a ``timedelta``, ``kinds`` not an
        iterable of str, ``priorities`` not a mapping of str to int.
        ``ValueError``: ``lease`` under 1 ms, or ending past
        9999-12-31T23:59:59.999Z; an empty kind in ``priorities``; more than
        256 kinds named by ``kinds`` and ``priorities``."""
    def claim_many(
        self,
        limit: int,
        lease: timedelta | None = None,
        kinds: Iterable[str] | None = None,
        priorities: Mapping[str, int] | None = None,
    ) -> list[Job]:
        """Claims up to ``limit`` available ready jobs in one statement, in
        claim order (``limit`` clamped to 1..10000; past 64 bits a
        ``ValueError``; ``lease``, ``kinds`` and ``priorities`` as for
        :meth:`claim_next`)."""
    def purge(self, older_than: timedelta | datetime, statuses: Iterable[str] | None = None) -> int:
        """Deletes finished jobs (``statuses``, default ``("done", "failed",
        "cancelled")``) that finished ``older_than`` ago or earlier (a
        ``timedelta``) or at or before it (an aware ``datetime``); returns how
        many. Runs as many short transactions (each aims to hold the write
        lock about 20 ms), so concurrent enqueues and claims go on. A
        ``ready`` or ``running`` status is a ``ValueError`` before anything
        is deleted: active jobs are never purged."""
    def cancel(self, job_id: str) -> bool:
        """Ends a ``ready``, ``running`` or ``failed`` job as ``cancelled``
        (its dedupe key is free again); True if it was. A running job's
        worker learns it at its next :meth:`heartbeat` or settle, which
        raises ``JobCancelledError`` (a ``LeaseLostError``) and changes
        nothing: the job stays cancelled. False, changing nothing, for a job
        already ``done`` or ``cancelled``, or unknown."""
    def mark_done(self, job: Job) -> None:
        """Settles a claimed job as done."""
    def mark_done_many(self, jobs: Iterable[Job]) -> None:
        """Settles claimed jobs as done in one transaction, all or none."""
    def mark_failed(self, job: Job, error: str, retry: _Retry | None = None) -> JobStatus:
        """Records a failed attempt: ``ready`` again after 60 s doubling per
        attempt (capped at 1 h), or ``failed`` after the last attempt.
        Returns the new status. ``retry`` (a :class:`memtree.RetryPolicy`)
        gives another ``base``, ``cap`` and ``max_attempts``; a bad one is a
        ``ValueError`` before anything is written."""
    def mark_done_and_claim_next(
        self,
        job: Job,
        lease: timedelta | None = None,
        kinds: Iterable[str] | None = None,
        priorities: Mapping[str, int] | None = None,
    ) -> Job | None:
        """Settles a claimed job as done and claims the next available job
        (as :meth:`claim_next`) in ONE transaction: both commit or neither
        does, so a worker's steady state is two commits a job (the enqueue
        and this). Returns the job claimed, or None.

        :class:`memtree.LeaseLostError` if the lease was lost: nothing is
        settled or claimed. ``lease``, ``kinds`` and ``priorities`` are
        checked before anything is written, with the errors of
        :meth:`claim_next`."""
    def mark_failed_and_claim_next(
        self,
        job: Job,
        error: str,
        lease: timedelta | None = None,
        kinds: Iterable[str] | None = None,
        priorities: Mapping[str, int] | None = None,
        retry: _Retry | None = None,
    ) -> tuple[JobStatus, Job | None]:
        """Records a failed attempt (as :meth:`mark_failed`) and claims the
        next available job (as :meth:`claim_next`) in ONE transaction;
        returns the failed job's new status and the job claimed, or None.
        Errors as for :meth:`mark_done_and_claim_next`."""
    def defer(self, job: Job, until: datetime | timedelta, reason: str = "") -> None:
        """Puts a claimed job back until ``until`` (a time, or a delay from
        now); the attempt does not count. ``last_error`` becomes ``reason`` as
        given and ``started_at`` is cleared, as OpenHuman's ``mark_deferred``
        does. ``TypeError`` if ``until`` is neither
        an aware ``datetime`` nor a ``timedelta``; ``ValueError`` if it is
        naive or lands outside 0001-01-01 .. 9999-12-31T23:59:59.999Z (UTC)."""
    def heartbeat(self, job: Job, lease: timedelta | None = None) -> datetime:
        """Extends a held lease to now + ``lease``; returns the new expiry.
        ``lease`` is checked before anything is written, as for
        :meth:`claim_next`."""
    def release(self, jobs: Iterable[Job]) -> int:
        """Hands held leases back at once (ready now, attempt refunded);
        lost leases are skipped. Returns how many were released."""
    def release_running_locks(self) -> int:
        """Hands EVERY running job back at once, whoever holds it. Only for a
        process that knows it is the sole worker; workers use :meth:`release`."""
    def recover_stale_locks(self) -> int:
        """Requeues running jobs whose lease expired, and at once those whose
        holder process is provably dead on this host (``failed`` if that
        claim was the last attempt); returns how many."""
    def retry(self, job_id: str) -> bool:
        """Puts a dead-lettered job back to ready with attempts reset. False if
        it is not ``failed`` or an active job holds its dedupe key."""
    def get(self, id: str) -> Job | None:
        """The job with this id, or None."""
    def list(
        self, *, status: _JobStatus | None = None, kind: str | None = None, limit: int = 100
    ) -> list[Job]:
        """Jobs oldest first, filtered in SQL; ``limit`` clamped to 1..10000
        (past 64 bits a ``ValueError``); an unknown ``status`` is a ``ValueError``."""
    def schedule(
        self,
        kind: str,
        every: timedelta,
        payload: object = None,
        key: str | None = None,
        now: datetime | int | None = None,
    ) -> str | None:
        """Periodic enqueue, once per slot of ``every``: the same call as
        :meth:`Scheduler.schedule`."""
    def counts(self) -> dict[str, int]:
        """Job counts for every status."""

@final
class JobBatch:
    """Chunk writes and enqueues buffered in Python and committed together by
    ONE native call (one transaction) at :meth:`commit` or at the end of a
    ``with`` block; an exception in the block discards everything. No lock is
    held while the block's Python code runs.
    """

    def claim_source(self, source_kind: _Kind, source_id: str) -> None:
        """The ingest gate inside the write: the commit claims the source in
        ``mem_tree_ingested_sources`` in the same transaction as the chunks
        and jobs, so a crash never leaves a claimed source without them. If
        another ingest already claimed it (any of the batch's sources),
        NOTHING in the batch is written and :attr:`claimed` is False.
        ``ValueError``/``TypeError`` for a bad kind or an empty ``source_id``,
        before anything is buffered."""
    def upsert_chunks(self, chunks: Iterable[Chunk]) -> int:
        """Buffers chunk upserts; returns how many."""
    def enqueue(
        self,
        kind: str,
        payload: object,
        dedupe_key: str | None = None,
        available_at: datetime | None = None,
        max_attempts: int = 5,
    ) -> int:
        """Buffers a job (validated and serialised now, with the errors of
        :meth:`Jobs.enqueue`); returns its index in :attr:`job_ids`."""
    def commit(self) -> list[str | None]:
        """Writes everything in one transaction; returns the job ids (None for
        a dedupe collision, and every one None when the claim lost). A batch
        commits once."""
    @property
    def claimed(self) -> bool | None:
        """After the commit: True if the batch's :meth:`claim_source` won (and
        everything was written), False if it lost (nothing was written), None
        when the batch claimed no source."""
    def discard(self) -> None:
        """Drops everything buffered."""
    @property
    def job_ids(self) -> list[str | None]:
        """After the commit: one id (or None) per enqueue, in order."""
    def __enter__(self) -> JobBatch: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        _exc: BaseException | None = None,
        _tb: TracebackType | None = None,
    ) -> None: ...

def job_signal() -> int:
    """The generation of the process-wide enqueue signal."""

@final
class JobPayload:
    """One of OpenHuman's typed job payloads, built by the static methods
    below: the payload JSON exactly as OpenHuman's serde writes it and the
    dedupe key it derives. Enqueue it with
    ``store.jobs.enqueue(p.kind, p.payload, dedupe_key=p.dedupe_key)``.
    A bad field (an empty id, an unknown node or target kind, a level outside
    0..32, a date not ``YYYY-MM-DD``, a negative age) is a ``ValueError``."""

    @staticmethod
    def extract_chunk(chunk_id: str) -> JobPayload:
        """``extract_chunk``; dedupe key ``extract:<chunk_id>``."""
    @staticmethod
    def append_buffer(
        node_kind: Literal["leaf", "summary"],
        node_id: str,
        target_kind: Literal["source", "topic"],
        target_id: str,
    ) -> JobPayload:
        """``append_buffer`` of a chunk (``leaf``) or summary to a source
        tree (by source id) or a topic tree (by tree id); dedupe key
        ``append:<target_kind>:<target_id>:<node_kind>:<node_id>``."""
    @staticmethod
    def seal(tree_id: str, level: int, force_now: datetime | int | None = None) -> JobPayload:
        """``seal`` of a tree's buffer at ``level``; dedupe key ``seal:<tree_id>:<level>``."""
    @staticmethod
    def topic_route(node_kind: Literal["leaf", "summary"], node_id: str) -> JobPayload:
        """``topic_route`` of a node; dedupe key ``topic_route:<node_kind>:<node_id>``."""
    @staticmethod
    def digest_daily(date: date | str) -> JobPayload:
        """``digest_daily`` of a day; dedupe key ``digest_daily:<YYYY-MM-DD>``."""
    @staticmethod
    def flush_stale(date: date | str, max_age_secs: int | None = None) -> JobPayload:
        """``flush_stale`` (once a day); dedupe key ``flush_stale:<YYYY-MM-DD>``."""
    @property
    def kind(self) -> JobKind:
        """The job kind."""
    @property
    def payload_json(self) -> str:
        """The payload as OpenHuman's serde writes it."""
    @property
    def payload(self) -> Any:
        """The payload, parsed (a fresh dict on every access)."""
    @property
    def dedupe_key(self) -> str:
        """OpenHuman's dedupe key for the payload."""
    def __eq__(self, other: object, /) -> bool: ...

@final
class Scheduler:
    """Periodic jobs on a store's queue (``store.scheduler``), crash-safe and
    once per time slot: a schedule fires by enqueueing its job, and the job
    row records that the slot fired; the check and the enqueue are one
    transaction, so however many processes call, each slot gets exactly one
    job, and a crash leaves the slot fired (its job committed) or not. Times
    (``now``, ``today``) are aware datetimes or int milliseconds, now when
    omitted."""

    def schedule(
        self,
        kind: str,
        every: timedelta,
        payload: object = None,
        key: str | None = None,
        now: datetime | int | None = None,
    ) -> str | None:
        """Fires schedule ``key`` (default: ``kind``) for the slot of ``every``
        holding ``now`` (slots start at multiples of ``every`` since the
        epoch): enqueues a job of ``kind`` with ``payload`` (default ``{}``),
        dedupe key ``<key>@<slot start ms>``, available at the slot's start,
        unless the slot already fired (its job in any status). Returns the new
        job's id or None. ``ValueError``: ``every`` under 1 ms, an empty kind
        or key, a payload JSON cannot hold."""
    def trigger_digest(self, date: date | str) -> str | None:
        """OpenHuman's manual trigger: ``digest_daily`` for ``date`` unless one
        for that day is ready or running (a finished one does not stop it)."""
    def backfill_missing_digests(self, days_back: int, today: datetime | int | None = None) -> int:
        """A ``digest_daily`` for each of the ``days_back`` days before
        ``today``, in one transaction; how many were new."""
    def run_daily(self, now: datetime | int | None = None) -> tuple[str | None, str | None]:
        """OpenHuman's daily run, once per UTC day however often called: the
        digest of yesterday and the stale-buffer flush of today (keys
        ``digest_daily:<date>``, ``flush_stale:<date>``) in one transaction,
        each only if its key never had a job. Returns the two new ids."""
    def next_daily_run_in(self, now: datetime | int | None = None) -> timedelta:
        """The time until the next daily run, 00:05 UTC (OpenHuman's)."""

def job_kinds() -> list[tuple[str, bool]]:
    """``(kind, is_llm_bound)`` of every job kind of the core, in OpenHuman's
    order (:class:`memtree.JobKind` mirrors it)."""

def wait_job_signal(seen: int, timeout: float) -> int:
    """Waits until the signal moves past ``seen`` or ``timeout`` seconds pass."""

def notify_job_signal() -> None:
    """Wakes every idle worker of this process."""

def classify_code(code: int) -> str:
    """The class of an extended result code: ``transient_io``, ``busy``,
    ``disk_full``, ``corrupt``, ``constraint`` or ``permanent``."""

def code_name(code: int) -> str | None:
    """SQLite's name for a result code, e.g. ``SQLITE_IOERR_SHMOPEN``."""

def error_from_code(extended_code: int, message: str = "") -> MemtreeError:
    """The exception memtree raises for ``extended_code``, as an instance
    (``memtree.errors.from_code``); an empty message becomes the code's name."""

def result_codes() -> list[tuple[int, str]]:
    """Every result code memtree knows, as ``(value, name)`` sorted by value."""

def sqlite_version() -> str:
    """The version of the SQLite compiled into memtree."""

@final
class CopyReport:
    """What :meth:`Store.backup` or :func:`restore` wrote."""

    @property
    def path(self) -> Path:
        """The backup written, or the store restored."""
    @property
    def bytes(self) -> int:
        """Its size in bytes."""
    @property
    def replaced(self) -> Path | None:
        """``restore`` only: the byte copy of the contents it replaced
        (``None`` when there was no store, or for a backup)."""
    @property
    def schema_version(self) -> int:
        """The schema version (``user_version``) written."""
    @property
    def rows(self) -> dict[str, int]:
        """Rows per table, as verified in what was written."""

@final
class CompactReport:
    """What :meth:`Store.compact` did."""

    @property
    def bytes_before(self) -> int:
        """The file's size before, in bytes."""
    @property
    def bytes_after(self) -> int:
        """The file's size after, in bytes."""
    @property
    def free_pages_before(self) -> int:
        """Free pages before (``PRAGMA freelist_count``)."""
    @property
    def free_pages_after(self) -> int:
        """Free pages after."""

@final
class ErasureReport:
    """What :meth:`Store.erase_owner` deleted and removed."""

    @property
    def chunks(self) -> int:
        """Chunks deleted."""
    @property
    def scores(self) -> int:
        """Score rows deleted."""
    @property
    def entity_rows(self) -> int:
        """Entity-index rows deleted."""
    @property
    def summaries_derived(self) -> int:
        """Summaries kept that list an erased chunk among their children (trees
        have no owner and a summary may mix owners: resealing or deleting
        them is the application's choice)."""
    @property
    def files_removed(self) -> int:
        """Content files removed."""
    @property
    def files_missing(self) -> int:
        """Content files named by the erased rows that were already gone."""
    @property
    def files_kept(self) -> list[tuple[str, _KeptReason]]:
        """Content files left in place, as ``(content_path, reason)``."""
    @property
    def files_pending(self) -> int:
        """Files still logged for removal after this call (an I/O error, or
        logged under another content root); a later open or
        :meth:`Store.sweep_erased_files` finishes them."""

@final
class FileSweep:
    """What :meth:`Store.sweep_erased_files` did with the logged files."""

    @property
    def removed(self) -> int:
        """Files removed."""
    @property
    def missing(self) -> int:
        """Logged files that were already gone."""
    @property
    def kept(self) -> list[tuple[str, _KeptReason]]:
        """Files left in place, as ``(content_path, reason)``."""
    @property
    def pending(self) -> int:
        """Files still logged for removal (an I/O error, or another root)."""

def restore(backup: _PathLike, path: _PathLike) -> CopyReport:
    """Writes the backup at ``backup`` INTO the store at ``path``, in place:
    one SQLite transaction on the same file (never a rename or a replace,
    so connections that hold it open, in any process, see the old contents
    or the new through SQLite's own locking), after a byte copy of the
    replaced contents is kept as ``<path>.pre-restore-<ms>`` (fsynced). The
    backup is checked first (``integrity_check``, memtree's schema, not
    newer than this build); the store is verified after and left in
    TRUNCATE mode. A missing store is created from the backup (under a
    temporary name, linked into place).

    Refuses with ``BusyError`` while another process holds the store open —
    best effort: only processes whose ``/proc/<pid>/fd`` this user can read
    (Linux), since an idle open connection holds no lock to show it.
    Connections of the calling process see the restored contents."""

def schema_version() -> int:
    """The ``user_version`` of a fully migrated database."""

def check_path(path: _PathLike, *, must_exist: bool = False) -> None:
    """Refuses, as ``Store(path)`` would, a path that cannot be a memtree
    database: raises ``memtree.PathRefusedError`` for a missing folder, a
    FIFO, device, socket, directory or symbolic link at the database or a
    side-file name, or a non-empty file without the SQLite header; with
    ``must_exist``, for a missing file too. Looks at names (``lstat``) and
    reads 16 header bytes: never blocks, never changes anything. For a
    process with no connection on the file (the command line): closing the
    descriptor that read the header drops every POSIX lock the process holds
    on the file."""

def stranded_files(path: _PathLike) -> list[tuple[str, int | None, str]]:
    """Stranded side files beside the database file ``path``: ``(file, None,
    what to do about it)``. Nothing is opened or read."""

def adopt_file(
    path: _PathLike, file: _PathLike, dry_run: bool
) -> tuple[list[tuple[str, int]], int, bool]:
    """Merges the rows of ``file`` (a memtree database, or a ``-wal`` an
    earlier release moved aside) that the database at ``path`` lacks, after
    checking it; nothing is written on a dry run. Returns the rows by table,
    the chunk rows, and whether ``file`` was removed."""

_TreeKind = TreeKind | Literal["source", "topic", "global"]

@final
class Tree:
    """One summary tree (a row of ``mem_tree_trees``)."""

    @property
    def id(self) -> str:
        """Primary key (``"<kind>:<uuid>"`` when memtree made it)."""
    @property
    def kind(self) -> TreeKind:
        """What the tree groups."""
    @property
    def scope(self) -> str:
        """What it covers (a source id, an entity id, ``"global"``); unique per kind."""
    @property
    def root_id(self) -> str | None:
        """The current top summary; None until the first seal."""
    @property
    def max_level(self) -> int:
        """The highest level ever sealed (0 before the first seal)."""
    @property
    def status(self) -> TreeStatus:
        """Active or archived."""
    @property
    def created_at(self) -> datetime:
        """Creation time (UTC)."""
    @property
    def last_sealed_at(self) -> datetime | None:
        """Time of the last seal (UTC)."""
    def __eq__(self, other: object, /) -> bool: ...

@final
class Summary:
    """One sealed summary (a row of ``mem_tree_summaries``, all 18 columns);
    immutable and valid once constructed.

    Times are aware datetimes or integer milliseconds since the epoch, as for
    :class:`Chunk`; ``sealed_at`` defaults to now. ``level`` is 1 (over
    chunks) to 32. ``embedding`` and the content pointers follow the rules of
    :class:`Chunk`. Raises ``TypeError`` for a field of the wrong type and
    ``ValueError`` for a bad value (an empty id, an unknown ``tree_kind``, a
    level out of range, a non-finite ``score``, a negative ``token_count``,
    a time range that ends before it starts), each naming the field.
    """

    def __new__(
        cls,
        id: str,
        tree_id: str,
        level: int,
        content: str,
        time_range_start: datetime | int,
        time_range_end: datetime | int,
        *,
        tree_kind: _TreeKind | None = None,
        parent_id: str | None = None,
        child_ids: Iterable[str] | None = None,
        token_count: int = 0,
        entities: Iterable[str] | None = None,
        topics: Iterable[str] | None = None,
        score: float = 0.0,
        sealed_at: datetime | int | None = None,
        deleted: bool = False,
        embedding: Iterable[float] | None = None,
        content_path: str | None = None,
        content_sha256: str | None = None,
    ) -> Summary: ...
    @property
    def id(self) -> str:
        """Primary key."""
    @property
    def tree_id(self) -> str:
        """The tree it belongs to."""
    @property
    def tree_kind(self) -> TreeKind:
        """That tree's kind (``source`` when not given)."""
    @property
    def level(self) -> int:
        """1 over chunks, 2 over level-1 summaries, and so on."""
    @property
    def parent_id(self) -> str | None:
        """The summary one level up that sealed over this one."""
    @property
    def child_ids(self) -> tuple[str, ...]:
        """The chunk ids (level 1) or summary ids it summarises."""
    @property
    def content(self) -> str:
        """The summary text (a preview when ``content_path`` is set)."""
    @property
    def token_count(self) -> int:
        """Tokens of ``content``."""
    @property
    def entities(self) -> tuple[str, ...]:
        """Canonical entity ids (``"<kind>:<value>"``)."""
    @property
    def topics(self) -> tuple[str, ...]:
        """Topic labels."""
    @property
    def time_range_start(self) -> datetime:
        """Time of the oldest child (UTC)."""
    @property
    def time_range_end(self) -> datetime:
        """Time of the newest child (UTC)."""
    @property
    def score(self) -> float:
        """The highest score among the children at seal time."""
    @property
    def sealed_at(self) -> datetime:
        """Seal time (UTC)."""
    @property
    def deleted(self) -> bool:
        """The soft-delete flag."""
    @property
    def embedding(self) -> tuple[float, ...] | None:
        """The embedding, as :attr:`Chunk.embedding` returns one."""
    @property
    def content_path(self) -> str | None:
        """Relative path of the full text on disk."""
    @property
    def content_sha256(self) -> str | None:
        """SHA-256 of that file (64 lowercase hex digits)."""
    def __eq__(self, other: object, /) -> bool: ...

@final
class TreeBuffer:
    """The unsealed frontier of a tree at one level (a row of
    ``mem_tree_buffers``, or the empty buffer a missing row stands for)."""

    @property
    def tree_id(self) -> str:
        """The tree."""
    @property
    def level(self) -> int:
        """0 holds chunk ids; level n holds level-n summary ids."""
    @property
    def item_ids(self) -> tuple[str, ...]:
        """The pending items, in append order."""
    @property
    def token_sum(self) -> int:
        """The sum of the items' token counts."""
    @property
    def oldest_at(self) -> datetime | None:
        """Time of the oldest item (UTC); None when empty."""
    @property
    def updated_at(self) -> datetime | None:
        """Time of the last write (UTC); None when there is no row."""
    @property
    def version(self) -> str:
        """What :meth:`Trees.seal` compares: changes with every write."""
    @property
    def is_empty(self) -> bool:
        """True when no item is pending."""
    @property
    def should_seal(self) -> bool:
        """OpenHuman's seal gate: level 0 at 50,000 tokens or 10 items,
        higher levels at 10 items."""
    def __eq__(self, other: object, /) -> bool: ...

@final
class Scores:
    """Chunk scores, the entity index and entity hotness of a store
    (``store.scores``), in OpenHuman's tables and formats; every call is one
    transaction with the GIL released. Rows cross as :class:`memtree.Score`,
    :class:`memtree.Entity`, :class:`memtree.EntityHit` and
    :class:`memtree.Hotness`. A non-finite float, an unknown entity kind or
    a counter outside 0..2**32-1 is a ``ValueError`` before any write."""

    def upsert_score(self, score: Score) -> None:
        """Writes a chunk's score row (all 13 columns), replacing any earlier one."""
    def get_score(self, chunk_id: str) -> Score | None:
        """A chunk's score row."""
    def count_scores(self) -> int:
        """How many score rows there are."""
    def replace_score(
        self,
        score: Score,
        entities: Iterable[Entity],
        *,
        timestamp: datetime | int,
        tree_id: str | None = None,
    ) -> int:
        """Writes ``score`` and replaces the entities indexed for its chunk
        with ``entities`` (node kind ``"leaf"``, at ``timestamp``, in
        ``tree_id``) in ONE transaction: a crash or an I/O error leaves the
        old score with its old entities or the new score with the new ones.
        Returns how many entities were indexed."""
    def index_entities(
        self,
        node_id: str,
        entities: Iterable[Entity],
        *,
        timestamp: datetime | int,
        node_kind: str = "leaf",
        tree_id: str | None = None,
    ) -> int:
        """Indexes entities against a node (``node_kind`` ``"leaf"`` or
        ``"summary"``) in one transaction, idempotent per (entity, node);
        returns how many rows were written."""
    def lookup_entity(self, entity_id: str, limit: int = 100) -> list[EntityHit]:
        """The nodes indexed against an entity, newest first; ``limit``
        clamped to 1..10000."""
    def node_entities(self, node_id: str) -> list[str]:
        """A node's entity ids, highest score first, then newest, then by id."""
    def clear_entities(self, node_id: str) -> int:
        """Deletes a node's index rows; returns how many."""
    def count_entities(self) -> int:
        """How many index rows there are."""
    def get_hotness(self, entity_id: str) -> Hotness | None:
        """An entity's hotness counters; None when never stored."""
    def get_or_fresh_hotness(self, entity_id: str) -> Hotness:
        """An entity's counters, or a zero row stamped now (not stored)."""
    def upsert_hotness(self, hotness: Hotness) -> None:
        """Writes an entity's counters, replacing every field."""
    def distinct_trees(self, entity_id: str) -> int:
        """How many distinct trees an entity is indexed in (rows without a
        tree do not count): the refresh of ``distinct_sources``."""
    def count_hotness(self) -> int:
        """How many entities have counters."""

@final
class Trees:
    """The summary trees of a store (``store.trees``); every call is one
    transaction with the GIL released. Kinds are :class:`TreeKind` members or
    their strings; an unknown kind or a level outside 0..32 is a
    ``ValueError`` before any write."""

    def create(
        self,
        kind: _TreeKind,
        scope: str,
        *,
        id: str | None = None,
        created_at: datetime | int | None = None,
    ) -> Tree:
        """Creates an active tree (id ``"<kind>:<uuid>"`` unless given,
        created now unless given). A second tree of the same kind and scope
        (or id) raises :class:`memtree.ConstraintError`; nothing is written."""
    def get(self, id: str) -> Tree | None:
        """The tree with this id."""
    def get_by_scope(self, kind: _TreeKind, scope: str) -> Tree | None:
        """The tree of ``kind`` over ``scope``."""
    def get_or_create(self, kind: _TreeKind, scope: str) -> Tree:
        """The tree of ``kind`` over ``scope``, created when missing; racing
        callers get the same tree."""
    def insert_summary(self, summary: Summary) -> bool:
        """Inserts a summary; False when its id exists (the stored row is
        kept as it is: summaries are immutable). The tree must exist
        (:class:`memtree.ConstraintError` otherwise)."""
    def get_summary(self, id: str) -> Summary | None:
        """One summary; a soft-deleted one comes back with ``deleted=True``."""
    def list_summaries(self, tree_id: str, level: int) -> list[Summary]:
        """The live summaries of a tree at ``level``, in seal order."""
    def count_summaries(self, tree_id: str) -> int:
        """How many live summaries a tree has."""
    def delete_summary(self, id: str) -> bool:
        """Soft-deletes a summary (the row stays, flagged); True when it was live."""
    def set_summary_embedding(self, id: str, vector: Iterable[float] | Buffer | None) -> bool:
        """Sets or (None) clears a summary's embedding, as
        :meth:`Store.set_chunk_embedding` does a chunk's; True when the
        summary exists."""
    def get_summary_embedding(self, id: str) -> array.array[float] | None:
        """A summary's embedding as an ``array.array("f")``, as
        ``get_chunk_embedding`` returns one; None when it is missing or has
        none."""
    def get_buffer(self, tree_id: str, level: int) -> TreeBuffer:
        """The buffer of a tree at ``level``; an empty one when there is none."""
    def list_stale_buffers(self, older_than: datetime | int) -> list[TreeBuffer]:
        """The non-empty level-0 buffers whose oldest item is at or before
        ``older_than``, oldest first (upper levels are never forced)."""
    def append_to_buffer(
        self,
        tree_id: str,
        level: int,
        item_ids: Sequence[str],
        tokens: Sequence[int],
        oldest: datetime | int,
    ) -> TreeBuffer:
        """Appends items (one token count each) to a buffer in one
        transaction; items already in it are skipped, so a retried append
        changes nothing. ``oldest`` is the time of the oldest item appended.
        Returns the buffer as it now stands."""
    def seal(
        self,
        tree_id: str,
        level: int,
        version: str,
        *,
        content: str,
        token_count: int = 0,
        id: str | None = None,
        entities: Iterable[str] | None = None,
        topics: Iterable[str] | None = None,
        time_range: tuple[datetime | int, datetime | int] | None = None,
        score: float | None = None,
        sealed_at: datetime | int | None = None,
        embedding: Iterable[float] | None = None,
        content_path: str | None = None,
        content_sha256: str | None = None,
        enqueue_follow_ups: bool = True,
    ) -> Summary:
        """Seals the buffer of ``tree_id`` at ``level`` into one summary at
        ``level + 1``, in ONE transaction: the summary row, its entities in
        the entity index, the children's parent links, the cleared buffer,
        the summary appended to the parent level's buffer, the follow-up
        jobs (``seal`` of the parent level when its gate is met, with dedupe
        key ``seal:<tree>:<level>``; ``topic_route`` for a source tree, key
        ``topic_route:summary:<id>``) and the tree's root and max level.

        ``version`` is :attr:`TreeBuffer.version` as read before summarising:
        when the buffer changed since, nothing is written and
        :class:`memtree.StaleBufferError` is raised. The children are the
        buffer's items; the time range and score default to the children's
        envelope and highest score, the id to OpenHuman's
        ``summary:<ms>:L<level>-<hex>``. ``ValueError``: a level outside
        0..31, an empty buffer, a non-finite score, an unknown tree, an id
        that exists; nothing is written."""
    def walk(self, summary_id: str, depth: int | None = None) -> list[Summary | Chunk]:
        """The subtree under a summary in ONE statement (a recursive CTE):
        the summary, then each child and its subtree, depth first, children
        in seal order; ``depth`` levels deep (None: down to the chunks; 0:
        the summary alone). The children of a level-1 summary are chunks.
        Soft-deleted summaries come flagged; children with no row are left
        out; empty when ``summary_id`` is no summary. ``ValueError``: a
        negative ``depth``."""
    def ancestors(self, id: str) -> list[Summary]:
        """The summaries above a chunk or summary, nearest first (the root
        last), in ONE statement."""
    # Last in the class: below it, ``list`` in an annotation would name this method.
    def list(self, kind: _TreeKind) -> list[Tree]:
        """Every tree of ``kind``, in creation order."""
