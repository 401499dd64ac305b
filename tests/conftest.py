from __future__ import annotations

import dataclasses
import gc
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from memory_proxy.app import MemoryProxy
from memory_proxy.config import Settings
from memory_proxy.forwarding.upstream import client_for
from memory_proxy.memory import index_process
from memory_proxy.stores import batch_writer
from tests.browser_support import chromium, with_litellms_cors
from tests.fake_upstream import IN_PROCESS_URL, FakeUpstream, in_process
from tests.litellm_support import RECALL_BUDGET_MS
from tests.postgres_support import PostgresServer
from tests.shared_litellm import SharedLiteLLM, start_shared_litellm
from tests.support import RedisServer, serve

UPSTREAM_KEY = "sk-upstream-test-key-0123456789"

# Nothing in the tests speaks TLS (everything is on loopback, over http), yet each httpx
# client (each httpx.get, each OpenAI or Anthropic SDK client: thousands a run, in this
# process and those it starts) read the whole CA bundle of SSL_CERT_FILE or certifi: 20-40
# ms of CPU each, a quarter of the in-process tests' time. A CA directory that does not
# exist costs nothing, and a TLS connection, were one made, would fail to verify.
os.environ.pop("SSL_CERT_FILE", None)
os.environ["SSL_CERT_DIR"] = "/dev/null/no-ca-certificates"
# Test modules run on one worker together (pytest_xdist_make_scheduler), so that a session
# fixture they share starts once, not on each worker: the end-to-end modules and
# tests/clients on `shared_litellm` (7-10 s of CPU a start), the browser tests in
# `_chromium` (about 1.7 s a start, with chromedriver).
# The other modules driving the client SDKs (tests/sdks.py: 1.6 s of CPU to import openai
# and anthropic, paid by each worker that runs one) join the end-to-end ones, which drive
# them too (about a twentieth of that group's time); the modules speaking MCP (its SDK,
# client and server side: about 1 s) run together: each SDK imported on one worker.
TOGETHER = {
    "on the shared LiteLLM": (
        "tests/clients/",
        "tests/test_e2e_",
        "tests/api/test_echo_model.py",
        "tests/api/test_memories.py",
        "tests/api/test_usage.py",
        "tests/identity/test_client_detection.py",
    ),
    "in one Chromium": ("tests/api/test_dashboard", "tests/test_browser_guard_in_chromium.py"),
    "over MCP": ("tests/api/mcp_server/",),
}
# The scopes (modules, groups of TOGETHER) that take longest, longest first (the
# per-module sums of `--durations=0`): they start first, and the many short modules fill
# the workers' ends. xdist's own order, by number of tests, started the one 13-15 s test
# of tests/scripts/test_bench_postgres_cost.py last, 8-12 s after the other workers ended.
# After the longest, the long modules of one to three tests, which that order handed out
# among the last (a run ended with test_bench_hop.py's 4.5 s and test_postgres_restart.py's
# 3.5 s on one worker, 6-8 s after the others).
LONGEST_FIRST = (
    "on the shared LiteLLM",
    "tests/supervisor/test_launcher_litellm.py",
    "in one Chromium",
    "tests/scripts/test_bench_postgres.py",
    "tests/supervisor/test_launcher.py",
    "tests/stores/test_sqlite_index.py",
    "tests/scripts/test_bench_postgres_cost.py",
    "tests/memory/test_conversation.py",
    "tests/scripts/test_bench_recall_history.py",
    "tests/scripts/test_litellm_known.py",
    "tests/memory/test_request_memory_private.py",
    "tests/memory/test_redaction_screen.py",
    "tests/stores/test_recall_quality.py",
    "tests/memory/test_injection_shaping.py",
    "tests/api/mcp_server/test_workers.py",
    "tests/stores/test_sqlite_usage.py",
    "tests/scripts/test_bench_hop.py",
    "tests/test_workers_prefix.py",
    "tests/test_postgres_restart.py",
)

# No deadline per hypothesis example (200 ms by default): a timing in a pass/fail test. On
# two cores shared by the suite's workers and the servers they start, an example of
# tests/memory/test_redaction_screen.py took 490 ms once and failed the run as "flaky".
settings.register_profile("suite", deadline=None)
settings.load_profile("suite")


@pytest.fixture
def fake_upstream() -> Iterator[tuple[FakeUpstream, str]]:
    """A fake LiteLLM on a real server: (the fake, its URL)."""
    upstream = FakeUpstream()
    with serve(upstream) as url:
        yield upstream, url
    upstream.release.set()


@pytest.fixture
def in_process_apps() -> dict[str, Any]:
    """The upstreams `run_proxy` reaches in process, by the URL it is given."""
    return {}


@pytest.fixture
def fake_upstream_in_process(in_process_apps: dict[str, Any]) -> tuple[FakeUpstream, str]:
    """A fake LiteLLM that a proxy of `run_proxy` reaches without a socket (fake_upstream.py
    `in_process`): for tests of what the proxy sends and decides. (the fake, its URL)."""
    upstream = FakeUpstream()
    in_process_apps[IN_PROCESS_URL] = upstream
    return upstream, IN_PROCESS_URL


ProxyFactory = Callable[..., AbstractContextManager[str]]


@pytest.fixture
def litellm_like() -> Iterator[tuple[FakeUpstream, str]]:
    """A fake upstream that answers browsers as LiteLLM does (every origin allowed)."""
    upstream = FakeUpstream()
    with serve(with_litellms_cors(upstream)) as url:
        yield upstream, url
    upstream.release.set()


