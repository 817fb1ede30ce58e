"""Bad input: a typed error naming the field, and nothing written."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import memtree
import pytest
from conftest import BASE_TIME, ChunkFactory

NAIVE = datetime(2026, 1, 1, 12, 0)


@pytest.mark.parametrize(
    ("overrides", "error", "field"),
    [
        ({"id": ""}, ValueError, "id"),
        ({"id": 42}, TypeError, "id"),
        ({"source_id": ""}, ValueError, "source_id"),
        ({"content": None}, TypeError, "content"),
        ({"source_kind": "fax"}, ValueError, "source_kind"),
        ({"source_kind": 3}, TypeError, "source_kind"),
        ({"timestamp": NAIVE}, ValueError, "timestamp"),
        ({"timestamp": "2026-01-01"}, TypeError, "timestamp"),
        ({"timestamp": 1_700_000_000}, TypeError, "timestamp"),
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
