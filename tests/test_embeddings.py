"""Issue 10 item 5: a chunk's embedding, read and written on its own.

The blob is the reference's format (little-endian f32, 4 bytes per value,
no header); writing it leaves every other column as it was; bad vectors are
refused before any write.
"""

from __future__ import annotations

import array
import ctypes
import math
import sqlite3
import struct
from pathlib import Path
from typing import Any

import memtree
import pytest
from conftest import ChunkFactory


def raw_row(db: Path, chunk_id: str) -> tuple[Any, ...]:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute("SELECT * FROM mem_tree_chunks WHERE id = ?", (chunk_id,)).fetchone()
        assert row is not None
        return tuple(row)
    finally:
        conn.close()


def embedding_blob(db: Path, chunk_id: str) -> Any:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT embedding FROM mem_tree_chunks WHERE id = ?", (chunk_id,)
        ).fetchone()[0]
    finally:
        conn.close()


@pytest.fixture
def one_chunk(store: memtree.Store, make_chunk: ChunkFactory) -> str:
    chunk = make_chunk(0)
    store.upsert_chunks([chunk])
    return chunk.id


def test_round_trip_in_the_reference_blob_format(
    store: memtree.Store, db_path: Path, one_chunk: str
) -> None:
    assert store.get_chunk_embedding(one_chunk) is None
    assert store.set_chunk_embedding(one_chunk, [0.5, -1.25, 3.0]) is True
    got = store.get_chunk_embedding(one_chunk)
    assert isinstance(got, array.array) and got.typecode == "f"
    assert got.tolist() == [0.5, -1.25, 3.0]
    assert embedding_blob(db_path, one_chunk) == struct.pack("<3f", 0.5, -1.25, 3.0)
    chunk = store.get_chunk(one_chunk)
    assert chunk is not None and chunk.embedding == (0.5, -1.25, 3.0)


def test_only_the_embedding_column_changes(
    store: memtree.Store, db_path: Path, one_chunk: str
) -> None:
    store.set_lifecycle_status([one_chunk], "pending_extraction")
    before = raw_row(db_path, one_chunk)
    store.set_chunk_embedding(one_chunk, [1.0, 2.0])
    after = raw_row(db_path, one_chunk)
    changed = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
    conn = sqlite3.connect(db_path)
    names = [r[1] for r in conn.execute("PRAGMA table_info(mem_tree_chunks)")]
    conn.close()
    assert [names[i] for i in changed] == ["embedding"]


def test_missing_id_reports_false_and_writes_nothing(store: memtree.Store, one_chunk: str) -> None:
    assert store.set_chunk_embedding("no-such-chunk", [1.0]) is False
    assert store.get_chunk_embedding("no-such-chunk") is None
    assert store.count_chunks() == 1


def test_none_clears(store: memtree.Store, db_path: Path, one_chunk: str) -> None:
    store.set_chunk_embedding(one_chunk, [1.0])
    assert store.set_chunk_embedding(one_chunk, None) is True
    assert store.get_chunk_embedding(one_chunk) is None
    assert embedding_blob(db_path, one_chunk) is None


def test_float32_rounding_is_the_stored_value(store: memtree.Store, one_chunk: str) -> None:
    store.set_chunk_embedding(one_chunk, [0.1])
    (value,) = store.get_chunk_embedding(one_chunk) or [None]
    assert value == struct.unpack("<f", struct.pack("<f", 0.1))[0]
    assert value != 0.1


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda v: array.array("f", v), id="array-f"),
        pytest.param(lambda v: array.array("d", v), id="array-d"),
        pytest.param(lambda v: memoryview(array.array("f", v)), id="memoryview-f"),
        # ctypes arrays export explicit byte orders ('<f', '>f', '>d'), as
        # numpy's '<f4' / '>f4' arrays do.
        pytest.param(lambda v: (ctypes.c_float * len(v))(*v), id="ctypes-le-f"),
        pytest.param(lambda v: (ctypes.c_float.__ctype_be__ * len(v))(*v), id="ctypes-be-f"),
        pytest.param(lambda v: (ctypes.c_double.__ctype_be__ * len(v))(*v), id="ctypes-be-d"),
        pytest.param(tuple, id="tuple"),
        pytest.param(lambda v: (x for x in v), id="generator"),
        pytest.param(lambda v: [int(x) if x.is_integer() else x for x in v], id="ints"),
    ],
)
def test_buffers_and_sequences(
    store: memtree.Store, db_path: Path, one_chunk: str, make: Any
) -> None:
    values = [1.0, -2.5, 0.25, 2.0**100]
    assert store.set_chunk_embedding(one_chunk, make(values)) is True
    assert store.get_chunk_embedding(one_chunk) == array.array("f", values)
    assert embedding_blob(db_path, one_chunk) == struct.pack("<4f", *values)


