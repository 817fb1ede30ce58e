"""Bad input: a typed error naming the field, and nothing written."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import memtree
import pytest
from support import BASE_TIME, ChunkFactory

NAIVE = datetime(2026, 1, 1, 12, 0)


@pytest.mark.parametrize(
    ("overrides", "error", "field"),
    [
        ({"id": ""}, ValueError, "id"),
        ({"id": 42}, TypeError, "id"),
        ({"source_id": ""}, ValueError, "source_id"),
        ({"owner": ""}, ValueError, "owner"),
        ({"content": None}, TypeError, "content"),
        ({"source_kind": "fax"}, ValueError, "source_kind"),
        ({"source_kind": 3}, TypeError, "source_kind"),
        ({"timestamp": NAIVE}, ValueError, "timestamp"),
        ({"timestamp": "2026-01-01"}, TypeError, "timestamp"),
        ({"timestamp": 1_700_000_000.0}, TypeError, "timestamp"),
        ({"timestamp": True}, TypeError, "timestamp"),
        ({"timestamp": 2**70}, ValueError, "timestamp"),
        ({"created_at": NAIVE}, ValueError, "created_at"),
        ({"time_range": (BASE_TIME, BASE_TIME - timedelta(seconds=1))}, ValueError, "time_range"),
        ({"time_range": (BASE_TIME, NAIVE)}, ValueError, r"time_range\[1\]"),
        ({"time_range": BASE_TIME}, TypeError, "time_range"),
        ({"token_count": -1}, ValueError, "token_count"),
        ({"token_count": "12"}, TypeError, "token_count"),
        ({"seq_in_source": -3}, ValueError, "seq_in_source"),
        ({"tags": "single-string"}, TypeError, "tags"),
        ({"tags": ["ok", 5]}, TypeError, r"tags\[1\]"),
        ({"embedding": [1.0, math.nan]}, ValueError, "embedding"),
        ({"embedding": [math.inf]}, ValueError, "embedding"),
        ({"embedding": [1e300]}, ValueError, "embedding"),
        ({"embedding": []}, ValueError, "embedding"),
        ({"embedding": ["x"]}, TypeError, r"embedding\[0\]"),
        ({"lifecycle_status": ""}, ValueError, "lifecycle_status"),
    ],
)
def test_bad_chunk_fields_are_rejected_by_name(
    make_chunk: ChunkFactory, overrides: dict[str, Any], error: type[Exception], field: str
) -> None:
    with pytest.raises(error, match=field):
        make_chunk(1, **overrides)


def test_other_timezones_are_converted_to_utc(make_chunk: ChunkFactory) -> None:
    tokyo = timezone(timedelta(hours=9))
    chunk = make_chunk(1, timestamp=datetime(2026, 1, 1, 9, 0, tzinfo=tokyo))
    assert chunk.timestamp == datetime(2026, 1, 1, 0, 0, tzinfo=timezone.utc)
    assert chunk.timestamp_ms == 1_767_225_600_000


def test_chunk_is_immutable(make_chunk: ChunkFactory) -> None:
    chunk = make_chunk(1)
    with pytest.raises(AttributeError):
        chunk.content = "changed"  # type: ignore[misc]


def test_batch_with_one_bad_item_writes_nothing(
    store: memtree.Store, make_chunk: ChunkFactory, db_path: Path
) -> None:
    store.upsert_chunks([make_chunk(0)])
    before = db_path.read_bytes()
    batch: list[Any] = [make_chunk(1), make_chunk(2), {"id": "not a chunk"}]
    with pytest.raises(TypeError, match=r"chunks\[2\]"):
        store.upsert_chunks(batch)
    with pytest.raises(TypeError, match="chunks"):
        store.upsert_chunks(42)  # type: ignore[arg-type]
    assert store.count_chunks() == 1
    assert db_path.read_bytes() == before


def test_bad_filter_arguments_are_typed(store: memtree.Store) -> None:
    with pytest.raises(ValueError, match="since"):
        store.list_chunks(since=NAIVE)
    with pytest.raises(ValueError, match="source_kind"):
        store.list_chunks(source_kind="fax")
    with pytest.raises(TypeError, match="ids"):
        store.get_chunks("chunk-1")
    with pytest.raises(ValueError, match="source_id"):
        store.claim_source("chat", "")


def test_failed_sqlite_write_leaves_the_batch_out(
    store: memtree.Store, make_chunk: ChunkFactory
) -> None:
    from memtree import testing

    store.upsert_chunks([make_chunk(0)])
    # The 5th write of the batch fails inside SQLite: the whole batch rolls back.
    with testing.fault(store.path, "xWrite", 5, memtree.ResultCode.IOERR_WRITE):
        with pytest.raises(memtree.PermanentError) as info:
            store.upsert_chunks([make_chunk(i) for i in range(1, 200)])
        assert testing.faults_fired(store.path) == 1
    assert info.value.extended_code == memtree.ResultCode.IOERR_WRITE
    assert info.value.name == "SQLITE_IOERR_WRITE"
    assert store.count_chunks() == 1
    assert store.check(full=True) == ["ok"]


def test_replace_validates_and_keeps_other_fields(make_chunk: ChunkFactory) -> None:
    chunk = make_chunk(1, tags=("x",), embedding=[0.5])
    edited = chunk.replace(content="new", lifecycle_status="sealed")
    assert (edited.content, edited.lifecycle_status) == ("new", "sealed")
    assert edited.replace(content=chunk.content, lifecycle_status="admitted") == chunk
    with pytest.raises(ValueError, match="token_count"):
        chunk.replace(token_count=-1)
    with pytest.raises(TypeError):
        chunk.replace(colour="blue")  # type: ignore[call-arg]


def test_chunks_hash_and_pickle(make_chunk: ChunkFactory) -> None:
    import pickle

    chunk = make_chunk(3, embedding=[0.25, 0.5], tags=["a"])
    assert pickle.loads(pickle.dumps(chunk)) == chunk
    assert len({chunk, make_chunk(3, embedding=[0.25, 0.5], tags=["a"]), make_chunk(4)}) == 2


# -- issue 11: every bad input refused before it writes, no panic ----------

UTC_MINUS_2359 = timezone(-timedelta(hours=23, minutes=59))
UTC_PLUS_2359 = timezone(timedelta(hours=23, minutes=59))
#: Past 9999-12-31 and before 0001-01-01 once converted to UTC: storable as
#: milliseconds, but no datetime can hold them when read back.
TOO_LATE = datetime.max.replace(tzinfo=UTC_MINUS_2359)
TOO_EARLY = datetime.min.replace(tzinfo=UTC_PLUS_2359)


class FakeDuration:
    """Quacks like a timedelta of 1e30 seconds (the issue's panic input)."""

    def total_seconds(self) -> float:
        return 1e30


def _claimed(store: memtree.Store) -> memtree.Job:
    store.jobs.enqueue("k", {})
    job = store.jobs.claim_next()
    assert job is not None
    return job


def test_heartbeat_with_an_unrepresentable_lease_writes_nothing(store: memtree.Store) -> None:
    job = _claimed(store)
    before = store.path.read_bytes()
    with pytest.raises(ValueError, match="lease"):
        store.jobs.heartbeat(job, timedelta.max)
    assert store.path.read_bytes() == before
    row = store.jobs.get(job.id)
    assert row is not None and row.locked_until == job.locked_until
    # The lease is still held and extendable with a sane value.
    assert store.jobs.heartbeat(job, timedelta(minutes=1)) > BASE_TIME


@pytest.mark.parametrize("lease", [timedelta.max, timedelta(days=3_000_000)])
def test_claims_with_a_lease_ending_past_year_9999_are_refused(
    store: memtree.Store, lease: timedelta
) -> None:
    store.jobs.enqueue("k", {})
    before = store.path.read_bytes()
    with pytest.raises(ValueError, match="lease"):
        store.jobs.claim_next(lease=lease)
    with pytest.raises(ValueError, match="lease"):
        store.jobs.claim_many(5, lease=lease)
    assert store.path.read_bytes() == before
    assert store.jobs.counts()["ready"] == 1


def test_a_lease_near_the_end_of_time_reads_back(store: memtree.Store) -> None:
    store.jobs.enqueue("k", {})
    lease = datetime(9999, 12, 1, tzinfo=timezone.utc) - datetime.now(timezone.utc)
    job = store.jobs.claim_next(lease=lease)
    assert job is not None and job.locked_until is not None
    assert job.locked_until.year == 9999


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s, j: s.jobs.claim_next(lease=FakeDuration()), "lease"),
        (lambda s, j: s.jobs.claim_many(3, lease=FakeDuration()), "lease"),
        (lambda s, j: s.jobs.heartbeat(j, FakeDuration()), "lease"),
        (lambda s, j: s.jobs.claim_next(lease=300), "lease"),
        (lambda s, j: s.jobs.defer(j, FakeDuration()), "until"),
        (lambda s, j: s.jobs.defer(j, 1e30), "until"),
    ],
)
def test_duck_typed_or_numeric_durations_are_type_errors_not_panics(
    store: memtree.Store, call: Any, field: str
) -> None:
    job = _claimed(store)
    before = store.path.read_bytes()
    with pytest.raises(TypeError, match=field):
        call(store, job)
    assert store.path.read_bytes() == before


