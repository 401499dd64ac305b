"""start-proxies as a real process, with a fake litellm child."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil

from tests.launcher_support import MINIMAL_CONFIG, fake_litellm_bin, running_launcher
from tests.support import free_port, wait_until


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_crashed_child_is_restarted_and_sigterm_leaves_nothing(tmp_path: Path) -> None:
    with running_launcher(tmp_path, fake_litellm_bin(tmp_path)) as launcher:
        launcher.wait_healthy()
        first = launcher.litellm_pid()
        assert first is not None
        psutil.Process(first).kill()
        wait_until(lambda: launcher.litellm_pid() not in (first, None), timeout=30)
        launcher.wait_healthy()
        response = httpx.post(f"{launcher.proxy_url}/v1/chat/completions", json={"model": "demo"})
        assert response.status_code == 200
        family = launcher.family()
        launcher.process.send_signal(signal.SIGTERM)
        assert launcher.process.wait(timeout=20) == 0
        assert not [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert port_is_free(launcher.proxy_port) and port_is_free(launcher.litellm_port)
    output = launcher.output()
    assert "litellm | fake litellm pid=" in output
    assert "exited code=-9" in output
    assert "restarting in" in output
    assert "proxy   | " in output


def test_a_killed_litellm_is_restarted_and_a_request_sent_at_once_is_held(
    tmp_path: Path,
) -> None:
    """Sent within milliseconds of `kill -9`: the proxy's pooled keep-alive connection to
    the dead child fails before any answer byte (or a new one is refused), so the proxy
    holds the request (the supervisor restarts the child after about 1 s) and sends it
    again to the restarted one instead of answering 502. Sent once the child's port is closed, not
    while it dies: a new connection the kernel accepted for a dying child and then reset
    is one that may have been processed, which the proxy rightly does not send again (a
    502 once in a loaded run). A fake child: what is checked is the supervisor's and the
    proxy's logic; test_launcher_litellm.py starts the real LiteLLM, whose start costs
    7-10 s of CPU."""
    with running_launcher(tmp_path, fake_litellm_bin(tmp_path)) as launcher:
        launcher.wait_healthy()
        chat = f"{launcher.proxy_url}/v1/chat/completions"
        body = {"model": "demo", "messages": [{"role": "user", "content": "Still there?"}]}

        def answered() -> str:
            response = httpx.post(chat, json=body, timeout=60)
            assert response.status_code == 200, response.text
            content: str = response.json()["choices"][0]["message"]["content"]
            return content

        first = launcher.litellm_pid()
        assert first is not None
        assert answered() == f"fake pid={first}: Still there?"
        psutil.Process(first).kill()

        def gone() -> bool:
            """Its port refuses connections (or a new child already runs). A zombie is not
            enough: its main thread ends first, and the socket stays open, accepting, until
            its last thread (here, the one serving the kept-alive connection) has ended."""
            if launcher.litellm_pid() not in (first, None):
                return True
            try:
                socket.create_connection(("127.0.0.1", launcher.litellm_port), 1).close()
            except ConnectionRefusedError:
                return True
            return False

        wait_until(gone)
        held = answered()
        restarted = launcher.litellm_pid()
        assert restarted not in (first, None)
        assert held == f"fake pid={restarted}: Still there?"
        launcher.wait_healthy()  # the supervisor saw it ready too
    assert "exited code=-9" in launcher.output()


def test_a_crash_after_only_the_proxy_saw_litellm_ready_is_restarted(tmp_path: Path) -> None:
    """The proxy's /health saw LiteLLM ready and served a request through it before the
    supervisor's own probe did: the crash that follows is a restart, not a failed start."""
    env = {"FAKE_MODE": "proxy-sees-ready"}
    with running_launcher(tmp_path, fake_litellm_bin(tmp_path), env=env) as launcher:
        wait_until(launcher.proxy_healthy, timeout=30)
        chat = f"{launcher.proxy_url}/v1/chat/completions"
        assert httpx.post(chat, json={"model": "demo"}).status_code == 200
        first = launcher.litellm_pid()
        psutil.Process(first or 0).kill()
        launcher.wait_healthy()
        assert launcher.litellm_pid() != first
        assert httpx.post(chat, json={"model": "demo"}).status_code == 200
    assert "exited code=-9" in launcher.output()


def test_child_failing_at_start_up_exits_non_zero_with_its_output(tmp_path: Path) -> None:
    env = {"FAKE_MODE": "crash"}
    with running_launcher(tmp_path, fake_litellm_bin(tmp_path), env=env) as launcher:
        assert launcher.process.wait(timeout=30) == 1
    output = launcher.output()
    assert "exited with code 3 before it was ready" in output
    assert "fatal: crashing on purpose" in output


def test_launcher_killed_with_sigkill_takes_its_child_along(tmp_path: Path) -> None:
    with running_launcher(tmp_path, fake_litellm_bin(tmp_path)) as launcher:
        launcher.wait_healthy()
        child = psutil.Process(launcher.litellm_pid() or 0)
        launcher.process.send_signal(signal.SIGKILL)
        launcher.process.wait(timeout=10)
        # PR_SET_PDEATHSIG: the kernel kills the child when the launcher dies.
        wait_until(lambda: not child.is_running() or child.status() == psutil.STATUS_ZOMBIE)