def test_numpy_float32_array(store: memtree.Store, db_path: Path, one_chunk: str) -> None:
    np = pytest.importorskip("numpy")
    vec = np.array([0.5, -1.0, 2.0], dtype=np.float32)
    assert store.set_chunk_embedding(one_chunk, vec) is True
    assert embedding_blob(db_path, one_chunk) == vec.astype("<f4").tobytes()
    store.set_chunk_embedding(one_chunk, np.array([1.5, 2.5], dtype=">f4"))
    assert store.get_chunk_embedding(one_chunk) == array.array("f", [1.5, 2.5])
    with pytest.raises(ValueError, match=r"^vector: expected a 1-dimensional"):
        store.set_chunk_embedding(one_chunk, np.zeros((2, 2), dtype=np.float32))


@pytest.mark.parametrize(
    ("vector", "error", "message"),
    [
        ([], ValueError, r"^vector: must not be empty"),
        (array.array("f"), ValueError, r"^vector: must not be empty"),
        ([1.0, math.nan], ValueError, r"^vector: value at index 1 is not finite"),
        ([math.inf], ValueError, r"^vector: value at index 0 is not finite"),
        (array.array("d", [1e300]), ValueError, r"^vector: value at index 0 is not finite"),
        ([1e39], ValueError, r"^vector: value at index 0 is not finite"),
        (array.array("f", [2.0, -math.inf]), ValueError, r"^vector: value at index 1"),
        ("1.0", TypeError, r"^vector: expected a sequence of floats or a float buffer, got str"),
        (3.0, TypeError, r"^vector: expected a sequence of floats or a float buffer, got float"),
        ([1.0, "x"], TypeError, r"^vector\[1\]: expected a float, got str"),
        (b"\x00\x00\x80?", TypeError, r"^vector: expected a buffer of float32 or float64"),
        (array.array("i", [1]), TypeError, r"^vector: expected a buffer of float32 or float64"),
        (memoryview(array.array("f", [1.0])).cast("B"), TypeError, r"^vector: expected a buffer"),
        (
            memoryview(array.array("f", [1.0, 2.0, 3.0, 4.0])).cast("B").cast("f", (2, 2)),
            ValueError,
            r"^vector: expected a 1-dimensional buffer, got 2",
        ),
    ],
)
def test_bad_vectors_change_nothing(
    store: memtree.Store, db_path: Path, one_chunk: str, vector: Any, error: type, message: str
) -> None:
    store.set_chunk_embedding(one_chunk, [7.0])
    before = raw_row(db_path, one_chunk)
    with pytest.raises(error, match=message):
        store.set_chunk_embedding(one_chunk, vector)
    assert raw_row(db_path, one_chunk) == before


def test_bad_id(store: memtree.Store) -> None:
    with pytest.raises(TypeError, match=r"^id: expected str, got int"):
        store.set_chunk_embedding(1, [1.0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^id: must not be empty"):
        store.set_chunk_embedding("", [1.0])
    with pytest.raises(TypeError, match=r"^id: expected str"):
        store.get_chunk_embedding(None)  # type: ignore[arg-type]


def test_malformed_stored_blob_is_an_error_not_none(
    store: memtree.Store, db_path: Path, one_chunk: str
) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE mem_tree_chunks SET embedding = x'000000' WHERE id = ?", (one_chunk,))
    conn.commit()
    conn.close()
    with pytest.raises(memtree.MemtreeError, match="3 bytes is not a float32 vector"):
        store.get_chunk_embedding(one_chunk)
