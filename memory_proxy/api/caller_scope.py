"""Whose memory a request to the local APIs may see. One rule for sessions and memories:
authenticated callers only; a request sees the user id detected for it unless it names
another with `?user_id=`; a caller whose key is bound to a user id sees that user only."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from memory_proxy.config import Settings
from memory_proxy.errors import error_response
from memory_proxy.identity.auth import identify_request
from memory_proxy.identity.client_detection import VALID_ID, InvalidIdentifier, detect_user


def scoped_user(request: Request, settings: Settings, what: str) -> str | Response:
    """The user id whose `what` ("sessions", "memories") this request may see, or the
    error to answer: 401 unauthenticated, 400 an invalid id, 403 another user's data."""
    path = request.url.path
    caller = identify_request(request, settings)
    if not caller.authenticated:
        return unauthenticated(path, what)
    named = request.query_params.get("user_id")
    if named is None:
        if caller.bound_user_id:
            return caller.bound_user_id
        try:
            return detect_user(request.headers, settings.user_id_mappings).user_id
        except InvalidIdentifier as exc:
            return error_response(path, 400, str(exc))
    if not VALID_ID.match(named):
        return error_response(path, 400, "user_id is not a valid user id")
    if caller.bound_user_id and named != caller.bound_user_id:
        return not_yours(path, what)
    return named


def unauthenticated(path: str, what: str) -> Response:
    return error_response(path, 401, f"{what} need one of the proxy's client keys")


def not_yours(path: str, what: str) -> Response:
    return error_response(path, 403, f"this key may only see its own user's {what}")
