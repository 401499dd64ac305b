"""The benches' proxies serve the benches' requests (not refused before the upstream)."""

from __future__ import annotations

import json
from pathlib import Path

from memory_proxy.config import load_settings
from memory_proxy.identity.model_check import ModelCheck
from scripts.bench_load import chat_body
from scripts.bench_processes import proxy_config


def test_the_model_the_benches_ask_for_is_not_refused(tmp_path: Path) -> None:
    settings = load_settings(proxy_config(tmp_path, "case", {}))
    ModelCheck(settings.litellm).check(json.loads(chat_body("hi")))  # raises a Refusal
