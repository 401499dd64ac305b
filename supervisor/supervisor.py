"""Keeping LiteLLM running: start, wait for readiness, watch liveness, restart with backoff,
give up on a crash loop, stop on request. Processes and probes are injected, so the loop
is tested with fakes as well as with real children."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tenacity import AsyncRetrying, retry_if_result, wait_exponential

from supervisor.child_process import Child
from supervisor.restart_policy import GiveUp, RestartPolicy, RestartTracker

Probe = Callable[[], Awaitable[bool]]
WaitReady = Callable[[float], Awaitable[bool]]  # up to N seconds; True once ready


class StartupFailed(Exception):
    """LiteLLM exited or stayed unready during start-up."""


class GaveUp(Exception):
    """LiteLLM keeps failing; restarting it again would not help."""


@dataclass(frozen=True)
class Timing:
    startup_timeout: float = 120.0
    liveness_interval: float = 10.0
    liveness_failures: int = 3  # consecutive failed probes that mean "hung"
    stop_timeout: float = 10.0  # SIGTERM -> SIGKILL


class Supervisor:
    """`seen_ready` is another observer of LiteLLM's readiness (the memory proxy's, whose
    /health probes it too). Ready is ready, whoever saw it first: once LiteLLM has been
    ready, an exit is a crash to restart, never a failed start."""

    def __init__(
        self,
        spawn: Callable[[], Awaitable[Child]],
        probe_ready: Probe,
        probe_alive: Probe,
        *,
        log: Callable[[str], None],
        on_ready_change: Callable[[bool], None] = lambda ready: None,
        on_restart: Callable[[], None] = lambda: None,
        seen_ready: WaitReady | None = None,
        policy: RestartPolicy | None = None,
        timing: Timing | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._spawn = spawn
        self._probe_ready = probe_ready
        self._probe_alive = probe_alive
        self._log = log
        self._on_ready_change = on_ready_change
        self._on_restart = on_restart
        self._seen_ready = seen_ready
        self._timing = timing or Timing()
        self._tracker = RestartTracker(policy or RestartPolicy(), clock)
        self.child: Child | None = None
        self._stopping = asyncio.Event()
        self.restarts = 0

    async def run(self) -> None:
        """Until `stop()`; raises StartupFailed (never ready yet) or GaveUp (crash loop)."""
        been_ready = False
        while not self._stopping.is_set():
            child = await self._start()
            try:
                await self._wait_ready(child)
            except StartupFailed as exc:
                if self._stopping.is_set():
                    return
                if not been_ready:
                    raise
                self._log(str(exc))
            else:
                been_ready = True
                self._log(f"ready (pid {child.pid})")
                self._on_ready_change(True)
                await self._watch(child)
            if self._stopping.is_set():
                return
            self._on_ready_change(False)
            decision = self._tracker.exited()
            if isinstance(decision, GiveUp):
                self._log(f"giving up: {decision.reason}")
                raise GaveUp(decision.reason)
            self._log(f"restarting in {decision.delay:g}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), decision.delay)
            self.restarts += 1
            self._on_restart()

    async def stop(self) -> None:
        self._stopping.set()
        if self.child is not None:
            await self.child.stop(self._timing.stop_timeout)
            self._log("stopped")

    async def _start(self) -> Child:
        self._log("starting")
        self.child = await self._spawn()
        self._tracker.started()
        return self.child

    async def _wait_ready(self, child: Child) -> None:
        timeout = self._timing.startup_timeout
        ready = [asyncio.ensure_future(self._poll_until_ready())]
        if self._seen_ready is not None:
            ready.append(asyncio.ensure_future(self._seen_ready(timeout)))
        exited = asyncio.ensure_future(child.wait())
        done, _ = await asyncio.wait(
            (*ready, exited), timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        for task in (*ready, exited):
            task.cancel()
        if any(task in done and task.result() for task in ready):
            return
        if exited in done and not exited.cancelled():
            raise StartupFailed(
                f"LiteLLM exited with code {exited.result()} before it was ready. "
                "Its last output:\n  " + "\n  ".join(child.recent_output)
            )
        await child.stop(self._timing.stop_timeout)
        raise StartupFailed(
            f"LiteLLM was not ready within {self._timing.startup_timeout:g}s "
            "(--startup-timeout). Its last output:\n  " + "\n  ".join(child.recent_output)
        )

    async def _poll_until_ready(self) -> bool:
        retrying = AsyncRetrying(
            wait=wait_exponential(multiplier=0.05, max=1.0),
            retry=retry_if_result(lambda ready: not ready),
        )
        return await retrying(self._probe_ready_once)

    async def _probe_ready_once(self) -> bool:
        # A coroutine function of our own: tenacity would not await a lambda's coroutine.
        return await self._probe_ready()

    async def _watch(self, child: Child) -> None:
        exited = asyncio.ensure_future(child.wait())
        hung = asyncio.ensure_future(self._until_hung())
        done, _ = await asyncio.wait((exited, hung), return_when=asyncio.FIRST_COMPLETED)
        hung.cancel()
        if hung in done and not exited.done():
            self._log(
                f"not answering its liveness probe ({self._timing.liveness_failures} times): "
                "killing it"
            )
            child.kill()
        code = await exited
        if not self._stopping.is_set():
            self._log(f"exited code={code}")

    async def _until_hung(self) -> None:
        failures = 0
        while failures < self._timing.liveness_failures:
            await asyncio.sleep(self._timing.liveness_interval)
            failures = 0 if await self._probe_alive() else failures + 1
