"""start-proxies with the real LiteLLM, killed with SIGKILL: restarted, a request sent at once
held until it is back, and everything stopped by SIGTERM. A module of its own, so that
pytest-xdist runs its two LiteLLM starts beside the other end-to-end modules."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import openai
import psutil
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.launcher_support import MINIMAL_CONFIG, running_launcher
from tests.litellm_support import litellm_binary

pytestmark = pytest.mark.litellm
MOCK_TEXT = "Hello from the mock model"  # MINIMAL_CONFIG's demo
HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


def test_start_proxies_survives_a_killed_litellm_holds_a_request_sent_at_once_and_stops_cleanly(
    tmp_path: Path,
) -> None:
    """Sent within milliseconds of `kill -9`: the pooled connection to the dead LiteLLM
    fails before any answer byte, so the proxy holds the request and sends it again to
    the restarted one instead of answering 502. Then SIGTERM stops everything. (One
    launcher for both: each LiteLLM start costs about 10 s.)"""
    config = MINIMAL_CONFIG + "proxy:\n  upstream_wait_seconds: 90\n"
    with running_launcher(tmp_path, litellm_binary(), config_text=config) as launcher:
        launcher.wait_healthy(within=120)
        # No retries of the SDK's own: a 502 must reach the test, not be papered over.
        client = openai.OpenAI(
            base_url=f"{launcher.proxy_url}/v1", api_key="anything", max_retries=0, timeout=120
        )
        assert (
            client.chat.completions.create(model="demo", messages=HI).choices[0].message.content
            == MOCK_TEXT
        )
        first = launcher.litellm_pid()
        assert first is not None
        os.kill(first, signal.SIGKILL)
        assert (
            client.chat.completions.create(model="demo", messages=HI).choices[0].message.content
            == MOCK_TEXT
        )
        assert launcher.litellm_pid() not in (first, None)
        family = launcher.family()
        launcher.process.send_signal(signal.SIGTERM)
        assert launcher.process.wait(timeout=60) == 0
        assert not [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert "litellm ready" in launcher.output()
