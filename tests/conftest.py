"""Shared fixtures: throw-away databases and a chunk factory (the helpers
they build on are in ``support``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import memtree
import pytest
from support import ChunkFactory, _make_chunk

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "chunks.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[memtree.Store]:
    with memtree.Store(db_path) as s:
        yield s


@pytest.fixture
def make_chunk() -> ChunkFactory:
    return _make_chunk
