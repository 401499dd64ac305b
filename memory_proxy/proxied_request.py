"""The state of one forwarded request as the pipeline fills it in."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.types import Scope

from memory_proxy.forwarding.upstream import Headers
from memory_proxy.identity import auth
from memory_proxy.identity.client_detection import VALID_ID
from memory_proxy.identity.routing import RoutingDecision

REQUEST_ID_HEADER = "x-request-id"


@dataclass
class ProxiedRequest:
    """What the pipeline learns about one request, step by step."""

    scope: Scope
    request_id: str
    lookup: dict[str, str]  # header name -> value, as text, for detection
    started: float = field(default_factory=time.perf_counter)
    arrived: float = field(default_factory=time.time)
    body: bytes | None = None  # None: streamed through as the client sends it
    payload: Any = None  # the decoded JSON body, when there is one
    caller: auth.Caller | None = None
    decision: RoutingDecision | None = None
    limit_headers: Headers = field(default_factory=list)

    @property
    def path(self) -> str:
        path: str = self.scope["path"]
        return path

    @property
    def method(self) -> str:
        method: str = self.scope["method"]
        return method


def incoming(scope: Scope) -> ProxiedRequest:
    lookup = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
    request_id = lookup.get(REQUEST_ID_HEADER, "")
    if not VALID_ID.match(request_id):
        request_id = os.urandom(16).hex()  # uuid4().hex's format, at a fifth of its cost
    return ProxiedRequest(scope, request_id, lookup)


def request_id_header(request: ProxiedRequest) -> tuple[bytes, bytes]:
    """Every answer names its request, so that a client can rate it (POST /v1/feedback).
    The id is ours or passed VALID_ID: no CR, LF or NUL."""
    return (REQUEST_ID_HEADER.encode(), request.request_id.encode())
