"""Fault tolerance proved against SQLite's own behaviour: injected VFS faults,
the circuit breaker, recovery that keeps every committed row, quarantine, and
the I/O-error loop of SQLite's test harness."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import memtree
import pytest
from memtree import ResultCode, testing
from reference_db import create_reference_db
from support import (
    SOAK_SCALE,
    ChunkFactory,
    after_digest,
    content_digest,
    fault_loop,
    file_digest,
    read_transaction_in_another_process,
    side_files,
)


@pytest.fixture(autouse=True)
def short_cooldown() -> Iterator[None]:
    testing.set_circuit_cooldown(0.3)
    yield
    testing.set_circuit_cooldown(30)


# --- circuit breaker -------------------------------------------------------


def _trip(db_path: Path) -> None:
    """Three failed inits open the circuit (its cool-down is fixed then)."""
    for attempt in range(1, 4):
        with pytest.raises(memtree.TransientIOError) as info:
            memtree.Store(db_path)
        assert type(info.value) is memtree.TransientIOError
        assert info.value.extended_code == ResultCode.CANTOPEN
        assert testing.circuit_status(db_path) == (attempt, attempt == 3)


def test_breaker_trips_after_three_failed_inits_and_fails_fast(db_path: Path) -> None:
    # Each circuit takes the cool-down in force when it opens. One that must
    # stay open while the test looks gets 30 s: with the fixture's 0.3 s a
    # test paused that long after the trip (or after the half-open attempt)
    # saw the next open go through to the disk.
    testing.inject_fault(db_path, "xOpen", 1, ResultCode.CANTOPEN, persistent=True)
    try:
        testing.set_circuit_cooldown(30)
        _trip(db_path)
        opens_before = testing.method_calls(db_path, "xOpen")
        with pytest.raises(memtree.CircuitOpenError) as open_info:
            memtree.Store(db_path)
        assert open_info.value.extended_code == ResultCode.CANTOPEN
        assert testing.method_calls(db_path, "xOpen") == opens_before, "disk not touched"

        # After the cool-down one attempt goes through; failing, it re-arms.
        memtree.Store.invalidate(db_path)
        testing.set_circuit_cooldown(0.3)
        _trip(db_path)
        time.sleep(0.35)
        testing.set_circuit_cooldown(30)  # for the circuit the failure re-opens
        with pytest.raises(memtree.TransientIOError) as half_open:
            memtree.Store(db_path)
        assert type(half_open.value) is memtree.TransientIOError
        opens_before = testing.method_calls(db_path, "xOpen")
        with pytest.raises(memtree.CircuitOpenError):
            memtree.Store(db_path)
        assert testing.method_calls(db_path, "xOpen") == opens_before, "disk not touched"
    finally:
        fired = testing.clear_fault(db_path)
    assert fired >= 7
    # Invalidate clears an open circuit at once; success resets the count.
    memtree.Store.invalidate(db_path)
    with memtree.Store(db_path) as store:
        assert store.check() == ["ok"]
    assert testing.circuit_status(db_path) == (0, False)


def test_breaker_resets_on_success_after_cooldown(db_path: Path) -> None:
    with testing.fault(db_path, "xOpen", 1, ResultCode.CANTOPEN, persistent=True):
        for _ in range(3):
            with pytest.raises(memtree.TransientIOError):
                memtree.Store(db_path)
    assert testing.circuit_status(db_path)[1]
    time.sleep(0.35)
    with memtree.Store(db_path) as store:
        assert store.count_chunks() == 0
    assert testing.circuit_status(db_path) == (0, False)


# --- recovery at open --------------------------------------------------------


@pytest.mark.parametrize(
    "code", [ResultCode.IOERR_SHMOPEN, ResultCode.IOERR_SHMMAP, ResultCode.IOERR_SHMSIZE]
)
def test_shm_failure_cannot_block_leaving_wal(tmp_path: Path, code: int) -> None:
    db = tmp_path / "chunks.db"
    ids = create_reference_db(db, chunks=6, wal_frames_only=3)
    assert Path(str(db) + "-wal").stat().st_size > 0
    # Every shared-memory mapping fails, as under a macOS sandbox. The
    # reference deleted the -wal here and lost the last three rows. memtree
    # leaves WAL through a connection in EXCLUSIVE locking mode, whose WAL
    # index lives in heap memory: it never maps the -shm at all.
    with testing.fault(db, "xShmMap", 1, code, persistent=True):
        with memtree.Store(db) as store:
            assert testing.method_calls(db, "xShmMap") == 0
            assert testing.faults_fired(db) == 0
            assert {c.id for c in store.get_chunks(ids)} == set(ids)
            assert store.journal_mode == "truncate"
            assert store.check(full=True) == ["ok"]
    counters = testing.open_counters(db)
    assert counters["wal_migrations"] == 1
    assert counters["recoveries"] == 0
    assert not side_files(db) & {"-wal", "-shm"}


def test_shm_failure_while_another_process_holds_wal_is_reported(
    tmp_path: Path, short_busy_timeout: float
) -> None:
    # With another process in WAL mode the file cannot be owned, so memtree
    # joins it through the -shm: a failing mapping then surfaces as its
    # exact code, after one recovery attempt that touches nothing. (Each
    # attempt to own the file waits for the other's lock: the shortened
    # budget caps that wait, as it caps the busy handler's.)
    db = tmp_path / "chunks.db"
    ids = create_reference_db(db, chunks=4, wal_frames_only=2)
    with read_transaction_in_another_process(db):
        wal_before = Path(str(db) + "-wal").read_bytes()
        with testing.fault(db, "xShmMap", 1, ResultCode.IOERR_SHMMAP, persistent=True):
            with pytest.raises(memtree.TransientIOError) as info:
                memtree.Store(db)
            assert testing.faults_fired(db) >= 1
        assert info.value.extended_code == ResultCode.IOERR_SHMMAP
        assert Path(str(db) + "-wal").read_bytes() == wal_before
    memtree.Store.invalidate(db)
    with memtree.Store(db) as store:
        assert {c.id for c in store.get_chunks(ids)} == set(ids)


def test_transient_failure_at_open_is_retried_once(db_path: Path) -> None:
    # A one-off CANTOPEN (an antivirus handle): recovery + one retry succeed.
    with testing.fault(db_path, "xOpen", 1, ResultCode.CANTOPEN, file_role="main_db"):
        with memtree.Store(db_path) as store:
            assert testing.faults_fired(db_path) == 1
            assert store.check() == ["ok"]
    assert testing.open_counters(db_path)["recoveries"] == 1
    assert testing.circuit_status(db_path) == (0, False)


@pytest.mark.parametrize(
    ("method", "code", "role"),
    [
        ("xOpen", ResultCode.CANTOPEN, "main_db"),
        ("xFileSize", ResultCode.IOERR_FSTAT, "main_db"),
        ("xRead", ResultCode.IOERR_IN_PAGE, "main_db"),
    ],
)
def test_transient_family_at_open_class_retry_breaker(
    db_path: Path,
    make_chunk: ChunkFactory,
    method: testing.VfsMethod,
    code: int,
    role: testing.FileRole,
) -> None:
    before = seeded(db_path, make_chunk, 5)
    with testing.fault(db_path, method, 1, code, persistent=True, file_role=role):
        with pytest.raises(memtree.TransientIOError) as info:
            memtree.Store(db_path)
        assert testing.faults_fired(db_path) >= 2, "first attempt and the retry both hit it"
    assert info.value.extended_code == code and info.value.transient
    assert testing.circuit_status(db_path) == (1, False)
    with memtree.Store(db_path) as store:
        assert store.count_chunks() == 5
    assert content_digest(db_path) == before
    assert testing.circuit_status(db_path) == (0, False)


@pytest.mark.parametrize(
    ("method", "code", "role"),
    [
        ("xTruncate", ResultCode.IOERR_TRUNCATE, "journal"),
        ("xRead", ResultCode.IOERR_IN_PAGE, "main_db"),
        ("xFileSize", ResultCode.IOERR_FSTAT, "main_db"),
    ],
)
def test_transient_family_during_writes(
    db_path: Path,
    make_chunk: ChunkFactory,
    method: testing.VfsMethod,
    code: int,
    role: testing.FileRole,
) -> None:
    before = seeded(db_path, make_chunk, 50)
    batch = [make_chunk(i, content="changed") for i in range(40, 90)]
    # Computed from the state before the fault, so a commit that landed only
    # in part cannot match it.
    after = after_digest(db_path, batch)
    with memtree.Store(db_path) as store:
        with testing.fault(db_path, method, 1, code, persistent=True, file_role=role):
            with pytest.raises(memtree.TransientIOError) as info:
                store.upsert_chunks(batch)
            assert testing.faults_fired(db_path) >= 1
        assert info.value.extended_code == code
    # The interrupted commit is either wholly absent or wholly present.
    assert content_digest(db_path) in {before, after}
    with memtree.Store(db_path) as store:
        store.upsert_chunks(batch)  # the application's retry succeeds
        assert store.count_chunks() == 90


def seeded(db: Path, make_chunk: ChunkFactory, n: int) -> str:
    """Writes chunks 0..n into `db` and returns its content digest."""
    with memtree.Store(db) as store:
        store.upsert_chunks([make_chunk(i) for i in range(n)])
    return content_digest(db)


# --- quarantine --------------------------------------------------------------


def test_corrupt_file_at_open_is_quarantined_not_deleted(db_path: Path) -> None:
    # The SQLite magic, then garbage (a damaged header): a file with no magic
    # at all given as a path is refused unchanged instead (test_wrong_paths).
    garbage = b"SQLite format 3\x00" + b"not a database at all " * 300
    db_path.write_bytes(garbage)
    with pytest.raises(memtree.CorruptDatabaseError) as info:
        memtree.Store(db_path)
    err = info.value
    assert err.extended_code == ResultCode.NOTADB
    assert err.quarantined_path is not None
    moved = Path(err.quarantined_path)
    assert moved.name.startswith("chunks.db.corrupt-")
    assert moved.read_bytes() == garbage, "the corrupt file is kept byte for byte"
    with memtree.Store(db_path) as store:
        assert store.count_chunks() == 0 and store.check() == ["ok"]
    assert testing.open_counters(db_path)["quarantines"] == 1


def corrupt_an_index_page(db: Path) -> None:
    """Overwrites one index page with garbage and bumps the file change
    counter, so SQLite's page cache notices the change."""
    data = bytearray(db.read_bytes())
    page_size = int.from_bytes(data[16:18], "big")
    pages = len(data) // page_size
    target = pages - 2
    data[target * page_size : (target + 1) * page_size] = b"\xa5" * page_size
    counter = int.from_bytes(data[24:28], "big") + 1
    data[24:28] = counter.to_bytes(4, "big")
    db.write_bytes(bytes(data))


