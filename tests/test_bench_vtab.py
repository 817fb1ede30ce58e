"""``_native.bench.insert_vtab``: one ``INSERT … SELECT`` from a virtual
table over the chunk slice writes exactly the pure-SQL floor's rows."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from memtree import _native
from memtree.errors import ConstraintError


def _rows(path: Path) -> list[tuple[object, ...]]:
    columns = ", ".join(_native.bench.chunk_columns())
    # closing(): a sqlite3 connection's own `with` ends a transaction, not
    # the connection (3.13 warns about the unclosed one).
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(f"SELECT {columns} FROM mem_tree_chunks ORDER BY id").fetchall()


@pytest.mark.parametrize(("start", "count"), [(0, 1), (95, 250)])
def test_same_rows_as_the_sql_floor(tmp_path: Path, start: int, count: int) -> None:
    _native.bench.insert_select(tmp_path / "sql.db", start, count)
    assert _native.bench.insert_vtab(tmp_path / "vtab.db", start, count) > 0
    want = _rows(tmp_path / "sql.db")
    assert len(want) == count
    assert _rows(tmp_path / "vtab.db") == want


def test_an_existing_id_fails_the_whole_batch(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    _native.bench.insert_vtab(path, 0, 5)
    before = _rows(path)
    with pytest.raises(ConstraintError, match="UNIQUE constraint failed"):
        _native.bench.insert_vtab(path, 3, 5)
    assert _rows(path) == before
