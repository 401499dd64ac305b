"""The local conversation memory over HTTP: list, read and delete sessions.

Only authenticated callers (see auth.py) may use it. A request sees its own user's
sessions (the user id detected for it) unless it names another with `?user_id=`; a caller
whose key is bound to a user id sees that user's sessions only.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from memory_proxy.config import Settings
from memory_proxy.errors import error_response, unless_store_fails
from memory_proxy.identity.auth import Caller, identify_request
from memory_proxy.identity.client_detection import VALID_ID, detect_user
from memory_proxy.memory.conversation import ConversationMemory

STORE = "memory store"
DEFAULT_PAGE = 50
MAX_PAGE = 500


class SessionsAPI:
    def __init__(self, memory: ConversationMemory | None, settings: Settings) -> None:
        self._memory = memory
        self._settings = settings

    async def list(self, request: Request) -> Response:
        return await unless_store_fails(request.url.path, STORE, self._list(request))

    async def one(self, request: Request) -> Response:
        return await unless_store_fails(request.url.path, STORE, self._one(request))

    async def _list(self, request: Request) -> Response:
        if self._memory is None:
            return _disabled(request)
        caller = identify_request(request, self._settings)
        if not caller.authenticated:
            return _unauthenticated(request)
        user_id = request.query_params.get("user_id", caller.bound_user_id)
        if user_id is not None and not VALID_ID.match(user_id):
            return error_response(request.url.path, 400, "user_id is not a valid user id")
        if caller.bound_user_id and user_id != caller.bound_user_id:
            return _not_yours(request)
        try:
            limit = min(int(request.query_params.get("limit", DEFAULT_PAGE)), MAX_PAGE)
            offset = int(request.query_params.get("offset", 0))
        except ValueError:
            return error_response(request.url.path, 400, "limit and offset must be numbers")
        if limit < 1 or offset < 0:
            return error_response(request.url.path, 400, "limit must be >= 1, offset >= 0")
        sessions = await self._memory.store.list_sessions(user_id, limit + 1, offset)
        return JSONResponse(
            {
                "object": "list",
                "data": [info.describe() for info in sessions[:limit]],
                "limit": limit,
                "offset": offset,
                "has_more": len(sessions) > limit,
            }
        )

    async def _one(self, request: Request) -> Response:
        if self._memory is None:
            return _disabled(request)
        caller = identify_request(request, self._settings)
        if not caller.authenticated:
            return _unauthenticated(request)
        user_id = self._user_id(request, caller)
        if user_id is None:
            return error_response(request.url.path, 400, "user_id is not a valid user id")
        if caller.bound_user_id and user_id != caller.bound_user_id:
            return _not_yours(request)
        session_id = request.path_params["session_id"]
        store = self._memory.store
        info = await store.session(user_id, session_id)
        if info is None:
            return error_response(
                request.url.path, 404, f"no session {session_id!r} for user {user_id!r}"
            )
        if request.method == "DELETE":
            await store.delete(user_id, session_id)
            return JSONResponse({"id": session_id, "user_id": user_id, "deleted": True})
        messages = await store.load(user_id, session_id)
        return JSONResponse({**info.describe(), "messages": messages})

    def _user_id(self, request: Request, caller: Caller) -> str | None:
        named = request.query_params.get("user_id")
        if named is None:
            own = caller.bound_user_id
            return own or detect_user(request.headers, self._settings.user_id_mappings).user_id
        return named if VALID_ID.match(named) else None


def _unauthenticated(request: Request) -> Response:
    return error_response(request.url.path, 401, "sessions need one of the proxy's client keys")


def _not_yours(request: Request) -> Response:
    return error_response(request.url.path, 403, "this key may only see its own user's sessions")


def _disabled(request: Request) -> Response:
    return error_response(request.url.path, 404, "local conversation memory is disabled")
