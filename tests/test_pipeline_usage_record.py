"""The usage record a forwarded request leaves (pipeline._usage_record, built by position
for speed): every field from where its name says, none from a neighbour's."""

from __future__ import annotations

from memory_proxy.forwarding.forwarder import ForwardResult
from memory_proxy.identity.auth import LOCAL_CALLER
from memory_proxy.identity.client_detection import ClientIdentity
from memory_proxy.identity.identification import Identification
from memory_proxy.pipeline import _usage_record
from memory_proxy.proxied_request import ProxiedRequest
from memory_proxy.wire.answer import Answer, TokenUsage


def test_each_field_of_the_usage_record_comes_from_its_source() -> None:
    request = ProxiedRequest({}, "/v1/chat/completions", "POST", "req-1", {}, 5.0, 1700.0)
    identity = ClientIdentity("alice", None, True)
    who = Identification("req-1", LOCAL_CALLER, identity, "sess-1", "gpt-x", False, True)
    result = ForwardResult(201, "complete", 0.00125, 0.0025)
    answer = Answer(None, True, TokenUsage(11, 7), 0.5, "length")
    record = _usage_record(request, who, {"stream": True}, result, answer, 0.00375)
    assert record.as_dict() == {
        "time": 1700.0,
        "request_id": "req-1",
        "user_id": "alice",
        "session_id": "sess-1",
        "client": "custom-header",
        "model": "gpt-x",
        "endpoint": "/v1/chat/completions",
        "status": 201,
        "stream": True,
        "upstream_ms": 1.25,
        "first_byte_ms": 2.5,
        "total_ms": 3.75,
        "prompt_tokens": 11,
        "completion_tokens": 7,
        "cost": 0.5,
        "finish_reason": "length",
        "tool": None,
        "hits": None,
        "recalled_tokens": None,
    }
