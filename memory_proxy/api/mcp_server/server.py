"""The MCP server (the SDK's low-level `Server`): lists the memory tools and runs a call,
for the owner the endpoint identified (endpoint.py puts it in the request's scope).

A call: its arguments checked against the tool's schema; its project chosen
(workspace.py) — a client that declared roots on protocol 2026-07-28 is first answered
"input required: roots/list" and calls again with them, which is stateless; the rate
limit taken, as for a chat request; the work done (memory_tools.py); one usage record
(tool name, hits, latency) and one log line kept. Every failure is a tool error with a
readable message, never a protocol error that would end the client's session.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

import orjson
from mcp.server import Server, ServerRequestContext
from mcp_types import (
    CallToolRequestParams,
    CallToolResult,
    InputRequiredResult,
    ListRootsRequest,
    ListRootsResult,
    ListToolsResult,
    PaginatedRequestParams,
    TextContent,
    Tool,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

from memory_proxy.accounting.live import LiveFeed
from memory_proxy.accounting.rate_limit import RateLimiter, admit
from memory_proxy.accounting.usage import UsageRecorder
from memory_proxy.api.mcp_server.memory_tools import OWNER, MemoryTools, ToolFailure
from memory_proxy.api.mcp_server.tools import TOOLS, ToolSpec
from memory_proxy.api.mcp_server.workspace import (
    ProjectChoice,
    from_argument,
    from_header,
    from_roots,
)
from memory_proxy.errors import MCP_PATH, Refusal
from memory_proxy.identity.identification import MemoryOwner
from memory_proxy.logging_setup import log_request
from memory_proxy.records.usage import UsageRecord

logger = logging.getLogger("memory_proxy.mcp")

SERVER_NAME = "memory"
ROOTS = "roots"  # the key of the roots question inside a call
INSTRUCTIONS = (
    "Long-term memory shared by this user's AI clients through their memory proxy: what "
    "was said in earlier conversations, in this project and others, and notes kept on "
    "purpose. Search it before asking the user something they may have said before; keep "
    "what is worth remembering with `remember`; forget what the user wants forgotten."
)
_LISTED = ListToolsResult(
    tools=[
        Tool(
            name=spec.name,
            description=spec.description,
            input_schema=spec.arguments.model_json_schema(),
            annotations=spec.annotations,
        )
        for spec in TOOLS.values()
    ]
)


class MemoryToolServer:
    """The tools over one `MemoryTools`; `on_limited` counts a rate-limited call."""

    def __init__(
        self,
        tools: MemoryTools,
        usage: UsageRecorder | None,
        live: LiveFeed,
        rate_limiter: RateLimiter | None,
        on_limited: Callable[[], None],
    ) -> None:
        self._tools = tools
        self._usage = usage
        self._live = live
        self._rate_limiter = rate_limiter
        self._on_limited = on_limited
        self.server: Server[Any] = Server(
            SERVER_NAME,
            instructions=INSTRUCTIONS,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
        )
        # Its default OpenTelemetry middleware makes a span per message for an exporter
        # this proxy never installs.
        self.server.middleware.clear()

    async def _list_tools(
        self, ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
    ) -> ListToolsResult:
        return _LISTED

    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: CallToolRequestParams
    ) -> CallToolResult | InputRequiredResult:
        owner: MemoryOwner = ctx.request.scope[OWNER]  # type: ignore[union-attr]
        spec = TOOLS.get(params.name)
        if spec is None:
            return _failed(f"no tool {params.name!r}: the tools are {', '.join(TOOLS)}")
        arrived, started = time.time(), time.perf_counter()
        where: ProjectChoice | None = None
        hits: int | None = None
        try:
            arguments = spec.arguments.model_validate(params.arguments or {})
            if spec.scoped:
                chosen = _project(ctx, params, owner, arguments)
                if isinstance(chosen, InputRequiredResult):
                    return chosen  # asked again with the roots: recorded then
                where = chosen
            await admit(self._rate_limiter, owner.user_id, self._on_limited)
            answer, hits = await spec.run(self._tools, owner, where, arguments)
            status, result = 200, _result(answer)
        except ValidationError as invalid:
            status, result = 400, _failed(_readable(invalid))
        except ToolFailure as failure:
            status, result = failure.status, _failed(failure.message)
        except Refusal as refused:  # an unusable project id (400), the rate limit (429)
            wait = f": try again in {refused.retry_after} s" if refused.retry_after else ""
            status, result = refused.status, _failed(f"{refused}{wait}")
        except Exception:
            logger.exception("memory tool %s failed", spec.name)
            status, result = 500, _failed(f"{spec.name} failed: the proxy's log says why")
        self._record(spec, owner, where, arrived, time.perf_counter() - started, status, hits)
        return result

    def _record(
        self,
        spec: ToolSpec,
        owner: MemoryOwner,
        where: ProjectChoice | None,
        arrived: float,
        seconds: float,
        status: int,
        hits: int | None,
    ) -> None:
        record = UsageRecord(
            time=arrived,
            request_id=os.urandom(16).hex(),
            user_id=owner.user_id,
            session_id=None,
            client=owner.identity.client,
            model=None,
            endpoint=MCP_PATH,
            status=status,
            stream=False,
            upstream_ms=0.0,
            first_byte_ms=None,
            total_ms=round(seconds * 1000, 3),
            prompt_tokens=None,
            completion_tokens=None,
            cost=None,
            finish_reason="error" if status >= 400 else None,
            tool=spec.name,
            hits=hits,
        )
        if self._usage is not None:
            self._usage.record(record)
            self._live.publish(record)
        fields = record.as_dict()
        del fields["time"]
        if where is not None:
            fields |= {"project": where.project or None, "project_source": where.source}
        log_request(fields)


def _project(
    ctx: ServerRequestContext[Any],
    params: CallToolRequestParams,
    owner: MemoryOwner,
    arguments: Any,
) -> ProjectChoice | InputRequiredResult:
    """The project (workspace.py's order), or the question for the client's roots."""
    if arguments.project is not None:
        return from_argument(arguments.project)
    capabilities = ctx.session.client_capabilities
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS and capabilities and capabilities.roots:
        answers = params.input_responses or {}
        listed = answers.get(ROOTS)
        if not isinstance(listed, ListRootsResult):
            return InputRequiredResult(input_requests={ROOTS: ListRootsRequest()})
        rooted = from_roots([str(root.uri) for root in listed.roots])
        if rooted is not None:
            return rooted
    return from_header(owner.named_project)


def _result(answer: dict[str, Any]) -> CallToolResult:
    """JSON, as text (what every client shows the model) and as structured content."""
    text = orjson.dumps(answer).decode()
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=answer)


def _failed(message: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=message)], is_error=True)


def _readable(invalid: ValidationError) -> str:
    """Each problem as `argument: what is wrong`, without echoing the values."""
    problems = [
        f"{'.'.join(str(part) for part in error['loc']) or 'arguments'}: {error['msg']}"
        for error in invalid.errors(include_url=False, include_input=False)
    ]
    return "invalid arguments: " + "; ".join(problems)