@pytest.fixture
def upstream_kind() -> str | None:
    """The client toward the upstream: None for the default; a module may override
    this fixture with params to run its tests over each kind."""
    return None


@pytest.fixture
def run_proxy(upstream_kind: str | None, in_process_apps: dict[str, Any]) -> ProxyFactory:
    """`with run_proxy(litellm_url, **settings) as url:` a real proxy on a free port."""

    @contextmanager
    def run(litellm_url: str, **overrides: Any) -> Iterator[str]:
        # The end-to-end tests' recall budget unless a test sets its own: they check what
        # is recalled, and under the suite's load the shipped 50 ms is missed at times.
        overrides.setdefault(
            "recall", dataclasses.replace(Settings().recall, timeout_ms=RECALL_BUDGET_MS)
        )
        settings = dataclasses.replace(
            Settings(), litellm_url=litellm_url, upstream_key=UPSTREAM_KEY, **overrides
        )
        upstream = None
        if litellm_url in in_process_apps:
            upstream = in_process(in_process_apps[litellm_url])
        elif upstream_kind:
            upstream = client_for(litellm_url, upstream_kind)
        app = MemoryProxy(settings, upstream=upstream)
        with serve(app, server_header=False, date_header=False) as url:
            yield url

    return run


@pytest.fixture(autouse=True)
def _work_in_a_temporary_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Relative paths (the default SQLite memory file) land in the test's own directory."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _background_writes_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A usage record or a memory is written as soon as its writer is free, not after the
    quarter second a batch lingers to fill under load (stores/batch_writer.py, and
    memory/index_process.py's sending): tests
    wait for each write, some for several. The proxies tests start as processes linger."""
    monkeypatch.setattr(batch_writer, "BATCH_LINGER_SECONDS", 0.0)
    monkeypatch.setattr(index_process, "SEND_EVERY_SECONDS", 0.0)


# How long a thread of a store or index closed at the end of a module may take to end: its
# closing joins it, so this is spent only on a thread left running.
SQLITE_THREAD_END_SECONDS = 1.0


@pytest.fixture(scope="module", autouse=True)
def _sqlite_threads_closed(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each module closes the SQLite stores and indexes it opens: one left open keeps its
    threads ("sqlite", "sqlite-search", "sqlite-vectors") and its file to the end of the
    worker, as three tests of tests/memory/test_conversation_failures.py did. Checked
    once per module (a few microseconds), after the module's own fixtures are torn down:
    autouse, this one is set up before them and torn down after."""
    before = set(threading.enumerate())
    yield
    left = [t for t in threading.enumerate() if t not in before and t.name.startswith("sqlite")]
    deadline = time.monotonic() + SQLITE_THREAD_END_SECONDS
    for thread in left:
        thread.join(max(0.0, deadline - time.monotonic()))
    running = sorted(thread.name for thread in left if thread.is_alive())
    assert not running, f"{request.module.__name__} left SQLite threads running: {running}"


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.kill()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL for the session's tests (tests/postgres_support.py)."""
    server = PostgresServer()
    yield server
    server.close()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """An empty schema of its own for the test."""
    return postgres_server.schema_url()


@pytest.fixture(scope="session")
def shared_litellm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedLiteLLM]:
    """The worker's one real LiteLLM, for tests that mount their fakes behind it
    (tests/shared_litellm.py)."""
    with start_shared_litellm(tmp_path_factory.mktemp("shared-litellm")) as litellm:
        yield litellm


@pytest.fixture(scope="session")
def _chromium() -> Iterator[Any]:
    """One Chromium per worker: each start cost about 1 s of CPU, fifteen a run."""
    with chromium() as driver:
        yield driver


@pytest.fixture
def browser(_chromium: Any) -> Any:
    """Headless Chromium (tests/browser_support.py) in a tab of the test's own, the
    others closed: its history, sessionStorage (where the dashboard keeps a client key)
    and console log start empty; each test's proxy is an origin of its own. Mark the
    test `needs_browser`."""
    earlier = _chromium.window_handles
    _chromium.switch_to.new_window("tab")
    fresh = _chromium.current_window_handle
    for handle in earlier:
        _chromium.switch_to.window(handle)
        _chromium.close()
    _chromium.switch_to.window(fresh)
    _chromium.get_log("browser")  # read, so gone: what the earlier tests' pages said
    return _chromium


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """What is garbage at the end is collected once, here, while pytest still reports the
    exceptions its finalizers raise; what is left is frozen, so that pytest's own passes
    after this one and the interpreter's at exit do not walk it again. Each walked a
    worker's whole heap (0.3-0.8 s a pass) on the way out, after its last test, while the
    run waited for it: the last worker's end to pytest's exit took 1.3-2.0 s on 648 tests
    at `-n 3`, 0.15-0.21 s with this."""
    gc.collect()
    gc.freeze()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under `--dist loadscope` (scripts/test), each group of TOGETHER goes to one worker
    together, as each module does: one LiteLLM starts, and one Chromium, not one on each
    worker; the scopes of LONGEST_FIRST are handed out before the others."""
    if config.getoption("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupsTogether(LoadScopeScheduling):  # type: ignore[misc]  # untyped
        def _split_scope(self, nodeid: str) -> str:
            for group, prefixes in TOGETHER.items():
                if nodeid.startswith(prefixes):
                    return group
            scope: str = super()._split_scope(nodeid)
            return scope

        def _assign_work_unit(self, node: Any) -> None:
            for scope in reversed(LONGEST_FIRST):
                if scope in self.workqueue:
                    self.workqueue.move_to_end(scope, last=False)
            super()._assign_work_unit(node)

    return GroupsTogether(config, log)
