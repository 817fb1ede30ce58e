"""Prints the Performance tables (docs/performance.md) from one ``make bench`` run.

Usage: ``python benches/readme_table.py [.benchmarks/targets.json]``

``make bench`` writes every recorded figure to ``.benchmarks/targets.json``
(``benches/conftest.py``); the side-by-side rows come from the records that
``benches/test_peers.py`` tags with a ``table``, the target rows from the
rest. Paste the output over the tables in docs/performance.md; nothing
else holds measured figures. Only the durability and settings notes below
are fixed text: they describe how each peer is
configured by ``test_peers.py``, not what it measured.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

#: Column order and heading per table (a missing figure prints as "-").
COLUMNS = {
    "store": [
        ("memtree", "memtree"),
        ("apsw", "apsw"),
        ("apsw IN (…)", "apsw, one `IN (…)`"),
        ("stdlib", "stdlib `sqlite3`"),
        ("sqlite-utils", "sqlite-utils"),
    ],
    "queue": [
        ("memtree", "memtree"),
        ("persist-queue", "persist-queue `SQLiteAckQueue`"),
        ("litequeue", "litequeue"),
        ("huey", "huey `SqliteStorage`"),
    ],
}

#: How each contender runs in ``test_peers.py`` and what it then keeps.
SETTINGS = {
    "store": [
        "memtree: `Store` defaults, TRUNCATE + FULL always; durable.",
        "apsw 3.54.1.0 (its own SQLite 3.54.1): `PRAGMA journal_mode=TRUNCATE`, "
        "`synchronous=FULL`; `executemany` of memtree's upsert in `BEGIN IMMEDIATE … "
        "COMMIT`; durable.",
        "stdlib `sqlite3` (the system's SQLite): the same pragmas, explicit transactions; durable.",
        "sqlite-utils 4.2.1 on that stdlib connection: `insert_all` (plain INSERT, 58-row "
        "statements) inside `db.atomic()`, one transaction; durable.",
        "Reads build the same `memtree.Chunk` objects from each peer's rows (one helper, "
        "`conftest.chunk_from_row`).",
    ],
    "queue": [
        "memtree: enqueue, then `mark_done_and_claim_next` (the Worker's steady state: the "
        "held job settled and the next claimed in one transaction): two commits a job; or "
        "enqueue, `claim_next`, `mark_done`: three; leased and acked either way; durable.",
        "persist-queue 1.1.0 `SQLiteAckQueue`: its connection factory subclassed to set "
        "TRUNCATE + FULL (the library sets WAL); put, get, ack: three commits a job, acked; "
        "durable.",
        "litequeue 0.9: its constructor sets WAL + NORMAL, switched to TRUNCATE + FULL right "
        "after; put, pop, done: three commits a job, acked; durable.",
        "huey 3.5.4 `SqliteStorage(journal_mode='truncate', fsync=True)` (FULL): enqueue, "
        "dequeue: **two commits a job and no ack** (a dequeued job is deleted; a worker that "
        "dies mid-job loses it); durable commits, weaker delivery.",
    ],
}


def _figure(value: float, unit: str) -> str:
    if unit == "jobs/s":
        return f"{value:,.0f} jobs/s"
    if value >= 100:
        return f"{value:,.0f} {unit}"
    return f"{value:.3g} {unit}"


def _ratio(record: dict[str, Any]) -> str:
    value = record["value"]
    peer = record["compared_with"]
    if record["per_s"]:
        text = f"{value:.2f}x {peer}'s rate"
    else:
        text = f"{value:.2f}x {peer}'s time"
    if record["target"].startswith(("<", ">")):
        text += f" (target {record['target']}: {'met' if record['met'] else '**missed**'})"
    return text


def side_by_side(records: list[dict[str, Any]], table: str) -> list[str]:
    rows = [r for r in records if r.get("table") == table]
    if not rows:
        return []
    present = [(k, h) for k, h in COLUMNS[table] if any(k in r["figures"] for r in rows)]
    out = [
        "| workload | " + " | ".join(h for _, h in present) + " | memtree vs. fastest peer |",
        "|---|" + "---|" * (len(present) + 1),
    ]
    for r in rows:
        cells = [
            _figure(r["figures"][k], r["unit"]) if k in r["figures"] else "-" for k, _ in present
        ]
        out.append(f"| {r['workload']} | " + " | ".join(cells) + f" | {_ratio(r)} |")
    out.append("")
    out += [f"- {line}" for line in SETTINGS[table]]
    return out


def targets(records: list[dict[str, Any]]) -> list[str]:
    out = ["| measured | value | target | verdict |", "|---|---|---|---|"]
    for r in records:
        if "table" in r:
            continue
        verdict = "met" if r["met"] else "**missed**"
        if not r["target"].startswith(("<", ">")):
            verdict = "reported"
        value = f"{r['value']:.3f}"
        if "at_start" in r:  # the load average: both ends of the run
            value = (
                f"{r['at_start']:.2f} at the start, {r['value']:.2f} at the end ({r['cpus']} CPUs)"
            )
        out.append(f"| {r['name'].strip()} | {value} | {r['target']} | {verdict} |")
    return out


def main(argv: list[str]) -> int:
    path = Path(argv[1] if len(argv) > 1 else ".benchmarks/targets.json")
    records: list[dict[str, Any]] = json.loads(path.read_text())
    for table in COLUMNS:
        lines = side_by_side(records, table)
        if lines:
            print("\n".join(lines), end="\n\n")
    print("\n".join(targets(records)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
