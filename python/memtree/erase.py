"""``memtree erase-owner PATH OWNER``: erases an owner as
:meth:`memtree.Store.erase_owner` does — its chunks with their score and
entity-index rows, then the content files they name (docs/operations.md).

Exit status (the table of :mod:`memtree._exit`): 0 done, every named file
removed or already gone; 1 done, but some files were kept (changed since,
still named by another row, behind a link, not a regular file, an unsafe
path or no hash) or are still pending (listed); 2 failed (nothing changed:
the error says why); 3 nothing at ``PATH``; 4 not a memtree database; 5 a
refused path.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from memtree._exit import EXIT_NEEDS_ATTENTION, EXIT_OK, exit_for_error, said_refused
from memtree._inspect import resolve_db_path

__all__ = ["run_erase_owner"]


def run_erase_owner(
    path: Path, owner: str, *, content_root: Path | None = None, as_json: bool = False
) -> int:
    """Erases ``owner`` from the store at ``path`` (a file or workspace)."""
    import memtree

    db = resolve_db_path(path)
    refused = said_refused("erase-owner", db)
    if refused is not None:
        return refused
    try:
        with memtree.Store(db) as store:
            report = store.erase_owner(owner, content_root=content_root)
    except (memtree.MemtreeError, ValueError) as e:
        print(f"memtree erase-owner: {e}", file=sys.stderr)
        return exit_for_error(e)
    fields: dict[str, object] = {
        "store": str(db),
        "owner": owner,
        "chunks": report.chunks,
        "scores": report.scores,
        "entity_rows": report.entity_rows,
        "summaries_derived": report.summaries_derived,
        "files_removed": report.files_removed,
        "files_missing": report.files_missing,
        "files_pending": report.files_pending,
    }
    if as_json:
        kept = [{"path": p, "reason": r} for p, r in report.files_kept]
        print(json.dumps({"command": "erase-owner", **fields, "files_kept": kept}, sort_keys=True))
    else:
        for key, value in fields.items():
            print(f"{key}: {value}")
        print(f"files_kept: {len(report.files_kept)}")
        for kept_path, reason in report.files_kept:
            print(f"  {kept_path}: {reason}")
    return EXIT_NEEDS_ATTENTION if report.files_kept or report.files_pending else EXIT_OK
