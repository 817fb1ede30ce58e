"""``memtree bench``: WAL or TRUNCATE, measured on your own disk.

Runs a matrix of journal modes (WAL, TRUNCATE, DELETE, PERSIST) and
``synchronous`` levels against batch sizes on the chosen folder, in rounds on
fresh files with the modes taking turns. Every commit writes memtree's real
rows (ids, ~500-byte content, the full index set) through memtree's schema
and upsert statement, timed in the Rust core; the VFS shim counts every sync
call, truncation and written byte of each commit exactly. For TRUNCATE+FULL
the real ``Store.upsert_chunks`` path is timed too, so the Python-to-Rust
cost shows. Each mode carries what it keeps through a power loss
(:data:`DURABILITY`), and the verdicts compare modes against the spread of
their rounds (:func:`compare_rounds`), so noise reads as noise.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from memtree import _native

__all__ = [
    "BATCHES",
    "DURABILITY",
    "MODES",
    "BenchConfig",
    "Comparison",
    "add_arguments",
    "compare_rounds",
    "run",
    "run_matrix",
    "verdicts",
]

#: ``(label, journal_mode, synchronous)``; memtree's own default is TRUNCATE+FULL.
MODES: tuple[tuple[str, str, str], ...] = (
    ("WAL+NORMAL", "wal", "normal"),
    ("WAL+FULL", "wal", "full"),
    ("TRUNCATE+FULL", "truncate", "full"),
    ("DELETE+FULL", "delete", "full"),
    ("PERSIST+FULL", "persist", "full"),
    ("TRUNCATE+NORMAL", "truncate", "normal"),
    ("PERSIST+NORMAL", "persist", "normal"),
)
#: Chunks per commit.
BATCHES: tuple[int, ...] = (1, 10, 100, 1000)
#: The label of the row that times ``memtree.Store.upsert_chunks`` itself.
STORE_LABEL = "Store (TRUNCATE+FULL)"
#: What each mode keeps through a power loss (an OS crash behaves alike):
#: SQLite's documented guarantees for ``synchronous`` per journal mode.
#: WAL+NORMAL skips the WAL sync at commit, so the last commits before the
#: cut may be gone, but the file stays consistent; a rollback journal under
#: NORMAL skips the sync that orders the journal before the database writes,
#: so a cut at the wrong moment can leave a corrupt file; FULL is durable.
DURABILITY_TEXT = {
    "durable": "durable",
    "loses-last": "may lose last commits",
    "may-corrupt": "may corrupt",
}
DURABILITY: dict[str, str] = {
    "WAL+NORMAL": "loses-last",
    "WAL+FULL": "durable",
    "TRUNCATE+FULL": "durable",
    "DELETE+FULL": "durable",
    "PERSIST+FULL": "durable",
    "TRUNCATE+NORMAL": "may-corrupt",
    "PERSIST+NORMAL": "may-corrupt",
    STORE_LABEL: "durable",
}
#: Timed commits per round and cell (after one untimed warm-up commit), by
#: batch size; a cell has ``rounds`` of them, each on a fresh file.
FULL_COMMITS = {1: 100, 10: 60, 100: 20, 1000: 6}
# Three timed 1000-chunk commits after the warm-up pass WAL's 1000-page
# auto-checkpoint once: fewer would leave WAL's checkpoint cost out.
QUICK_COMMITS = {1: 8, 10: 4, 100: 2, 1000: 3}
FULL_ROUNDS = 5
QUICK_ROUNDS = 3
SYNC_ROLES = ("db", "journal", "wal", "dir", "other")
WITHIN = 1.10
#: The ``--json`` report's layout version (2: rounds, durability, verdicts).
REPORT_FORMAT = 2


@dataclass(frozen=True)
class BenchConfig:
    """What to run: the folder, commits per round by batch size, fsync samples."""

    directory: Path
    commits: dict[int, int]
    fsync_samples: int
    quick: bool
    #: Each cell's commits run in this many rounds, each on a fresh file,
    #: and the modes take turns round by round, so a shared disk's drift over
    #: the run hits every mode alike. The spread between rounds is the noise
    #: the verdicts and the chart's error bars show.
    rounds: int = FULL_ROUNDS


def _p90(values: Sequence[float]) -> float:
    """The 90th percentile, interpolated between the two closest ranks
    (``statistics.quantiles``' inclusive method: the samples' own minimum and
    maximum bound it)."""
    if len(values) == 1:
        # quantiles() wants two points before Python 3.13; one is its own p90.
        return values[0]
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def _cell(
    label: str,
    journal_mode: str,
    synchronous: str,
    path: str,
    batch: int,
    rounds: Sequence[Sequence[tuple[int, ...]]],
) -> dict[str, Any]:
    """Summarises per-commit samples ``(ns, db, journal, wal, dir, other,
    bytes, truncates, deletes)``, grouped by round."""
    samples = [s for r in rounds for s in r]
    latencies = [s[0] / 1e6 for s in samples]
    syncs = [tuple(s[1:6]) for s in samples]
    typical, seen = Counter(syncs).most_common(1)[0]
    median_ms = statistics.median(latencies)
    total_s = sum(latencies) / 1e3
    written = [s[6] for s in samples]
    # Per round: the amortised cost per chunk and the median commit, the
    # values whose spread over rounds is the run's noise.
    per_round_us = [sum(s[0] for s in r) / 1e3 / (batch * len(r)) for r in rounds]
    per_round_ms = [statistics.median(s[0] / 1e6 for s in r) for r in rounds]
    return {
        "mode": label,
        "journal_mode": journal_mode,
        "synchronous": synchronous,
        "durability": DURABILITY[label],
        "path": path,
        "batch": batch,
        "commits": len(samples),
        "latency_ms": {
            "median": median_ms,
            "p90": _p90(latencies),
            "rounds": per_round_ms,
        },
        # Amortised: every commit's time (WAL checkpoints included) per chunk.
        # Rounds have equal commits, so this mean lies within the rounds' spread.
        "per_chunk_us": sum(latencies) * 1e3 / (batch * len(samples)),
        "per_chunk_us_rounds": per_round_us,
        "chunks_per_s": batch * len(samples) / total_s if total_s > 0 else 0.0,
        # The sync calls of the typical (most common) commit, exact integers;
        # `syncs_uniform` says whether every commit had exactly these (WAL
        # checkpoints and the like make some commits differ).
        "syncs_per_commit": {
            **dict(zip(SYNC_ROLES, typical)),
            "total": sum(typical),
        },
        "syncs_uniform": seen == len(samples),
        "syncs_mean": {
            role: sum(s[i] for s in syncs) / len(syncs) for i, role in enumerate(SYNC_ROLES)
        },
        # xTruncate and xDelete calls of the typical commit, from the VFS.
        "truncates_per_commit": Counter(s[7] for s in samples).most_common(1)[0][0],
        "deletes_per_commit": Counter(s[8] for s in samples).most_common(1)[0][0],
        "bytes_written_per_commit": int(statistics.median(written)),
        "bytes_written_mean": sum(written) / len(written),
    }


def _store_samples(path: Path, batch: int, commits: int) -> list[tuple[int, ...]]:
    """Times ``Store.upsert_chunks`` itself on a fresh file, with prebuilt chunks."""
    samples: list[tuple[int, ...]] = []
    with _native.Store(path) as store:
        batches = [_native.bench.chunks(i * batch, batch) for i in range(commits + 1)]
        store.upsert_chunks(batches[0])  # warm-up: statement cache, first journal
        for chunks in batches[1:]:
            _native.testing.reset_io_stats(path)  # outside the clock
            started = time.perf_counter_ns()
            store.upsert_chunks(chunks)
            elapsed = time.perf_counter_ns() - started
            d = _native.testing.io_stats(path)
            samples.append(
                (
                    elapsed,
                    d["syncs_db"],
                    d["syncs_journal"],
                    d["syncs_wal"],
                    d["syncs_dir"],
                    d["syncs_other"],
                    d["bytes_written"],
                    d["truncates"],
                    d["deletes"],
                )
            )
    return samples


def probe_fsync(directory: Path, samples: int) -> list[float]:
    """The disk's raw ``fsync`` latency after a 512-byte overwrite, in ms,
    ``samples`` times on a fresh probe file."""
    path = directory / "fsync-probe"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.write(fd, b"\0" * 4096)
        os.fsync(fd)
        times = []
        for i in range(samples):
            os.pwrite(fd, bytes([i % 256]) * 512, 0)
            started = time.perf_counter_ns()
            os.fsync(fd)
            times.append((time.perf_counter_ns() - started) / 1e6)
    finally:
        os.close(fd)
        path.unlink()
    return times


def fsync_floor(times: Sequence[float]) -> dict[str, float]:
    """Median and p90 of raw ``fsync`` samples (ms)."""
    return {"median": statistics.median(times), "p90": _p90(times), "samples": len(times)}


def _filesystem(directory: Path) -> str:
    """The file-system type of ``directory`` (from /proc/mounts on Linux)."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return "unknown"
    target = str(directory.resolve())
    best = ("", "unknown", "")
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        device, mount, fstype = parts[0], parts[1], parts[2]
        prefix = mount.rstrip("/") + "/"
        if (target == mount or target.startswith(prefix)) and len(mount) > len(best[0]):
            best = (mount, fstype, device)
    return f"{best[1]} on {best[2]} (mounted at {best[0]})" if best[0] else "unknown"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(directory: Path) -> dict[str, Any]:
    """A short description of the machine and disk the matrix ran on."""
    usage = shutil.disk_usage(directory)
    return {
        "platform": platform.platform(),
        "cpu": _cpu(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": _native.sqlite_version(),
        "memtree": _native.__version__,
        "directory": str(directory),
        "filesystem": _filesystem(directory),
        "disk_free_gib": round(usage.free / 2**30, 1),
    }


class _Progress:
    """Plain progress on stderr: one rewritten line on a terminal, else a line per step."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = total
        self.done = 0
        self.stream = stream
        self.tty = stream.isatty()
        self.started = time.monotonic()

    def step(self, what: str) -> None:
        self.done += 1
        width = 24
        filled = width * self.done // self.total
        bar = "#" * filled + "." * (width - filled)
        line = (
            f"[{bar}] {self.done:>2}/{self.total} {what:<34}"
            f" {time.monotonic() - self.started:5.1f}s"
        )
        if self.tty:
            self.stream.write("\r" + line)
            if self.done == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


@dataclass(frozen=True)
class Comparison:
    """One mode against a baseline at one batch size, judged against the
    spread of the per-round values (the run's own noise)."""

    #: ``"indistinguishable"`` (the round spreads overlap), ``"within"``
    #: (slower, spreads apart, by at most ``within - 1`` even at the spreads'
    #: far ends), ``"slower"`` (by more than that even at their near ends),
    #: ``"near-line"`` (spreads apart, but the ratio's range straddles the
    #: line), ``"faster"`` (spreads apart, the mode below the baseline) or
    #: ``"unmeasured"`` (a side has one round: no spread to judge noise by).
    kind: str
    #: Median of the mode's rounds over the median of the baseline's.
    ratio: float
    #: The ratio at the spreads' near ends and far ends (min/max, max/min).
    ratio_low: float
    ratio_high: float
    within: float

    def text(self) -> str:
        """A short verdict for people, e.g. ``"3.2x slower"``."""
        pct = f"{(self.within - 1) * 100:.0f}%"
        if self.kind == "indistinguishable":
            return f"indistinguishable within noise ({self.ratio:.2f}x, round spreads overlap)"
        if self.kind == "within":
            return f"within {pct} ({self.ratio:.2f}x)"
        if self.kind == "faster":
            return f"faster ({self.ratio:.2f}x)"
        if self.kind == "near-line":
            return (
                f"{self.ratio:.2f}x: the {pct} line lies within the noise "
                f"({self.ratio_low:.2f}-{self.ratio_high:.2f}x)"
            )
        if self.kind == "unmeasured":
            return f"{self.ratio:.2f}x (one round: noise not measured)"
        return f"{self.ratio:.2f}x slower (round spreads apart)"

    @property
    def close(self) -> bool:
        """Within the line, or not told apart from the baseline by this run."""
        return self.kind in ("indistinguishable", "within", "faster")


def compare_rounds(
    mode: Sequence[float], baseline: Sequence[float], within: float = WITHIN
) -> Comparison:
    """Compares per-round costs (lower is better) of a mode and a baseline.

    The spread of each side is its rounds' min..max. Overlapping (or
    touching) spreads mean this run cannot tell the two apart, whatever the
    medians say: that is what made the old verdict flip between runs.
    """
    if not mode or not baseline:
        raise ValueError("compare_rounds needs at least one round on each side")
    if any(not v > 0 for v in (*mode, *baseline)):  # also rejects NaN
        raise ValueError("per-round costs must be positive")
    ratio = statistics.median(mode) / statistics.median(baseline)
    lo, hi = min(mode) / max(baseline), max(mode) / min(baseline)

    def judged(kind: str) -> Comparison:
        return Comparison(kind, ratio, lo, hi, within)

    if len(mode) < 2 or len(baseline) < 2:
        return judged("unmeasured")
    if min(mode) <= max(baseline) and min(baseline) <= max(mode):
        return judged("indistinguishable")
    if max(mode) < min(baseline):
        return judged("faster")
    if hi <= within:
        return judged("within")
    if lo > within:
        return judged("slower")
    return judged("near-line")


#: The verdicts ``memtree bench`` prints: memtree's mode against the fastest
#: mode (which may lose commits) and against WAL at equal durability.
VERDICTS = (("TRUNCATE+FULL", "WAL+NORMAL"), ("TRUNCATE+FULL", "WAL+FULL"))


def verdicts(
    cells: Sequence[dict[str, Any]],
    mode: str = "TRUNCATE+FULL",
    baseline: str = "WAL+NORMAL",
    within: float = WITHIN,
) -> dict[str, Any]:
    """Per batch size, ``mode``'s per-chunk cost against ``baseline``'s
    (core rows), and a headline: the smallest batch from which on every
    batch is close (within the line, or indistinguishable within noise)."""
    rounds = {
        (c["mode"], c["batch"]): c["per_chunk_us_rounds"] for c in cells if c["path"] == "core"
    }
    per_batch: dict[int, Comparison] = {}
    for batch in sorted({c["batch"] for c in cells}):
        if (mode, batch) in rounds and (baseline, batch) in rounds:
            per_batch[batch] = compare_rounds(
                rounds[(mode, batch)], rounds[(baseline, batch)], within
            )
    from_batch = None
    for batch in sorted(per_batch, reverse=True):
        if not per_batch[batch].close:
            break
        from_batch = batch
    pct = f"{(within - 1) * 100:.0f}%"
    if not per_batch:
        headline = f"{mode} vs {baseline}: not measured"
    elif any(c.kind == "unmeasured" for c in per_batch.values()):
        headline = (
            f"{mode} vs {baseline} per chunk: one round only, so noise is not "
            "measured and no verdict is given (use --rounds 2 or more)"
        )
    elif from_batch is None:
        last = max(per_batch)
        headline = (
            f"{mode} never comes within {pct} of {baseline} per chunk in this matrix "
            f"(batch {last}: {per_batch[last].text()})"
        )
    else:
        kinds = {per_batch[b].kind for b in per_batch if b >= from_batch}
        if kinds == {"faster"}:
            what = "faster than"
        elif "indistinguishable" not in kinds:
            what = f"within {pct} of (or faster than)"
        elif kinds == {"indistinguishable"}:
            what = "indistinguishable within noise from"
        else:
            what = f"within {pct} of, or indistinguishable within noise from,"
        c = per_batch[from_batch]
        headline = (
            f"{mode} per chunk is {what} {baseline} from batch {from_batch} on "
            f"(batch {from_batch}: {c.ratio:.2f}x, rounds {c.ratio_low:.2f}-{c.ratio_high:.2f}x)"
        )
    return {
        "mode": mode,
        "baseline": baseline,
        "within": within,
        "from_batch": from_batch,
        "headline": headline,
        "per_batch": {
            str(b): {
                "kind": c.kind,
                "ratio": c.ratio,
                "ratio_low": c.ratio_low,
                "ratio_high": c.ratio_high,
                "text": c.text(),
            }
            for b, c in per_batch.items()
        },
    }


def run_matrix(config: BenchConfig, progress: TextIO | None = sys.stderr) -> dict[str, Any]:
    """Runs the whole matrix in a fresh sub-folder of ``config.directory``
    (removed afterwards) and returns the JSON-ready report."""
    if config.rounds < 1:
        raise ValueError("rounds must be >= 1")
    config.directory.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="memtree-bench-", dir=config.directory))
    batches = sorted(config.commits)
    steps = len(batches) * config.rounds
    bar = _Progress(steps, progress) if progress is not None else None
    # The floor is sampled a little before every round, not once up front:
    # a shared disk's latency drifts (a neighbour's burst made one up-front
    # probe read 3 ms against commits of 1 ms), and the floor must see the
    # same disk the commits saw.
    per_step = max(1, -(-config.fsync_samples // steps))
    floor_times: list[float] = []
    try:
        cells: list[dict[str, Any]] = []
        contenders = [*MODES, (STORE_LABEL, "truncate", "full")]
        for batch in batches:
            per_round = config.commits[batch]
            rounds: dict[str, list[list[tuple[int, ...]]]] = {c[0]: [] for c in contenders}
            for r in range(config.rounds):
                floor_times += probe_fsync(work, per_step)
                for label, journal, sync in contenders:
                    db = work / f"{journal}-{sync}-{batch}-{r}-{label == STORE_LABEL}.db"
                    if label == STORE_LABEL:
                        rounds[label].append(_store_samples(db, batch, per_round))
                        continue
                    # The native side fails if SQLite kept another journal mode.
                    _mode, timed = _native.bench.commits(db, journal, sync, batch, per_round, 1)
                    rounds[label].append(list(timed))
                if bar:
                    bar.step(f"batch {batch}, round {r + 1}/{config.rounds}")
            for label, journal, sync in contenders:
                path = "store" if label == STORE_LABEL else "core"
                cells.append(_cell(label, journal, sync, path, batch, rounds[label]))
        info = machine(config.directory)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "format": REPORT_FORMAT,
        "quick": config.quick,
        "rounds": config.rounds,
        "commits_per_round": {str(b): config.commits[b] for b in batches},
        "machine": info,
        "fsync_floor_ms": fsync_floor(floor_times),
        "modes": [
            {"mode": m, "journal_mode": j, "synchronous": s, "durability": DURABILITY[m]}
            for m, j, s in MODES
        ],
        "batches": batches,
        "cells": cells,
        "verdicts": [verdicts(cells, m, b) for m, b in VERDICTS],
    }


def _syncs_text(c: dict[str, Any]) -> str:
    s = c["syncs_per_commit"]
    text = f"{s['total']} ({s['db']}/{s['journal']}/{s['wal']}/{s['dir']})"
    if not c["syncs_uniform"]:
        text += f" ~{sum(c['syncs_mean'].values()):.2f}"
    return text


def _rows(report: dict[str, Any]) -> list[list[str]]:
    rows = []
    for c in sorted(report["cells"], key=lambda c: (c["batch"], c["path"] == "store")):
        spread = c["per_chunk_us_rounds"]
        rows.append(
            [
                c["mode"],
                DURABILITY_TEXT[c["durability"]],
                str(c["batch"]),
                f"{c['latency_ms']['median']:.2f}",
                f"{c['latency_ms']['p90']:.2f}",
                f"{c['per_chunk_us']:.1f}",
                f"{min(spread):.1f}-{max(spread):.1f}",
                f"{c['chunks_per_s']:,.0f}",
                _syncs_text(c),
                str(c["truncates_per_commit"]),
                f"{c['bytes_written_per_commit'] / 1024:.1f}",
            ]
        )
    return rows


HEADERS = [
    "mode",
    "on power loss",
    "batch",
    "median ms",
    "p90 ms",
    "µs/chunk (mean)",
    "µs/chunk rounds",
    "chunks/s",
    "syncs/commit (db/jrnl/wal/dir)",
    "xTruncate/commit",
    "KiB written/commit",
]


def _summary_lines(report: dict[str, Any]) -> list[str]:
    floor = report["fsync_floor_ms"]
    m = report["machine"]
    tf = [c for c in report["cells"] if c["mode"] == "TRUNCATE+FULL" and c["path"] == "core"]
    tf_syncs = tf[0]["syncs_per_commit"]["total"] if tf else 5
    run = (
        f"--quick run: {report['rounds']} rounds of a few commits per cell; "
        "treat single cells as rough"
        if report["quick"]
        else f"{report['rounds']} rounds per cell"
    )
    lines = [
        f"raw fsync floor (a cost per commit, not per chunk): median {floor['median']:.3f} ms, "
        f"p90 {floor['p90']:.3f} ms ({floor['samples']} samples, taken before every round); "
        "a TRUNCATE+FULL commit's "
        f"{tf_syncs} syncs ~ {tf_syncs * floor['median']:.2f} ms at that rate, whatever the batch",
        *(v["headline"] for v in report["verdicts"]),
        f"machine: {m['cpu']} x{m['cpus']}, {m['platform']}; disk: {m['filesystem']}; "
        f"SQLite {m['sqlite']}, memtree {m['memtree']}; {run}",
        "on power loss: durable = every committed row survives; may lose last commits = "
        "consistent, but the last commits may be gone (WAL+NORMAL); may corrupt = a rollback "
        "journal under NORMAL can leave a corrupt file",
        "syncs: typical commit's exact xSync calls plus directory fsyncs; '~' gives the mean "
        "where commits differ (WAL checkpoints); xTruncate: the journal truncation "
        "(TRUNCATE only; PERSIST zeroes the header, DELETE unlinks)",
        "µs/chunk rounds: min-max of the per-round means; spreads that overlap are "
        "indistinguishable within noise",
    ]
    return lines


def format_table(report: dict[str, Any]) -> str:
    """The matrix as an aligned plain-text table with the summary below."""
    rows = _rows(report)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADERS)]
    align = ["<", "<"] + [">"] * (len(HEADERS) - 2)

    def line(cells: Sequence[str]) -> str:
        return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths))

    out = [line(HEADERS), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    out += ["", *_summary_lines(report)]
    return "\n".join(out)


def format_markdown(report: dict[str, Any]) -> str:
    """The matrix as a Markdown section."""
    out = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    out += ["| " + " | ".join(r) + " |" for r in _rows(report)]
    return "\n".join(out + [""] + [f"- {s}" for s in _summary_lines(report)]) + "\n"


#: Line style per durability class: what the chart's reader should see first.
_LINESTYLE = {"durable": "-", "loses-last": "--", "may-corrupt": ":"}
_COLOR = {
    "WAL+NORMAL": "tab:orange",
    "WAL+FULL": "tab:blue",
    "TRUNCATE+FULL": "tab:green",
    "DELETE+FULL": "tab:purple",
    "PERSIST+FULL": "tab:brown",
    "TRUNCATE+NORMAL": "tab:red",
    "PERSIST+NORMAL": "tab:pink",
    STORE_LABEL: "black",
}
_HATCH = {"durable": "", "loses-last": "//", "may-corrupt": "xx"}


def _legend_label(label: str, cells: Sequence[dict[str, Any]]) -> str:
    """``mode: durability, N syncs/commit[, N xTruncate]`` (from the batch-1 cell)."""
    c = min(cells, key=lambda c: c["batch"])
    syncs = c["syncs_per_commit"]["total"]
    parts = [DURABILITY_TEXT[c["durability"]], f"{syncs} sync{'' if syncs == 1 else 's'}/commit"]
    if c["truncates_per_commit"]:
        parts.append(f"{c['truncates_per_commit']} xTruncate")
    return f"{label}: {', '.join(parts)}"


def _require_matplotlib() -> Any:
    """matplotlib, or a RuntimeError saying how to install it."""
    try:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]
    except ImportError as e:
        raise RuntimeError(
            "--plot needs matplotlib: pip install 'memtree[plot]' (or pip install matplotlib)"
        ) from e
    return matplotlib


