"""``memtree doctor``, ``migrate`` and ``stats``, run through the installed
console script in a subprocess, as a user would."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import memtree
import pytest
from memtree import testing
from reference_db import create_reference_db
from support import SHORT_BUSY_TIMEOUT, ChunkFactory, read_transaction_in_another_process

EXE = Path(sys.executable).parent / ("memtree.exe" if os.name == "nt" else "memtree")


def memtree_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    assert EXE.exists(), f"the console script is not installed at {EXE}"
    return subprocess.run(
        [str(EXE), *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def json_of(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


def file_states(db: Path) -> dict[str, tuple[bytes, int]]:
    """Bytes and modification time of the database and every file beside it
    whose name starts with the database's."""
    return {
        p.name: (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(db.parent.iterdir())
        if p.name.startswith(db.name)
    }


def wal_db(tmp_path: Path) -> tuple[Path, list[str]]:
    db = tmp_path / "memory_tree" / "chunks.db"
    db.parent.mkdir(parents=True)
    ids = create_reference_db(db, chunks=8, wal_frames_only=3)
    assert Path(str(db) + "-wal").stat().st_size > 32
    return db, ids


def memtree_db(tmp_path: Path, make_chunk: ChunkFactory, n: int = 12) -> Path:
    db = tmp_path / "memory_tree" / "chunks.db"
    db.parent.mkdir(parents=True)
    with memtree.Store(db) as store:
        store.upsert_chunks(
            [make_chunk(i, source_kind="email" if i % 4 == 0 else "chat") for i in range(n)]
        )
        store.set_lifecycle_status(["chunk-00001", "chunk-00002"], "summarized")
    return db


# --- doctor ------------------------------------------------------------------


def test_doctor_on_a_wal_database_reports_migration_and_changes_nothing(tmp_path: Path) -> None:
    db, _ids = wal_db(tmp_path)
    before = file_states(db)
    assert {"chunks.db-wal", "chunks.db-shm"} <= set(before)
    proc = memtree_cli("doctor", "--full", "--json", tmp_path)  # the workspace folder
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json_of(proc)
    assert report["status"] == "needs_migration"
    assert report["header"]["journal_mode"] == "wal"
    assert report["side_files"]["wal"]["holds_frames"] is True
    assert report["check"] == {"kind": "integrity_check", "result": ["ok"]}
    assert report["tables"]["mem_tree_chunks"] == 8, "rows only in the -wal are counted"
    assert report["user_version"] == 0
    assert report["inspected_via"] == "temporary copy"
    assert any("memtree migrate" in a for a in report["advice"])
    assert file_states(db) == before, "doctor changed the files it inspected"

    human = memtree_cli("doctor", db)
    assert human.returncode == 1
    assert "holds frames" in human.stdout and "needs migration" in human.stdout
    assert file_states(db) == before


def test_doctor_on_a_healthy_memtree_database(tmp_path: Path, make_chunk: ChunkFactory) -> None:
    db = memtree_db(tmp_path, make_chunk)
    before = file_states(db)
    proc = memtree_cli("doctor", "--json", db)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json_of(proc)
    assert report["status"] == "healthy"
    assert report["header"]["journal_mode"] == "rollback"
    assert report["side_files"]["wal"] is None and report["side_files"]["shm"] is None
    assert report["side_files"]["journal"] == {"size": 0, "hot": False}
    assert report["user_version"] == memtree.schema_version()
    assert report["check"]["kind"] == "quick_check" and report["check"]["result"] == ["ok"]
    assert report["tables"]["mem_tree_chunks"] == 12
    assert report["inspected_via"] == "read-only connection"
    assert file_states(db) == before


def test_doctor_on_damaged_files(tmp_path: Path, make_chunk: ChunkFactory) -> None:
    not_db = tmp_path / "junk.db"
    not_db.write_bytes(b"definitely not SQLite" * 300)
    proc = memtree_cli("doctor", "--json", not_db)
    assert proc.returncode == 2
    assert json_of(proc)["status"] == "damaged"

    db = memtree_db(tmp_path, make_chunk, n=400)
    page_size = 4096
    with db.open("r+b") as f:  # scribble over the middle of the file's b-tree pages
        f.seek(page_size * 3 + 100)
        f.write(os.urandom(page_size * 2))
    before = file_states(db)
    proc = memtree_cli("doctor", "--full", db)
    assert proc.returncode == 2, proc.stdout
    assert "damaged" in proc.stdout
    assert file_states(db) == before

    missing = memtree_cli("doctor", tmp_path / "nowhere.db")
    assert missing.returncode == 3 and "no database" in missing.stdout


# --- migrate -----------------------------------------------------------------


def test_migrate_with_backup_moves_a_wal_database_to_truncate(tmp_path: Path) -> None:
    db, ids = wal_db(tmp_path)
    proc = memtree_cli("migrate", "--backup", "--progress", db)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "migrated and verified" in proc.stdout
    assert "backup [" in proc.stderr and "100.0%" in proc.stderr, proc.stderr
    names = {p.name for p in db.parent.iterdir()}
    assert "chunks.db-wal" not in names and "chunks.db-shm" not in names
    backups = [p for p in db.parent.iterdir() if ".backup-" in p.name]
    assert len(backups) == 1
    # The backup is one self-contained file holding every row, -wal rows included.
    conn = sqlite3.connect(f"{backups[0].as_uri()}?mode=ro", uri=True)
    try:
        assert {r[0] for r in conn.execute("SELECT id FROM mem_tree_chunks")} == set(ids)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    finally:
        conn.close()

    doctor = json_of(memtree_cli("doctor", "--json", db))
    assert doctor["status"] == "healthy" and doctor["header"]["journal_mode"] == "rollback"
    assert doctor["tables"]["mem_tree_chunks"] == 8
    with memtree.Store(db) as store:
        assert {c.id for c in store.get_chunks(ids)} == set(ids)
        assert store.journal_mode == "truncate"


def test_migrate_json_and_refusals(tmp_path: Path) -> None:
    db, _ids = wal_db(tmp_path)
    (tmp_path / "b.db").write_bytes(b"")
    before = file_states(db)
    taken = memtree_cli("migrate", "--backup-to", tmp_path / "b.db", db)
    assert taken.returncode == 2 and "exists" in taken.stdout
    assert file_states(db) == before

    proc = memtree_cli("migrate", "--json", "--backup-to", tmp_path / "b2.db", db)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json_of(proc)
    assert report["outcome"] == "migrated and verified" and report["action"] == "migrate"
    assert report["backup"]["path"] == str(tmp_path / "b2.db")
    # Every table keeps its rows; tables of later schema steps start empty.
    before_tables, after_tables = report["before"]["tables"], report["after"]["tables"]
    assert {name: after_tables[name] for name in before_tables} == before_tables
    assert not any(after_tables[name] for name in set(after_tables) - set(before_tables))

    junk = tmp_path / "junk.db"
    junk.write_bytes(b"x" * 5000)
    before = file_states(junk)
    refused = memtree_cli("migrate", junk)
    assert refused.returncode == 2 and "refused" in refused.stdout
    assert file_states(junk) == before, "a damaged file must not be touched"


# --- stats -------------------------------------------------------------------


def test_stats_human_and_json(tmp_path: Path, make_chunk: ChunkFactory) -> None:
    db = memtree_db(tmp_path, make_chunk)
    report = json_of(memtree_cli("stats", "--json", db))
    assert report["chunks"] == {
        "total": 12,
        "by_source_kind": {"chat": 9, "email": 3},
        "by_lifecycle_status": {"admitted": 10, "summarized": 2},
    }
    assert report["page_size"] == 4096
    assert report["file_size"] == report["page_size"] * report["page_count"]
    assert report["database_size"] == report["file_size"] == db.stat().st_size
    assert report["wal_size"] is None and report["journal_size"] == 0
    assert report["size_on_disk"] == report["file_size"]
    human = memtree_cli("stats", tmp_path)
    assert human.returncode == 0, human.stderr
    assert "source kind" in human.stdout and "summarized" in human.stdout


def test_stats_counts_jobs_and_wal_rows_without_changing_files(tmp_path: Path) -> None:
    db, _ids = wal_db(tmp_path)
    before = file_states(db)
    proc = memtree_cli("stats", "--json", db)
    assert proc.returncode == 0, proc.stderr
    report = json_of(proc)
    assert report["chunks"]["total"] == 8
    assert report["jobs_by_status"] is not None and sum(report["jobs_by_status"].values()) >= 1
    assert file_states(db) == before

    missing = memtree_cli("stats", tmp_path / "nowhere.db")
    assert missing.returncode == 3  # nothing there: the one exit-status table


@pytest.mark.parametrize("command", ["doctor", "migrate", "stats"])
def test_help(command: str) -> None:
    proc = memtree_cli(command, "--help")
    assert proc.returncode == 0 and "workspace folder" in proc.stdout


def test_bench_is_dispatched_through_its_parser() -> None:
    proc = memtree_cli("bench", "--help")
    assert proc.returncode == 0 and "--quick" in proc.stdout


HOT_JOURNAL_CHILD = """
import os, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA journal_mode = TRUNCATE").fetchone()
conn.execute("PRAGMA cache_size = 2")
conn.execute("BEGIN")
# A tiny cache makes SQLite spill: the journal is written and synced, then
# changed pages reach the database file before the (never issued) commit.
conn.execute("UPDATE mem_tree_chunks SET content = content || ?", ("x" * 300,))
os._exit(0)
"""


def test_doctor_on_a_hot_journal_changes_nothing(tmp_path: Path, make_chunk: ChunkFactory) -> None:
    db = memtree_db(tmp_path, make_chunk, n=300)
    subprocess.run([sys.executable, "-c", HOT_JOURNAL_CHILD, str(db)], check=True, timeout=60)
    journal = Path(str(db) + "-journal")
    assert journal.stat().st_size > 0, "the child left no journal"
    before = file_states(db)
    proc = memtree_cli("doctor", "--json", "--full", db)
    report = json_of(proc)
    assert report["side_files"]["journal"]["hot"] is True
    assert report["inspected_via"] == "temporary copy"
    assert report["check"]["result"] == ["ok"], "the copy was rolled back"
    assert report["tables"]["mem_tree_chunks"] == 300
    assert proc.returncode == 0 and any("hot" in a for a in report["advice"])
    assert file_states(db) == before, "doctor rolled the live journal back"


# `memtree ...` in a process whose busy waits last `argv[1]` seconds instead
# of 5 s (memtree.testing.set_busy_timeout): the CLI itself, as the console
# script runs it, for a test that makes it wait out a lock.
CLI_WITH_BUSY_TIMEOUT = """
import sys
from memtree import testing
from memtree.cli import main
testing.set_busy_timeout(float(sys.argv.pop(1)))
sys.argv[0] = "memtree"
raise SystemExit(main())
"""


def test_migrate_reports_a_refused_switch_with_exit_1(tmp_path: Path) -> None:
    db, ids = wal_db(tmp_path)
    cli = [sys.executable, "-c", CLI_WITH_BUSY_TIMEOUT, str(SHORT_BUSY_TIMEOUT)]
    with read_transaction_in_another_process(db) as release:
        proc = subprocess.run(
            [*cli, "migrate", str(db)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        release()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "another process holds the file" in proc.stdout
    with memtree.Store(db) as store:  # the holder is gone: the switch now succeeds
        assert store.journal_mode == "truncate"
        assert {c.id for c in store.get_chunks(ids)} == set(ids)


# --- issue 12: version, pipes, JSON errors, exit codes, sizes, paths, help ----


def test_version() -> None:
    proc = memtree_cli("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        f"memtree {memtree.__version__} (SQLite {memtree.sqlite_version()})"
    )


@pytest.mark.parametrize("args", [["demo"], ["doctor", "--json", "WS"], ["stats", "WS"]])
def test_a_closed_stdout_gives_no_traceback(
    args: list[str], tmp_path: Path, make_chunk: ChunkFactory
) -> None:
    memtree_db(tmp_path, make_chunk)
    argv = [str(EXE), *(str(tmp_path) if a == "WS" else a for a in args)]
    # The reader is gone before the command writes, as with `memtree ... | head`
    # once head has its lines: every write to stdout fails with EPIPE.
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 128 + 13, stderr  # the broken pipe was met
    assert stderr == ""


def test_through_head_in_a_shell(tmp_path: Path, make_chunk: ChunkFactory) -> None:
    memtree_db(tmp_path, make_chunk, n=40)
    proc = subprocess.run(
        ["bash", "-c", f'"{EXE}" doctor --json "$1" | head -n 2', "sh", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0 and proc.stdout.startswith("{")
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


def test_errors_are_json_with_json(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"definitely not SQLite" * 300)
    cases = [
        (["stats", "--json", tmp_path / "nowhere.db"], "runtime", 3),
        (["stats", "--json", junk], "runtime", 2),
        (["stats", "--json"], "usage", 2),
        (["doctor", "--json", "--no-such-option", junk], "usage", 2),
        (["migrate", "--json", tmp_path / "nowhere.db"], None, 3),
        (["recover", "--json", tmp_path / "nowhere.db"], None, 3),
        (["recover", "--json", junk], None, 2),
    ]
    for args, kind, code in cases:
        proc = memtree_cli(*args)
        assert proc.returncode == code, (args, proc.stdout, proc.stderr)
        report = json_of(proc)  # fails unless stdout is JSON
        assert report["exit_code"] == code
        if kind is not None:
            assert report["error_kind"] == kind and report["error"], report
    # Without --json the same failure is a line on stderr.
    plain = memtree_cli("stats", junk)
    assert plain.returncode == 2 and plain.stdout == ""
    assert plain.stderr.startswith("memtree stats: ")


def test_doctor_tells_nothing_there_from_damaged(tmp_path: Path) -> None:
    help_text = memtree_cli("doctor", "--help").stdout
    for line in ("0  ok: healthy", "1  needs attention", "2  damaged", "3  nothing there"):
        assert line in help_text, help_text

    missing = memtree_cli("doctor", "--json", tmp_path / "nowhere.db")
    assert missing.returncode == 3 and json_of(missing)["status"] == "missing"

    junk = tmp_path / "junk.db"
    junk.write_bytes(b"x" * 50)
    assert memtree_cli("doctor", junk).returncode == 2

    empty = tmp_path / "memory_tree" / "chunks.db"
    empty.parent.mkdir()
    empty.write_bytes(b"")
    proc = memtree_cli("doctor", "--json", tmp_path)
    assert proc.returncode == 3, proc.stdout
    report = json_of(proc)
    assert report["status"] == "empty" and report["size"] == 0
    assert any("creates the schema" in a for a in report["advice"]), report["advice"]
    assert empty.stat().st_size == 0, "doctor changed the file"
    # What doctor promised is what Store() does: a fresh database in the same
    # file, nothing moved aside.
    with memtree.Store(empty) as store:
        assert store.count_chunks() == 0 and store.journal_mode == "truncate"
        assert testing.open_counters(store.path)["quarantines"] == 0
    assert empty.stat().st_size > 0
    assert not [p for p in empty.parent.iterdir() if ".corrupt-" in p.name]
    assert memtree_cli("doctor", empty).returncode == 0


def test_migrate_on_a_migrated_file_has_nothing_to_do(
    tmp_path: Path, make_chunk: ChunkFactory
) -> None:
    db = memtree_db(tmp_path, make_chunk)
    before = file_states(db)
    proc = memtree_cli("migrate", "--backup", db)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "nothing to do" in proc.stdout and "no backup" in proc.stdout
    assert file_states(db) == before, "a backup was written or the file was touched"

    report = json_of(memtree_cli("migrate", "--json", "--backup-to", tmp_path / "b.db", db))
    assert report["action"] == "none" and report["exit_code"] == 0
    assert not (tmp_path / "b.db").exists()
    assert file_states(db) == before


def test_stats_on_a_wal_file_counts_the_wal(tmp_path: Path) -> None:
    db, _ids = wal_db(tmp_path)
    wal = Path(str(db) + "-wal")
    report = json_of(memtree_cli("stats", "--json", db))
    assert report["file_size"] == db.stat().st_size
    assert report["wal_size"] == wal.stat().st_size > 32
    assert report["size_on_disk"] == db.stat().st_size + wal.stat().st_size
    assert report["database_size"] == report["page_count"] * report["page_size"]
    human = memtree_cli("stats", db).stdout
    assert f"+ {wal.stat().st_size} bytes -wal" in human, human
    assert f"{report['page_count']} pages of 4096 bytes = {report['database_size']} bytes" in human


def test_paths_a_user_may_give(tmp_path: Path) -> None:
    db, _ids = wal_db(tmp_path)
    for given in (tmp_path, tmp_path / "memory_tree", db):
        report = json_of(memtree_cli("doctor", "--json", given))
        assert report["path"] == str(db), given
        assert report["tables"]["mem_tree_chunks"] == 8
    # A folder holding a chunks.db under another name than memory_tree.
    other = tmp_path / "copy"
    other.mkdir()
    (other / "chunks.db").write_bytes(db.read_bytes())
    assert json_of(memtree_cli("stats", "--json", other))["path"] == str(other / "chunks.db")


def test_help_has_no_raw_markup_and_documents_every_command() -> None:
    top = memtree_cli("--help")
    assert top.returncode == 0
    for command in ("demo", "doctor", "migrate", "stats", "bench"):
        assert command in top.stdout
        sub = memtree_cli(command, "--help")
        assert sub.returncode == 0 and "`" not in sub.stdout, (command, sub.stdout)
    assert "`" not in top.stdout, top.stdout
    assert "demo ingests" in top.stdout and "--version" in top.stdout
