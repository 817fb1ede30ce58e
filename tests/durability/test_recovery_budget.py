"""Recovery's own lock waits are capped by the process's busy budget.

Leaving WAL or recovering side files waits up to 1 s for another
connection's lock before it concludes the file is live elsewhere; the
quarantine's rebuild waits up to 5 s for the write lock. Both are fixed
constants, no longer than the default 5 s budget, so production waits them
in full (``rust/recovery/mod.rs`` checks that by value); a test that lowers
the budget (``memtree.testing.busy_timeout``) has them cut to it, so it does
not wait them out on every recovery attempt. These tests check which budget
applies — the elapsed time lies between the lowered budget and the old
constant — not how fast anything is.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import memtree
import pytest
from memtree import ResultCode, testing
from reference_db import create_reference_db
from support import (
    DEFAULT_BUSY_TIMEOUT,
    chunk_ids,
    corrupt_last_index_page,
    file_digest,
    read_transaction_in_another_process,
)

# What the waits were before the cap: the owner's and the rebuild's.
OWNER_WAIT = 1.0
REBUILD_WAIT = 5.0


def test_a_lowered_budget_caps_the_rebuilds_wait_for_a_held_lock(tmp_path: Path) -> None:
    db = tmp_path / "chunks.db"
    with memtree.Store(db) as store:
        store.upsert_chunks(
            [memtree.Chunk(f"c{i:03d}", "words " * 30, "chat", "s", "o", i) for i in range(40)]
        )
    committed = chunk_ids(db)
    corrupt_last_index_page(db)
    damaged = file_digest(db)
    # Another process's read transaction: the rebuild cannot take the write
    # lock while it lasts.
    with read_transaction_in_another_process(db) as release:
        with testing.busy_timeout(0.3) as default:
            assert default == DEFAULT_BUSY_TIMEOUT
            start = time.monotonic()
            with pytest.raises(memtree.BusyError) as info:
                with memtree.Store(db) as store:
                    store.check(full=True)
            waited = time.monotonic() - start
        assert info.value.name == "SQLITE_BUSY"
        assert "quarantine" in str(info.value), info.value
        assert waited >= 0.3, f"gave up after {waited:.3f} s"
        assert waited < REBUILD_WAIT / 5, f"waited {waited:.3f} s: the 5 s wait applied"
        # Given up before anything was written: the damaged file as it was,
        # and no copy aside.
        assert file_digest(db) == damaged
        assert not list(tmp_path.glob("chunks.db.corrupt-*"))
        release()
    # The lock gone, the next check quarantines and every row is live again.
    memtree.Store.invalidate(db)
    with pytest.raises(memtree.CorruptDatabaseError) as corrupt:
        with memtree.Store(db) as store:
            store.check(full=True)
    assert corrupt.value.quarantined_path
    assert chunk_ids(db) == committed


def test_a_lowered_budget_caps_the_owners_wait_for_a_held_lock(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A WAL-era file another process reads: memtree cannot own it, so it
    # joins through the -shm, whose mapping fails; each of the open's three
    # attempts to own the file (the first open, the recovery, the retry)
    # waits for the other's lock before it gives up as "held elsewhere".
    db = tmp_path / "chunks.db"
    create_reference_db(db, chunks=4, wal_frames_only=2)
    caplog.set_level(logging.INFO, logger="memtree")
    budget = 0.1
    with read_transaction_in_another_process(db):
        wal_before = Path(str(db) + "-wal").read_bytes()
        shm_fails = testing.fault(db, "xShmMap", 1, ResultCode.IOERR_SHMMAP, persistent=True)
        with testing.busy_timeout(budget):
            with shm_fails:
                start = time.monotonic()
                with pytest.raises(memtree.TransientIOError) as info:
                    memtree.Store(db)
                waited = time.monotonic() - start
                assert testing.faults_fired(db) >= 1
        assert info.value.extended_code == ResultCode.IOERR_SHMMAP
        recoveries = [r.getMessage() for r in caplog.records if r.name == "memtree.recovery"]
        assert len(recoveries) == 1 and "held_elsewhere: true" in recoveries[0], recoveries
        assert waited >= budget, f"gave up after {waited:.3f} s"
        # Below one uncapped owner wait, where the open used to make three.
        assert waited < OWNER_WAIT, f"waited {waited:.3f} s: the 1 s wait applied"
        assert Path(str(db) + "-wal").read_bytes() == wal_before
    memtree.Store.invalidate(db)
    with memtree.Store(db) as store:
        assert store.count_chunks() == 4
