from __future__ import annotations

import concurrent.futures
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from memory_proxy.cli import settings as settings_module
from memory_proxy.cli.main import main
from tests.fake_upstream import FakeUpstream
from tests.support import free_port, wait_until


def test_invalid_config_exits_2_before_serving(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "user_id_mappings:\n  header_patterns:\n    - {header: a, pattern: '[', user_id: x}\n"
    )
    result = CliRunner().invoke(main, ["--config", str(config), "--port", "1"])
    assert result.exit_code == 2
    assert (
        f"{config}: user_id_mappings.header_patterns[0].pattern: invalid regular expression"
        in result.output
    )


def test_environment_value_errors_name_the_variable(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("")
    result = CliRunner().invoke(main, ["--config", str(config)], env={"PROXY_PORT": "http"})
    assert result.exit_code == 2
    assert "environment variable PROXY_PORT: proxy.port" in result.output


@pytest.mark.parametrize(
    ("config_text", "message"),
    [
        ("memory:\n  store: memory\n", "--workers needs a store the workers share"),
        (
            "rate_limit:\n  enabled: true\n",
            "--workers with rate limiting needs memory.store: redis",
        ),
    ],
)
def test_workers_refuse_what_they_cannot_share(
    tmp_path: Path, config_text: str, message: str
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(config_text)
    result = CliRunner().invoke(main, ["--config", str(config), "--workers", "2", "--port", "1"])
    assert result.exit_code == 2
    assert message in result.output


def test_two_workers_share_the_port_and_the_store(
    fake_upstream: tuple[FakeUpstream, str], tmp_path: Path
) -> None:
    _, upstream_url = fake_upstream
    store = tmp_path / "shared.sqlite3"
    config = tmp_path / "config.yaml"
    config.write_text(f"memory:\n  sqlite_path: {store}\n")
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "memory-proxy"),
        *("--config", str(config), "--port", str(port), "--litellm-url", upstream_url),
        *("--workers", "2"),
    ]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, start_new_session=True)
    proxy = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(proxy), timeout=30)
        wait_until(lambda: len(workers(server.pid)) == 2, timeout=30)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda _: chat(proxy), range(40)))
        # Whichever worker answers, it counts the requests of both.
        counted = [requests_counted(proxy) for _ in range(6)]
        in_flight = [gauge(proxy, "memory_proxy_requests_in_flight") for _ in range(6)]
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the parent stops its workers, then itself
        assert server.wait(timeout=30) == 0
    assert statuses == [200] * 40
    assert counted == [40] * 6
    assert in_flight == [0] * 6  # each worker's requests began and ended in the shared files
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT COUNT(*) FROM usage").fetchone() == (40,)


def workers(pid: int) -> list[psutil.Process]:
    """Worker processes (multiprocessing also starts a resource tracker)."""
    children = psutil.Process(pid).children()
    return [child for child in children if "spawn_main" in " ".join(child.cmdline())]


def requests_counted(proxy: str) -> float:
    exposition = httpx.get(f"{proxy}/metrics").text
    families = {family.name: family for family in text_string_to_metric_families(exposition)}
    return sum(
        sample.value
        for sample in families["memory_proxy_requests"].samples
        if sample.name.endswith("_total")
    )


def gauge(proxy: str, name: str) -> float:
    exposition = httpx.get(f"{proxy}/metrics").text
    families = {family.name: family for family in text_string_to_metric_families(exposition)}
    return sum(sample.value for sample in families[name].samples)


def answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/metrics", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def chat(proxy: str) -> int:
    return httpx.post(f"{proxy}/v1/chat/completions", json={"model": "m"}).status_code


def test_an_unusable_store_is_a_clear_error_before_serving(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    config = tmp_path / "config.yaml"
    config.write_text(f"memory:\n  sqlite_path: {blocker}/memory.sqlite3\n")
    result = CliRunner().invoke(main, ["--config", str(config), "--port", "1"])
    assert result.exit_code == 2
    assert f"{config}: memory.sqlite_path: cannot use {blocker}/memory.sqlite3" in result.output
    assert "Traceback" not in result.output


def test_an_unreachable_postgresql_is_named_without_its_password_before_serving(
    tmp_path: Path,
) -> None:
    port = free_port()  # nothing listens there
    config = tmp_path / "config.yaml"
    config.write_text("memory:\n  store: postgres\n  postgres_url: os.environ/TEAM_PG\n")
    url = f"postgresql://team:s3cret-pass@127.0.0.1:{port}/memory"
    result = CliRunner().invoke(main, ["--config", str(config)], env={"TEAM_PG": url})
    assert result.exit_code == 2
    assert result.output.startswith(
        f"error: {config}: memory.postgres_url: cannot use PostgreSQL at 127.0.0.1:{port} "
        f"(postgresql://team:***@127.0.0.1:{port}/memory): "
    )
    assert "s3cret-pass" not in result.output and "Traceback" not in result.output


def test_config_warnings_come_out_before_serving(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("memory:\n  store: memory\n  ttl_second: 60\n")
    result = CliRunner().invoke(main, ["--config", str(config), "--workers", "2", "--port", "1"])
    assert result.exit_code == 2  # refused before serving: the warning was already out
    assert result.output.splitlines()[0] == (
        f"warning: {config}: memory.ttl_second: unknown key, ignored (did you mean ttl_seconds?)"
    )


def test_outside_the_repository_it_uses_the_config_scripts_start_uses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run from another directory (the tests run in tmp_path), `memory-proxy usage` reads
    the repository's config.yaml, which scripts/start gives start-proxies."""
    repository = tmp_path / "repository"
    repository.mkdir()
    (repository / "config.yaml").write_text("usage:\n  enabled: false\n")
    monkeypatch.setattr(
        settings_module, "PROJECT_CONFIG", repository / "config.yaml", raising=False
    )
    result = CliRunner().invoke(main, ["usage"])
    assert result.output == "Error: usage analytics are disabled (usage.enabled: false)\n"


def test_a_config_yaml_here_comes_first_and_none_anywhere_names_the_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings_module, "PROJECT_CONFIG", tmp_path / "absent.yaml", raising=False)
    missing = CliRunner().invoke(main, ["usage"])
    assert missing.exit_code == 2
    assert missing.output == (
        f"error: no config.yaml in {tmp_path}: pass --config PATH (or set LITELLM_CONFIG)\n"
    )
    (tmp_path / "config.yaml").write_text("usage:\n  enabled: false\n")
    assert "usage analytics are disabled" in CliRunner().invoke(main, ["usage"]).output