def plot(report: dict[str, Any], path: Path) -> None:
    """Two panels (needs matplotlib): the cost of one single-chunk commit per
    mode against its syncs times the raw fsync floor, and the amortised cost
    per chunk against batch size; error bars span the rounds, line and bar
    styles mark what each mode keeps through a power loss."""
    matplotlib = _require_matplotlib()
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]
    from matplotlib.lines import Line2D  # type: ignore[import-not-found, unused-ignore]

    labels = [m for m, _, _ in MODES] + [STORE_LABEL]
    by_mode = {
        label: sorted((c for c in report["cells"] if c["mode"] == label), key=lambda c: c["batch"])
        for label in labels
    }
    labels = [label for label in labels if by_mode[label]]
    floor_ms = report["fsync_floor_ms"]["median"]
    fig = plt.figure(figsize=(13, 8.4))
    # Title and verdicts above the panels, the legend below them: nothing
    # is drawn over the data.
    grid = fig.add_gridspec(
        1, 2, width_ratios=[1, 1.25], left=0.17, right=0.98, top=0.79, bottom=0.27, wspace=0.35
    )
    bars, lines = fig.add_subplot(grid[0]), fig.add_subplot(grid[1])

    # Left: one commit of one chunk. The floor is a per-commit cost, so it
    # lives here: each mode's syncs times one raw fsync.
    first = min(report["batches"])
    rows = [by_mode[label][0] for label in labels]
    ys = list(range(len(rows)))[::-1]
    for y, label, c in zip(ys, labels, rows):
        spread = c["latency_ms"]["rounds"]
        med = c["latency_ms"]["median"]
        bars.barh(
            y,
            med,
            color=_COLOR[label],
            alpha=0.75,
            hatch=_HATCH[c["durability"]],
            edgecolor="white" if not _HATCH[c["durability"]] else "black",
            xerr=[[max(0.0, med - min(spread))], [max(0.0, max(spread) - med)]],
            capsize=3,
        )
        syncs = c["syncs_per_commit"]["total"]
        bars.plot([syncs * floor_ms] * 2, [y - 0.4, y + 0.4], color="black", linewidth=2.2)
        note = f"{syncs} sync{'' if syncs == 1 else 's'}" + (
            f", {c['truncates_per_commit']} xTruncate" if c["truncates_per_commit"] else ""
        )
        bars.annotate(
            note,
            (max(med, max(spread), syncs * floor_ms), y),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    bars.set_yticks(ys)
    bars.set_yticklabels(
        [f"{label}\n{DURABILITY_TEXT[c['durability']]}" for label, c in zip(labels, rows)],
        fontsize=8.5,
    )
    bars.set_xlabel(f"one commit of {first} chunk{'s' if first != 1 else ''}: median ms")
    bars.set_title("Per commit: time vs. syncs x raw fsync (black tick)", fontsize=10)
    bars.margins(x=0.3)
    bars.grid(True, axis="x", alpha=0.3)

    # Right: amortised per chunk against batch size (no fsync line: that
    # floor is per commit, and the left panel carries it).
    for label in labels:
        cells = by_mode[label]
        ys_ = [c["per_chunk_us"] for c in cells]
        lo = [max(0.0, y - min(c["per_chunk_us_rounds"])) for y, c in zip(ys_, cells)]
        hi = [max(0.0, max(c["per_chunk_us_rounds"]) - y) for y, c in zip(ys_, cells)]
        lines.errorbar(
            [c["batch"] for c in cells],
            ys_,
            yerr=[lo, hi],
            color=_COLOR[label],
            linestyle="-." if label == STORE_LABEL else _LINESTYLE[cells[0]["durability"]],
            marker="x" if label == STORE_LABEL else "o",
            markersize=4,
            capsize=3,
            linewidth=1.4,
            label=_legend_label(label, cells),
        )
    lines.set_xscale("log")
    lines.set_yscale("log")
    lines.set_xticks(report["batches"], [str(b) for b in report["batches"]])
    lines.set_xlabel("chunks per commit")
    lines.set_ylabel("commit time per chunk, amortised (µs)")
    lines.set_title("Per chunk: batching closes the gap", fontsize=10)
    lines.grid(True, which="both", alpha=0.3)

    handles, texts = lines.get_legend_handles_labels()
    handles += [
        Line2D([], [], color="black", linewidth=2.2),
        Line2D([], [], color="grey", linestyle="-"),
        Line2D([], [], color="grey", linestyle="--"),
        Line2D([], [], color="grey", linestyle=":"),
    ]
    texts += [
        f"syncs x raw fsync ({floor_ms:.3f} ms): the sync floor of a commit",
        "solid: durable on power loss",
        "dashed / hatched //: may lose the last commits",
        "dotted / hatched xx: may corrupt",
    ]
    # Below both panels, never over the data.
    fig.legend(handles, texts, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=8.5)

    m = report["machine"]
    run = (
        f"--quick run ({report['rounds']} rounds of a few commits per cell): rough figures"
        if report["quick"]
        else f"{report['rounds']} rounds per cell"
    )
    fig.suptitle(
        f"memtree bench on {m['filesystem']}: SQLite {m['sqlite']}, {m['cpu']} x{m['cpus']}\n"
        f"{run}; error bars span the rounds",
        fontsize=11,
        y=0.985,
    )
    verdict_lines = "\n".join(v["headline"] for v in report["verdicts"])
    fig.text(0.5, 0.885, verdict_lines, ha="center", va="center", fontsize=9)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def add_arguments(parser: Any) -> None:
    """Adds ``memtree bench``'s options to an argparse (sub)parser."""
    parser.add_argument(
        "--dir", type=Path, default=None, help="folder on the disk to test (default: temporary)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="few commits per cell, 3 rounds (seconds)"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the report as JSON")
    parser.add_argument("--markdown", type=Path, default=None, help="write a Markdown table")
    parser.add_argument(
        "--plot", type=Path, default=None, help="write a PNG chart (needs matplotlib)"
    )
    parser.add_argument(
        "--commits",
        type=int,
        default=None,
        help="timed commits per round and cell (overrides the default)",
    )
    parser.add_argument(
        "--from-json",
        type=Path,
        default=None,
        metavar="FILE",
        help="measure nothing: print, --markdown and --plot a report saved with --json",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help=f"rounds per cell, each on fresh files (default {FULL_ROUNDS}, "
        f"--quick {QUICK_ROUNDS}); verdicts need 2 or more",
    )


def run(args: Any) -> int:
    """Runs ``memtree bench`` with parsed arguments; returns the exit status."""
    commits = dict(QUICK_COMMITS if args.quick else FULL_COMMITS)
    for option in ("commits", "rounds"):
        value = getattr(args, option)
        if value is not None and value < 1:
            print(f"memtree bench: --{option} must be >= 1", file=sys.stderr)
            return 2
    if args.commits is not None:
        commits = dict.fromkeys(commits, args.commits)
    rounds = args.rounds or (QUICK_ROUNDS if args.quick else FULL_ROUNDS)
    report: dict[str, Any] | None = None
    if args.from_json is not None:
        try:
            report = json.loads(args.from_json.read_text())
        except (OSError, ValueError) as e:
            print(f"memtree bench: cannot read {args.from_json}: {e}", file=sys.stderr)
            return 2
        if not isinstance(report, dict) or report.get("format") != REPORT_FORMAT:
            print(
                f"memtree bench: {args.from_json} is not a format-{REPORT_FORMAT} "
                "report of memtree bench --json",
                file=sys.stderr,
            )
            return 2
    if args.plot is not None:
        # Checked after a saved report is read (a bad file exits 2 with or
        # without --plot) and before the matrix runs: a missing matplotlib
        # found after minutes of measuring would throw the whole run away.
        try:
            _require_matplotlib()
        except RuntimeError as e:
            print(f"memtree bench: {e}", file=sys.stderr)
            return 1
    if report is None:
        folder: contextlib.AbstractContextManager[str | Path] = (
            contextlib.nullcontext(args.dir)
            if args.dir is not None
            else tempfile.TemporaryDirectory(prefix="memtree-bench-")
        )
        with folder as directory:
            config = BenchConfig(
                Path(directory),
                commits,
                fsync_samples=20 if args.quick else 200,
                quick=args.quick,
                rounds=rounds,
            )
            report = run_matrix(config)
    print(format_table(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if args.markdown is not None:
        args.markdown.write_text(format_markdown(report))
    if args.plot is not None:
        try:
            plot(report, args.plot)
        except RuntimeError as e:
            print(f"memtree bench: {e}", file=sys.stderr)
            return 1
    return 0
