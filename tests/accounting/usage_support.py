"""A usage record for the tests, changed where a test says."""

from __future__ import annotations

import dataclasses
from typing import Any

from memory_proxy.records.usage import UsageRecord

NOW = 1_700_000_000.0


def usage_record(**changes: Any) -> UsageRecord:
    record = UsageRecord(
        time=NOW,
        request_id="r1",
        user_id="alice",
        session_id=None,
        client="default",
        model="demo",
        endpoint="/v1/chat/completions",
        status=200,
        stream=False,
        upstream_ms=10.0,
        first_byte_ms=12.0,
        total_ms=13.0,
        prompt_tokens=5,
        completion_tokens=7,
        cost=0.25,
    )
    return dataclasses.replace(record, **changes)
