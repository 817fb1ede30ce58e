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
            "--rounds",
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
    assert "| mode | on power loss | batch |" in md_path.read_text()
    data: dict[str, Any] = json.loads(json_path.read_text())
    data["_md"] = md_path.read_text()
    return data


def test_from_json_redraws_without_measuring(report: dict[str, Any], tmp_path: Path) -> None:
    saved = tmp_path / "saved.json"
    saved.write_text(json.dumps({k: v for k, v in report.items() if k != "_md"}))
    md = tmp_path / "again.md"
    # --dir points nowhere that exists: nothing is measured, nothing created.
    missing = tmp_path / "not-created"
    assert (
        main(["bench", "--from-json", str(saved), "--markdown", str(md), "--dir", str(missing)])
        == 0
    )
    assert md.read_text() == report["_md"]
    assert not missing.exists()


@pytest.mark.parametrize(
    "content", ["{not json", json.dumps({"format": 1, "cells": []}), json.dumps([1, 2])]
)
def test_from_json_refuses_what_is_not_a_report(
    content: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "saved.json"
    saved.write_text(content)
    plot = tmp_path / "x.png"
    assert main(["bench", "--from-json", str(saved), "--plot", str(plot)]) == 2
    assert "memtree bench:" in capsys.readouterr().err
    assert not plot.exists()


def test_report_structure(report: dict[str, Any]) -> None:
    assert report["format"] == 2
    assert report["quick"] is True and report["rounds"] == 2
    assert report["batches"] == [1, 10, 100, 1000]
    labels = [m["mode"] for m in report["modes"]]
    assert labels == [
        "WAL+NORMAL",
        "WAL+FULL",
        "TRUNCATE+FULL",
        "DELETE+FULL",
        "PERSIST+FULL",
        "TRUNCATE+NORMAL",
        "PERSIST+NORMAL",
    ]
    assert {m["mode"]: m["durability"] for m in report["modes"]} == {
        "WAL+NORMAL": "loses-last",
        "WAL+FULL": "durable",
        "TRUNCATE+FULL": "durable",
        "DELETE+FULL": "durable",
        "PERSIST+FULL": "durable",
        "TRUNCATE+NORMAL": "may-corrupt",
        "PERSIST+NORMAL": "may-corrupt",
    }
    cells = report["cells"]
    assert len(cells) == 4 * (len(labels) + 1)
    for c in cells:
        # --commits is per round: 2 rounds of 2.
        assert c["commits"] == 4
        assert len(c["per_chunk_us_rounds"]) == 2 and len(c["latency_ms"]["rounds"]) == 2
        # The amortised mean of equal rounds lies within their spread.
        spread = c["per_chunk_us_rounds"]
        assert min(spread) <= c["per_chunk_us"] * (1 + 1e-9)
        assert c["per_chunk_us"] <= max(spread) * (1 + 1e-9)
        assert c["latency_ms"]["median"] > 0
        assert c["latency_ms"]["p90"] >= c["latency_ms"]["median"]
        assert c["chunks_per_s"] > 0
        assert c["bytes_written_per_commit"] > 0
        assert set(c["syncs_per_commit"]) == {"db", "journal", "wal", "dir", "other", "total"}
        assert all(isinstance(v, int) for v in c["syncs_per_commit"].values())
    assert report["fsync_floor_ms"]["median"] > 0
    assert report["machine"]["sqlite"] == _native.sqlite_version()
    for v in report["verdicts"]:
        assert v["mode"] == "TRUNCATE+FULL"
        assert set(v["per_batch"]) == {"1", "10", "100", "1000"}
        assert v["from_batch"] is None or v["from_batch"] in report["batches"]
        assert v["headline"].startswith("TRUNCATE+FULL")
    assert [v["baseline"] for v in report["verdicts"]] == ["WAL+NORMAL", "WAL+FULL"]
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
    # PERSIST zeroes the journal header where TRUNCATE truncates: the same
    # syncs, and the VFS sees no xTruncate at all.
    assert _syncs(report, "PERSIST+FULL", batch) == truncate_full


def _cell(report: dict[str, Any], mode: str, batch: int) -> dict[str, Any]:
    (cell,) = [c for c in report["cells"] if c["mode"] == mode and c["batch"] == batch]
    return cell


@pytest.mark.parametrize("batch", [1, 10, 100, 1000])
def test_truncate_counts_tell_the_rollback_modes_apart(report: dict[str, Any], batch: int) -> None:
    truncates = {
        mode: _cell(report, mode, batch)["truncates_per_commit"]
        for mode in ("TRUNCATE+FULL", "TRUNCATE+NORMAL", bench.STORE_LABEL)
    }
    assert truncates == dict.fromkeys(truncates, 1)
    for mode in ("PERSIST+FULL", "PERSIST+NORMAL", "DELETE+FULL"):
        assert _cell(report, mode, batch)["truncates_per_commit"] == 0
    assert _cell(report, "DELETE+FULL", batch)["deletes_per_commit"] == 1
    assert _cell(report, "PERSIST+FULL", batch)["deletes_per_commit"] == 0


def test_text_output_marks_power_loss_and_syncs(report: dict[str, Any]) -> None:
    text = bench.format_table(report)
    lines = {line.split("  ")[0]: line for line in text.splitlines() if "  " in line}
    assert "may lose last commits" in lines["WAL+NORMAL"]
    assert "may corrupt" in lines["TRUNCATE+NORMAL"]
    assert "may corrupt" in lines["PERSIST+NORMAL"]
    assert "durable" in lines["PERSIST+FULL"]
    assert "xTruncate/commit" in text and "syncs/commit" in text
    assert "--quick run" in text
    assert "a cost per commit, not per chunk" in text


@pytest.mark.parametrize(
    ("mode", "baseline", "kind"),
    [
        # Overlapping spreads: no verdict beyond "indistinguishable", whatever
        # the medians (here 1.5x apart) say.
        ([10.0, 12.0, 30.0], [9.0, 11.0, 20.0], "indistinguishable"),
        # Touching spreads count as overlapping.
        ([10.0, 11.0], [9.0, 10.0], "indistinguishable"),
        # Identical samples.
        ([5.0, 5.0, 5.0], [5.0, 5.0, 5.0], "indistinguishable"),
        # Apart, and within 10% even at the spreads' far ends (10.4 / 9.6).
        ([10.2, 10.3, 10.4], [9.6, 9.7, 9.8], "within"),
        # Apart, more than 10% even at the near ends (12 / 10.5).
        ([12.0, 12.5, 13.0], [10.0, 10.2, 10.5], "slower"),
        # Apart, but the ratio's range (10.6/10.0 .. 11.6/9.6) straddles 1.10.
        ([10.6, 11.0, 11.6], [9.6, 9.8, 10.0], "near-line"),
        # Apart, the mode below the baseline.
        ([5.0, 5.5], [6.0, 7.0], "faster"),
        # One round on either side: no spread, so no noise estimate.
        ([10.0], [5.0, 6.0], "unmeasured"),
        ([10.0, 11.0], [5.0], "unmeasured"),
    ],
)
def test_compare_rounds(mode: list[float], baseline: list[float], kind: str) -> None:
    c = bench.compare_rounds(mode, baseline)
    assert c.kind == kind, c
    assert c.ratio_low <= c.ratio <= c.ratio_high
    if kind == "indistinguishable":
        assert "indistinguishable within noise" in c.text()
    assert c.close == (kind in ("indistinguishable", "within", "faster"))


def test_compare_rounds_line_edges() -> None:
    # Exactly on the line at the far end counts as within; a hair over is not.
    assert bench.compare_rounds([10.5, 11.0], [10.0, 10.4], within=1.10).kind == "within"
    assert bench.compare_rounds([10.5, 11.01], [10.0, 10.4], within=1.10).kind == "near-line"
    # The line is a parameter.
    assert bench.compare_rounds([12.0, 12.5], [10.0, 10.4], within=1.30).kind == "within"


@pytest.mark.parametrize(
    ("mode", "baseline"),
    [([], [1.0]), ([1.0], []), ([0.0, 1.0], [1.0, 2.0]), ([1.0, float("nan")], [1.0, 2.0])],
)
def test_compare_rounds_rejects_bad_samples(mode: list[float], baseline: list[float]) -> None:
    with pytest.raises(ValueError):
        bench.compare_rounds(mode, baseline)


def _cells(per_batch: dict[int, tuple[list[float], list[float]]]) -> list[dict[str, Any]]:
    out = []
    for batch, (tf, wn) in per_batch.items():
        for mode, rounds in (("TRUNCATE+FULL", tf), ("WAL+NORMAL", wn)):
            out.append(
                {"mode": mode, "batch": batch, "path": "core", "per_chunk_us_rounds": rounds}
            )
    # A store row must not be mistaken for the core TRUNCATE+FULL row.
    out.append(
        {"mode": "TRUNCATE+FULL", "batch": 1, "path": "store", "per_chunk_us_rounds": [1.0, 1.0]}
    )
    return out


def test_verdict_overlap_says_indistinguishable_not_within() -> None:
    # The flip seen in --quick runs: at batch 1000 the medians are 5% apart
    # in one run and 15% in the next, but the spreads overlap both times.
    for tf in ([10.5, 9.8, 11.9], [11.5, 9.9, 12.0]):
        v = bench.verdicts(_cells({1: ([100.0, 101.0], [5.0, 5.1]), 1000: (tf, [9.7, 10.0, 11.0])}))
        assert v["from_batch"] == 1000
        assert v["per_batch"]["1000"]["kind"] == "indistinguishable"
        assert v["per_batch"]["1"]["kind"] == "slower"
        assert "indistinguishable within noise from WAL+NORMAL from batch 1000" in v["headline"]


def test_verdict_separated_picks_the_smallest_batch_from_which_all_are_close() -> None:
    v = bench.verdicts(
        _cells(
            {
                1: ([100.0, 101.0], [5.0, 5.1]),
                10: ([5.3, 5.35], [5.0, 5.05]),  # within 10%, apart
                100: ([7.0, 7.2], [5.0, 5.1]),  # slower again: breaks the run
                1000: ([4.1, 4.15], [4.0, 4.05]),  # within
            }
        )
    )
    assert {b: x["kind"] for b, x in v["per_batch"].items()} == {
        "1": "slower",
        "10": "within",
        "100": "slower",
        "1000": "within",
    }
    assert v["from_batch"] == 1000
    assert "within 10% of (or faster than) WAL+NORMAL from batch 1000 on" in v["headline"]


def test_verdict_never_and_near_line_and_one_round() -> None:
    never = bench.verdicts(_cells({1: ([100.0, 101.0], [5.0, 5.1]), 10: ([9, 9.5], [5, 5.1])}))
    assert never["from_batch"] is None
    assert never["headline"].startswith("TRUNCATE+FULL never comes within 10% of WAL+NORMAL")
    near = bench.verdicts(_cells({1000: ([10.6, 11.0, 11.6], [9.6, 9.8, 10.0])}))
    assert near["from_batch"] is None and "line lies within the noise" in near["headline"]
    single = bench.verdicts(_cells({1000: ([10.0], [10.0])}))
    assert single["from_batch"] is None
    assert "no verdict is given" in single["headline"]
    missing = bench.verdicts(_cells({1: ([1.0, 2.0], [1.0, 2.0])}), baseline="WAL+FULL")
    assert missing["per_batch"] == {} and "not measured" in missing["headline"]


def test_plot_writes_a_png(report: dict[str, Any], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "chart.png"
    bench.plot(report, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


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


def test_plot_without_matplotlib_fails_before_measuring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    measured: list[object] = []
    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    monkeypatch.setattr(bench, "run_matrix", lambda *a, **k: measured.append(a) or {})
    out = tmp_path / "x.png"
    assert main(["bench", "--quick", "--dir", str(tmp_path), "--plot", str(out)]) == 1
    assert measured == [], "the matrix ran before the missing matplotlib was noticed"
    assert "memtree[plot]" in capsys.readouterr().err
    assert not out.exists()


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


@pytest.mark.parametrize("option", ["--rounds", "--commits"])
def test_bench_refuses_fewer_than_one(
    option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "--quick", option, "0", "--dir", str(tmp_path)]) == 2
    assert f"{option} must be >= 1" in capsys.readouterr().err
    # Refused before anything ran: nothing was created in the chosen folder.
    assert list(tmp_path.iterdir()) == []
