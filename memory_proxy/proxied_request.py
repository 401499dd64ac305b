"""One forwarded request as it arrived, and its body as read: immutable values. What the
pipeline's steps learn about it (who is calling, the rate limit's answer, the body to send)
each step returns, and the next takes (pipeline.py)."""

from __future__ import annotations

from typing import Any, NamedTuple

from starlette.types import Scope

from memory_proxy.identity.identification import REQUEST_ID_HEADER

_REQUEST_ID = REQUEST_ID_HEADER.encode()


class ProxiedRequest(NamedTuple):
    """Immutable; NamedTuples, as they are built per request: with the body, 4.5k
    instructions, where frozen dataclasses took 27k."""

    scope: Scope
    path: str  # the scope's, read once: every step asks
    method: str
    request_id: str
    lookup: dict[str, str]  # header name -> value, as text, for detection
    started: float  # time.perf_counter(), for durations
    arrived: float  # time.time(), for the usage record

    def request_id_header(self) -> tuple[bytes, bytes]:
        """Every answer names its request, so that a client can rate it (POST
        /v1/feedback). The id is ours or passed VALID_ID: no CR, LF or NUL."""
        return (_REQUEST_ID, self.request_id.encode())


class RequestBody(NamedTuple):
    raw: bytes | None  # None: streamed through as the client sends it
    payload: Any = None  # the decoded JSON, when the body is JSON


def header_lookup(scope: Scope) -> dict[str, str]:
    """The request's headers as text, by name (the last of repeated ones)."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
