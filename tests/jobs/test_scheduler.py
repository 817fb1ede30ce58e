"""Periodic jobs (``store.scheduler``): once per time slot however many
processes call, the slot's check and enqueue one transaction; OpenHuman's
daily digest trigger, backfill and stale-buffer flush on top.

The six tests of OpenHuman's ``jobs/scheduler.rs`` are ported first.
"""

from __future__ import annotations

import shutil
import sqlite3
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import memtree
import pytest
from memtree import JobKind, ResultCode, testing
from support import run_child

NOW = datetime(2026, 4, 28, 12, 0, tzinfo=timezone.utc)


def total(store: memtree.Store) -> int:
    return sum(store.jobs.counts().values())


# ── OpenHuman's jobs/scheduler.rs ───────────────────────────────────────


def test_trigger_digest_enqueues_a_job(store: memtree.Store) -> None:
    job_id = store.scheduler.trigger_digest(date(2026, 4, 27))
    assert job_id is not None, "first trigger must enqueue"
    assert store.jobs.counts()["ready"] == 1
    job = store.jobs.get(job_id)
    assert job is not None
    assert (job.kind, job.dedupe_key, job.payload) == (
        "digest_daily",
        "digest_daily:2026-04-27",
        {"date_iso": "2026-04-27"},
    )


def test_trigger_digest_dedupes_active_jobs(store: memtree.Store) -> None:
    first = store.scheduler.trigger_digest(date(2026, 4, 27))
    second = store.scheduler.trigger_digest("2026-04-27")
    assert first is not None
    assert second is None, "duplicate trigger must be dedupe-suppressed while active"
    assert total(store) == 1


def test_trigger_digest_after_done_creates_fresh_row(store: memtree.Store) -> None:
    id1 = store.scheduler.trigger_digest(date(2026, 4, 27))
    claimed = store.jobs.claim_next()
    assert claimed is not None and claimed.id == id1
    store.jobs.mark_done(claimed)
    id2 = store.scheduler.trigger_digest(date(2026, 4, 27))
    assert id2 is not None, "after the prior job completes, a fresh trigger must enqueue"
    assert id2 != id1
    assert total(store) == 2


def test_backfill_missing_digests_enqueues_one_per_day(store: memtree.Store) -> None:
    n = store.scheduler.backfill_missing_digests(5, today=NOW)
    assert n == 5, "expected one job per day in the 5-day window"
    assert total(store) == 5
    keys = sorted(j.dedupe_key or "" for j in store.jobs.list())
    assert keys == [f"digest_daily:2026-04-{d}" for d in (23, 24, 25, 26, 27)]


def test_backfill_missing_digests_zero_window_is_noop(store: memtree.Store) -> None:
    assert store.scheduler.backfill_missing_digests(0) == 0
    assert total(store) == 0


def test_backfill_missing_digests_is_idempotent_while_active(store: memtree.Store) -> None:
    n1 = store.scheduler.backfill_missing_digests(3)
    n2 = store.scheduler.backfill_missing_digests(3)
    assert n1 == 3
    assert n2 == 0, "second call must be fully dedupe-suppressed"
    assert total(store) == 3


# ── the daily run and the periodic primitive ────────────────────────────


def test_run_daily_enqueues_yesterdays_digest_and_todays_flush_once(
    store: memtree.Store,
) -> None:
    digest_id, flush_id = store.scheduler.run_daily(now=NOW)
    assert digest_id is not None and flush_id is not None
    digest, flush = store.jobs.get(digest_id), store.jobs.get(flush_id)
    assert digest is not None and flush is not None
    assert (digest.kind, digest.dedupe_key) == (JobKind.DIGEST_DAILY, "digest_daily:2026-04-27")
    assert (flush.kind, flush.dedupe_key, flush.payload) == (
        JobKind.FLUSH_STALE,
        "flush_stale:2026-04-28",
        {"max_age_secs": None},
    )
    # Done or not, the day's run does not fire again.
    for _ in range(2):
        job = store.jobs.claim_next()
        assert job is not None
        store.jobs.mark_done(job)
    assert store.scheduler.run_daily(now=NOW + timedelta(hours=11)) == (None, None)
    assert total(store) == 2
    # The next day fires again.
    assert None not in store.scheduler.run_daily(now=NOW + timedelta(days=1))
    assert store.scheduler.next_daily_run_in(now=NOW) == timedelta(hours=12, minutes=5)


def test_schedule_fires_once_per_slot_and_again_in_the_next(store: memtree.Store) -> None:
    every = timedelta(minutes=15)
    first = store.scheduler.schedule("reindex", every, {"scope": "all"}, now=NOW)
    assert first is not None
    job = store.jobs.get(first)
    assert job is not None
    assert job.dedupe_key == f"reindex@{int(NOW.timestamp() * 1000)}"
    assert job.available_at == NOW and job.payload == {"scope": "all"}
    # The same slot: nothing, even once the job is done.
    assert store.scheduler.schedule("reindex", every, now=NOW + timedelta(minutes=14)) is None
    claimed = store.jobs.claim_next()
    assert claimed is not None
    store.jobs.mark_done(claimed)
    assert store.scheduler.schedule("reindex", every, now=NOW + timedelta(minutes=1)) is None
    # The next slot fires; another key is another schedule.
    assert store.scheduler.schedule("reindex", every, now=NOW + timedelta(minutes=15)) is not None
    assert store.scheduler.schedule(JobKind.FLUSH_STALE, every, key="f", now=NOW) is not None
    assert total(store) == 3
    # store.jobs.schedule is the same call.
    assert store.jobs.schedule("reindex", every, now=NOW + timedelta(minutes=16)) is None
    assert store.jobs.schedule("reindex", every, now=NOW + timedelta(minutes=30)) is not None


