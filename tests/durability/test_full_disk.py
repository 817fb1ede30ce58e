"""A real full disk while leaving WAL or recovering side files (issue 9).

A small tmpfs holds a WAL database whose newest rows exist only in its
``-wal``. The rest of the disk is filled so that only ``slack`` bytes stay
free, for slack = 0, 4 KiB, 8 KiB, … until memtree's open succeeds: every
stage of the migration (checkpoint, journal, header switch, schema steps)
meets ENOSPC somewhere along the way. After each stage the recovery contract
of ``support`` holds (a full disk is a persistent fault, so rows may
sit in a ``<db>.unrecovered-<ms>`` bundle); then the space is freed and a
clean open must bring every row home with nothing stranded.

Needs root (``mount -t tmpfs``) on Linux; skips with the reason otherwise.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import memtree
import pytest
from memtree import ResultCode, testing
from support import (
    Rows,
    check_after_clean_reopen,
    check_after_fault,
    open_outcome,
    wal_only_template,
)

DISK_SIZE = 4 * 1024 * 1024
BLOCK = 4096


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A fresh ``DISK_SIZE`` tmpfs, unmounted at the end whatever happened."""
    if not sys.platform.startswith("linux"):
        pytest.skip("a real full disk needs a Linux tmpfs")
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"mount -t tmpfs not permitted here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        # Lazily if something still holds a file (the test failed half-way).
        if subprocess.run(["umount", str(mount_point)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Rows]:
    folder = tmp_path_factory.mktemp("template")
    # The -wal must outweigh what the open can free (a 32 KiB -shm, the
    # -wal itself once checkpointed), or a full disk never stops it.
    committed = wal_only_template(
        folder / "chunks.db",
        tmp_path_factory.mktemp("template-checks"),
        chunks=30,
        wal_frames_only=24,
    )
    return folder, committed


def fill(disk: Path, slack: int) -> Path:
    """Fills ``disk`` until ENOSPC, then frees ``slack`` bytes; returns the filler."""
    filler = disk / "filler"
    block = b"\xa5" * BLOCK
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        while True:
            try:
                os.write(fd, block)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                break
        size = os.fstat(fd).st_size
        os.ftruncate(fd, max(0, size - slack))
    finally:
        os.close(fd)
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    assert free <= slack + BLOCK, f"disk not full: {free} bytes free"
    return filler


@pytest.mark.parametrize("mode", ["migration", "recovery"])
def test_full_disk_strands_no_row(
    small_disk: Path, template: tuple[Path, Rows], tmp_path: Path, mode: str
) -> None:
    folder, committed = template
    stages: list[tuple[int, str]] = []
    failures: list[str] = []
    slack = 0
    while slack < DISK_SIZE:
        case = small_disk / f"slack-{slack}"
        shutil.copytree(folder, case)
        db = case / "chunks.db"
        filler = fill(small_disk, slack)
        if mode == "recovery":
            # The open fails once first, so the recovery meets the full disk.
            testing.inject_fault(db, "xOpen", 1, ResultCode.CANTOPEN, file_role="main_db")
        try:
            outcome, problems = open_outcome(db)
        finally:
            fired = testing.clear_fault(db)
        if mode == "recovery":
            assert fired == 1, "the first open failed as arranged"
        stages.append((slack, outcome))
        scratch = tmp_path / f"check-{slack}"  # off the full disk
        problems += check_after_fault(db, committed, scratch, persistent=True)
        filler.unlink()  # space is back
        reopened, reopen_problems = open_outcome(db)
        if reopened != "opened":
            problems.append(f"the reopen after freeing space raised {reopened}")
        problems += reopen_problems + check_after_clean_reopen(db, committed, scratch)
        failures += [f"slack {slack} [{outcome}]: {p}" for p in problems]
        shutil.rmtree(case)
        if outcome == "opened":
            break
        slack += BLOCK
    print(f"{mode}: full-disk stages {stages}, {len(failures)} violations")
    assert not failures, f"{len(failures)} contract violations:\n" + "\n".join(failures[:25])
    assert stages[-1][1] == "opened", f"never opened, even with the disk nearly empty: {stages}"
    full = [
        s for s, outcome in stages if outcome == f"{memtree.DiskFullError.__name__}(SQLITE_FULL)"
    ]
    assert full, f"ENOSPC never reached memtree as SQLITE_FULL: {stages}"
