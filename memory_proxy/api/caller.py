"""Who calls a local endpoint, identified once, in front of all of them: a pure-ASGI
middleware puts the `Caller` (identity/auth.py) in the request's scope, and each endpoint
reads it with `caller_of`. The pattern of Starlette's AuthenticationMiddleware and
`request.user`, without its per-request `HTTPConnection` and backend coroutine, and typed.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from memory_proxy.identity.auth import Caller, RawHeaders

_CALLER = "memory_proxy.caller"  # the scope's key

IdentifyCaller = Callable[[RawHeaders, str | None], Caller]


class IdentifiedCaller:
    """`app` with every request's caller in its scope."""

    def __init__(self, app: ASGIApp, identify: IdentifyCaller) -> None:
        self._app = app
        self._identify = identify

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        scope[_CALLER] = self._identify(scope["headers"], client[0] if client else None)
        await self._app(scope, receive, send)


def caller_of(connection: HTTPConnection) -> Caller:
    """The caller `IdentifiedCaller` found for this request."""
    return caller_in(connection.scope)


def caller_in(scope: Scope) -> Caller:
    """The same, from a pure-ASGI app's scope."""
    caller: Caller = scope[_CALLER]
    return caller
