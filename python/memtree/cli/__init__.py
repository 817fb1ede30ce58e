"""The ``memtree`` command line: the parser, the dispatch and the exit
statuses. Each command's arguments and handler live beside it: ``demo`` in
:mod:`memtree.cli.demo`, ``doctor``, ``migrate``, ``recover`` and ``stats``
in :mod:`memtree.cli.commands`, ``bench`` in :mod:`memtree.bench`."""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from memtree import bench
from memtree._exit import EXIT_CODES_HELP, EXIT_DAMAGED
from memtree._native import __version__, sqlite_version
from memtree.cli import commands as subcommands
from memtree.cli.demo import demo
from memtree.errors import MemtreeError

__all__ = ["main"]

DESCRIPTION = """\
memtree: a crash-safe SQLite store for an application's memory tree.
These commands work on one database: a chunks.db file, or a workspace folder
(WORKSPACE/memory_tree/chunks.db)."""

EPILOG = (
    """\
demo ingests a short chat and a document into a workspace (a temporary one
unless --workspace is given), lists them, and shows the journal mode and the
side files. doctor, migrate, recover and stats take --json; with it, errors
are JSON on standard output too. memtree COMMAND --help tells more.

"""
    + EXIT_CODES_HELP
)

#: Exit status after standard output was closed early (``memtree ... | head``):
#: what a shell reports for a process killed by SIGPIPE.
EXIT_BROKEN_PIPE = 128 + 13
#: Exit status of a usage error or a failure the command did not expect
#: (the table in :mod:`memtree._exit`).
EXIT_ERROR = EXIT_DAMAGED


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are JSON when ``--json`` is given."""

    json_errors = False

    def error(self, message: str) -> NoReturn:
        if self.json_errors:
            _print_json_error(message, kind="usage")
            raise SystemExit(EXIT_ERROR)
        super().error(message)


def _print_json_error(message: str, *, kind: str) -> None:
    print(json.dumps({"error": message, "error_kind": kind, "exit_code": EXIT_ERROR}, indent=2))


def _parser(json_errors: bool) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="memtree",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.json_errors = json_errors
    parser.add_argument(
        "--version",
        action="version",
        version=f"memtree {__version__} (SQLite {sqlite_version()})",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo_cmd = commands.add_parser(
        "demo",
        help="ingest and list a few chunks, show the journal and side files",
        description="Ingests a short chat and a document into a workspace, lists them, "
        "and shows the journal mode SQLite reports and the side files on disk.",
    )
    demo_cmd.add_argument(
        "--workspace", type=Path, default=None, help="workspace folder (default: temporary)"
    )
    demo_cmd.set_defaults(run=lambda args: demo(args.workspace))
    subcommands.register(commands)
    bench_parser = commands.add_parser("bench", help="WAL vs TRUNCATE on this disk")
    bench.add_arguments(bench_parser)
    bench_parser.set_defaults(run=bench.run)
    for sub in commands.choices.values():
        if isinstance(sub, _Parser):
            sub.json_errors = json_errors
    return parser


#: The commands whose ``--json`` is a flag for JSON output (bench's names a file).
_JSON_COMMANDS = frozenset({"doctor", "migrate", "recover", "stats"})


def _run(argv: list[str]) -> int:
    command = next((a for a in argv if not a.startswith("-")), None)
    as_json = "--json" in argv and command in _JSON_COMMANDS
    try:
        args = _parser(as_json).parse_args(argv)
    except SystemExit as e:  # --help, --version and usage errors
        return e.code if isinstance(e.code, int) else (0 if e.code is None else EXIT_ERROR)
    try:
        return int(args.run(args))
    except BrokenPipeError:
        raise  # a closed stdout, not the command's failure: see main()
    except (OSError, sqlite3.Error, MemtreeError) as e:
        message = f"{type(e).__name__}: {e}"
        if getattr(args, "json", None) is True:
            _print_json_error(message, kind="runtime")
        else:
            print(f"memtree {args.command}: {message}", file=sys.stderr)
        return EXIT_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``memtree`` command; returns the exit status."""
    try:
        code = _run(list(sys.argv[1:] if argv is None else argv))
        # Flushed here, not at interpreter exit, so a closed pipe is seen below.
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # The reader went away (`memtree ... | head`): no traceback, and no
        # second error when Python flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
