"""An unexpected error in a thread or loop callback ends the whole process, loudly (msgsuite/crash.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from msgsuite import crash

from .conftest import Exits

REPO = Path(__file__).resolve().parents[2]


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    """Runs code in a fresh interpreter that logs like a service; a hang fails after 10 s."""
    prelude = "from msgsuite import logs\nlogs.configure('test-service')\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=10,
    )


def assert_crashed(result: subprocess.CompletedProcess[str], what: str, error: str) -> None:
    assert result.returncode == crash.EXIT_CRASHED == 70, result.stderr
    assert f"{what} failed; exiting so that the service is restarted" in result.stderr
    assert "Traceback (most recent call last)" in result.stderr and error in result.stderr
    assert "still running" not in result.stdout


def test_an_exception_in_any_thread_ends_the_process_with_its_traceback() -> None:
    result = run_python(
        """
        import threading, time
        from msgsuite import crash

        crash.exit_on_thread_errors()

        def work():
            raise RuntimeError("the follower tripped")

        threading.Thread(target=work, name="follower").start()
        time.sleep(5)
        print("still running")
        """
    )
    assert_crashed(result, "thread follower", "RuntimeError: the follower tripped")


def test_an_exception_in_a_guarded_loop_callback_ends_the_process() -> None:
    result = run_python(
        """
        import asyncio
        from msgsuite import crash

        def publish(frames):
            raise ValueError(f"frame {frames[0]} does not follow 0")

        async def main():
            asyncio.get_running_loop().call_soon(crash.or_exit("FrameWindow.publish", publish), [7])
            await asyncio.sleep(5)
            print("still running")

        asyncio.run(main())
        """
    )
    assert_crashed(result, "FrameWindow.publish", "ValueError: frame 7 does not follow 0")


def test_or_exit_passes_arguments_through_and_does_nothing_when_the_function_succeeds(exits: Exits) -> None:
    seen: list[tuple[object, ...]] = []
    crash.or_exit("work", lambda *args, **kwargs: seen.append((*args, kwargs)))(1, 2, three=3)
    assert seen == [(1, 2, {"three": 3})] and exits.codes == []


def test_or_exit_ends_the_process_on_an_exception(exits: Exits, caplog: pytest.LogCaptureFixture) -> None:
    def fail() -> None:
        raise KeyError("missing")

    crash.or_exit("FrameWindow.set_epoch", fail)()
    assert exits.codes == [70]
    [entry] = [r for r in caplog.records if r.name == "msgsuite.crash"]
    assert entry.levelname == "CRITICAL" and "FrameWindow.set_epoch failed" in entry.getMessage()
    assert entry.exc_info is not None and entry.exc_info[0] is KeyError


def test_a_thread_that_exits_on_purpose_does_not_end_the_process(exits: Exits) -> None:
    crash.exit_on_thread_errors()

    def leave() -> None:
        raise SystemExit(0)

    thread = threading.Thread(target=leave)
    thread.start()
    thread.join()
    assert exits.codes == []

    def fail() -> None:
        raise OSError("disk on fire")

    thread = threading.Thread(target=fail, name="watcher")
    thread.start()
    thread.join()
    assert exits.codes == [70]
