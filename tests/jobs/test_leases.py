"""Leases a crash cannot strand: a running job whose holder process died on
this host is claimable again at once (not after its lease), a live holder's
job never is, and a job killed mid-run 50 times is neither lost nor run twice
at the same time."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import memtree
import pytest

pytestmark = pytest.mark.skipif(
    sys.platform != "linux", reason="holder identity is read from /proc (Linux only)"
)

LONG_LEASE = timedelta(minutes=5)

# A worker process: once told to (a line on stdin), claims one job under a
# 5-minute lease, says which, then heartbeats until killed (or, with
# "finish", marks it done and exits). Waiting for the word lets a loop start
# the next holder (interpreter, imports) while the current trial runs.
HOLDER = textwrap.dedent(
    """
    import sys, time
    from datetime import timedelta
    import memtree
    store = memtree.Store(sys.argv[1])
    sys.stdin.readline()
    job = store.jobs.claim_next(lease=timedelta(minutes=5), kinds=["slow"])
    if job is None:
        print("none", flush=True)
        sys.exit(3)
    print(job.id, job.lease_token, flush=True)
    if sys.argv[2] == "finish":
        store.jobs.mark_done(job)
        print("done", flush=True)
        sys.exit(0)
    while True:
        store.jobs.heartbeat(job, timedelta(minutes=5))
        time.sleep(0.05)
    """
)


def _spawn_holder(path: Path, mode: str = "hold") -> subprocess.Popen[str]:
    """A holder process, started but not yet claiming (see ``_claim``)."""
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def _start_holder(path: Path, mode: str = "hold") -> tuple[subprocess.Popen[str], str, str]:
    return _claim(_spawn_holder(path, mode))


def _claim(proc: subprocess.Popen[str]) -> tuple[subprocess.Popen[str], str, str]:
    """Tells a spawned holder to claim; returns it, the job id and its token."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("claim\n")
    proc.stdin.flush()
    line = proc.stdout.readline().split()
    assert len(line) == 2, f"holder did not claim: {line!r} (rc {proc.poll()})"
    return proc, line[0], line[1]


# rust/jobs/lease.rs: SWEEP_INTERVAL_MS.
SWEEP_INTERVAL = 0.2


def _wait_until_zombie(pid: int) -> None:
    """Until the killed process has exited (state Z, not yet reaped)."""
    stat = Path(f"/proc/{pid}/stat")
    deadline = time.monotonic() + 60  # a hang guard, not a measure
    while stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline, f"process {pid} did not exit"
        time.sleep(0.001)


def _reap(proc: subprocess.Popen[str]) -> int:
    rc = proc.wait()
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            pipe.close()
    return rc


