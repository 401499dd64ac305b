"""The supervision loop with injected fake children and probes (the honcho way)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import sys
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import psutil
import pytest

from supervisor.child_process import ChildProcess
from supervisor.output import Printer
from supervisor.restart_policy import RestartPolicy
from supervisor.supervisor import GaveUp, StartupFailed, Supervisor, Timing
from tests.launcher_support import FAKE_LITELLM
from tests.support import eventually, free_port

FAST = Timing(startup_timeout=1, liveness_interval=0.01, liveness_failures=3, stop_timeout=1)
POLICY = RestartPolicy(initial_delay=0.01, max_delay=0.01, stable_after=60, max_fast_failures=2)


class FakeChild:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.recent_output: deque[str] = deque(["booting", "fatal: bad config"])
        self._exited = asyncio.Event()
        self.code: int | None = None
        self.stopped = False
        self.killed = False

    def exit(self, code: int) -> None:
        self.code = code
        self._exited.set()

    async def wait(self) -> int:
        await self._exited.wait()
        assert self.code is not None
        return self.code

    async def stop(self, kill_after: float) -> None:
        self.stopped = True
        self.exit(-15)

    def kill(self) -> None:
        self.killed = True
        self.exit(-9)


class World:
    """Fake children and probe answers, plus everything the supervisor said."""

    def __init__(self) -> None:
        self.children: list[FakeChild] = []
        self.ready = True
        self.alive = True
        self.log: list[str] = []
        self.ready_changes: list[bool] = []
        self.proxy_saw_ready = asyncio.Event()

    async def spawn(self) -> FakeChild:
        child = FakeChild(100 + len(self.children))
        self.children.append(child)
        return child

    async def probe_ready(self) -> bool:
        return self.ready

    async def probe_alive(self) -> bool:
        return self.alive

    async def seen_ready(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.proxy_saw_ready.wait(), seconds)
        return self.proxy_saw_ready.is_set()

    def supervisor(self) -> Supervisor:
        return Supervisor(
            self.spawn,
            self.probe_ready,
            self.probe_alive,
            log=self.log.append,
            on_ready_change=self.ready_changes.append,
            seen_ready=self.seen_ready,
            policy=POLICY,
            timing=FAST,
        )


def run(test: Callable[[World], Coroutine[Any, Any, None]]) -> World:
    world = World()
    asyncio.run(test(world))
    return world


def test_child_exiting_before_ready_fails_start_up_with_its_output() -> None:
    async def scenario(world: World) -> None:
        world.ready = False
        supervisor = world.supervisor()
        task = asyncio.ensure_future(supervisor.run())
        await eventually(lambda: bool(world.children))
        world.children[0].exit(1)
        with pytest.raises(StartupFailed, match="exited with code 1 before it was ready") as info:
            await task
        assert "fatal: bad config" in str(info.value)

    run(scenario)


def test_never_ready_fails_after_the_startup_timeout_and_stops_the_child() -> None:
    async def scenario(world: World) -> None:
        world.ready = False
        with pytest.raises(StartupFailed, match="not ready within 1s"):
            await world.supervisor().run()
        assert world.children[0].stopped

    run(scenario)


def test_crash_after_ready_is_restarted() -> None:
    async def scenario(world: World) -> None:
        supervisor = world.supervisor()
        task = asyncio.ensure_future(supervisor.run())
        await eventually(lambda: world.ready_changes == [True])
        world.children[0].exit(1)
        await eventually(lambda: world.ready_changes == [True, False, True])
        assert len(world.children) == 2
        assert supervisor.restarts == 1
        await supervisor.stop()
        await task
        assert world.children[1].stopped

    world = run(scenario)
    assert "exited code=1" in world.log
    assert any(line.startswith("restarting in") for line in world.log)
    assert world.log[-1] == "stopped"


def test_crash_after_only_the_proxy_saw_it_ready_is_restarted() -> None:
    async def scenario(world: World) -> None:
        world.ready = False  # the supervisor's own probe never sees it ready
        supervisor = world.supervisor()
        task = asyncio.ensure_future(supervisor.run())
        await eventually(lambda: bool(world.children))
        world.proxy_saw_ready.set()
        await eventually(lambda: world.ready_changes == [True])
        world.children[0].exit(-9)
        await eventually(lambda: len(world.children) == 2)
        await supervisor.stop()
        await task  # no StartupFailed

    world = run(scenario)
    assert "exited code=-9" in world.log


def test_crash_loop_gives_up() -> None:
    async def scenario(world: World) -> None:
        task = asyncio.ensure_future(world.supervisor().run())
        for index in range(3):

            def started(child: int = index) -> bool:
                return len(world.children) > child and world.ready_changes[-1:] == [True]

            await eventually(started)
            world.children[index].exit(1)
        with pytest.raises(GaveUp, match="3 times in a row"):
            await task

    world = run(scenario)
    assert world.log[-1].startswith("giving up")


def test_hung_child_is_killed_and_restarted() -> None:
    async def scenario(world: World) -> None:
        supervisor = world.supervisor()
        task = asyncio.ensure_future(supervisor.run())
        await eventually(lambda: world.ready_changes == [True])
        world.alive = False
        await eventually(lambda: world.children[0].killed)
        world.alive = True
        await eventually(lambda: len(world.children) == 2 and world.ready_changes[-1])
        await supervisor.stop()
        await task

    world = run(scenario)
    assert any("liveness" in line for line in world.log)


def test_stop_during_start_up_returns_quietly() -> None:
    async def scenario(world: World) -> None:
        world.ready = False
        supervisor = world.supervisor()
        task = asyncio.ensure_future(supervisor.run())
        await eventually(lambda: bool(world.children))
        await supervisor.stop()
        await task  # no StartupFailed
        assert world.children[0].stopped
        assert world.ready_changes == []

    run(scenario)


def test_a_real_hung_child_is_killed_and_restarted() -> None:
    """fake_litellm in hang mode stops answering liveness probes once probed."""
    port = free_port()
    out = io.StringIO()
    spawned: list[ChildProcess] = []

    async def spawn() -> ChildProcess:
        mode = "hang" if not spawned else "serve"
        env = {**os.environ, "FAKE_MODE": mode, "PYTHONUNBUFFERED": "1"}
        argv = [sys.executable, str(FAKE_LITELLM), "--port", str(port)]
        spawned.append(ChildProcess.spawn(argv, env, "litellm", Printer(out)))
        return spawned[-1]

    async def answers(path: str) -> bool:
        try:
            async with httpx.AsyncClient(timeout=0.3) as client:
                return (await client.get(f"http://127.0.0.1:{port}{path}")).status_code == 200
        except httpx.HTTPError:
            return False

    async def scenario() -> None:
        log: list[str] = []
        supervisor = Supervisor(
            spawn,
            lambda: answers("/health/readiness"),
            lambda: answers("/health/liveliness"),
            log=log.append,
            policy=POLICY,
            timing=Timing(startup_timeout=20, liveness_interval=0.05, liveness_failures=2),
        )
        task = asyncio.ensure_future(supervisor.run())
        await eventually(lambda: len(spawned) == 2 and f"ready (pid {spawned[1].pid})" in log)
        assert any("liveness" in line for line in log)
        await supervisor.stop()
        await task

    asyncio.run(scenario())
    assert (
        not psutil.pid_exists(spawned[0].pid) or psutil.Process(spawned[0].pid).status() == "zombie"
    )
