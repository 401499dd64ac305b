"""start-proxies, end to end: checks before anything starts, the memory proxy served by
uvicorn in this process, LiteLLM supervised as a child, and an orderly stop on a signal.

What it prints is meant to be read: LiteLLM's output filtered to what matters
(litellm_output.py), one "ready" line naming the next step, and our own warnings after it,
last, where they are seen.

Stop order: stop accepting and drain in-flight requests (they still need LiteLLM), then
stop LiteLLM's process group. A second Ctrl-C skips the drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Generator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import uvicorn

from memory_proxy.app import MemoryProxy
from memory_proxy.cli.demo_model import DEMO_URL_VARIABLE, demo_url, local_url
from memory_proxy.cli.main import create_app_or_exit, uvicorn_config
from memory_proxy.cli.settings import load_or_exit, startup_warnings
from memory_proxy.config import Settings
from memory_proxy.logging_setup import configure_logging
from supervisor.child_process import Child, ChildProcess
from supervisor.litellm_binary import LiteLLMNotFound, find_litellm, litellm_environment
from supervisor.litellm_output import LiteLLMOutputFilter
from supervisor.master_key import ensure_master_key
from supervisor.output import Printer, prefix
from supervisor.pidfile import PidFile, default_run_dir
from supervisor.ports import PortInUse, ensure_port_free
from supervisor.supervisor import GaveUp, StartupFailed, Supervisor, Timing

LITELLM_HOST = "127.0.0.1"  # LiteLLM is only ever reached through the proxy
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


@dataclass(frozen=True)
class LaunchOptions:
    config: Path | None
    host: str | None
    litellm_port: int
    proxy_port: int | None
    litellm_bin: str | None
    litellm_url: str | None
    startup_timeout: float
    log_format: str | None
    run_dir: Path | None = None
    verbose: bool = False  # LiteLLM's whole output, uvicorn's start-up lines


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the launcher decides when to stop. Says
    when it listens, so that "ready" is printed only once clients can connect."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.listening.set()


def launch(options: LaunchOptions) -> int:
    return asyncio.run(_Launcher(options, Printer()).run())


class _Launcher:
    def __init__(self, options: LaunchOptions, printer: Printer) -> None:
        self.options = options
        self.printer = printer
        self.supervisor: Supervisor | None = None
        self.stop_requested = asyncio.Event()
        self.signals = 0
        self.litellm_ready = asyncio.Event()
        self.notes: list[str] = []  # printed after "ready", or before a failure's error

    def say(self, text: str) -> None:
        self.printer.line("start", text)

    async def run(self) -> int:
        options = self.options
        spawning = options.litellm_url is None
        binary = None
        if spawning:
            try:
                binary = find_litellm(options.litellm_bin)
            except LiteLLMNotFound as exc:
                self.say(f"error: {exc}")
                return EXIT_USAGE
            if ensure_master_key(os.environ):
                self.notes.append(
                    "note: LITELLM_MASTER_KEY is not set: generated a random key for this run "
                    "(LiteLLM requires one; the memory proxy adds it for local callers, so "
                    "they need no key)"
                )
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        litellm_url = options.litellm_url or f"http://{LITELLM_HOST}:{options.litellm_port}"
        settings = self._settings(litellm_url)
        if spawning:
            if settings.port == options.litellm_port:
                self.say(
                    f"error: LiteLLM and the memory proxy cannot both listen on port "
                    f"{settings.port}: give --litellm-port and --memoryproxy-port (or "
                    "proxy.port) different values"
                )
                return EXIT_USAGE
            self._point_demo_at(settings)
            settings = self._settings(litellm_url)  # LiteLLM's `demo` resolved as LiteLLM will
            assert binary is not None
            litellm = replace(settings.litellm, environment=litellm_environment(binary, os.environ))
            settings = replace(settings, litellm=litellm)  # its models' keys checked (model_check)
        self.notes += [f"warning: {warning}" for warning in startup_warnings(settings)]
        pidfile = PidFile(options.run_dir or default_run_dir(), options.litellm_port)
        if not await self._ports_free(settings, pidfile, spawning):
            return EXIT_FAILED

        configure_logging(settings.log_format, settings.secrets(), prefix=prefix("proxy"))
        if not options.verbose:  # "Started server process", "Uvicorn running on": ours say it
            logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
        app = create_app_or_exit(settings, upstream_ready=not spawning)
        server = _Server(uvicorn_config(app, settings))
        self._install_signal_handlers(server)
        serving = asyncio.ensure_future(server.serve())
        supervising = None
        if binary is not None:
            assert settings.config_path is not None  # load_or_exit found one
            self.supervisor = self._supervisor(
                binary, settings.config_path, litellm_url, app, pidfile
            )
            supervising = asyncio.ensure_future(self.supervisor.run())
        else:
            self.litellm_ready.set()  # the user's LiteLLM: the proxy's /health follows it
        self.say(
            f"memory proxy on http://{settings.host}:{settings.port} -> LiteLLM at {litellm_url}"
        )
        announcing = asyncio.ensure_future(self._announce_when_ready(server, settings))

        stopping = asyncio.ensure_future(self.stop_requested.wait())
        watched = [t for t in (serving, supervising, stopping) if t is not None]
        done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        announcing.cancel()
        self._print_notes()  # unless "ready" did: a failure's error comes last
        code = EXIT_OK
        if supervising in done:
            code = self._supervision_result(supervising)
        elif serving in done:
            self.say("error: the memory proxy stopped unexpectedly")
            code = EXIT_FAILED

        server.should_exit = True
        with contextlib.suppress(BaseException):
            await serving  # drains in-flight requests for the grace period
        if self.supervisor is not None:
            await self.supervisor.stop()
            if supervising is not None:
                with contextlib.suppress(BaseException):
                    await supervising
        pidfile.remove()
        stopping.cancel()
        return code

    def _settings(self, litellm_url: str) -> Settings:
        """The proxy's settings; our warnings are kept for after "ready"."""
        options = self.options
        overrides = {
            "proxy.host": options.host,
            "proxy.port": options.proxy_port,
            "proxy.litellm_url": litellm_url,
            "proxy.log_format": options.log_format,
        }
        return load_or_exit(options.config, overrides, warn=False)

    def _point_demo_at(self, settings: Settings) -> None:
        """The shipped config's `demo` reads its URL from the environment LiteLLM inherits:
        the demo this proxy serves, on whatever port it was given."""
        url = demo_url(settings)
        previous = os.environ.get(DEMO_URL_VARIABLE)
        if previous and previous != url:
            self.notes.append(
                f"note: {DEMO_URL_VARIABLE} was {previous}; LiteLLM gets {url}, "
                "the demo of the proxy started here"
            )
        os.environ[DEMO_URL_VARIABLE] = url

    async def _ports_free(self, settings: Settings, pidfile: PidFile, spawning: bool) -> bool:
        """Both ports checked, each busy one named with the option that changes it."""
        checks = [(settings.host, settings.port, "memory proxy", "--memoryproxy-port")]
        if spawning:
            stale = await asyncio.to_thread(pidfile.stop_stale_child)
            if stale:
                self.say(stale)
            checks.insert(0, (LITELLM_HOST, self.options.litellm_port, "LiteLLM", "--litellm-port"))
        free = True
        for host, port, purpose, flag in checks:
            try:
                ensure_port_free(host, port, purpose, flag)
            except PortInUse as exc:
                self.say(f"error: {exc}")
                free = False
        return free

    async def _announce_when_ready(self, server: _Server, settings: Settings) -> None:
        """Once clients can connect and LiteLLM answers: where, what next, then our notes."""
        await server.listening.wait()
        await self.litellm_ready.wait()
        url = local_url(settings.host, settings.port)
        self.say(
            f"ready on {url}: try the README's demo walkthrough (curl, model demo) or open "
            f"the dashboard, {url}/ui"
        )
        self._print_notes()

    def _print_notes(self) -> None:
        for note in self.notes:
            self.say(note)
        self.notes.clear()

    def _supervision_result(self, supervising: asyncio.Future[None]) -> int:
        error = supervising.exception()
        if isinstance(error, StartupFailed | GaveUp):
            hint = "" if self.options.verbose else "\n  (--verbose shows all of LiteLLM's output)"
            self.say(f"error: {error}{hint}")
            return EXIT_FAILED
        if error is not None:
            self.say(f"error: supervision failed: {error!r}")
            return EXIT_FAILED
        return EXIT_OK

    def _supervisor(
        self, binary: Path, config: Path, litellm_url: str, app: MemoryProxy, pidfile: PidFile
    ) -> Supervisor:
        argv = [
            str(binary),
            "--config",
            str(config.resolve()),
            "--host",
            LITELLM_HOST,
            "--port",
            str(self.options.litellm_port),
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}

        async def spawn() -> Child:
            keep = (lambda line: True) if self.options.verbose else LiteLLMOutputFilter().keep
            child = ChildProcess.spawn(argv, env, "litellm", self.printer, keep)
            pidfile.write(child.pid)
            return child

        async def answers(path: str) -> bool:
            try:
                async with httpx.AsyncClient(timeout=5.0) as client:
                    return (await client.get(litellm_url + path)).status_code == 200
            except httpx.HTTPError:
                return False

        def on_ready_change(ready: bool) -> None:
            app.metrics.litellm_ready.set(1 if ready else 0)
            if ready:
                self.litellm_ready.set()
                app.monitor.mark_ready()
            else:
                app.monitor.mark_down("LiteLLM is restarting")

        return Supervisor(
            spawn,
            lambda: answers("/health/readiness"),
            lambda: answers("/health/liveliness"),
            log=lambda text: self.printer.line("start", f"litellm {text}"),
            on_ready_change=on_ready_change,
            on_restart=app.metrics.litellm_restarts.inc,
            seen_ready=app.monitor.wait_ready,
            timing=Timing(startup_timeout=self.options.startup_timeout),
        )

    def _install_signal_handlers(self, server: _Server) -> None:
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            self.signals += 1
            if self.signals == 1:
                self.say(f"{signal.Signals(signum).name}: stopping (Ctrl-C again to force)")
                self.stop_requested.set()
                return
            self.say("forced stop")
            server.force_exit = True
            if self.supervisor is not None and self.supervisor.child is not None:
                self.supervisor.child.kill()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal, signum)
