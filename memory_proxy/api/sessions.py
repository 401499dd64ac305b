"""The local conversation memory over HTTP: list, read and delete sessions.

Only authenticated callers (see auth.py) may use it; who sees which user's sessions is
caller_scope's rule.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from memory_proxy.api.caller_scope import CallerScope
from memory_proxy.api.paging import page
from memory_proxy.errors import error_response, unless_store_fails
from memory_proxy.memory.conversation import ConversationMemory

STORE = "memory store"
WHAT = "sessions"
DEFAULT_PAGE = 50
MAX_PAGE = 500


class SessionsAPI:
    def __init__(self, memory: ConversationMemory | None, caller_scope: CallerScope) -> None:
        self._memory = memory
        self._scope = caller_scope

    async def list(self, request: Request) -> Response:
        return await unless_store_fails(request.url.path, STORE, self._list(request))

    async def one(self, request: Request) -> Response:
        return await unless_store_fails(request.url.path, STORE, self._one(request))

    async def _list(self, request: Request) -> Response:
        if self._memory is None:
            return _disabled(request)
        user_id = self._scope.visible_user(request, WHAT)
        if isinstance(user_id, Response):
            return user_id
        try:
            limit, offset = page(request, DEFAULT_PAGE, MAX_PAGE)
        except ValueError as exc:
            return error_response(request.url.path, 400, str(exc))
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
        user_id = self._scope.scoped_user(request, WHAT)
        if isinstance(user_id, Response):
            return user_id
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


def _disabled(request: Request) -> Response:
    return error_response(request.url.path, 404, "local conversation memory is disabled")
