"""Running `start-proxies` as a real process in tests, and making sure nothing survives."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from tests.support import free_port, wait_until

START_PROXIES = Path(sys.executable).with_name("start-proxies")
FAKE_LITELLM = Path(__file__).with_name("fake_litellm.py")
MINIMAL_CONFIG = """\
model_list:
  - model_name: demo
    litellm_params:
      model: openai/demo
      api_key: not-needed
      mock_response: "Hello from the mock model"
"""


@dataclass
class Launcher:
    process: subprocess.Popen[str]
    proxy_url: str
    litellm_port: int
    proxy_port: int
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text()

    def family(self) -> list[psutil.Process]:
        try:
            return [
                psutil.Process(self.process.pid),
                *psutil.Process(self.process.pid).children(recursive=True),
            ]
        except psutil.NoSuchProcess:
            return []

    def litellm_pid(self) -> int | None:
        """The current LiteLLM child, or None between a crash and its restart."""
        children = self._litellm_children()
        return children[0].pid if children else None

    def _litellm_children(self) -> list[psutil.Process]:
        """The launcher's children but the memory index's process (memory/index_process.py)."""
        found = []
        for child in psutil.Process(self.process.pid).children():
            try:
                if "memory_proxy.memory.index_worker" not in " ".join(child.cmdline()):
                    found.append(child)
            except psutil.Error:  # ended meanwhile
                continue
        return found

    def wait_healthy(self, within: float = 60) -> None:
        """Until the supervisor has declared the current child ready and /health agrees."""

        def healthy() -> bool:
            assert self.process.poll() is None, f"launcher exited:\n{self.output()}"
            # The log first: walking the process table for the children reads every
            # process's /proc entry (3-6 ms of CPU on this machine), and the wait for a
            # real LiteLLM probed 200-300 times before the log said anything.
            output = self.output()
            if "litellm ready (pid " not in output:
                return False
            children = self._litellm_children()
            if not children or f"litellm ready (pid {children[0].pid})" not in output:
                return False
            return self.proxy_healthy()

        wait_until(healthy, within)

    def proxy_healthy(self) -> bool:
        """The proxy's /health: LiteLLM answered the proxy's own readiness probe."""
        try:
            return httpx.get(f"{self.proxy_url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


def fake_litellm_bin(tmp_path: Path) -> Path:
    wrapper = tmp_path / "litellm"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_LITELLM}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


@contextlib.contextmanager
def running_launcher(
    tmp_path: Path,
    litellm_bin: Path,
    env: Mapping[str, str] | None = None,
    config_text: str = MINIMAL_CONFIG,
    extra_args: tuple[str, ...] = (),
) -> Iterator[Launcher]:
    config = tmp_path / "config.yaml"
    config.write_text(config_text)
    litellm_port, proxy_port = free_port(), free_port()
    log_path = tmp_path / "launcher.log"
    environment = {**os.environ, **(env or {})}
    environment.pop("LITELLM_MASTER_KEY", None)
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                str(START_PROXIES),
                "--config",
                str(config),
                "--litellm-bin",
                str(litellm_bin),
                "--litellm-port",
                str(litellm_port),
                "--memoryproxy-port",
                str(proxy_port),
                *extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
            text=True,
            start_new_session=True,
        )
    launcher = Launcher(
        process, f"http://127.0.0.1:{proxy_port}", litellm_port, proxy_port, log_path
    )
    family = launcher.family()
    try:
        yield launcher
    finally:
        family += launcher.family()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        for member in family:
            with contextlib.suppress(psutil.Error):
                member.kill()
        process.wait(timeout=10)