@pytest.mark.parametrize(
    ("kw", "error", "match"),
    [
        ({"every": timedelta(0)}, ValueError, "every"),
        ({"every": 5}, TypeError, "every"),
        ({"kind": ""}, ValueError, "kind"),
        ({"key": ""}, ValueError, "key"),
        ({"payload": {"x": float("nan")}}, ValueError, "payload"),
    ],
)
def test_bad_schedules_are_refused(
    store: memtree.Store, kw: dict[str, object], error: type[Exception], match: str
) -> None:
    args: dict[str, object] = {"kind": "k", "every": timedelta(minutes=1), "now": NOW}
    args.update(kw)
    with pytest.raises(error, match=match):
        store.scheduler.schedule(**args)  # type: ignore[arg-type]
    assert total(store) == 0


SCHEDULE_RACE = """
db, now_ms = sys.argv[1], int(sys.argv[2])
store = memtree.Store(db)
fired = [store.scheduler.schedule("tick", timedelta(minutes=5), now=now_ms + i)
         for i in range(30)]
print(sum(f is not None for f in fired), flush=True)
"""


def test_many_processes_one_job_per_slot(tmp_path: Path) -> None:
    import subprocess
    import sys

    from support import CHILD_PRELUDE

    db = tmp_path / "chunks.db"
    memtree.Store(db).close()
    now_ms = int(NOW.timestamp() * 1000)
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD_PRELUDE + SCHEDULE_RACE, str(db), str(now_ms)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    fired = []
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        fired.append(int(out.strip()))
    assert sum(fired) == 1, fired
    with memtree.Store(db) as store:
        assert total(store) == 1


def jobs_rows(db: Path) -> frozenset[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return frozenset(
            conn.execute("SELECT kind, payload_json, dedupe_key, status FROM mem_tree_jobs")
        )
    finally:
        conn.close()


@pytest.mark.parametrize("persistent", [False, True], ids=["once", "persistent"])
@pytest.mark.parametrize("method", ["xRead", "xWrite", "xSync", "xLock"])
def test_run_daily_under_a_fault_at_every_io_call(
    tmp_path: Path, method: testing.VfsMethod, persistent: bool
) -> None:
    base = tmp_path / "base.db"
    with memtree.Store(base) as store:
        store.scheduler.trigger_digest("2026-01-01")
    before = jobs_rows(base)
    done = tmp_path / "done.db"
    shutil.copy2(base, done)
    with memtree.Store(done) as store:
        store.scheduler.run_daily(now=NOW)
    after = jobs_rows(done)
    assert len(after) == len(before) + 2
    fired_points = 0
    for n in range(1, 500):
        db = tmp_path / f"run-{n}.db"
        shutil.copy2(base, db)
        with memtree.Store(db) as store:
            testing.inject_fault(db, method, n, ResultCode.IOERR, persistent=persistent)
            try:
                store.scheduler.run_daily(now=NOW)
            except memtree.MemtreeError as e:
                assert e.code == ResultCode.IOERR, e
            fired = testing.clear_fault(db)
        assert jobs_rows(db) in {before, after}, f"{method} fault at call {n}"
        db.unlink()
        Path(str(db) + "-journal").unlink(missing_ok=True)
        if fired == 0:
            break
        fired_points += 1
    else:
        pytest.fail(f"{method}: still firing at call 499")
    print(f"{method} persistent={persistent}: {fired_points} fault points")
    assert fired_points >= 1, "the loop must have injected at least one fault"


def test_power_loss_during_run_daily_keeps_before_or_after(tmp_path: Path) -> None:
    body = """
db, n, seed, now = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
store = memtree.Store(db)
testing.arm_crash(db, seed=seed, at_sync=n, exit_code=77)
store.scheduler.run_daily(now=now)
print("completed", flush=True)
"""
    now_ms = str(int(NOW.timestamp() * 1000))
    base = tmp_path / "base.db"
    with memtree.Store(base) as store:
        store.scheduler.trigger_digest("2026-01-01")
    before = jobs_rows(base)
    crashes = 0
    after = None
    for seed in range(2):
        for n in range(1, 50):
            db = tmp_path / f"crash-{seed}-{n}.db"
            shutil.copy2(base, db)
            out = run_child(body, str(db), str(n), str(seed), now_ms)
            if out.returncode == 0:
                after = jobs_rows(db)
                break
            assert out.returncode == 77, out.stderr
            memtree.Store(db).close()
            seen = jobs_rows(db)
            assert seen == before or len(seen) == len(before) + 2, f"seed {seed}, sync {n}"
            crashes += 1
    assert after is not None and len(after) == len(before) + 2
    assert crashes >= 2
