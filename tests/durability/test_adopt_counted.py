"""A merge by ``memtree recover --adopt`` is counted and logged.

``open_counters(db)["stranded_merged"]`` counts the side files this process
merged into the database (``recover --adopt`` is the one way a file
memtree cannot prove it wrote gets in), and the merge logs a warning under
``memtree.recovery``; a dry run or a refused file counts nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path

import memtree
import pytest
from memtree import adopt, testing
from memtree._exit import EXIT_OK, EXIT_REFUSED_PATH
from support import ChunkFactory


def test_a_committed_merge_is_counted_once_and_logged(
    tmp_path: Path, make_chunk: ChunkFactory, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "chunks.db"
    with memtree.Store(db) as store:
        store.upsert_chunks([make_chunk(i) for i in range(5)])
    other = tmp_path / "other" / "bundle.db"
    other.parent.mkdir()
    with memtree.Store(other) as store:
        store.upsert_chunks([make_chunk(i) for i in range(3, 9)])
    not_a_database = tmp_path / "notes.txt"
    not_a_database.write_text("my notes\n")
    caplog.set_level(logging.WARNING, logger="memtree")

    assert adopt.run(db, not_a_database) == EXIT_REFUSED_PATH
    assert adopt.run(db, other, dry_run=True) == EXIT_OK
    assert testing.open_counters(db)["stranded_merged"] == 0
    assert not [r for r in caplog.records if "merged stranded rows" in r.getMessage()]

    assert adopt.run(db, other) == EXIT_OK
    assert not other.exists(), "a merged file is removed"
    assert testing.open_counters(db)["stranded_merged"] == 1
    merged = [r.getMessage() for r in caplog.records if "merged stranded rows" in r.getMessage()]
    assert len(merged) == 1 and str(other) in merged[0] and "4 chunk rows" in merged[0], merged
    with memtree.Store(db) as store:
        assert store.count_chunks() == 9
