"""``memtree bench``: WAL or TRUNCATE, measured on your own disk.

Runs a matrix of journal modes and ``synchronous`` levels against batch sizes
on the chosen folder. Every commit writes memtree's real rows (ids, ~500-byte
content, the full index set) through memtree's schema and upsert statement,
timed in the Rust core; the VFS shim counts every sync call and written byte
of each commit exactly. For TRUNCATE+FULL the real ``Store.upsert_chunks``
path is timed too, so the Python-to-Rust cost shows.
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
    "MODES",
    "BenchConfig",
    "add_arguments",
    "run",
    "run_matrix",
]

#: ``(label, journal_mode, synchronous)``; memtree's own default is TRUNCATE+FULL.
MODES: tuple[tuple[str, str, str], ...] = (
    ("WAL+NORMAL", "wal", "normal"),
    ("WAL+FULL", "wal", "full"),
    ("TRUNCATE+FULL", "truncate", "full"),
    ("DELETE+FULL", "delete", "full"),
    ("TRUNCATE+NORMAL", "truncate", "normal"),
)
#: Chunks per commit.
BATCHES: tuple[int, ...] = (1, 10, 100, 1000)
#: The label of the row that times ``memtree.Store.upsert_chunks`` itself.
STORE_LABEL = "Store (TRUNCATE+FULL)"
#: Timed commits per cell (after one untimed warm-up commit), by batch size.
FULL_COMMITS = {1: 500, 10: 300, 100: 100, 1000: 30}
QUICK_COMMITS = {1: 20, 10: 10, 100: 5, 1000: 3}
SYNC_ROLES = ("db", "journal", "wal", "dir", "other")
WITHIN = 1.10


@dataclass(frozen=True)
class BenchConfig:
    """What to run: the folder, commits per batch size, fsync samples."""

    directory: Path
    commits: dict[int, int]
    fsync_samples: int
    quick: bool
    #: Each cell's commits are split into this many rounds, each on a fresh
    #: file, and the modes take turns round by round, so a shared disk's
    #: drift over the run hits every mode alike.
    rounds: int = 1


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
    samples: Sequence[tuple[int, ...]],
) -> dict[str, Any]:
    """Summarises per-commit samples ``(ns, db, journal, wal, dir, other, bytes)``."""
    latencies = [s[0] / 1e6 for s in samples]
    syncs = [tuple(s[1:6]) for s in samples]
    typical, seen = Counter(syncs).most_common(1)[0]
    median_ms = statistics.median(latencies)
    total_s = sum(latencies) / 1e3
    written = [s[6] for s in samples]
    return {
        "mode": label,
        "journal_mode": journal_mode,
        "synchronous": synchronous,
        "path": path,
        "batch": batch,
        "commits": len(samples),
        "latency_ms": {"median": median_ms, "p90": _p90(latencies)},
        # Amortised: every commit's time (WAL checkpoints included) per chunk.
        "per_chunk_us": sum(latencies) * 1e3 / (batch * len(samples)),
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
                )
            )
    return samples


def fsync_floor(directory: Path, samples: int) -> dict[str, float]:
    """The disk's raw ``fsync`` latency after a 512-byte overwrite, in ms."""
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
    return {"median": statistics.median(times), "p90": _p90(times), "samples": samples}


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


def first_batch_within(cells: Sequence[dict[str, Any]], within: float = WITHIN) -> int | None:
    """The smallest batch size where TRUNCATE+FULL's cost per chunk is within
    ``within`` times WAL+NORMAL's (core rows), or None if no batch size is."""
    per_chunk = {(c["mode"], c["batch"]): c["per_chunk_us"] for c in cells if c["path"] == "core"}
    for batch in sorted({c["batch"] for c in cells}):
        tf = per_chunk.get(("TRUNCATE+FULL", batch))
        wn = per_chunk.get(("WAL+NORMAL", batch))
        if tf is not None and wn is not None and tf <= wn * within:
            return int(batch)
    return None


def run_matrix(config: BenchConfig, progress: TextIO | None = sys.stderr) -> dict[str, Any]:
    """Runs the whole matrix in a fresh sub-folder of ``config.directory``
    (removed afterwards) and returns the JSON-ready report."""
    config.directory.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="memtree-bench-", dir=config.directory))
    batches = sorted(config.commits)
    steps = 1 + len(batches) * config.rounds
    bar = _Progress(steps, progress) if progress is not None else None
    try:
        floor = fsync_floor(work, config.fsync_samples)
        if bar:
            bar.step("raw fsync floor")
        cells: list[dict[str, Any]] = []
        contenders = [*MODES, (STORE_LABEL, "truncate", "full")]
        for batch in batches:
            per_round = max(1, config.commits[batch] // config.rounds)
            samples: dict[str, list[tuple[int, ...]]] = {c[0]: [] for c in contenders}
            for r in range(config.rounds):
                for label, journal, sync in contenders:
                    db = work / f"{journal}-{sync}-{batch}-{r}-{label == STORE_LABEL}.db"
                    if label == STORE_LABEL:
                        samples[label] += _store_samples(db, batch, per_round)
                        continue
                    # The native side fails if SQLite kept another journal mode.
                    _mode, timed = _native.bench.commits(db, journal, sync, batch, per_round, 1)
                    samples[label] += timed
                if bar:
                    bar.step(f"batch {batch}, round {r + 1}/{config.rounds}")
            for label, journal, sync in contenders:
                path = "store" if label == STORE_LABEL else "core"
                cells.append(_cell(label, journal, sync, path, batch, samples[label]))
        info = machine(config.directory)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "format": 1,
        "quick": config.quick,
        "machine": info,
        "fsync_floor_ms": floor,
        "modes": [{"mode": m, "journal_mode": j, "synchronous": s} for m, j, s in MODES],
        "batches": batches,
        "cells": cells,
        "truncate_full_within_10pct_of_wal_normal_at_batch": first_batch_within(cells),
    }


