"""The tests' LiteLLM (tests/litellm_support.py): ready only once it is LiteLLM that
answers on its port."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fake_upstream import FakeUpstream
from tests.litellm_support import litellm_process
from tests.support import serve


def test_a_server_that_took_the_port_meanwhile_is_not_taken_for_litellm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The port is chosen free, and LiteLLM binds it seconds later: another server of
    the run may have taken it in between, and answers readiness probes with 200. Here a
    "LiteLLM" that never binds it, and exits."""
    never_binds = tmp_path / "litellm"
    never_binds.write_text("#!/bin/sh\nsleep 1\nexit 1\n")
    never_binds.chmod(0o755)
    monkeypatch.setenv("LITELLM_BIN", str(never_binds))
    with serve(FakeUpstream()) as squatter:  # answers any path, 200
        port = int(squatter.rsplit(":", 1)[1])
        with (
            pytest.raises(AssertionError),
            litellm_process(tmp_path / "config.yaml", port, "sk-" + "k" * 32),
        ):
            pass