@pytest.mark.parametrize(
    ("seconds", "error"),
    [
        (1e30, ValueError),
        (86_400.001, ValueError),
        (-1.0, ValueError),
        (math.inf, ValueError),
        (math.nan, ValueError),
        ("30", TypeError),
        (None, TypeError),
    ],
)
def test_circuit_cooldown_out_of_range_is_refused(seconds: Any, error: type[Exception]) -> None:
    from memtree import testing

    try:
        with pytest.raises(error, match="seconds"):
            testing.set_circuit_cooldown(seconds)
        testing.set_circuit_cooldown(86_400)  # the maximum itself is fine
    finally:
        testing.set_circuit_cooldown(30)


@pytest.mark.parametrize("field", ["timestamp", "created_at"])
@pytest.mark.parametrize("value", [TOO_LATE, TOO_EARLY], ids=["max-at-minus-2359", "min-at-plus"])
def test_chunk_times_that_would_not_read_back_are_refused(
    make_chunk: ChunkFactory, field: str, value: datetime
) -> None:
    with pytest.raises(ValueError, match=field):
        make_chunk(1, **{field: value})


def test_chunk_time_range_that_would_not_read_back_is_refused(make_chunk: ChunkFactory) -> None:
    with pytest.raises(ValueError, match=r"time_range\[1\]"):
        make_chunk(1, time_range=(BASE_TIME, TOO_LATE))


