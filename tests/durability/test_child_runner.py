"""The fork server of ``support.child_runner`` fails a test whose child hangs
instead of hanging the suite: the child past its timeout is killed (or, if the
server does not answer, the server and its children are), ``run`` raises
``ChildTimeout`` naming the child, and no process is left behind."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from support import ChildTimeout, child_runner

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the fork server needs fork")

# Says who it is and who forked it, then sleeps far past any timeout here: a
# runner that waited for it would hang the test a minute, then fail below.
SLEEPER = """
import os, time
print(os.getpid(), os.getppid(), flush=True)
time.sleep(60)
"""


def running(pid: int) -> bool:
    """Whether ``pid`` names a live process (a zombie, dead and waiting for
    its reaper, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    if sys.platform.startswith("linux") and stat.exists():
        with_state = stat.read_text().rsplit(")", 1)[-1].split()
        return bool(with_state) and with_state[0] != "Z"
    return True


def gone(pid: int, within: float = 10.0) -> bool:
    """Whether ``pid`` ends within ``within`` seconds (an orphan's reaper
    may take a moment)."""
    deadline = time.monotonic() + within
    while running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# The timeouts SLEEPER gets, each twice the last: the checks need what it
# printed before it was killed, and a loaded machine may not run a freshly
# forked child within 0.5 s (a 0.6 s pause there failed the first test). A
# run that ends with nothing printed is made again with the next timeout.
TIMEOUTS = (0.5, 1.0, 2.0)


def first_timeout_that_printed(
    run_past: Callable[[float], ChildTimeout],
) -> tuple[float, ChildTimeout, float]:
    """Calls ``run_past(timeout)`` (SLEEPER run past ``timeout``, its
    ``ChildTimeout``) with each of ``TIMEOUTS`` until the killed child had
    printed; returns that timeout, the failure and how long the call took."""
    for timeout in TIMEOUTS:
        start = time.monotonic()
        failure = run_past(timeout)
        failed_after = time.monotonic() - start
        if failure.stdout:
            break
    assert failure.stdout, f"the child printed nothing in {timeout} s"
    return timeout, failure, failed_after


def test_a_child_past_its_timeout_is_killed_and_fails_the_test(tmp_path: Path) -> None:
    with child_runner(tmp_path, prelude="") as run:
        assert run("print('before')").stdout == "before\n"

        def run_past(timeout: float) -> ChildTimeout:
            with pytest.raises(ChildTimeout) as info:
                run(SLEEPER, timeout=timeout)
            return info.value

        timeout, failure, failed_after = first_timeout_that_printed(run_past)
        child, server = map(int, failure.stdout.split())
        assert failure.pid == child
        message = str(failure)
        # Run 1 printed "before"; SLEEPER's runs follow it.
        name = f"child {2 + TIMEOUTS.index(timeout)} ('import os, time'...)"
        assert f"{name}, pid {child}, still ran after {timeout} s" in message
        assert failed_after < 30, f"the failure took {failed_after:.1f} s"
        assert gone(child), f"the child {child} still runs"
        # The server reaped the child and serves the next one.
        assert running(server)
        after = run("print('after')")
        assert (after.returncode, after.stdout) == (0, "after\n")
    assert gone(server), f"the fork server {server} still runs"
    assert not list(tmp_path.iterdir()), "the outputs are removed"


def test_a_fork_server_that_does_not_answer_is_killed_with_its_child(tmp_path: Path) -> None:
    # A prelude that turns the server's kill into a no-op: it then waits for
    # the child for ever, as it would for a child no signal ends.
    def run_past(timeout: float) -> ChildTimeout:
        with child_runner(tmp_path, prelude="KILL_SIGNAL = 0", server_grace=timeout) as run:
            with pytest.raises(ChildTimeout) as info:
                run(SLEEPER, timeout=timeout)
        return info.value

    timeout, failure, failed_after = first_timeout_that_printed(run_past)
    assert failure.pid is None
    child, server = map(int, failure.stdout.split())
    assert f"child 1 ('import os, time'...) still ran after {timeout} s" in str(failure)
    assert f"the fork server did not answer within {timeout} s more" in str(failure)
    assert failed_after < 30, f"the failure took {failed_after:.1f} s"
    assert gone(server), f"the fork server {server} still runs"
    assert gone(child), f"the child {child} still runs"


def test_a_test_failing_while_its_runner_is_open_ends_the_server(tmp_path: Path) -> None:
    with pytest.raises(ZeroDivisionError):
        with child_runner(tmp_path, prelude="") as run:
            server = int(run("import os; print(os.getppid())").stdout)
            1 / 0  # noqa: B018
    assert gone(server), f"the fork server {server} still runs"
