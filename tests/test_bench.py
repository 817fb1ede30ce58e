"""Smoke run of ``memtree bench``: structure and exact sync counts, no timing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from memtree import _native, bench
from memtree.cli import main


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench")
    json_path, md_path = out / "bench.json", out / "bench.md"
    status = main(
        [
            "bench",
            "--quick",
            "--commits",
            "2",
            "--dir",
            str(out / "disk"),
            "--json",
            str(json_path),
            "--markdown",
            str(md_path),
        ]
    )
    assert status == 0
    # The work folder made inside --dir is removed; the chosen folder stays, empty.
    assert (out / "disk").is_dir()
    assert list((out / "disk").iterdir()) == []
    assert "| mode | batch |" in md_path.read_text()
    data: dict[str, Any] = json.loads(json_path.read_text())
    return data


def test_report_structure(report: dict[str, Any]) -> None:
    assert report["format"] == 1
    assert report["batches"] == [1, 10, 100, 1000]
    labels = [m["mode"] for m in report["modes"]]
    assert labels == ["WAL+NORMAL", "WAL+FULL", "TRUNCATE+FULL", "DELETE+FULL", "TRUNCATE+NORMAL"]
    cells = report["cells"]
    assert len(cells) == 4 * (len(labels) + 1)
    for c in cells:
        assert c["commits"] == 2
        assert c["latency_ms"]["median"] > 0
        assert c["latency_ms"]["p90"] >= c["latency_ms"]["median"]
        assert c["chunks_per_s"] > 0
        assert c["bytes_written_per_commit"] > 0
        assert set(c["syncs_per_commit"]) == {"db", "journal", "wal", "dir", "other", "total"}
        assert all(isinstance(v, int) for v in c["syncs_per_commit"].values())
    assert report["fsync_floor_ms"]["median"] > 0
    assert report["machine"]["sqlite"] == _native.sqlite_version()
    within = report["truncate_full_within_10pct_of_wal_normal_at_batch"]
    assert within is None or within in report["batches"]
    # The work folder is removed (asserted in the fixture); the report names the chosen one.
    assert report["machine"]["directory"].endswith("disk")


def _syncs(report: dict[str, Any], mode: str, batch: int, path: str = "core") -> dict[str, int]:
    (cell,) = [
        c
        for c in report["cells"]
        if c["mode"] == mode and c["batch"] == batch and c["path"] == path
    ]
    assert cell["syncs_uniform"], cell
    syncs: dict[str, int] = cell["syncs_per_commit"]
    return syncs


@pytest.mark.parametrize("batch", [1, 10])
def test_sync_counts_are_the_designed_integers(report: dict[str, Any], batch: int) -> None:
    # As designed: TRUNCATE+FULL = 4 xSync (journal x3, db x1) + 1 directory
    # fsync; WAL+FULL = 1 per commit in steady state; WAL+NORMAL = 0.
    truncate_full = {"db": 1, "journal": 3, "wal": 0, "dir": 1, "other": 0, "total": 5}
    assert _syncs(report, "TRUNCATE+FULL", batch) == truncate_full
    # memtree's own path adds no sync of its own.
    assert _syncs(report, bench.STORE_LABEL, batch, "store") == truncate_full
    assert _syncs(report, "WAL+FULL", batch)["total"] == 1
    assert _syncs(report, "WAL+FULL", batch)["wal"] == 1
    assert _syncs(report, "WAL+NORMAL", batch)["total"] == 0
    assert _syncs(report, "DELETE+FULL", batch)["journal"] == 2


def test_first_batch_within_picks_the_smallest(report: dict[str, Any]) -> None:
    def cell(mode: str, batch: int, us: float) -> dict[str, Any]:
        return {"mode": mode, "batch": batch, "per_chunk_us": us, "path": "core"}

    cells = [
        cell("WAL+NORMAL", 1, 10.0),
        cell("TRUNCATE+FULL", 1, 100.0),
        cell("WAL+NORMAL", 10, 5.0),
        cell("TRUNCATE+FULL", 10, 5.4),
        cell("WAL+NORMAL", 100, 4.0),
        cell("TRUNCATE+FULL", 100, 4.1),
    ]
    assert bench.first_batch_within(cells) == 10
    assert bench.first_batch_within(cells[:2]) is None


def test_plot_without_matplotlib_says_how_to_get_it(
    report: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(RuntimeError, match=r"memtree\[plot\]"):
        bench.plot(report, tmp_path / "x.png")


def test_generated_rows_match_generated_chunks() -> None:
    (row,) = _native.bench.rows(7, 1)
    (chunk,) = _native.bench.chunks(7, 1)
    columns = _native.bench.chunk_columns()
    assert len(row) == len(columns)
    by_name = dict(zip(columns, row))
    assert by_name["owner"] == chunk.owner and by_name["seq_in_source"] == chunk.seq_in_source
    assert row[0] == chunk.id
    assert row[1] == chunk.content
    assert len(chunk.content.encode()) == 500
    assert row[2] == chunk.source_kind.value
    assert row[6] == chunk.timestamp_ms
    assert json.loads(row[9]) == list(chunk.tags)
    assert "ON CONFLICT(id)" in _native.bench.upsert_sql()
