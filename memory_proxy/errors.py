"""Errors in the calling client's own format: Anthropic-style on Anthropic paths,
OpenAI-style everywhere else. Never a traceback, never HTML."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable

from starlette.responses import Response

from memory_proxy.logging_setup import log_failure

logger = logging.getLogger("memory_proxy")

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


def is_anthropic_path(path: str) -> bool:
    return path.startswith(("/v1/messages", "/anthropic/"))


def error_body(path: str, status: int, message: str) -> bytes:
    openai_type, anthropic_type = _ERROR_TYPES.get(status, ("api_error", "api_error"))
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
    headers = {"retry-after": str(retry_after)} if retry_after is not None else None
    return Response(
        error_body(path, status, message),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


async def unless_store_fails(path: str, store: str, answer: Awaitable[Response]) -> Response:
    """The answer, or a logged 503 in the client's format when the `store` behind it
    fails: a local API over a broken store says so, it does not crash."""
    try:
        return await answer
    except Exception as exc:
        log_failure(logger, f"{store} failed", exc)
        return error_response(path, 503, f"the {store} is unavailable")
