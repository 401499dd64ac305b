"""`memory-proxy` alone says at start when LiteLLM's `demo` would not reach it: the
shipped config's MEMORY_PROXY_DEMO_URL unset, or naming another port (cli/demo_model.py)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from memory_proxy.cli.demo_model import demo_problems, local_url
from memory_proxy.config import load_settings
from tests.support import free_port, wait_until

SHIPPED_CONFIG = Path(__file__).resolve().parent.parent / "config.yaml"
MEMORY_PROXY = Path(sys.executable).with_name("memory-proxy")
DEMO = "model_list[0] (demo)"


def shipped_problems(tmp_path: Path, port: int, environ: dict[str, str]) -> list[str]:
    config = tmp_path / "config.yaml"
    shutil.copyfile(SHIPPED_CONFIG, config)
    settings = load_settings(config, environ=environ, overrides={"proxy.port": port})
    return demo_problems(settings)


def test_the_shipped_demo_pointed_at_this_proxy_is_fine(tmp_path: Path) -> None:
    environ = {"MEMORY_PROXY_DEMO_URL": "http://127.0.0.1:9764/demo/v1"}
    assert shipped_problems(tmp_path, 9764, environ) == []


def test_an_unset_demo_url_names_the_variable_and_the_value_it_needs(tmp_path: Path) -> None:
    assert shipped_problems(tmp_path, 9764, {}) == [
        f"{tmp_path / 'config.yaml'}: {DEMO}: api_base is os.environ/MEMORY_PROXY_DEMO_URL, "
        "which is not set, so LiteLLM cannot reach the demo: set "
        "MEMORY_PROXY_DEMO_URL=http://127.0.0.1:9764/demo/v1 for LiteLLM (start-proxies does)"
    ]


def test_a_demo_url_with_another_port_says_where_litellm_will_go(tmp_path: Path) -> None:
    environ = {"MEMORY_PROXY_DEMO_URL": "http://127.0.0.1:8764/demo/v1"}
    assert shipped_problems(tmp_path, 9764, environ) == [
        f"{tmp_path / 'config.yaml'}: {DEMO}: api_base http://127.0.0.1:8764/demo/v1 is not "
        "this proxy's port (9764): LiteLLM will send `demo` there; set "
        "MEMORY_PROXY_DEMO_URL=http://127.0.0.1:9764/demo/v1 for LiteLLM (start-proxies does)"
    ]


@pytest.mark.parametrize(
    ("api_base", "problems"),
    [
        ("http://127.0.0.1:8764/demo/v1/", 1),  # written into the file, as before
        ("http://localhost/demo/v1", 1),  # port 80
        ("http://127.0.0.1:9764/demo/v1", 0),
        ("http://127.0.0.1:1234/v1", 0),  # not a demo: another provider
        ("os.environ/OTHER_URL", 0),  # unset, but not the demo's variable
    ],
)
def test_only_a_demo_elsewhere_is_a_problem(tmp_path: Path, api_base: str, problems: int) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"model_list:\n  - model_name: m\n    litellm_params: {{api_base: {api_base}}}\n"
    )
    settings = load_settings(config, environ={}, overrides={"proxy.port": 9764})
    assert len(demo_problems(settings)) == problems


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:9764"),
        ("0.0.0.0", "http://127.0.0.1:9764"),
        ("::1", "http://[::1]:9764"),
        ("10.1.2.3", "http://10.1.2.3:9764"),
    ],
)
def test_local_url_is_where_this_machine_reaches_the_proxy(host: str, url: str) -> None:
    assert local_url(host, 9764) == url


def test_memory_proxy_alone_warns_at_start_when_demo_is_another_port(tmp_path: Path) -> None:
    """The Procfile's set-up (honcho, .env) with the proxy moved to another port."""
    config = tmp_path / "config.yaml"
    shutil.copyfile(SHIPPED_CONFIG, config)
    port = free_port()
    environment = {**os.environ, "MEMORY_PROXY_DEMO_URL": "http://127.0.0.1:8764/demo/v1"}
    command = [str(MEMORY_PROXY), "--config", str(config), "--port", str(port)]
    command += ["--litellm-url", "http://127.0.0.1:9"]
    stdout, stderr = tmp_path / "stdout", tmp_path / "stderr"
    with stdout.open("w") as output, stderr.open("w") as errors:
        server = subprocess.Popen(command, env=environment, stdout=output, stderr=errors)
    try:
        wait_until(lambda: server.poll() is not None or "Uvicorn running" in stdout.read_text())
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert stderr.read_text().splitlines() == [
        f"warning: {config}: {DEMO}: api_base http://127.0.0.1:8764/demo/v1 is not this "
        f"proxy's port ({port}): LiteLLM will send `demo` there; set "
        f"MEMORY_PROXY_DEMO_URL=http://127.0.0.1:{port}/demo/v1 for LiteLLM (start-proxies does)"
    ]
