from __future__ import annotations

import json
import logging

import pytest

from memory_proxy.logging_setup import ThrottledFailures, configure_logging, log_request, redact


@pytest.mark.parametrize(
    "line",
    [
        "authorization: Bearer sk-abc123",
        "{'x-api-key': 'sk-abc123'}",
        '"x-supermemory-api-key": "sk-abc123"',
        "Authorization=sk-abc123",
    ],
)
def test_credential_headers_are_redacted(line: str) -> None:
    assert "sk-abc123" not in redact(line, ())


def test_known_secrets_are_redacted_anywhere() -> None:
    assert redact("key is s3cr3t-value here", ("s3cr3t-value",)) == "key is [redacted] here"


def test_json_lines_carry_the_request_fields_and_no_secret(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("json", secrets=("master-key-xyz",))
    try:
        log_request({"request_id": "r1", "user_id": "alice", "note": "master-key-xyz"})
        logging.getLogger("memory_proxy").warning("plain message")
    finally:
        logging.getLogger().handlers[:] = []
    first, second = capsys.readouterr().out.splitlines()
    entry = json.loads(first)
    assert entry["request_id"] == "r1"
    assert entry["user_id"] == "alice"
    assert entry["note"] == "[redacted]"
    assert json.loads(second)["message"] == "plain message"


def test_a_failure_on_every_request_is_one_line_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    failed = ThrottledFailures(logging.getLogger("memory_proxy.test"), 60, lambda: now[0])
    with caplog.at_level(logging.WARNING):
        for second in range(0, 130):
            now[0] = float(second)
            failed("store failed", OSError("connection refused"))
    assert [r.getMessage() for r in caplog.records] == [
        "store failed: connection refused",
        "store failed (59 more failed since the last line): connection refused",
        "store failed (59 more failed since the last line): connection refused",
    ]