def test_check_quarantines_while_other_threads_keep_writing(
    db_path: Path, make_chunk: ChunkFactory
) -> None:
    handles = [memtree.Store(db_path) for _ in range(4)]
    handles[0].upsert_chunks([make_chunk(i) for i in range(300)])
    corrupt_an_index_page(db_path)

    stop = threading.Event()
    written: list[list[str]] = [[] for _ in handles[1:]]
    failures: list[BaseException] = []

    def writer(n: int, store: memtree.Store) -> None:
        i = 0
        while not stop.is_set():
            chunk = make_chunk(10_000 + n * 100_000 + i)
            try:
                store.upsert_chunks([chunk])
                written[n].append(chunk.id)
            except memtree.CorruptDatabaseError:
                pass  # writes that race the corruption itself may fail
            except BaseException as e:  # pragma: no cover - reported below
                failures.append(e)
                return
            i += 1

    threads = [threading.Thread(target=writer, args=(n, s)) for n, s in enumerate(handles[1:])]
    for t in threads:
        t.start()
    time.sleep(0.05)
    with pytest.raises(memtree.CorruptDatabaseError) as info:
        handles[0].check(full=True)
    quarantined = Path(str(info.value.quarantined_path))
    frozen = file_digest(quarantined)
    counts_at_quarantine = [len(w) for w in written]
    # 0.2 s of writes after the quarantine, and on until every writer has
    # committed one (or failed): a loaded machine may not even schedule a
    # writer in a fixed 0.2 s.
    at_least, deadline = time.monotonic() + 0.2, time.monotonic() + 60  # a hang guard
    while not failures and time.monotonic() < deadline:
        if time.monotonic() >= at_least and all(
            len(w) > c for w, c in zip(written, counts_at_quarantine)
        ):
            break
        time.sleep(0.005)
    stop.set()
    for t in threads:
        t.join()
    assert failures == []
    assert file_digest(quarantined) == frozen, "nobody wrote into the quarantined file"
    assert all(len(w) > c for w, c in zip(written, counts_at_quarantine)), "writers went on"
    fresh = handles[0]
    assert fresh.check(full=True) == ["ok"]
    late = [cid for w, c in zip(written, counts_at_quarantine) for cid in w[c:]]
    assert len(fresh.get_chunks(late)) == len(late), "writes after quarantine are in the new file"
    for h in handles:
        h.close()


# --- SQLite's I/O-error loop ---------------------------------------------------

LOOP_METHODS: list[testing.VfsMethod] = [
    "xWrite",
    "xSync",
    "xRead",
    "xTruncate",
    "xFileSize",
    "xOpen",
]


@pytest.mark.parametrize("persistent", [False, True])
@pytest.mark.parametrize("method", LOOP_METHODS)
def test_io_error_loop_leaves_before_or_after(
    tmp_path: Path, make_chunk: ChunkFactory, method: testing.VfsMethod, persistent: bool
) -> None:
    base = tmp_path / "base.db"
    with memtree.Store(base) as store:
        store.upsert_chunks([make_chunk(i) for i in range(60)])
    batch = [make_chunk(i, content="rewritten") for i in range(50, 80 * SOAK_SCALE)]
    before = content_digest(base)
    after = after_digest(base, batch)
    fired_points, _ = fault_loop(
        tmp_path,
        base,
        method,
        persistent,
        lambda store: store.upsert_chunks(batch),
        state=content_digest,
        outcomes={before, after},
        before=before,
        limit=10_000,
    )
    print(f"{method} persistent={persistent}: {fired_points} fault points")
    assert fired_points >= 1, "the loop must have injected at least one fault"
