"""memory_proxy/config/litellm_known.py is what scripts/litellm_known.py writes from the
pinned LiteLLM: a new LiteLLM fails here until the module is written again."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.litellm_support import litellm_binary

pytestmark = pytest.mark.litellm
ROOT = Path(__file__).resolve().parents[2]


def test_the_known_litellm_params_and_provider_keys_are_the_pinned_litellms() -> None:
    python = litellm_binary().parent / "python"
    written = subprocess.run(
        [str(python), str(ROOT / "scripts" / "litellm_known.py")],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=120,
    ).stdout
    assert written == (ROOT / "memory_proxy" / "config" / "litellm_known.py").read_text(), (
        "run: .venv-litellm/bin/python scripts/litellm_known.py > "
        "memory_proxy/config/litellm_known.py"
    )