@contextlib.contextmanager
def busy_port() -> Iterator[int]:
    """A port something of ours listens on."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        yield squatter.getsockname()[1]


def test_port_in_use_is_reported_before_anything_starts(tmp_path: Path) -> None:
    with (
        busy_port() as port,
        running_launcher(
            tmp_path, fake_litellm_bin(tmp_path), extra_args=("--memoryproxy-port", str(port))
        ) as launcher,
    ):
        assert launcher.process.wait(timeout=30) == 1
        assert launcher.family() == []
    output = launcher.output()
    assert f"port {port} (memory proxy) is already in use by pid" in output
    assert "litellm | " not in output


def test_both_busy_ports_are_named_with_the_option_that_changes_each(tmp_path: Path) -> None:
    with busy_port() as litellm_port, busy_port() as proxy_port:
        ports = ("--litellm-port", str(litellm_port), "--memoryproxy-port", str(proxy_port))
        with running_launcher(tmp_path, fake_litellm_bin(tmp_path), extra_args=ports) as launcher:
            assert launcher.process.wait(timeout=30) == 1
    errors = [line for line in launcher.output().splitlines() if "error:" in line]
    holder = f"pid {os.getpid()} ({psutil.Process().name()})"  # "pytest" or "python", as launched
    assert errors == [
        f"start   | error: port {litellm_port} (LiteLLM) is already in use by {holder}: "
        "stop it, or choose another port with --litellm-port",
        f"start   | error: port {proxy_port} (memory proxy) is already in use by {holder}: "
        "stop it, or choose another port with --memoryproxy-port",
    ]


def test_ready_names_the_next_step_and_our_warnings_come_after_it(tmp_path: Path) -> None:
    config = MINIMAL_CONFIG + "memory:\n  ttl_second: 60\n"
    with running_launcher(tmp_path, fake_litellm_bin(tmp_path), config_text=config) as launcher:
        launcher.wait_healthy()
        wait_until(lambda: "ttl_second" in launcher.output())
    lines = launcher.output().splitlines()
    url = launcher.proxy_url
    ready = lines.index(
        f"start   | ready on {url}: try the README's demo walkthrough (curl, model demo) "
        f"or open the dashboard, {url}/ui"
    )
    assert lines[ready + 1 : ready + 3] == [
        "start   | note: LITELLM_MASTER_KEY is not set: generated a random key for this run "
        "(LiteLLM requires one; the memory proxy adds it for local callers, so they need no key)",
        f"start   | warning: {tmp_path / 'config.yaml'}: memory.ttl_second: unknown key, ignored "
        "(did you mean ttl_seconds?)",
    ]
    assert not any("warning" in line or "note" in line for line in lines[:ready])


def test_one_port_for_both_is_refused_before_anything_starts(tmp_path: Path) -> None:
    port = free_port()
    same = ("--litellm-port", str(port), "--memoryproxy-port", str(port))
    with running_launcher(tmp_path, fake_litellm_bin(tmp_path), extra_args=same) as launcher:
        assert launcher.process.wait(timeout=30) == 2
    output = launcher.output()
    assert f"LiteLLM and the memory proxy cannot both listen on port {port}" in output
    assert "litellm | " not in output and "proxy   | " not in output


def test_invalid_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    config = "memory:\n  store: mongodb\n"
    with running_launcher(tmp_path, fake_litellm_bin(tmp_path), config_text=config) as launcher:
        assert launcher.process.wait(timeout=30) == 2
    assert "memory.store: expected one of sqlite, postgres, redis, memory" in launcher.output()
    assert "litellm | " not in launcher.output()


def test_missing_litellm_exits_2_with_the_install_command(tmp_path: Path) -> None:
    with running_launcher(tmp_path, tmp_path / "no-such-litellm") as launcher:
        assert launcher.process.wait(timeout=30) == 2
    assert "not an executable" in launcher.output()


def test_a_second_ctrl_c_forces_the_stop(tmp_path: Path) -> None:
    env = {"FAKE_MODE": "ignore-sigterm"}
    with running_launcher(tmp_path, fake_litellm_bin(tmp_path), env=env) as launcher:
        launcher.wait_healthy()
        child = psutil.Process(launcher.litellm_pid() or 0)
        launcher.process.send_signal(signal.SIGINT)
        # The child ignores SIGTERM: without a second Ctrl-C the launcher waits 10 s to SIGKILL.
        wait_until(lambda: "stopping (Ctrl-C again to force)" in launcher.output())
        launcher.process.send_signal(signal.SIGINT)
        assert launcher.process.wait(timeout=5) == 0
        wait_until(lambda: not child.is_running() or child.status() == psutil.STATUS_ZOMBIE)
    assert "forced stop" in launcher.output()


def test_litellm_is_told_where_this_proxy_s_demo_is(tmp_path: Path) -> None:
    """The shipped config's `demo` reads MEMORY_PROXY_DEMO_URL: the launcher's port wins
    over a value left in the environment, and says so."""
    env = {"MEMORY_PROXY_DEMO_URL": "http://127.0.0.1:8764/demo/v1"}
    with running_launcher(tmp_path, fake_litellm_bin(tmp_path), env=env) as launcher:
        launcher.wait_healthy()
        wait_until(lambda: "note: MEMORY_PROXY_DEMO_URL" in launcher.output())
    demo = f"{launcher.proxy_url}/demo/v1"
    assert f"mode=serve demo_url={demo}\n" in launcher.output()
    assert (
        "start   | note: MEMORY_PROXY_DEMO_URL was http://127.0.0.1:8764/demo/v1; LiteLLM gets "
        f"{demo}, the demo of the proxy started here\n"
    ) in launcher.output()
