"""A pidfile per LiteLLM port, so a child orphaned by a launcher that was killed (kill -9,
OOM) is found and stopped by the next start instead of holding the port forever."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import psutil

from supervisor.child_process import sweep


def default_run_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"litellm-memory-proxy-{os.getuid()}"


class PidFile:
    def __init__(self, run_dir: Path, port: int) -> None:
        self.path = run_dir / f"litellm-{port}.pid"

    def write(self, child_pid: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "pid": child_pid,
            "create_time": psutil.Process(child_pid).create_time(),
            "launcher_pid": os.getpid(),
        }
        self.path.write_text(json.dumps(record))

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def stop_stale_child(self) -> str | None:
        """Stop a child whose launcher is gone; a message saying so, or None."""
        try:
            record = json.loads(self.path.read_text())
            pid, created, launcher = record["pid"], record["create_time"], record["launcher_pid"]
        except (OSError, ValueError, KeyError, TypeError):
            self.remove()
            return None
        if launcher != os.getpid() and psutil.pid_exists(launcher):
            return None  # its launcher still runs: the port check will report it
        try:
            child = psutil.Process(pid)
            if abs(child.create_time() - created) > 1:
                raise psutil.NoSuchProcess(pid)  # the pid was reused by something else
        except psutil.Error:
            self.remove()
            return None
        family = [child, *child.children(recursive=True)]
        sweep(family, timeout=10)
        self.remove()
        return f"stopped a stale LiteLLM (pid {pid}) left by a launcher that was killed"
