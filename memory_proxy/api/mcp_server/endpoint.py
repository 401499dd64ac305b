"""`/mcp`: the memory tools over MCP's streamable HTTP, behind the gate every local route
has. The browser guard has checked Host, Origin and the content type before this; the
caller middleware (api/caller.py) put the caller in the scope. Here:

- only a trusted caller passes (a local program, or one of `auth.client_keys`): a caller
  with no key gets 401, a key that is not ours (passing through to LiteLLM) 403;
- its memory's owner is identified by a chat request's rules (a bound key's user, else
  the custom header or the user-agent patterns; `x-memory-project`; `x-memory`), and put
  in the scope for the tools; an unusable id is a 400;
- the SDK answers, stateless and in JSON: no session lives in this process between
  requests, so any `--workers` process, or any of several proxies, can answer each one.
  Only POST: with no session there is nothing to push on a GET stream or end with a
  DELETE, and the specification lets a server answer both with 405.

The SDK's own Host/Origin check is off: the browser guard applies the proxy's rules
(`security.allowed_hosts`, `security.allowed_origins`), which the MCP specification asks
of a server (validate Origin; bind to localhost).

The SDK is imported by the first call, not at start: it is most of the proxy's import
time (about 0.6 s of CPU in every `--workers` process and start-proxies) and memory, and
a proxy whose tools are never called does without it. The import runs in a thread, so
the other requests go on meanwhile.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskGroup, TaskStatus
from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from memory_proxy.api.caller import caller_in
from memory_proxy.api.mcp_server.memory_tools import OWNER
from memory_proxy.errors import MCP_PATH, ProxyError, error_answer, error_response
from memory_proxy.identity.auth import Trust
from memory_proxy.identity.identification import Identifier

if TYPE_CHECKING:
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

    from memory_proxy.api.mcp_server.server import MemoryToolServer

ONLY_POST = "the memory tools answer POST only: this server keeps no sessions, nor streams"
NOT_OURS = (
    "the memory tools need one of the proxy's client keys (auth.client_keys); this key "
    "is not one of them"
)


class McpEndpoint:
    """The ASGI app at MCP_PATH; `run()` is its lifetime (the app's lifespan). The first
    call builds its MCP server (server.py) with `tool_server`, once the SDK is loaded."""

    def __init__(self, identifier: Identifier, tool_server: Callable[[], MemoryToolServer]) -> None:
        self._identifier = identifier
        self._tool_server = tool_server
        self._sessions: StreamableHTTPSessionManager | None = None
        self._starting = anyio.Lock()
        self._lifetime: TaskGroup | None = None

    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        """The SDK's sessions, once started, run in this task group and stop with it."""
        async with anyio.create_task_group() as lifetime:
            self._lifetime = lifetime
            try:
                yield
            finally:
                self._lifetime = None
                lifetime.cancel_scope.cancel()

    async def _started(self) -> StreamableHTTPSessionManager:
        async with self._starting:
            if self._sessions is None:
                assert self._lifetime is not None, "the app's lifespan has not started"
                manager = await anyio.to_thread.run_sync(_load_the_sdk)
                server = self._tool_server().server
                sessions = manager(server, json_response=True, stateless=True)
                await self._lifetime.start(_keep_running, sessions)
                self._sessions = sessions
        return self._sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            answer = error_response(MCP_PATH, 405, ONLY_POST)
            answer.headers["allow"] = "POST"
            await answer(scope, receive, send)
            return
        caller = caller_in(scope)
        if caller.trust is Trust.PASS_THROUGH:
            await error_response(MCP_PATH, 403, NOT_OURS)(scope, receive, send)
            return
        try:
            scope[OWNER] = self._identifier.memory_owner(Headers(scope=scope), caller)
        except ProxyError as refused:  # no key, two keys (401), an unusable id (400)
            await error_answer(MCP_PATH, refused)(scope, receive, send)
            return
        sessions = await self._started()
        await sessions.handle_request(scope, receive, send)


def _load_the_sdk() -> type[StreamableHTTPSessionManager]:
    """The SDK's modules and server.py's, imported (in a thread: seconds on a busy machine)."""
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

    import memory_proxy.api.mcp_server.server  # noqa: F401  # the tool server's, with the SDK's

    return StreamableHTTPSessionManager


async def _keep_running(
    sessions: StreamableHTTPSessionManager,
    *,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    async with sessions.run():
        task_status.started()
        await anyio.sleep_forever()
