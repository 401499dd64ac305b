from __future__ import annotations

import io
import json
import logging
import sys
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory_proxy.logging_setup import (
    ACCESS_LOGGER,
    ThrottledFailures,
    configure_logging,
    log_request,
    redact,
)


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


# --- a request line written straight to the stream (no LogRecord) -------------------------

FIELD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),  # orjson's range: the fields are counts
    st.floats(allow_nan=False),
    st.text(max_size=30),
)
FIELDS = st.dictionaries(st.text(min_size=1, max_size=12), FIELD_VALUES, max_size=8)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _through_logging(fields: dict[str, Any], out: io.StringIO) -> str:
    """The line the logging machinery makes of a request line (a capture beside ours
    takes the machinery's path): ours, as it writes it."""
    capture = _Records()
    logging.getLogger(ACCESS_LOGGER).addHandler(capture)
    try:
        log_request(fields)
    finally:
        logging.getLogger(ACCESS_LOGGER).removeHandler(capture)
    assert len(capture.records) == 1
    return out.getvalue().splitlines()[-1]


def _straight(fields: dict[str, Any], out: io.StringIO) -> str:
    log_request(fields)
    return out.getvalue().splitlines()[-1]


@pytest.mark.parametrize("log_format", ["text", "json"])
@given(fields=FIELDS)
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_request_line_is_the_same_with_or_without_the_logging_machinery(
    log_format: str, fields: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(time, "time", lambda: 1_700_000_000.25)  # both stamp one time
    configure_logging(log_format, secrets=("s3cr3t",), prefix="[7] ")
    try:
        fields |= {"note": "s3cr3t authorization: Bearer sk-abc123"}
        straight, machinery = _straight(dict(fields), out), _through_logging(dict(fields), out)
    finally:
        logging.getLogger().handlers[:] = []
    assert straight == machinery
    assert "s3cr3t" not in straight and "sk-abc123" not in straight


def test_a_request_line_reaches_every_handler_and_filter_as_a_record(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("text")
    capture = _Records()
    access = logging.getLogger(ACCESS_LOGGER)
    try:
        access.addHandler(capture)
        log_request({"request_id": "r1", "status": 200, "cost": None})
        access.removeHandler(capture)
        access.addFilter(lambda record: False)  # a filter that drops every line
        log_request({"request_id": "r2"})
    finally:
        access.removeHandler(capture)
        access.filters.clear()
        logging.getLogger().handlers[:] = []
    (record,) = capture.records
    assert record.getMessage() == "request_id=r1 status=200"
    assert record.__dict__["fields"]["request_id"] == "r1"
    assert capsys.readouterr().out.splitlines() == ["INFO    request_id=r1 status=200"]


def test_no_request_line_once_our_handler_is_gone(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("text")
    logging.getLogger().handlers[:] = []
    log_request({"request_id": "r1"})
    assert capsys.readouterr().out == ""
