"""The bench's nginx upstream: a fixed OpenAI chat completion on both chat paths, measured
by wrk through the bench's own scripts, and no nginx left behind however the bench ends."""

from __future__ import annotations

import json
import shutil
import socket
import urllib.request
from pathlib import Path

import pytest

from scripts.bench_load import CHAT_PATH, write_wrk_script, wrk_round
from scripts.bench_nginx import CHAT_PATHS, nginx_binary, nginx_upstream

pytestmark = pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed")


def post(url: str) -> tuple[str, dict[str, object]]:
    request = urllib.request.Request(url, data=b'{"model": "bench"}', method="POST")
    with urllib.request.urlopen(request, timeout=5) as answer:
        return answer.headers["content-type"], json.loads(answer.read())


def refuses(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    try:
        socket.create_connection((host, int(port)), 1).close()
    except OSError:
        return True
    return False


def test_both_chat_paths_answer_a_completion_with_usage_and_nginx_stops(tmp_path: Path) -> None:
    with nginx_upstream(tmp_path / "nginx") as (url, server):
        answers = [post(url + path) for path in (*CHAT_PATHS, CHAT_PATH)]
    assert server.poll() is not None
    assert refuses(url)
    for content_type, answer in answers:
        assert content_type == "application/json"
        assert answer["object"] == "chat.completion"
        assert answer["usage"] == {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18}
    assert len({answer["id"] for _, answer in answers}) == len(answers)  # as real answers
    assert (tmp_path / "nginx" / "error.log").exists()


def test_nginx_is_stopped_when_the_bench_fails_inside(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), nginx_upstream(tmp_path / "nginx") as (url, server):
        raise KeyboardInterrupt
    assert server.poll() is not None
    assert refuses(url)


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_wrk_measures_nginx_with_random_sessions_and_questions(tmp_path: Path) -> None:
    script = write_wrk_script(
        tmp_path / "memory.lua", {"x-memory-user-id": "bench"}, ["first?", "second?"], 100
    )
    with nginx_upstream(tmp_path / "nginx") as (url, _):
        figures = wrk_round(url, 2, 1, script)
    assert figures["requests"] > 0
    assert 0 < figures["p50_ms"] <= figures["p99_ms"]
