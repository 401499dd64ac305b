"""start-proxies with the real LiteLLM on the shipped config.yaml, on other ports than the
README's: `demo` follows the proxy's port, and a start says little before "ready"."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.launcher_support import Launcher, running_launcher
from tests.litellm_support import CLIENT_APIS, ask_demo, litellm_binary
from tests.support import wait_until

pytestmark = pytest.mark.litellm
SHIPPED_CONFIG = Path(__file__).resolve().parents[2] / "config.yaml"
READY = "start   | ready on "
# What scripts/start may print on a second start, before "ready" (README, "Set-up").
MOST_LINES_BEFORE_READY = 15


@pytest.fixture(scope="module")
def launcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    """The shipped config, copied (its memory file lands beside the copy), on free ports."""
    directory = tmp_path_factory.mktemp("shipped")
    config = SHIPPED_CONFIG.read_text()
    with running_launcher(directory, litellm_binary(), config_text=config) as launcher:
        assert (launcher.proxy_port, launcher.litellm_port) != (8764, 8765)
        launcher.wait_healthy(within=120)
        yield launcher


@pytest.mark.parametrize("api", CLIENT_APIS)
def test_the_shipped_demo_answers_every_api_on_another_port(launcher: Launcher, api: str) -> None:
    who = {"x-session-id": f"another-port-{api}"}
    answer = "".join(ask_demo(launcher.proxy_url, api, who, "Hello from another port"))
    assert answer.startswith("Echo model: ")
    assert "Hello from another port" in answer


def test_a_start_prints_little_before_ready_and_no_banner(launcher: Launcher) -> None:
    wait_until(lambda: READY in launcher.output())
    lines = launcher.output().splitlines()
    before = next(index for index, line in enumerate(lines) if line.startswith(READY))
    assert before <= MOST_LINES_BEFORE_READY, "\n".join(lines[: before + 1])
    assert not [line for line in lines if "██" in line or "Uvicorn running" in line]
