from __future__ import annotations

import json
import logging

import pytest

from memory_proxy.logging_setup import configure_logging, log_request, redact


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
