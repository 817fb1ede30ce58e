"""Rust-side log records reach Python's ``logging`` under ``memtree``, with
the database path and the SQLite result code as record attributes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import memtree
import pytest
from memtree import ResultCode, testing
from reference_db import create_reference_db
from support import read_transaction_in_another_process


@pytest.fixture(autouse=True)
def short_cooldown() -> Iterator[None]:
    testing.set_circuit_cooldown(0.3)
    yield
    testing.set_circuit_cooldown(30)


def memtree_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "memtree" or r.name.startswith("memtree.")]


@pytest.fixture
def wal_db(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Path:
    """A 4-chunk WAL-era database (2 chunks only in the -wal), with memtree's
    INFO records captured."""
    db = tmp_path / "chunks.db"
    create_reference_db(db, chunks=4, wal_frames_only=2)
    caplog.set_level(logging.INFO, logger="memtree")
    return db


def test_wal_migration_is_logged_with_the_database_path(
    wal_db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = wal_db
    with memtree.Store(db) as store:
        assert store.journal_mode == "truncate"
    records = [r for r in memtree_records(caplog) if "from WAL" in r.getMessage()]
    assert len(records) == 1, [r.getMessage() for r in memtree_records(caplog)]
    record = records[0]
    assert record.name == "memtree.journal"
    assert record.levelno == logging.INFO
    assert record.__dict__["db_path"] == str(db.resolve())


def test_recovery_is_logged_with_the_result_code(
    wal_db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = wal_db
    # A one-off CANTOPEN (an antivirus handle) on the first open of the file.
    with testing.fault(db, "xOpen", 1, ResultCode.CANTOPEN, file_role="main_db"):
        with memtree.Store(db) as store:
            assert testing.faults_fired(db) == 1
            assert store.count_chunks() == 4
    records = [r for r in memtree_records(caplog) if r.name == "memtree.recovery"]
    assert len(records) == 1, [r.getMessage() for r in memtree_records(caplog)]
    record = records[0]
    assert record.levelno == logging.WARNING
    assert record.__dict__["sqlite_code"] == ResultCode.CANTOPEN
    assert isinstance(record.__dict__["sqlite_code"], int)
    assert record.__dict__["db_path"] == str(db.resolve())
    assert "SQLITE_CANTOPEN" in record.getMessage()


def test_circuit_trip_is_logged(db_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="memtree")
    with testing.fault(db_path, "xOpen", 1, ResultCode.CANTOPEN, persistent=True):
        for _ in range(3):
            with pytest.raises(memtree.TransientIOError):
                memtree.Store(db_path)
    memtree.Store.invalidate(db_path)
    trips = [r for r in memtree_records(caplog) if r.name == "memtree.breaker"]
    assert len(trips) == 1
    assert trips[0].__dict__["sqlite_code"] == ResultCode.CANTOPEN
    assert trips[0].__dict__["failures"] == 3


def test_quarantine_is_logged_as_an_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "chunks.db"
    db.write_bytes(b"SQLite format 3\x00" + b"this is not a database" * 100)
    caplog.set_level(logging.INFO, logger="memtree")
    with pytest.raises(memtree.CorruptDatabaseError) as info:
        memtree.Store(db)
    records = [r for r in memtree_records(caplog) if r.levelno == logging.ERROR]
    assert len(records) == 1
    assert records[0].__dict__["sqlite_code"] == info.value.extended_code
    assert records[0].__dict__["quarantined"] == info.value.quarantined_path


def test_the_python_logger_level_filters_records(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "chunks.db"
    create_reference_db(db, chunks=2, wal_frames_only=1)
    caplog.set_level(logging.WARNING, logger="memtree")
    # set_level also raises the capture handler's level, which would hide an
    # INFO record the bridge emitted anyway: only the logger may filter here.
    caplog.handler.setLevel(logging.NOTSET)
    with memtree.Store(db):
        pass
    # The migration happened, so its INFO record would have fired.
    assert testing.open_counters(db)["wal_migrations"] == 1
    assert memtree_records(caplog) == [], "an INFO record passed a WARNING logger"


def test_refused_journal_switch_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, short_busy_timeout: float
) -> None:
    db = tmp_path / "chunks.db"
    create_reference_db(db, chunks=3, wal_frames_only=1)
    caplog.set_level(logging.INFO, logger="memtree")
    # Another process's read transaction keeps SQLite in WAL (see test_journal).
    with read_transaction_in_another_process(db) as release:
        with pytest.warns(memtree.JournalModeWarning):
            store = memtree.Store(db)
        release()
    store.close()
    refused = [r for r in memtree_records(caplog) if r.levelno == logging.WARNING]
    assert len(refused) == 1
    assert refused[0].name == "memtree.journal"
    assert refused[0].__dict__["journal_mode"] == "wal"
    assert refused[0].__dict__["db_path"] == str(db.resolve())
