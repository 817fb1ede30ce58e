"""Shared fixtures: throw-away databases and a chunk factory."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import memtree
import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))

BASE_TIME = datetime(2026, 11, 1, 12, 0, 0, tzinfo=timezone.utc)

ChunkFactory = Callable[..., memtree.Chunk]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "chunks.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[memtree.Store]:
    with memtree.Store(db_path) as s:
        yield s


def _make_chunk(i: int = 0, **overrides: Any) -> memtree.Chunk:
    fields: dict[str, Any] = {
        "id": f"chunk-{i:05d}",
        "content": f"content of chunk {i} " + "lorem ipsum " * 4,
        "source_kind": memtree.SourceKind.CHAT,
        "source_id": f"source-{i % 3}",
        "owner": "alice" if i % 2 == 0 else "bob",
        "timestamp": BASE_TIME + timedelta(minutes=i),
        "token_count": 12,
        "seq_in_source": i,
        # Fixed, so two chunks built from the same arguments compare equal.
        "created_at": BASE_TIME,
    }
    fields.update(overrides)
    positional = [
        fields.pop(k) for k in ("id", "content", "source_kind", "source_id", "owner", "timestamp")
    ]
    return memtree.Chunk(*positional, **fields)


@pytest.fixture
def make_chunk() -> ChunkFactory:
    return _make_chunk
