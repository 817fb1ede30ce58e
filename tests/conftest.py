"""Shared fixtures: throw-away databases and a chunk factory (the helpers
they build on are in ``support``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import memtree
import pytest
from memtree import testing
from support import DEFAULT_BUSY_TIMEOUT, SHORT_BUSY_TIMEOUT, ChunkFactory, _make_chunk

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


@pytest.fixture
def short_busy_timeout() -> Iterator[float]:
    """Every busy wait of this test's process lasts ``SHORT_BUSY_TIMEOUT``
    seconds instead of memtree's 5 s (``memtree.testing.busy_timeout``), the
    default again after it. Yields the short budget: a test that proves a
    wait ended in ``BusyError`` asserts it waited at least that long."""
    with testing.busy_timeout(SHORT_BUSY_TIMEOUT) as default:
        # A budget another test left behind would shorten every later wait.
        assert default == DEFAULT_BUSY_TIMEOUT
        yield SHORT_BUSY_TIMEOUT
