"""``memtree backup PATH DEST``, ``memtree restore BACKUP PATH`` and
``memtree compact PATH``.

``backup`` writes an online, consistent, verified copy of the store at
``PATH`` to ``DEST`` (never over an existing file), as
:meth:`memtree.Store.backup` does. ``restore`` writes ``BACKUP`` into the
store at ``PATH`` in place, keeping a byte copy of the replaced contents
beside it, as :func:`memtree.restore` does. ``compact`` gives free pages
back in place, as :meth:`memtree.Store.compact` does (docs/operations.md).

Exit status (the table of :mod:`memtree._exit`): 0 done; 1 another process
holds the store open (restore; stop it first); 2 failed (nothing changed:
the error says why); 3 nothing at ``PATH`` (backup) or at ``BACKUP``; 4 not a
memtree database; 5 a refused path (an existing ``DEST``, a link, a FIFO…);
for ``compact`` also 2 when the disk lacks room (``DiskFullError``, nothing
changed).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from memtree._exit import (
    EXIT_NEEDS_ATTENTION,
    EXIT_NOTHING_THERE,
    EXIT_OK,
    exit_for_error,
    said_refused,
)
from memtree._inspect import resolve_db_path

__all__ = ["run_backup", "run_compact", "run_restore"]


def _exit_for(error: Exception) -> int:
    # restore says "stop the other process first" for a busy store.
    return exit_for_error(error, busy=EXIT_NEEDS_ATTENTION)


def _report(kind: str, fields: dict[str, object], as_json: bool) -> None:
    if as_json:
        print(json.dumps({"command": kind, **fields}, sort_keys=True))
        return
    for key, value in fields.items():
        print(f"{key}: {value}")


def run_backup(path: Path, dest: Path, *, as_json: bool = False) -> int:
    """Backs up the store at ``path`` (a file or workspace) to ``dest``."""
    import memtree

    db = resolve_db_path(path)
    refused = said_refused("backup", db)
    if refused is not None:
        return refused
    try:
        with memtree.Store(db) as store:
            report = store.backup(dest)
    except memtree.MemtreeError as e:
        print(f"memtree backup: {e}", file=sys.stderr)
        return _exit_for(e)
    _report(
        "backup",
        {
            "source": str(db),
            "backup": str(report.path),
            "bytes": report.bytes,
            "schema_version": report.schema_version,
            "rows": report.rows,
        },
        as_json,
    )
    return EXIT_OK


def run_restore(backup: Path, path: Path, *, as_json: bool = False) -> int:
    """Restores ``backup`` into the store at ``path`` (a file or workspace)."""
    import memtree

    db = resolve_db_path(path)
    if not backup.exists():
        print(f"memtree restore: no backup at {backup}", file=sys.stderr)
        return EXIT_NOTHING_THERE
    try:
        report = memtree.restore(backup, db)
    except memtree.MemtreeError as e:
        print(f"memtree restore: {e}", file=sys.stderr)
        return _exit_for(e)
    _report(
        "restore",
        {
            "store": str(report.path),
            "replaced_contents_kept_at": None if report.replaced is None else str(report.replaced),
            "schema_version": report.schema_version,
            "rows": report.rows,
        },
        as_json,
    )
    return EXIT_OK


def run_compact(path: Path, *, as_json: bool = False) -> int:
    """Compacts the store at ``path`` (a file or workspace) in place."""
    import memtree

    db = resolve_db_path(path)
    refused = said_refused("compact", db)
    if refused is not None:
        return refused
    try:
        with memtree.Store(db) as store:
            report = store.compact()
    except memtree.MemtreeError as e:
        print(f"memtree compact: {e}", file=sys.stderr)
        return _exit_for(e)
    _report(
        "compact",
        {
            "store": str(db),
            "bytes_before": report.bytes_before,
            "bytes_after": report.bytes_after,
            "free_pages_before": report.free_pages_before,
            "free_pages_after": report.free_pages_after,
        },
        as_json,
    )
    return EXIT_OK
