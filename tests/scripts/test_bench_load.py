"""The bench's wrk scripts send what each case says: its headers, and with several
questions or sessions, one of each picked per request."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from scripts.bench_load import CHAT_PATH, write_wrk_script, wrk_round
from tests.fake_upstream import FakeUpstream

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")


def test_each_request_carries_the_headers_one_question_and_one_session(
    tmp_path: Path, fake_upstream: tuple[FakeUpstream, str]
) -> None:
    upstream, url = fake_upstream
    questions = ["What port does staging use?", 'Who said "hi"?']
    headers = {"x-memory-user-id": "user0", "x-memory-project": "project0"}
    script = write_wrk_script(tmp_path / "case.lua", headers, questions, sessions=3)
    wrk_round(url, 1, 1, script)
    requests = list(upstream.requests)
    assert len(requests) > 10
    for request in requests:
        assert (request.method, request.path) == ("POST", CHAT_PATH)
        assert request.headers["content-type"] == "application/json"
        assert request.headers["x-memory-project"] == "project0"
        assert request.headers["x-session-id"] in {"s0", "s1", "s2"}
        body = json.loads(request.body)
        assert body["messages"][0]["content"] in questions
    assert len({r.headers["x-session-id"] for r in requests}) == 3
    assert len({r.body for r in requests}) == 2


def test_one_fixed_request_without_questions_or_sessions(
    tmp_path: Path, fake_upstream: tuple[FakeUpstream, str]
) -> None:
    upstream, url = fake_upstream
    wrk_round(url, 1, 1, write_wrk_script(tmp_path / "hi.lua"))
    assert {r.body for r in upstream.requests} == {
        b'{"model": "bench", "messages": [{"role": "user", "content": "hi"}]}'
    }
    assert all("x-session-id" not in r.headers for r in upstream.requests)


def test_text_that_would_end_a_lua_string_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Lua"):
        write_wrk_script(tmp_path / "bad.lua", {"x-name": "a]==]b"})
