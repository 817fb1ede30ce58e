"""The ``doctor``, ``migrate`` and ``stats`` subcommands of ``memtree``.

:func:`register` adds them to the CLI's subparsers; each parser carries its
handler as the ``run`` default, so ``memtree.cli.main`` dispatches without
knowing them.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["register"]


def _doctor(args: argparse.Namespace) -> int:
    from memtree import doctor

    return doctor.run(args.path, full=args.full, as_json=args.json)


def _migrate(args: argparse.Namespace) -> int:
    from memtree import migrate

    return migrate.run(
        args.path,
        backup=args.backup,
        backup_to=args.backup_to,
        progress=args.progress,
        as_json=args.json,
    )


def _recover(args: argparse.Namespace) -> int:
    if args.adopt is not None:
        from memtree import adopt, recover

        return adopt.run(
            recover._database(args.path), args.adopt, dry_run=args.dry_run, as_json=args.json
        )
    from memtree import recover

    return recover.run(args.path, as_json=args.json)


def _stats(args: argparse.Namespace) -> int:
    from memtree import stats

    return stats.run(args.path, as_json=args.json)


def register(commands: Any) -> None:
    """Adds the subcommands to ``commands`` (an ``add_subparsers()`` result)."""
    path_help = "a database file, or a workspace folder (<ws>/memory_tree/chunks.db)"
    from memtree._exit import EXIT_CODES_HELP

    doc = commands.add_parser(
        "doctor",
        help="read-only health report (exit 0 healthy, 1 needs migration, 2 damaged, "
        "3 nothing there, 4 not a memtree database, 5 refused path)",
        description="A read-only health report of a memtree database: journal mode from "
        "the file header, side files, user_version, quick_check (or integrity_check), "
        "rows per table, and advice. The files are never changed.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    doc.add_argument("path", type=Path, help=path_help)
    doc.add_argument("--full", action="store_true", help="integrity_check instead of quick_check")
    doc.add_argument("--json", action="store_true", help="machine-readable output")
    doc.set_defaults(run=_doctor)

    mig = commands.add_parser(
        "migrate",
        help="move a WAL-era database to the TRUNCATE journal, verified",
        description="Moves a database left in WAL mode to memtree's TRUNCATE journal: "
        "integrity check, optional verified backup, migration, verification. A file "
        "already on a rollback journal is left alone (nothing to do, no backup).",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mig.add_argument("path", type=Path, help=path_help)
    mig.add_argument(
        "--backup", action="store_true", help="first write a verified backup beside the database"
    )
    mig.add_argument(
        "--backup-to",
        type=Path,
        default=None,
        help="write the verified backup here (implies --backup)",
    )
    mig.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show the backup's progress bar (default: when stderr is a terminal)",
    )
    mig.add_argument("--json", action="store_true", help="machine-readable output")
    mig.set_defaults(run=_migrate)

    st = commands.add_parser(
        "stats",
        help="chunk and job counts, file and page sizes",
        description="What a memtree database holds, read without changing it: chunks by "
        "source kind and lifecycle status, jobs by status, and the sizes of the file, its "
        "-wal and the database SQLite sees (-wal frames included).",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    st.add_argument("path", type=Path, help=path_help)
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.set_defaults(run=_stats)

    rec = commands.add_parser(
        "recover",
        help="list stranded side files (a -wal moved aside by an earlier release), or merge "
        "one with --adopt FILE after checking it (exit 0 none left or merged, 1 some left, "
        "2 cannot open, 3 nothing there, 4 not memtree, 5 refused path or refused FILE)",
        description="Lists stranded side files: no open merges a file memtree cannot prove "
        "it wrote. --adopt FILE checks one (a regular, singly linked file of memtree's schema "
        "passing quick_check) and merges the rows the database lacks; --dry-run shows what "
        "it would bring in. Never creates a database: a missing or empty file exits 3, and a "
        "file that is not an SQLite database, another application's database or a refused "
        "path is left as it was.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rec.add_argument("path", type=Path, help=path_help)
    rec.add_argument("--json", action="store_true", help="machine-readable output")
    rec.add_argument(
        "--adopt",
        type=Path,
        metavar="FILE",
        help="merge the rows of FILE (a memtree database, or a stranded -wal) the database lacks",
    )
    rec.add_argument(
        "--dry-run", action="store_true", help="with --adopt: show what it would bring in"
    )
    rec.set_defaults(run=_recover)
