"""The memory proxy as one pure-ASGI application.

Every request passes the browser guard first. Local endpoints (health, routing debug, the
APIs, the dashboard) are then served by a small Starlette router, behind one middleware
that identifies their caller; every other request is forwarded to LiteLLM by the pipeline,
which identifies its own.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
from typing import TYPE_CHECKING

from starlette.routing import Route, Router
from starlette.types import Receive, Scope, Send

from memory_proxy.accounting.live import LiveFeed
from memory_proxy.accounting.metrics import Metrics
from memory_proxy.accounting.rate_limit import (
    Bucket,
    LocalRateLimiter,
    RateLimiter,
    RedisRateLimiter,
)
from memory_proxy.accounting.usage import UsageRecorder
from memory_proxy.api import echo_model
from memory_proxy.api.caller import IdentifiedCaller
from memory_proxy.api.caller_scope import CallerScope
from memory_proxy.api.dashboard import (
    CALLED_PATHS,
    CALLED_PREFIXES,
    PAGE_PATH,
    STATIC_PREFIX,
    DashboardPage,
)
from memory_proxy.api.dashboard.live import LiveAPI
from memory_proxy.api.mcp_server.endpoint import McpEndpoint
from memory_proxy.api.mcp_server.memory_tools import MemoryTools
from memory_proxy.api.memories import MEMORIES_PATH, MemoriesAPI, unavailable_reason
from memory_proxy.api.sessions import SessionsAPI
from memory_proxy.api.status import HealthAPI, MetricsAPI, RoutingAPI
from memory_proxy.api.usage import UsageAPI
from memory_proxy.browser_guard import BrowserGuard, startup_note
from memory_proxy.config import Settings
from memory_proxy.errors import MCP_PATH
from memory_proxy.forwarding.embeddings import LiteLLMEmbeddings
from memory_proxy.forwarding.forwarder import Forwarder
from memory_proxy.forwarding.upstream import UpstreamClient, UpstreamMonitor, client_for
from memory_proxy.identity.identification import Identifier
from memory_proxy.identity.model_privacy import ModelPrivacy
from memory_proxy.identity.supermemory import SupermemoryRouting, configuration_warnings
from memory_proxy.memory.conversation import ConversationMemory
from memory_proxy.memory.embeddings import EmbeddingWriter, SemanticSearch
from memory_proxy.memory.index_process import IndexProcess
from memory_proxy.memory.placed_blocks import SharedBlocks
from memory_proxy.memory.pruning import MemoryPruner
from memory_proxy.memory.redaction import Redactor
from memory_proxy.memory.request_memory import RequestMemory
from memory_proxy.pipeline import ProxyPipeline
from memory_proxy.stores.base import MemoryIndex, RecallBackend
from memory_proxy.stores.combined_recall import REMOTE_SHARE_OF_BUDGET, CombinedRecall
from memory_proxy.stores.open import open_memory_index, open_placements, open_store, open_usage_log
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex
from memory_proxy.stores.supermemory_index import SupermemoryIndex
from memory_proxy.upstream_headers import UpstreamHeaders
from memory_proxy.wire.registry import CHAT_PATHS

if TYPE_CHECKING:  # imported with the MCP SDK, by /mcp's first call (endpoint.py)
    from memory_proxy.api.mcp_server.server import MemoryToolServer

logger = logging.getLogger("memory_proxy")

SESSIONS_PATH = "/v1/sessions"
FEEDBACK_PATH = "/v1/feedback"
LOCAL_PREFIXES = (SESSIONS_PATH + "/", MEMORIES_PATH + "/", STATIC_PREFIX)  # an id or name follows
# POST bodies read as JSON: the chat APIs (by the pipeline) and our own JSON endpoints.
JSON_APIS = frozenset({*CHAT_PATHS, FEEDBACK_PATH, echo_model.ECHO_PATH, MCP_PATH})


class MemoryProxy:
    """ASGI app: `MemoryProxy(settings)`; `monitor` lets a supervisor report LiteLLM's state.

    `upstream` replaces the client toward LiteLLM (tests run the forwarding over each kind);
    `recall_backend` the configured one.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        upstream: UpstreamClient | None = None,
        upstream_ready: bool = True,
        recall_backend: RecallBackend | None = None,
    ) -> None:
        self.settings = settings
        self.supermemory = SupermemoryRouting.from_litellm(settings.litellm)
        self.privacy = ModelPrivacy.from_settings(settings)
        self.metrics = Metrics(settings)
        self._upstream = upstream or client_for(settings.litellm_url)
        self.monitor = UpstreamMonitor(self._upstream, settings.litellm_url, ready=upstream_ready)
        self._forwarder = Forwarder(
            self._upstream,
            settings.litellm_url,
            self.monitor,
            wait_seconds=settings.upstream_wait_seconds,
            first_byte_timeout=settings.upstream_first_byte_timeout_seconds,
            idle_timeout=settings.upstream_idle_timeout_seconds,
        )
        self.memory_index = (
            open_memory_index(settings.memory, settings.recall.timeout_ms / 1000)
            if settings.memory.enabled
            else None
        )
        self.pruner = (
            MemoryPruner(
                self.memory_index,
                settings.memory.retention_days,
                settings.memory.max_mb if settings.memory.store != "postgres" else None,
                self.metrics.count_pruned,
            )
            if self.memory_index is not None
            else None
        )
        redactor = Redactor.configured(settings, self.metrics.redacted)
        self._recall_backend = recall_backend or _recall_backend(
            settings, self.memory_index, self.metrics, redactor
        )
        semantic, self.embedding_writer = _embeddings(
            settings, self.memory_index, self._recall_backend, self._upstream, self.metrics
        )
        shared = self._recall_backend is not None and self._recall_backend is self.memory_index
        self.memory = _request_memory(
            settings,
            self.metrics,
            self._recall_backend,
            redactor,
            semantic,
            shared_placements=shared,
        )
        self.usage = (
            UsageRecorder(
                open_usage_log(settings.memory, settings.usage),
                on_drop=self.metrics.usage_records_dropped.inc,
            )
            if settings.usage.enabled
            else None
        )
        self.rate_limiter = _rate_limiter(settings)
        self.live = LiveFeed(self.metrics.requests_in_flight)
        identifier = Identifier(settings, self.supermemory, self.privacy)
        self._proxy = ProxyPipeline(
            identifier,
            UpstreamHeaders.from_settings(settings),
            self._forwarder,
            self.metrics,
            self.memory,
            self.usage,
            self.rate_limiter,
            self.live,
        )
        health = HealthAPI(self.monitor, settings.litellm_url)
        metrics = MetricsAPI(self.metrics, self.monitor, public=settings.metrics_public)
        routing = RoutingAPI(identifier).routing
        caller_scope = CallerScope(settings.user_id_mappings)
        sessions = SessionsAPI(self.memory.conversations if self.memory else None, caller_scope)
        memories = MemoriesAPI(self.memory_index, caller_scope, settings.memory)
        usage = UsageAPI(self.usage)
        dashboard = DashboardPage()
        self._local = Router(
            routes=[
                Route("/health", health.health, methods=["GET"]),
                Route("/memory-routing/info", routing, methods=["GET"]),
                Route("/v1/debug/routing", routing, methods=["GET"]),
                Route("/metrics", metrics.metrics, methods=["GET"]),
                Route("/v1/usage", usage.totals, methods=["GET"]),
                Route("/v1/usage/series", usage.series, methods=["GET"]),
                Route(FEEDBACK_PATH, usage.feedback, methods=["POST"]),
                Route(SESSIONS_PATH, sessions.list, methods=["GET"]),
                Route(SESSIONS_PATH + "/{session_id}", sessions.one, methods=["GET", "DELETE"]),
                Route(echo_model.ECHO_PATH, echo_model.echo, methods=["POST"]),
                *memories.routes(),
                Route("/v1/live", LiveAPI(self.live, self.usage).events, methods=["GET"]),
                Route(PAGE_PATH, dashboard.page, methods=["GET"]),
                Route(STATIC_PREFIX + "{name:path}", dashboard.static, methods=["GET"]),
            ]
        )
        self._local_paths = frozenset(
            route.path for route in self._local.routes if isinstance(route, Route)
        )
        self._identified_local = IdentifiedCaller(self._local, identifier.caller)
        tools = MemoryTools(self.memory_index, unavailable_reason(settings.memory), redactor)

        def tool_server() -> MemoryToolServer:
            """At the first call to /mcp, with the MCP SDK (endpoint.py)."""
            from memory_proxy.api.mcp_server.server import MemoryToolServer

            return MemoryToolServer(
                tools, self.usage, self.live, self.rate_limiter, self.metrics.rate_limited.inc
            )

        self.mcp = McpEndpoint(identifier, tool_server)
        self._identified_mcp = IdentifiedCaller(self.mcp, identifier.caller)
        self._guard = BrowserGuard(
            self._route,
            settings,
            json_apis=JSON_APIS,
            own_origin_paths=CALLED_PATHS,
            own_origin_prefixes=CALLED_PREFIXES,
            page_path=PAGE_PATH,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._guard(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        else:  # websockets (LiteLLM's realtime API) are not proxied
            await send({"type": "websocket.close", "code": 1003})

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A request the guard let through: to a local endpoint, or to LiteLLM."""
        path = scope["path"]
        if path in self._local_paths or path.startswith(LOCAL_PREFIXES):
            await self._identified_local(scope, receive, send)
        elif path == MCP_PATH:
            await self._identified_mcp(scope, receive, send)
        else:
            await self._proxy(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        """Start the background writers, and close everything in reverse order at the end
        (an exit stack, so one failing close does not skip the others)."""
        message = await receive()
        assert message["type"] == "lifespan.startup"
        async with contextlib.AsyncExitStack() as stack:
            try:
                for warning in configuration_warnings(self.settings.litellm, self.supermemory):
                    logger.warning(warning)
                if note := startup_note(self.settings):
                    logger.warning(note)
                stack.callback(self.metrics.process_stopped)
                stack.push_async_callback(self._upstream.aclose)
                stack.push_async_callback(self.monitor.aclose)
                # The memory index closes after memory has stored what it queued.
                backend = self._recall_backend
                separate = backend if backend is not self.memory_index else None
                for part in (
                    self.rate_limiter,
                    self.usage,
                    self.memory_index,
                    separate,
                    self.memory,
                ):
                    if part is not None:
                        stack.push_async_callback(part.aclose)
                if self.embedding_writer is not None:  # stopped before the index closes
                    stack.push_async_callback(self.embedding_writer.aclose)
                    self.embedding_writer.start()
                if self.pruner is not None:  # stopped before the index closes
                    stack.push_async_callback(self.pruner.aclose)
                    self.pruner.start()
                if self.memory is not None:
                    self.memory.start()
                if self.usage is not None:
                    self.usage.start()
                # Stopped first: its calls use the index and the usage log.
                await stack.enter_async_context(self.mcp.run())
            except Exception as exc:
                logger.exception("start-up failed")
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            settle_heap()
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
            gc.unfreeze()
        await send({"type": "lifespan.shutdown.complete"})


def settle_heap() -> None:
    """What start-up made (modules, settings, the app; ~125,000 objects) is kept out of
    the garbage collector's full passes: each walked all of it, ~70 ms once every few
    thousand requests, ~11 us a request under the session memory load. Freezing moves
    lists, it walks nothing (a collection first would cost a test's start 0.1-0.3 s).
    Undone at shutdown, so that a process that starts proxies one after another (the
    tests) collects the old ones' cycles."""
    gc.freeze()


def _request_memory(
    settings: Settings,
    metrics: Metrics,
    recall_backend: RecallBackend | None,
    redactor: Redactor,
    semantic: SemanticSearch | None,
    *,
    shared_placements: bool,
) -> RequestMemory | None:
    """`shared_placements`: recall searches the local index, so the store beside it can
    keep where recalled blocks went for every process (memory/placed_blocks.py), and, in
    a SQLite file, the index can be written from a process of its own."""
    if not settings.memory.enabled:
        return None
    budget = settings.recall.timeout_ms / 1000
    placements = open_placements(settings.memory, budget) if shared_placements else None
    index_process = (
        IndexProcess(settings, metrics.memories_dropped.inc, redactor.text, metrics.redacted)
        if shared_placements and settings.memory.store == "sqlite"
        else None
    )
    conversations = ConversationMemory(
        open_store(settings.memory),
        settings.memory,
        on_failure=metrics.store_failed,
        redactor=redactor,
        on_pruned=metrics.count_pruned,
    )
    return RequestMemory(
        conversations,
        recall_backend,
        settings.recall,
        on_recall_timeout=metrics.recall_timeouts.inc,
        on_recall_busy=metrics.recall_skipped.labels("busy").inc,
        on_failure=functools.partial(metrics.store_failed, "search"),
        on_memories_dropped=metrics.memories_dropped.inc,
        redactor=redactor,
        semantic=semantic,
        on_semantic_late=metrics.embeddings_late.inc,
        placed=SharedBlocks(placements, budget, metrics.store_failed) if placements else None,
        indexer=index_process,
    )


def _embeddings(
    settings: Settings,
    index: MemoryIndex | None,
    backend: RecallBackend | None,
    upstream: UpstreamClient,
    metrics: Metrics,
) -> tuple[SemanticSearch | None, EmbeddingWriter | None]:
    """Recall by meaning, with `recall.embedding_model`, over the local index's vectors:
    the search, and the writer that embeds the memories."""
    model = settings.recall.embedding_model
    if model is None or backend is None or not isinstance(index, SQLiteMemoryIndex):
        if model is not None:
            logger.warning("recall.embedding_model is unused: recall has no local index")
        return None, None
    embedder = LiteLLMEmbeddings(upstream, model, settings.upstream_key)
    index.vectors.hold_at_most(settings.recall.vector_cache_mb * 1024 * 1024)
    private = model in settings.memory.private_models
    writer = EmbeddingWriter(
        embedder, index.vectors, on_failure=metrics.embedding_failures.inc, private=private
    )
    return SemanticSearch(embedder, index.vectors, private), writer


def _recall_backend(
    settings: Settings, index: MemoryIndex | None, metrics: Metrics, redactor: Redactor
) -> RecallBackend | None:
    """The configured backend: the local index (shared with the memories API),
    Supermemory, or both; the local one needs a store with an index (not Redis, yet)."""
    recall = settings.recall
    if not (settings.memory.enabled and recall.enabled):
        return None
    hosted = None
    if recall.backend != "local":
        assert settings.supermemory_api_key is not None  # the config checked it
        hosted = SupermemoryIndex(
            settings.supermemory_api_key, settings.supermemory_url, redact=redactor.text
        )
    if index is None and recall.backend != "supermemory":
        logger.warning(
            "%s: it needs a local index, and memory.store is %s (sqlite and postgres have "
            "one; recall.backend: supermemory works with any store)",
            "recall uses Supermemory alone" if hosted else "recall is off",
            settings.memory.store,
        )
    if hosted is None or recall.backend == "supermemory" or index is None:
        return hosted or index
    remote_wait = recall.timeout_ms / 1000 * REMOTE_SHARE_OF_BUDGET
    return CombinedRecall(
        index,
        hosted,
        remote_wait,
        on_remote_late=metrics.recall_timeouts.inc,
        on_remote_failure=functools.partial(metrics.store_failed, "search"),
    )


def _rate_limiter(settings: Settings) -> RateLimiter | None:
    """Shared through Redis when memory is, so several instances enforce one limit."""
    limits = settings.rate_limit
    if not limits.enabled:
        return None
    bucket = Bucket(limits.requests_per_minute, limits.burst)
    if settings.memory.store == "redis":
        return RedisRateLimiter(settings.memory.redis_url, bucket)
    return LocalRateLimiter(bucket)
