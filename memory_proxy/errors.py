"""The proxy's own exceptions, one hierarchy, and the one way a client is told of one:
its status and message in the calling client's own format (Anthropic-style on Anthropic
paths, a JSON-RPC error on the MCP endpoint, OpenAI-style everywhere else). Never a
traceback, never HTML.

    ProxyError                    the base: `status`, message, `retry_after`, `headers`
    ├── Refusal                   the proxy answers a request itself (4xx): auth, limits...
    │   ├── InvalidIdentifier     identity/client_detection.py: an unusable user/session id
    │   ├── RequestTooLarge       forwarding/forwarder.py: a JSON body past the limit
    │   ├── UnsafeHeader          forwarding/header_safety.py: CR, LF or NUL toward LiteLLM
    │   └── ToolFailure           api/mcp_server: a memory tool could not do its work
    ├── ClientDisconnected        the client left before its request was read or sent on
    ├── UpstreamError             LiteLLM gave no usable answer (502, "failed to answer")
    │   ├── UpstreamUnavailable   LiteLLM is not there: down, restarting (503)
    │   ├── UpstreamConnectFailed no connection: refused, unreachable, timed out
    │   ├── UpstreamTimeout       no answer in time (504)
    │   ├── UpstreamProtocolError an answer we will not pass on
    │   └── UpstreamClosed        the connection closed before the answer ended
    │       └── StaleConnection   ... a kept-alive one, before any byte: may be sent again
    ├── StoreUnavailable          stores/base.py: the configured store cannot be opened
    │   └── MigrationFailed       stores/schema_versions.py: its schema not brought up to date
    ├── SearchBusy                stores/base.py: too many searches waiting to answer in time
    └── ConfigError               config/parsing.py: a setting missing or malformed
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING

from memory_proxy.logging_setup import log_failure

if TYPE_CHECKING:
    from starlette.responses import Response

logger = logging.getLogger("memory_proxy")

RETRY_AFTER_SECONDS = 5  # what a client is told to wait when LiteLLM failed it
MCP_PATH = "/mcp"  # the memory tools' endpoint (api/mcp_server): its clients read JSON-RPC
# A refusal before the request was read has no JSON-RPC id to answer: the SDK's own
# transport errors say INVALID_REQUEST then, and so do ours.
_JSONRPC_INVALID_REQUEST = -32600


class ProxyError(Exception):
    """The base of the proxy's own exceptions. Its message is what a client is told;
    `status`, `retry_after` and `headers` complete the answer (`error_answer`)."""

    status = 500
    retry_after: int | None = None
    headers: Sequence[tuple[bytes, bytes]] = ()

    @property
    def message(self) -> str:
        return str(self)


class Refusal(ProxyError):
    """The proxy answers the request itself, with an error in the client's format."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        retry_after: int | None = None,
        headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.headers = headers


class ClientDisconnected(ProxyError):
    """The client went away before its request was read or sent on: nobody to answer."""

    status = 499  # nginx's status for the log line


class UpstreamError(ProxyError):
    """LiteLLM gave no usable answer. The upstream clients raise a subclass that says what
    happened; the forwarder answers "LiteLLM failed to answer" (and may send again)."""

    status = 502
    retry_after: int | None = RETRY_AFTER_SECONDS


class UpstreamUnavailable(UpstreamError):
    """LiteLLM is not there (down, restarting): try again shortly."""

    status = 503


class UpstreamConnectFailed(UpstreamError):
    """No connection to LiteLLM: refused (then it certainly never saw the request: the
    cause is a ConnectionRefusedError), unreachable, or not made in time."""


class UpstreamTimeout(UpstreamError):
    """LiteLLM did not start answering in time."""

    status = 504
    retry_after = None


class UpstreamProtocolError(UpstreamError):
    """LiteLLM answered something we will not pass on: an oversized or malformed head,
    bytes after the end of the answer. It is up, so it is not marked down."""


class UpstreamClosed(UpstreamError):
    """The connection closed before the whole answer arrived."""


class StaleConnection(UpstreamClosed):
    """A kept-alive connection closed before any byte of the answer: the upstream went away
    (a restart, an idle close) without answering, so the request may be sent again."""


# HTTP status -> (OpenAI error type, Anthropic error type)
_ERROR_TYPES: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "invalid_request_error"),
    401: ("authentication_error", "authentication_error"),
    403: ("permission_error", "permission_error"),
    404: ("not_found_error", "not_found_error"),
    413: ("invalid_request_error", "request_too_large"),
    415: ("invalid_request_error", "invalid_request_error"),  # the body's content type
    421: ("invalid_request_error", "invalid_request_error"),  # a Host this proxy is not
    429: ("rate_limit_error", "rate_limit_error"),
    500: ("internal_error", "api_error"),
    502: ("upstream_error", "api_error"),
    503: ("service_unavailable", "overloaded_error"),
    504: ("timeout_error", "api_error"),
}


def caused_by(exc: BaseException, *kinds: type[BaseException]) -> bool:
    """Whether one of `kinds` is `exc` or in its cause chain: how a refused connection
    (LiteLLM certainly never saw the request) is told from other connect failures, and a
    client gone mid-upload from the error another library wrapped it in."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, kinds):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def is_anthropic_path(path: str) -> bool:
    return path.startswith(("/v1/messages", "/anthropic/"))


def is_mcp_path(path: str) -> bool:
    return path == MCP_PATH or path.startswith(MCP_PATH + "/")


def error_body(path: str, status: int, message: str) -> bytes:
    openai_type, anthropic_type = _ERROR_TYPES.get(status, ("api_error", "api_error"))
    if is_mcp_path(path):
        error = {"code": _JSONRPC_INVALID_REQUEST, "message": message, "data": {"status": status}}
        return json.dumps({"jsonrpc": "2.0", "id": None, "error": error}).encode()
    if is_anthropic_path(path):
        payload: dict[str, object] = {
            "type": "error",
            "error": {"type": anthropic_type, "message": message},
        }
    else:
        payload = {"error": {"message": message, "type": openai_type, "code": str(status)}}
    return json.dumps(payload).encode()


def error_response(
    path: str,
    status: int,
    message: str,
    *,
    retry_after: int | None = None,
) -> Response:
    # Starlette imported here, not above: the index process (memory/index_worker.py) raises
    # these exceptions and answers no client (starlette.responses: ~25 ms a start).
    from starlette.responses import Response

    headers = {"retry-after": str(retry_after)} if retry_after is not None else None
    return Response(
        error_body(path, status, message),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


def error_answer(path: str, error: ProxyError) -> Response:
    """The one answer to one of our exceptions: its status and message in the client's
    format, Retry-After when it says when to try again, and its own headers."""
    response = error_response(path, error.status, error.message, retry_after=error.retry_after)
    response.raw_headers += error.headers
    return response


async def unless_store_fails(path: str, store: str, answer: Awaitable[Response]) -> Response:
    """The answer, or a logged 503 in the client's format when the `store` behind it
    fails: a local API over a broken store says so, it does not crash."""
    try:
        return await answer
    except Exception as exc:
        log_failure(logger, f"{store} failed", exc)
        return error_response(path, 503, f"the {store} is unavailable")
