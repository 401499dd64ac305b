"""Real servers on loopback for the tests: uvicorn in a thread that stops at once, a
real redis-server, free ports, and waiting on a condition instead of sleeping (the fake
upstream: tests/fake_upstream.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn


def log_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields of a request's log line: given through `extra`, so unknown to LogRecord."""
    fields: dict[str, Any] = record.__dict__["fields"]
    return fields


class LogRecords(logging.Handler):
    """Every record of the named loggers, at INFO and above, while `of(...)` lasts; from
    any thread (a server's). A list of records."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def __iter__(self) -> Iterator[logging.LogRecord]:
        return iter(list(self.records))

    @contextmanager
    def of(self, *names: str) -> Iterator[LogRecords]:
        """Attach to `names` (after a server configured its logging: uvicorn's dictConfig
        removes the handlers of its loggers)."""
        loggers = [logging.getLogger(name) for name in names]
        levels = [logger.level for logger in loggers]
        for logger in loggers:
            logger.addHandler(self)
            logger.setLevel(logging.INFO)
        try:
            yield self
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.removeHandler(self)
                logger.setLevel(level)


def bound_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening socket: clients may connect before the server runs."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


# How often `wait_until` probes: every 10 ms at first, then every twentieth of the time
# waited so far (a wait is over by at most 5% later than it could be), at most every 0.1
# s. Every 10 ms throughout, the launcher's wait for a real LiteLLM (25-30 s on a loaded
# machine, each probe walking the process table for the launcher's children) took 2,500
# probes and 5 s of the worker's CPU.
FIRST_PROBE_SECONDS = 0.01
LONGEST_PROBE_SECONDS = 0.1


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Probe `predicate` until it holds; fail the test if it does not within `timeout`."""
    started = time.monotonic()
    while not predicate():
        waited = time.monotonic() - started
        if waited > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(min(LONGEST_PROBE_SECONDS, max(FIRST_PROBE_SECONDS, waited / 20)))


async def eventually(predicate: Callable[[], bool], within: float = 10.0) -> None:
    """The async twin of `wait_until`, for tests running inside an event loop."""
    async with asyncio.timeout(within):
        while not predicate():
            await asyncio.sleep(0.005)


# How long a stopping server lets the requests still in flight finish (a stream the test
# left open: a browser's live feed) before it cancels them.
STOP_GRACE_SECONDS = 1.0


class PromptServer(uvicorn.Server):
    """uvicorn's server, stopped as soon as it is told. uvicorn 0.54 checks `should_exit`
    every 0.1 s and sleeps 0.1 s more before waiting for its connections (server.py
    `main_loop`, `shutdown`): about 0.15 s per server, and the suite runs a thousand. Here
    `stop()` wakes it at once and the connections are awaited in 5 ms steps, for at most
    `STOP_GRACE_SECONDS`; the steps are otherwise uvicorn's."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._wake: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None

    def stop(self) -> None:
        """From any thread."""
        self.should_exit = True
        if self._wake is not None:
            loop, event = self._wake
            with contextlib.suppress(RuntimeError):  # its loop has already ended
                loop.call_soon_threadsafe(event.set)

    async def main_loop(self) -> None:
        event = asyncio.Event()
        self._wake = (asyncio.get_running_loop(), event)
        while not await self.on_tick(0):  # tick 0 also refreshes the Date header
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await event.wait()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        try:
            async with asyncio.timeout(STOP_GRACE_SECONDS):
                while self.server_state.connections or self.server_state.tasks:
                    await asyncio.sleep(0.005)
        except TimeoutError:
            for task in self.server_state.tasks:
                task.cancel()
        await self.lifespan.shutdown()


@contextmanager
def serve(app: Any, port: int = 0, **config: Any) -> Iterator[str]:
    """Run `app` under a real uvicorn server in a thread; yields its base URL.

    The socket is bound and listening before the server starts, so clients may connect at
    once; `port` 0 picks a free one. The server has stopped when the block is left.
    """
    sock = bound_socket(port=port)
    port = sock.getsockname()[1]
    server = PromptServer(uvicorn.Config(app, log_level="warning", lifespan="auto", **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        thread.join(timeout=10)
        sock.close()
        assert not thread.is_alive(), f"the server on port {port} did not stop"


@contextlib.asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """Run an ASGI app's start-up and shut-down around a block, as a server would."""
    received: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    sent: asyncio.Queue[dict[str, str]] = asyncio.Queue()

    async def send(message: dict[str, str]) -> None:
        await sent.put(message)

    task = asyncio.ensure_future(app({"type": "lifespan"}, received.get, send))
    await received.put({"type": "lifespan.startup"})
    assert (await sent.get())["type"] == "lifespan.startup.complete"
    try:
        yield
    finally:
        await received.put({"type": "lifespan.shutdown"})
        assert (await sent.get())["type"] == "lifespan.shutdown.complete"
        await task


class RedisServer:
    """A real redis-server on a free loopback port, stopped (or killed) by the test."""

    def __init__(self, port: int = 0) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            message = "redis-server is not installed (scripts/test installs it)"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            [
                executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_until(self._answers)

    def _answers(self) -> bool:
        assert self.process.poll() is None, "redis-server exited"
        try:
            with socket.create_connection(("127.0.0.1", self.port), 0.2) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)
