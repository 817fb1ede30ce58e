"""The exit status of the ``memtree`` commands that take a database path
(``doctor``, ``stats``, ``migrate``, ``recover``): one table, so the same
finding exits with the same number whichever command made it.

A path is refused before anything opens it by the rule ``memtree.Store()``
applies (``memtree._native.check_path``, docs/paths.md): a FIFO, device,
socket, directory or symbolic link at the database or a side-file name
exits ``EXIT_REFUSED_PATH`` without blocking, a missing file or folder
``EXIT_NOTHING_THERE``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Final

from memtree import _native
from memtree._codes import ResultCode
from memtree.errors import BusyError, NotMemtreeDatabaseError, PathRefusedError

__all__ = [
    "EXIT_CODES_HELP",
    "EXIT_DAMAGED",
    "EXIT_NEEDS_ATTENTION",
    "EXIT_NOTHING_THERE",
    "EXIT_NOT_MEMTREE",
    "EXIT_OK",
    "EXIT_REFUSED_PATH",
    "exit_for_error",
    "refused_path",
    "said_refused",
]

#: Healthy (doctor), reported (stats), migrated or already on the rollback
#: journal (migrate), nothing left stranded (recover).
EXIT_OK: Final = 0
#: Works, but needs a step: WAL mode or a -wal (doctor), SQLite kept WAL
#: because another process holds the file (migrate), rows still stranded
#: (recover).
EXIT_NEEDS_ATTENTION: Final = 1
#: Damaged or failed: not an SQLite file, a failed check, a failed step,
#: an unexpected error; also argparse's status for a usage error.
EXIT_DAMAGED: Final = 2
#: Nothing there: no file, no folder, or an empty (0-byte) file. Nothing
#: was created (``memtree.Store()`` would create a fresh database there).
EXIT_NOTHING_THERE: Final = 3
#: Another application's SQLite database: tables of its own and no
#: ``mem_tree_chunks`` (``memtree.Store()`` raises
#: ``NotMemtreeDatabaseError``); nothing was changed.
EXIT_NOT_MEMTREE: Final = 4
#: A path memtree refuses to open (``memtree.Store()`` raises
#: ``PathRefusedError``): a FIFO, device, socket, directory or symbolic link
#: at the database name or at a side-file name (-journal, -wal).
EXIT_REFUSED_PATH: Final = 5

EXIT_CODES_HELP: Final = f"""\
exit status (doctor, stats, migrate and recover alike):
  {EXIT_OK}  ok: healthy (doctor), reported (stats), migrated or nothing to migrate
     (migrate), nothing left stranded (recover)
  {EXIT_NEEDS_ATTENTION}  needs attention: WAL mode or a -wal beside the file (doctor); SQLite
     kept WAL, another process holds the file (migrate); rows still stranded (recover)
  {EXIT_DAMAGED}  damaged or failed: not an SQLite file, a failed check or step, an
     unexpected error (also argparse's status for a usage error)
  {EXIT_NOTHING_THERE}  nothing there: no file, no folder, or an empty (0-byte) file;
     nothing was created
  {EXIT_NOT_MEMTREE}  not a memtree database: tables of its own and no mem_tree_chunks;
     nothing was changed
  {EXIT_REFUSED_PATH}  refused path: a FIFO, device, socket, directory or symbolic link at
     the database or a side-file name (-journal, -wal), or a FILE that
     recover --adopt refuses; nothing was opened or merged
  141  standard output closed early (memtree ... | head): 128 + SIGPIPE"""


def refused_path(db: Path) -> tuple[int, str] | None:
    """``(exit status, message)`` when no command may open ``db`` — nothing
    there, or a path ``memtree.Store()`` refuses — else ``None``. A file
    without the SQLite header is left to the command (it reports it as
    damaged, :data:`EXIT_DAMAGED`). Looks at names only: never blocks."""
    try:
        _native.check_path(db, must_exist=True)
    except PathRefusedError as e:
        if e.extended_code == ResultCode.NOTADB:
            return None
        if not os.path.lexists(db):
            return EXIT_NOTHING_THERE, f"no database at {db}"
        return EXIT_REFUSED_PATH, str(e)
    return None


def said_refused(command: str, db: Path) -> int | None:
    """:func:`refused_path` for ``memtree COMMAND``: the message goes to
    standard error and its exit status is returned; ``None`` when the
    command may open ``db``."""
    refused = refused_path(db)
    if refused is None:
        return None
    print(f"memtree {command}: {refused[1]}", file=sys.stderr)
    return refused[0]


def exit_for_error(error: Exception, *, busy: int = EXIT_DAMAGED) -> int:
    """The exit status for an error a command caught opening or changing a
    store: a refused path, another application's database, ``busy`` for a
    ``BusyError`` (a command that says "stop the other process first"
    passes :data:`EXIT_NEEDS_ATTENTION`), else damaged or failed."""
    if isinstance(error, PathRefusedError):
        return EXIT_REFUSED_PATH
    if isinstance(error, NotMemtreeDatabaseError):
        return EXIT_NOT_MEMTREE
    if isinstance(error, BusyError):
        return busy
    return EXIT_DAMAGED
