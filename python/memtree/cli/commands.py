"""The ``doctor``, ``migrate``, ``stats``, ``recover``, ``backup``,
``restore``, ``compact`` and ``erase-owner`` subcommands of ``memtree``.

:func:`register` adds them to the CLI's subparsers; each parser carries its
handler as the ``run`` default, so :func:`memtree.cli.main` dispatches without
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
        from memtree import adopt
        from memtree._inspect import resolve_db_path

        return adopt.run(
            resolve_db_path(args.path), args.adopt, dry_run=args.dry_run, as_json=args.json
        )
    from memtree import recover

    return recover.run(args.path, as_json=args.json)


def _stats(args: argparse.Namespace) -> int:
    from memtree import stats

    return stats.run(args.path, as_json=args.json)


def _backup(args: argparse.Namespace) -> int:
    from memtree import backup

    return backup.run_backup(args.path, args.dest, as_json=args.json)


def _restore(args: argparse.Namespace) -> int:
    from memtree import backup

    return backup.run_restore(args.backup, args.path, as_json=args.json)


def _compact(args: argparse.Namespace) -> int:
    from memtree import backup

    return backup.run_compact(args.path, as_json=args.json)


def _erase_owner(args: argparse.Namespace) -> int:
    from memtree import erase

    return erase.run_erase_owner(
        args.path, args.owner, content_root=args.content_root, as_json=args.json
    )


def _register_erase(commands: Any, path_help: str) -> None:
    era = commands.add_parser(
        "erase-owner",
        help="delete an owner's chunks and the content files they name",
        description="Deletes OWNER's chunks with their score and entity-index rows in one "
        "transaction that logs the content files they name, then removes each file that "
        "lies under the content root (default: content/ beside the database), is reached "
        "without a symbolic link, is a regular file, still has its recorded SHA-256 and is "
        "named by no other row; any other file is kept and listed. A crash in between is "
        "finished by the next open. Exit 0 done, 1 done with files kept or pending, 2 "
        "failed (nothing changed), 3 nothing at PATH, 4 not memtree, 5 refused path.",
    )
    era.add_argument("path", type=Path, help=path_help)
    era.add_argument("owner", help="the owner whose rows and files go")
    era.add_argument(
        "--content-root",
        type=Path,
        default=None,
        help="the folder content_path is relative to (default: content/ beside the database)",
    )
    era.add_argument("--json", action="store_true", help="machine-readable output")
    era.set_defaults(run=_erase_owner)


def _register_backup(commands: Any, path_help: str) -> None:
    bak = commands.add_parser(
        "backup",
        help="an online, verified copy of a store (never over an existing file)",
        description="Copies the store at PATH to DEST while other processes keep using it: "
        "one consistent snapshot, written under DEST.partial, synced, verified "
        "(integrity_check, schema version, row counts) and linked into place; an existing "
        "DEST is refused. Exit 0 done, 2 failed, 3 nothing at PATH, 5 refused path.",
    )
    bak.add_argument("path", type=Path, help=path_help)
    bak.add_argument("dest", type=Path, help="where the backup goes (must not exist)")
    bak.add_argument("--json", action="store_true", help="machine-readable output")
    bak.set_defaults(run=_backup)

    res = commands.add_parser(
        "restore",
        help="write a backup into a store in place, keeping the replaced contents aside",
        description="Checks BACKUP (integrity_check, memtree schema), then writes it INTO "
        "the store at PATH in one transaction on the same file (never a rename), after a "
        "byte copy of the replaced contents is kept as PATH.pre-restore-<ms>. Refuses, "
        "best effort, while another process holds the store open. Exit 0 done, 1 held "
        "open, 2 failed, 3 no BACKUP, 4 not memtree, 5 refused path.",
    )
    res.add_argument("backup", type=Path, help="a backup written by `memtree backup`")
    res.add_argument("path", type=Path, help=path_help)
    res.add_argument("--json", action="store_true", help="machine-readable output")
    res.set_defaults(run=_restore)

    com = commands.add_parser(
        "compact",
        help="give free pages back to the file system (VACUUM in place)",
        description="Checks there is room for twice the database, then runs VACUUM in "
        "place (same file, one transaction through its journal) and reports bytes and free "
        "pages before and after. Exit 0 done, 2 failed or no room (nothing changed), 3 "
        "nothing at PATH, 5 refused path.",
    )
    com.add_argument("path", type=Path, help=path_help)
    com.add_argument("--json", action="store_true", help="machine-readable output")
    com.set_defaults(run=_compact)


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

    _register_backup(commands, path_help)
    _register_erase(commands, path_help)
