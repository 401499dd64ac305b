"""Long-term memory over HTTP: search, list, read and forget memories; list projects.

Who sees whose memories is caller_scope's rule, as for the list of sessions: every user's
for a trusted caller that names none (memory ids are unique, so one memory is found by its
id alone), one user's otherwise. `?project=` selects: absent, every project; given empty
(`project=`), the general memory (requests that named no project); an id, that project.
Forgetting needs the parameter, so that a bare `DELETE /v1/memories` never forgets
everything. Without a local index
(`memory.store: redis`) the endpoints answer 501: the proxy cannot do this there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from memory_proxy.api.caller_scope import CallerScope
from memory_proxy.api.paging import page
from memory_proxy.config import MemorySettings
from memory_proxy.errors import error_answer, error_response, unless_store_fails
from memory_proxy.identity.client_detection import VALID_ID
from memory_proxy.records.memory import GENERAL_PROJECT
from memory_proxy.stores.base import MemoryIndex, SearchBusy

MEMORIES_PATH = "/v1/memories"
PROJECTS_PATH = "/v1/projects"
STORE = "memory index"
WHAT = "memories"
DEFAULT_PAGE = 50
MAX_PAGE = 200

_Handler = Callable[[Request, MemoryIndex, str | None], Awaitable[Response]]
_Endpoint = Callable[[Request], Awaitable[Response]]


class MemoriesAPI:
    def __init__(
        self, index: MemoryIndex | None, caller_scope: CallerScope, memory: MemorySettings
    ) -> None:
        """`memory`: whether memory is on and its store, to say why there is no index."""
        self._index = index
        self._scope = caller_scope
        self._memory = memory

    def routes(self) -> list[Route]:
        return [
            Route(MEMORIES_PATH, self._guarded(self._collection), methods=["GET", "DELETE"]),
            # `:path`, so that an id with a slash is a 404 in the client's format too.
            Route(
                MEMORIES_PATH + "/{memory_id:path}",
                self._guarded(self._one),
                methods=["GET", "DELETE"],
            ),
            Route(PROJECTS_PATH, self._guarded(self._projects), methods=["GET"]),
        ]

    def _guarded(self, handler: _Handler) -> _Endpoint:
        """The handler behind the checks every endpoint shares; a failing index is a
        logged 503."""

        async def endpoint(request: Request) -> Response:
            path = request.url.path
            if self._index is None:
                return self._unavailable(path)
            user_id = self._scope.visible_user(request, WHAT)
            if isinstance(user_id, Response):
                return user_id
            return await unless_store_fails(path, STORE, handler(request, self._index, user_id))

        return endpoint

    def _unavailable(self, path: str) -> Response:
        status = 404 if not self._memory.enabled else 501
        return error_response(path, status, unavailable_reason(self._memory))

    async def _collection(
        self, request: Request, index: MemoryIndex, user_id: str | None
    ) -> Response:
        path = request.url.path
        try:
            project = _project(request)
            limit, offset = page(request, DEFAULT_PAGE, MAX_PAGE)
        except ValueError as exc:
            return error_response(path, 400, str(exc))
        if request.method == "DELETE":
            if project is None:
                return error_response(
                    path, 400, "name the project to forget: ?project=ID (empty: general memory)"
                )
            forgotten = await index.forget_project(user_id, project)
            if not forgotten:
                return _no_project(path, user_id, project)
            return JSONResponse(
                {"user_id": user_id, "project": project or None, "deleted": forgotten}
            )
        query = request.query_params.get("q", "").strip()
        if query:
            wanted = offset + limit + 1  # the owner sees private models' memories too, marked
            try:
                hits = await index.search(user_id, project, query, limit=wanted, privacy="private")
            except SearchBusy as busy:  # a burst of searches (recall's) fills its budget
                return error_answer(path, busy)
            data = [hit.record.describe(hit.score) for hit in hits[offset : offset + limit]]
            has_more = len(hits) > offset + limit
        else:
            records = await index.list_memories(user_id, project, limit + 1, offset)
            data = [record.describe() for record in records[:limit]]
            has_more = len(records) > limit
        return JSONResponse(
            {"object": "list", "data": data, "limit": limit, "offset": offset, "has_more": has_more}
        )

    async def _one(self, request: Request, index: MemoryIndex, user_id: str | None) -> Response:
        memory_id = request.path_params["memory_id"]
        record = await index.get(user_id, memory_id)
        if record is None:
            return error_response(request.url.path, 404, f"no memory {memory_id!r}{_of(user_id)}")
        if request.method == "DELETE":
            await index.delete(record.user_id, memory_id)
            return JSONResponse({"id": memory_id, "user_id": record.user_id, "deleted": True})
        return JSONResponse(record.describe())

    async def _projects(
        self, request: Request, index: MemoryIndex, user_id: str | None
    ) -> Response:
        projects = await index.projects(user_id)
        return JSONResponse({"object": "list", "data": [info.describe() for info in projects]})


def unavailable_reason(memory: MemorySettings) -> str:
    """Why this proxy has no local memory index to manage."""
    if not memory.enabled:
        return "local memory is disabled (memory.enabled)"
    return (
        "long-term memories can be managed only in a local index (memory.store: sqlite "
        f"or memory); this proxy's store is {memory.store}"
    )


def _project(request: Request) -> str | None:
    """None for every project, GENERAL_PROJECT for `project=`; ValueError when invalid."""
    project = request.query_params.get("project")
    if project is None or project == GENERAL_PROJECT or VALID_ID.match(project):
        return project
    raise ValueError("project is not a valid project id")


def _no_project(path: str, user_id: str | None, project: str) -> Response:
    name = f"project {project!r}" if project else "the general memory"
    return error_response(path, 404, f"no memories in {name}{_of(user_id)}")


def _of(user_id: str | None) -> str:
    """Whose memories were looked at, for a 404's message (nothing: everyone's)."""
    return f" for user {user_id!r}" if user_id else ""