def test_a_killed_holders_job_is_claimed_again_at_once_50_times(tmp_path: Path) -> None:
    path = tmp_path / "chunks.db"
    store = memtree.Store(path)
    job_id = store.jobs.enqueue("slow", {"n": 1}, max_attempts=1000)
    assert job_id is not None
    tokens: list[str] = []
    waits: list[float] = []
    spawned = _spawn_holder(path)
    for trial in range(50):
        proc, got_id, token = _claim(spawned)
        # The next trial's holder starts now, while this one runs: it waits
        # for its word before claiming.
        spawned = _spawn_holder(path, "hold" if trial < 49 else "finish")
        assert got_id == job_id
        tokens.append(token)
        holder_pid = token.split(".")[1]
        assert holder_pid == str(proc.pid), "the token names its holder"
        # Alive: never taken from it, whatever the caller tries.
        assert store.jobs.recover_stale_locks() == 0
        assert store.jobs.claim_next(lease=LONG_LEASE, kinds=["slow"]) is None
        # Read after the claim returned, so no later than the clock reading
        # its sweep (if due) kept: read before it, a loaded machine that
        # paused this thread between the two (0.1 s does it) made the sweep
        # below come too early and the claim find nothing.
        last_claim_at = time.monotonic()
        running = store.jobs.get(job_id)
        assert running is not None and running.status == "running"
        assert running.lease_token == token
        assert proc.poll() is None, "the holder was alive, heartbeating, until the kill"
        killed_at = time.monotonic()
        proc.kill()
        if trial % 2 == 0:
            proc.wait()  # reaped: the pid has no process
        else:
            # Left a zombie until the end of the trial: it has exited, so
            # it is dead too.
            _wait_until_zombie(proc.pid)
        # Not timed: a claim looks for dead holders at most once per 200 ms
        # per thread (rust/jobs/lease.rs, SWEEP_INTERVAL_MS), so once the
        # holder is provably dead and that long has passed since this
        # thread's last claim, the very next claim takes the job back. The
        # issue's "within 1 s" follows; the figure printed below is the
        # kill-to-claim time. Every other pair of trials claims from a
        # thread that has never swept, whose first claim must take it back
        # without that wait (each pair has one reaped and one zombie holder).
        claim = functools.partial(store.jobs.claim_next, lease=LONG_LEASE, kinds=["slow"])
        if trial % 4 < 2:
            time.sleep(max(0.0, last_claim_at + SWEEP_INTERVAL + 0.05 - time.monotonic()))
            again = claim()
        else:
            with ThreadPoolExecutor(max_workers=1) as fresh_thread:
                again = fresh_thread.submit(claim).result()
        waits.append(time.monotonic() - killed_at)
        assert again is not None, f"trial {trial}: the first claim after the death failed"
        assert again.id == job_id and again.lease_token != token
        assert again.attempts == trial + 2, "the killed claim spent its attempt"
        # Hand it back for the next holder (the release refunds the attempt
        # this claim spent).
        assert store.jobs.release([again]) == 1
        _reap(proc)
    assert len(set(tokens)) == 50
    # Finally one holder runs it to the end: it ran, once more, and is done.
    proc, got_id, _ = _claim(spawned)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "done"
    assert _reap(proc) == 0
    final = store.jobs.get(job_id)
    assert final is not None and final.status == "done"
    assert store.jobs.counts()["done"] == 1
    assert sum(store.jobs.counts().values()) == 1, "one job, never duplicated"
    print(f"re-claim after kill -9: max {max(waits) * 1000:.0f} ms over 50 trials")


def test_recover_stale_locks_takes_back_a_dead_holders_job(tmp_path: Path) -> None:
    path = tmp_path / "chunks.db"
    store = memtree.Store(path)
    job_id = store.jobs.enqueue("slow", {})
    proc, _, _ = _start_holder(path)
    assert store.jobs.recover_stale_locks() == 0, "alive"
    proc.kill()
    _reap(proc)
    assert store.jobs.recover_stale_locks() == 1
    job = store.jobs.get(job_id or "")
    assert job is not None and job.status == "ready"
    assert job.last_error is not None and f"process {proc.pid}" in job.last_error


def test_a_restarted_worker_runs_a_dead_holders_job(tmp_path: Path) -> None:
    path = tmp_path / "chunks.db"
    store = memtree.Store(path)
    job_id = store.jobs.enqueue("slow", {"x": 1})
    proc, _, _ = _start_holder(path)
    proc.kill()
    _reap(proc)
    ran: list[str] = []
    with memtree.Worker(store, {"slow": lambda job: ran.append(job.id)}, concurrency=1):
        deadline = time.monotonic() + 60  # a hang guard, not a measure
        while not ran and time.monotonic() < deadline:
            time.sleep(0.02)
    assert ran == [job_id]
    done = store.jobs.get(job_id or "")
    assert done is not None and done.status == "done"


def test_the_holder_of_a_forked_child_is_the_child(tmp_path: Path) -> None:
    path = tmp_path / "chunks.db"
    store = memtree.Store(path)
    store.jobs.enqueue("slow", {})
    parent = store.jobs.claim_next(lease=LONG_LEASE)
    assert parent is not None and parent.lease_token is not None
    assert parent.lease_token.split(".")[1] == str(os.getpid())
    store.jobs.enqueue("slow", {})
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        try:
            child = memtree.Store(path).jobs.claim_next(lease=LONG_LEASE)
            token = child.lease_token if child is not None else ""
            os.write(write, (token or "").encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    token = os.read(read, 200).decode()
    os.close(read)
    assert token.split(".")[1] == str(pid)
    # The child exited: its job comes back, the parent's (alive) does not.
    assert store.jobs.recover_stale_locks() == 1
    still = store.jobs.get(parent.id)
    assert still is not None and still.status == "running"