def _rows(report: dict[str, Any]) -> list[list[str]]:
    rows = []
    for c in sorted(report["cells"], key=lambda c: (c["batch"], c["path"] == "store")):
        s = c["syncs_per_commit"]
        syncs = f"{s['total']} ({s['db']}/{s['journal']}/{s['wal']}/{s['dir']})"
        if not c["syncs_uniform"]:
            syncs += f" ~{sum(c['syncs_mean'].values()):.2f}"
        rows.append(
            [
                c["mode"],
                str(c["batch"]),
                f"{c['latency_ms']['median']:.2f}",
                f"{c['latency_ms']['p90']:.2f}",
                f"{c['per_chunk_us']:.1f}",
                f"{c['chunks_per_s']:,.0f}",
                syncs,
                f"{c['bytes_written_per_commit'] / 1024:.1f}",
            ]
        )
    return rows


HEADERS = [
    "mode",
    "batch",
    "median ms",
    "p90 ms",
    "µs/chunk (mean)",
    "chunks/s",
    "syncs/commit (db/jrnl/wal/dir)",
    "KiB written/commit",
]


def _summary_lines(report: dict[str, Any]) -> list[str]:
    floor = report["fsync_floor_ms"]
    batch = report["truncate_full_within_10pct_of_wal_normal_at_batch"]
    verdict = (
        f"TRUNCATE+FULL costs within 10% of WAL+NORMAL per chunk from batch {batch} on"
        if batch is not None
        else "TRUNCATE+FULL never comes within 10% of WAL+NORMAL per chunk in this matrix"
    )
    m = report["machine"]
    return [
        f"raw fsync floor: median {floor['median']:.3f} ms, p90 {floor['p90']:.3f} ms "
        f"({floor['samples']} samples)",
        verdict,
        f"machine: {m['cpu']} x{m['cpus']}, {m['platform']}; disk: {m['filesystem']}; "
        f"SQLite {m['sqlite']}, memtree {m['memtree']}",
        "syncs: typical commit's exact xSync calls; '~' gives the mean where commits differ "
        "(WAL checkpoints)",
    ]


def format_table(report: dict[str, Any]) -> str:
    """The matrix as an aligned plain-text table with the summary below."""
    rows = _rows(report)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADERS)]
    align = ["<"] + [">"] * (len(HEADERS) - 1)

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


def plot(report: dict[str, Any], path: Path) -> None:
    """Latency per chunk against batch size, one line per mode (needs matplotlib)."""
    try:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]
    except ImportError as e:
        raise RuntimeError(
            "--plot needs matplotlib: pip install 'memtree[plot]' (or pip install matplotlib)"
        ) from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]

    fig, ax = plt.subplots(figsize=(8, 5))
    labels = [m for m, _, _ in MODES] + [STORE_LABEL]
    for label in labels:
        cells = sorted((c for c in report["cells"] if c["mode"] == label), key=lambda c: c["batch"])
        style = "--" if label == STORE_LABEL else "-"
        ax.plot(
            [c["batch"] for c in cells],
            [c["per_chunk_us"] for c in cells],
            style,
            marker="o",
            label=label,
        )
    floor_us = report["fsync_floor_ms"]["median"] * 1e3
    ax.axhline(floor_us, color="grey", linestyle=":", label="one raw fsync")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("chunks per commit")
    ax.set_ylabel("commit time per chunk, amortised (µs)")
    ax.set_title(f"memtree bench: {report['machine']['filesystem']}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def add_arguments(parser: Any) -> None:
    """Adds ``memtree bench``'s options to an argparse (sub)parser."""
    parser.add_argument(
        "--dir", type=Path, default=None, help="folder on the disk to test (default: temporary)"
    )
    parser.add_argument("--quick", action="store_true", help="few commits per cell (seconds)")
    parser.add_argument("--json", type=Path, default=None, help="write the report as JSON")
    parser.add_argument("--markdown", type=Path, default=None, help="write a Markdown table")
    parser.add_argument(
        "--plot", type=Path, default=None, help="write a PNG chart (needs matplotlib)"
    )
    parser.add_argument(
        "--commits", type=int, default=None, help="timed commits per cell (overrides the default)"
    )


def run(args: Any) -> int:
    """Runs ``memtree bench`` with parsed arguments; returns the exit status."""
    commits = dict(QUICK_COMMITS if args.quick else FULL_COMMITS)
    if args.commits is not None:
        if args.commits < 1:
            print("memtree bench: --commits must be >= 1", file=sys.stderr)
            return 2
        commits = dict.fromkeys(commits, args.commits)
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
            rounds=1 if args.quick or args.commits is not None else 5,
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
