"""ChildProcess against a real (fake) child: output relay, SIGKILL fallback, sweeping."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from pathlib import Path

import psutil

from supervisor.child_process import ChildProcess
from supervisor.output import Printer
from tests.support import eventually, free_port

FAKE = Path(__file__).parent.parent / "fake_litellm.py"


def spawn(mode: str, printer: Printer) -> ChildProcess:
    env = {**os.environ, "FAKE_MODE": mode, "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, str(FAKE), "--port", str(free_port())]
    return ChildProcess.spawn(argv, env, "litellm", printer)


def test_output_is_relayed_line_by_line_with_a_prefix() -> None:
    out = io.StringIO()

    async def scenario() -> int:
        child = spawn("crash", Printer(out))
        return await child.wait()

    assert asyncio.run(scenario()) == 3
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("litellm | fake litellm pid=")
    assert lines[1] == "litellm | fatal: crashing on purpose"


def test_a_child_ignoring_sigterm_is_killed() -> None:
    out = io.StringIO()

    async def scenario() -> tuple[int, bool]:
        child = spawn("ignore-sigterm", Printer(out))
        await eventually(lambda: bool(child.recent_output))  # its handler is installed
        await child.stop(kill_after=0.5)
        return child.pid, psutil.pid_exists(child.pid)

    _, exists = asyncio.run(scenario())
    assert not exists
    assert "ignored SIGTERM for 0.5s: sending SIGKILL" in out.getvalue()


def test_descendants_that_left_the_group_are_swept() -> None:
    out = io.StringIO()

    async def scenario() -> int:
        child = spawn("grandchild", Printer(out))
        await eventually(lambda: any(x.startswith("grandchild") for x in child.recent_output))
        (announced,) = [line for line in child.recent_output if line.startswith("grandchild")]
        grandchild = int(announced.split("=")[1])
        assert psutil.pid_exists(grandchild)
        await child.stop(kill_after=5)
        return grandchild

    grandchild = asyncio.run(scenario())
    assert not psutil.pid_exists(grandchild) or psutil.Process(grandchild).status() == "zombie"
