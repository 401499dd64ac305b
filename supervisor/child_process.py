"""One child process: spawned in its own process group, its output relayed line by line,
stopped with SIGTERM to the whole group, SIGKILL after a timeout, and any descendant
left over swept.

On Linux the child also gets PR_SET_PDEATHSIG, so the kernel kills it if the launcher
dies without a chance to clean up (kill -9); the pidfile covers the rest at next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import psutil

from supervisor.output import Printer

RECENT_LINES = 40
_PR_SET_PDEATHSIG = 1
_READ_LIMIT = 1024 * 1024


class Child(Protocol):
    """What the supervisor needs of a child; tests inject fakes."""

    pid: int
    recent_output: deque[str]

    async def wait(self) -> int: ...
    async def stop(self, kill_after: float) -> None: ...
    def kill(self) -> None: ...


def _die_with_parent() -> None:  # runs in the forked child, before exec
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class ChildProcess:
    """A spawned child. Exit is detected by waitpid in a thread, not by the output pipe
    closing: a descendant that inherited the pipe must not hide the child's death."""

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        name: str,
        printer: Printer,
        keep: Callable[[str], bool] = lambda line: True,
    ) -> None:
        self._popen = popen
        self.pid = popen.pid
        self.name = name
        self.recent_output: deque[str] = deque(maxlen=RECENT_LINES)  # of the lines kept
        self._printer = printer
        self._keep = keep
        self._exit = asyncio.ensure_future(asyncio.to_thread(popen.wait))
        self._pump = asyncio.ensure_future(self._relay_output())

    @classmethod
    def spawn(
        cls,
        argv: Sequence[str],
        env: Mapping[str, str],
        name: str,
        printer: Printer,
        keep: Callable[[str], bool] = lambda line: True,
    ) -> ChildProcess:
        """Start the child; call from within the running event loop. Only the output lines
        `keep` accepts are relayed."""
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,  # its own process group: signals reach all of it
            preexec_fn=_die_with_parent,
        )
        return cls(popen, name, printer, keep)

    async def _relay_output(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=_READ_LIMIT)
        assert self._popen.stdout is not None
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), self._popen.stdout
        )
        try:
            while True:
                try:
                    raw = await reader.readline()
                except ValueError:  # a line longer than the limit: relay what there is
                    raw = await reader.read(_READ_LIMIT)
                if not raw:
                    return
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if self._keep(line):
                    self.recent_output.append(line)
                    self._printer.line(self.name, line)
        finally:
            transport.close()

    async def wait(self) -> int:
        """Exit code once the process has exited and its output was relayed."""
        code = await asyncio.shield(self._exit)
        try:
            await asyncio.wait_for(asyncio.shield(self._pump), 2)
        except TimeoutError:  # a descendant still holds the pipe open
            self._pump.cancel()
        return code

    async def stop(self, kill_after: float) -> None:
        """SIGTERM the group, SIGKILL after `kill_after` s, then sweep leftover descendants."""
        descendants = _descendants(self.pid)
        _signal_group(self.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(self._exit), kill_after)
        except TimeoutError:
            self._printer.line(
                "start", f"{self.name} ignored SIGTERM for {kill_after:g}s: sending SIGKILL"
            )
            _signal_group(self.pid, signal.SIGKILL)
        await asyncio.to_thread(sweep, descendants)
        await self.wait()

    def kill(self) -> None:
        _signal_group(self.pid, signal.SIGKILL)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def sweep(processes: list[psutil.Process], timeout: float = 3.0) -> None:
    """Kill whatever of `processes` is still alive (it left the process group, say)."""
    alive = [p for p in processes if not _gone(p)]
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    deadline = time.monotonic() + timeout
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if not _gone(p)]
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()


def _gone(process: psutil.Process) -> bool:
    """Exited, or a zombie waiting for a parent that is not us to reap it."""
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
