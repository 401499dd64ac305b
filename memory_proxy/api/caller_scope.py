"""Whose memory a request to the local APIs may see. One rule for sessions and memories:
authenticated callers only; a caller whose key is bound to a user id sees that user only;
any other names a user with `?user_id=` or the custom header (`x-memory-user-id`).

Where a user must be known (one session: its id is unique per user only), a request that
names none gets the user detected for it. Where every user's data can be shown (the lists,
and memories, whose ids are unique), it gets every user's: a user-agent pattern or the
default user id is a guess at who is calling (a browser, a shell), not a choice, and the
clients people use are mapped to users of their own.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from memory_proxy.api.caller import caller_of
from memory_proxy.config import UserIdMappings
from memory_proxy.errors import error_answer, error_response
from memory_proxy.identity.client_detection import (
    VALID_ID,
    ClientIdentity,
    InvalidIdentifier,
    detect_user,
)


class CallerScope:
    """The rule, by the configured user id mappings (what detection needs)."""

    def __init__(self, mappings: UserIdMappings) -> None:
        self._mappings = mappings

    def scoped_user(self, request: Request, what: str) -> str | Response:
        """The user id whose `what` ("sessions", "memories") this request may see, or the
        error to answer: 401 unauthenticated, 400 an invalid id, 403 another user's data."""
        chosen = self._chosen(request, what)
        if chosen is not None:
            return chosen
        detected = self._detected(request)
        return detected if isinstance(detected, Response) else detected.user_id

    def visible_user(self, request: Request, what: str) -> str | Response | None:
        """As `scoped_user`, but None (every user's) when the request names no user and
        its key is bound to none."""
        chosen = self._chosen(request, what)
        if chosen is not None:
            return chosen
        detected = self._detected(request)
        if isinstance(detected, Response):
            return detected
        return detected.user_id if detected.custom_header_present else None

    def _chosen(self, request: Request, what: str) -> str | Response | None:
        """The error to answer, the user named by `?user_id=` or bound to the caller's
        key; None when neither chooses one."""
        path = request.url.path
        caller = caller_of(request)
        if not caller.authenticated:
            return unauthenticated(path, what)
        named = request.query_params.get("user_id")
        if named is None:
            return caller.bound_user_id
        if not VALID_ID.match(named):
            return error_response(path, 400, "user_id is not a valid user id")
        if caller.bound_user_id and named != caller.bound_user_id:
            return not_yours(path, what)
        return named

    def _detected(self, request: Request) -> ClientIdentity | Response:
        try:
            return detect_user(request.headers, self._mappings)
        except InvalidIdentifier as exc:
            return error_answer(request.url.path, exc)


def unauthenticated(path: str, what: str) -> Response:
    return error_response(path, 401, f"{what} need one of the proxy's client keys")


def not_yours(path: str, what: str) -> Response:
    return error_response(path, 403, f"this key may only see its own user's {what}")