def test_chunk_times_at_the_edges_read_back_pickle_and_replace(make_chunk: ChunkFactory) -> None:
    latest = datetime.max.replace(tzinfo=timezone.utc)
    earliest = datetime.min.replace(tzinfo=timezone.utc)
    chunk = make_chunk(1, timestamp=latest, created_at=earliest, time_range=(earliest, latest))
    # Milliseconds are what is stored: the microseconds of datetime.max go.
    assert chunk.timestamp == latest.replace(microsecond=999_000)
    assert chunk.created_at == earliest
    import pickle

    assert pickle.loads(pickle.dumps(chunk)) == chunk
    assert chunk.replace(content="x").timestamp == chunk.timestamp


@pytest.mark.parametrize("until", [timedelta.max, timedelta.min, TOO_LATE, TOO_EARLY])
def test_defer_to_a_time_that_would_not_read_back_writes_nothing(
    store: memtree.Store, until: Any
) -> None:
    job = _claimed(store)
    before = store.path.read_bytes()
    with pytest.raises(ValueError, match="until"):
        store.jobs.defer(job, until)
    assert store.path.read_bytes() == before
    store.jobs.mark_done(job)  # the lease is still held


def test_enqueue_available_at_that_would_not_read_back_is_refused(store: memtree.Store) -> None:
    before = store.path.read_bytes()
    for value in (TOO_LATE, TOO_EARLY):
        with pytest.raises(ValueError, match="available_at"):
            store.jobs.enqueue("k", {}, available_at=value)
        with store.jobs.batch() as b, pytest.raises(ValueError, match="available_at"):
            b.enqueue("k", {}, available_at=value)
    assert store.path.read_bytes() == before


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.jobs.claim_many(10**20), "limit"),
        (lambda s: s.jobs.claim_many(-(2**63) - 1), "limit"),
        (lambda s: s.jobs.list(limit=2**64), "limit"),
        (lambda s: s.jobs.enqueue("k", {}, max_attempts=2**63), "max_attempts"),
        (lambda s: s.jobs.batch().enqueue("k", {}, max_attempts=10**400), "max_attempts"),
    ],
)
def test_integers_beyond_64_bits_are_value_errors_naming_the_field(
    store: memtree.Store, call: Any, field: str
) -> None:
    store.jobs.enqueue("k", {})
    before = store.path.read_bytes()
    with pytest.raises(ValueError, match=field) as info:
        call(store)
    assert not isinstance(info.value, OverflowError)
    assert store.path.read_bytes() == before


