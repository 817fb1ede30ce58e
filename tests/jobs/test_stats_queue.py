"""`memtree stats`: the queue by status and by the age of each status's
oldest job, and the store's free pages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import memtree


def test_stats_reports_the_queue_by_status_and_age(tmp_path: Path) -> None:
    db = tmp_path / "chunks.db"
    store = memtree.Store(db)
    store.jobs.enqueue("a", {})
    store.jobs.enqueue("a", {})
    job = store.jobs.claim_next()
    assert job is not None
    store.jobs.mark_done(job)
    store.close()
    out = subprocess.run(
        [sys.executable, "-m", "memtree", "stats", str(db), "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    report = json.loads(out)
    assert report["jobs_by_status"] == {"done": 1, "ready": 1}
    ages = report["jobs_oldest_age_seconds"]
    assert set(ages) == {"done", "ready"} and all(0 <= a < 60 for a in ages.values())
    assert report["freelist_pages"] >= 0
