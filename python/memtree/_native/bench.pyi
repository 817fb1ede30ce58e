"""Benchmark hooks of the native core (``memtree._native.bench``), kept out
of the product namespace: the measured commit loop, the pure-SQL baseline and
the generated rows that ``memtree.bench`` and ``benches/`` use."""

import os

from memtree._native import Chunk, Store

__all__ = [
    "chunk_columns",
    "chunks",
    "commits",
    "insert_select",
    "rows",
    "upsert_sql",
    "walk_phases",
]

_PathLike = str | os.PathLike[str]

def commits(
    path: _PathLike,
    journal_mode: str,
    synchronous: str,
    batch: int,
    commits: int,
    warmup: int = 1,
) -> tuple[str, list[tuple[int, int, int, int, int, int, int, int, int]]]:
    """Times ``commits`` commits of ``batch`` generated chunks (after ``warmup``
    untimed ones) on a fresh connection through memtree's VFS with memtree's
    schema and upsert, in the given journal mode and synchronous level.
    Returns the journal mode SQLite reported and per commit ``(ns, syncs_db,
    syncs_journal, syncs_wal, syncs_dir, syncs_other, bytes_written,
    truncates, deletes)``: ``truncates`` counts ``xTruncate`` calls (TRUNCATE
    truncates its journal each commit, PERSIST zeroes the header instead),
    ``deletes`` ``xDelete`` calls (DELETE removes the journal)."""

def insert_select(path: _PathLike, start: int, count: int) -> int:
    """Nanoseconds SQLite alone takes to insert generated chunks ``start ..
    start + count`` with one ``INSERT … SELECT`` transaction (TRUNCATE+FULL)."""

def chunks(start: int, count: int) -> list[Chunk]:
    """Generated chunks ``start .. start + count`` (~500-byte content)."""

def rows(
    start: int, count: int
) -> list[
    tuple[
        str,
        str,
        str,
        str,
        str | None,
        str,
        int,
        int,
        int,
        str,
        int,
        int,
        int,
        str,
        bytes | None,
    ]
]:
    """The generated chunks as tuples in the upsert statement's parameter order."""

def chunk_columns() -> list[str]:
    """The chunk columns, in the order of :func:`rows` and of the upsert
    statement's parameters."""

def upsert_sql() -> str:
    """The store's upsert statement."""

def walk_phases(store: Store, summary_id: str, depth: int | None = None) -> tuple[int, int]:
    """The two inner phases of ``store.trees.walk(summary_id, depth)``, in
    nanoseconds: ``(sql, core)``. ``sql`` runs the walk's statement to its
    last row without reading a column; ``core`` is the whole core walk (the
    statement, every row decoded, the walk's order found: what ``walk``'s
    glue gets), with no Python object built. The caller times ``walk``
    itself: the rest is building the objects (and freeing them)."""