@pytest.mark.parametrize("field", ["token_count", "seq_in_source"])
@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 10**400])
def test_chunk_integers_beyond_64_bits_name_the_field(
    make_chunk: ChunkFactory, field: str, value: int
) -> None:
    with pytest.raises(ValueError, match=field) as info:
        make_chunk(1, **{field: value})
    assert not isinstance(info.value, OverflowError)


def test_integer_arguments_of_the_wrong_type_are_type_errors(
    store: memtree.Store, make_chunk: ChunkFactory
) -> None:
    with pytest.raises(TypeError, match="limit"):
        store.jobs.claim_many("3")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="max_attempts"):
        store.jobs.enqueue("k", {}, max_attempts=2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="token_count"):
        make_chunk(1, token_count=1.0)


def test_a_path_with_a_nul_byte_is_a_value_error(tmp_path: Path) -> None:
    for path in ("a\0b", str(tmp_path / "x\0.db"), tmp_path / "y\0.db"):
        with pytest.raises(ValueError, match="path"):
            memtree.Store(path)
    with pytest.raises(ValueError, match="workspace"):
        memtree.Store.open(str(tmp_path) + "\0")
    with pytest.raises(ValueError, match="path"):
        memtree.Store.invalidate("a\0b")
    with pytest.raises(TypeError, match="path"):
        memtree.Store(42)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


SURROGATE = "bad \ud800 text"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.jobs.enqueue(SURROGATE, {}), "kind"),
        (lambda s: s.jobs.enqueue("k", {}, dedupe_key=SURROGATE), "dedupe_key"),
        (lambda s: s.jobs.enqueue("k", {"x": SURROGATE}), "payload"),
        (lambda s: s.jobs.claim_next(kinds=["k", SURROGATE]), r"kinds\[1\]"),
        (lambda s: s.jobs.list(kind=SURROGATE), "kind"),
        (lambda s: s.get_chunk(SURROGATE), "id"),
        (lambda s: s.get_chunks(["a", SURROGATE]), r"ids\[1\]"),
        (lambda s: s.delete_owner(SURROGATE), "owner"),
        (lambda s: s.claim_source(SURROGATE, "x"), "source_kind"),
        (lambda s: s.claim_source("chat", SURROGATE), "source_id"),
        (lambda s: s.set_lifecycle_status(["a"], SURROGATE), "status"),
        (lambda s: s.list_chunks(owner=SURROGATE), "owner"),
    ],
)
def test_text_that_utf8_cannot_hold_is_a_value_error_naming_the_field(
    store: memtree.Store, call: Any, field: str
) -> None:
    store.jobs.enqueue("k", {})
    before = store.path.read_bytes()
    with pytest.raises(ValueError, match=field) as info:
        call(store)
    assert not isinstance(info.value, UnicodeError)
    assert store.path.read_bytes() == before


@pytest.mark.parametrize("field", ["id", "content", "owner", "source_ref", "lifecycle_status"])
def test_chunk_text_fields_that_utf8_cannot_hold_are_named(
    make_chunk: ChunkFactory, field: str
) -> None:
    with pytest.raises(ValueError, match=field) as info:
        make_chunk(1, **{field: SURROGATE})
    assert not isinstance(info.value, UnicodeError)
    with pytest.raises(ValueError, match=r"tags\[0\]"):
        make_chunk(1, tags=[SURROGATE])


def test_a_path_the_file_system_encoding_cannot_take_is_a_value_error_not_a_panic(
    tmp_path: Path,
) -> None:
    from memtree import testing

    bad = str(tmp_path / "bad \ud800.db")
    with pytest.raises(ValueError, match="path"):
        memtree.Store(bad)
    with pytest.raises(ValueError, match="workspace"):
        memtree.Store.open(bad)
    with pytest.raises(ValueError, match="path"):
        testing.io_stats(bad)
    with pytest.raises(TypeError, match="path"):
        memtree.Store(bytes(tmp_path / "x.db"))  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []
