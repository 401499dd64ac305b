"""The memory proxy as one pure-ASGI application.

Every request passes the browser guard first. Local endpoints (health, routing debug) are
then served by a small Starlette router; every other request is forwarded to LiteLLM with
the caller's identity and memory scope applied.
"""

from __future__ import annotations

import contextlib
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, Router
from starlette.types import Receive, Scope, Send

from memory_proxy.accounting.live import LiveFeed
from memory_proxy.accounting.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from memory_proxy.accounting.metrics import Metrics
from memory_proxy.accounting.rate_limit import (
    Bucket,
    LocalRateLimiter,
    RateLimiter,
    RedisRateLimiter,
)
from memory_proxy.accounting.usage import UsageRecorder
from memory_proxy.api import echo_model
from memory_proxy.api.dashboard import (
    CALLED_PATHS,
    CALLED_PREFIXES,
    PAGE_PATH,
    STATIC_PREFIX,
    DashboardPage,
)
from memory_proxy.api.dashboard.live import LiveAPI
from memory_proxy.api.memories import MEMORIES_PATH, MemoriesAPI
from memory_proxy.api.sessions import SessionsAPI
from memory_proxy.api.usage import UsageAPI
from memory_proxy.browser_guard import BrowserGuard, startup_note
from memory_proxy.config import Settings
from memory_proxy.errors import Refusal, error_answer, error_response
from memory_proxy.forwarding.forwarder import Forwarder
from memory_proxy.forwarding.upstream import UpstreamClient, UpstreamMonitor, client_for
from memory_proxy.identity import auth
from memory_proxy.identity.identification import Identifier
from memory_proxy.identity.model_privacy import ModelPrivacy
from memory_proxy.identity.supermemory import SupermemoryRouting, configuration_warnings
from memory_proxy.memory.conversation import ConversationMemory
from memory_proxy.memory.injection import CHAT_APIS
from memory_proxy.memory.pruning import MemoryPruner
from memory_proxy.memory.redaction import Redactor
from memory_proxy.memory.request_memory import RequestMemory
from memory_proxy.pipeline import ProxyPipeline
from memory_proxy.stores import open_memory_index, open_store, open_usage_log
from memory_proxy.stores.base import MemoryIndex, RecallBackend
from memory_proxy.stores.combined_recall import REMOTE_SHARE_OF_BUDGET, CombinedRecall
from memory_proxy.stores.supermemory_index import SupermemoryIndex
from memory_proxy.upstream_headers import UpstreamHeaders

logger = logging.getLogger("memory_proxy")

SESSIONS_PATH = "/v1/sessions"
FEEDBACK_PATH = "/v1/feedback"
LOCAL_PREFIXES = (SESSIONS_PATH + "/", MEMORIES_PATH + "/", STATIC_PREFIX)  # an id or name follows
# POST bodies read as JSON: the chat APIs (by the pipeline) and our own JSON endpoints.
JSON_APIS = frozenset({*CHAT_APIS, FEEDBACK_PATH, echo_model.ECHO_PATH})


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
                settings.memory.max_mb,
                self.metrics.count_pruned,
            )
            if self.memory_index is not None
            else None
        )
        redactor = Redactor.configured(settings, self.metrics.redacted)
        self._recall_backend = recall_backend or _recall_backend(
            settings, self.memory_index, self.metrics, redactor
        )
        self.memory = _request_memory(settings, self.metrics, self._recall_backend, redactor)
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
        self._identifier = Identifier(settings, self.supermemory, self.privacy)
        self._proxy = ProxyPipeline(
            self._identifier,
            UpstreamHeaders.from_settings(settings),
            self._forwarder,
            self.metrics,
            self.memory,
            self.usage,
            self.rate_limiter,
            self.live,
        )
        sessions = SessionsAPI(self.memory.conversations if self.memory else None, settings)
        usage = UsageAPI(self.usage, settings)
        dashboard = DashboardPage(settings)
        self._local = Router(
            routes=[
                Route("/health", self._health, methods=["GET"]),
                Route("/memory-routing/info", self._routing_info, methods=["GET"]),
                Route("/v1/debug/routing", self._routing_info, methods=["GET"]),
                Route("/metrics", self._metrics, methods=["GET"]),
                Route("/v1/usage", usage.totals, methods=["GET"]),
                Route("/v1/usage/series", usage.series, methods=["GET"]),
                Route(FEEDBACK_PATH, usage.feedback, methods=["POST"]),
                Route(SESSIONS_PATH, sessions.list, methods=["GET"]),
                Route(SESSIONS_PATH + "/{session_id}", sessions.one, methods=["GET", "DELETE"]),
                Route(echo_model.ECHO_PATH, echo_model.echo, methods=["POST"]),
                *MemoriesAPI(self.memory_index, settings).routes(),
                Route("/v1/live", LiveAPI(self.live, self.usage, settings).events, methods=["GET"]),
                Route(PAGE_PATH, dashboard.page, methods=["GET"]),
                Route(STATIC_PREFIX + "{name:path}", dashboard.static, methods=["GET"]),
            ]
        )
        self._local_paths = frozenset(
            route.path for route in self._local.routes if isinstance(route, Route)
        )
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
            await self._local(scope, receive, send)
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
                if self.pruner is not None:  # stopped before the index closes
                    stack.push_async_callback(self.pruner.aclose)
                    self.pruner.start()
                if self.memory is not None:
                    self.memory.start()
                if self.usage is not None:
                    self.usage.start()
            except Exception as exc:
                logger.exception("start-up failed")
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
        await send({"type": "lifespan.shutdown.complete"})

    async def _metrics(self, request: Request) -> Response:
        """Every user and model is named in the metrics: trusted callers not bound to one
        user only, unless the operator says otherwise (`metrics.public`)."""
        if not self.settings.metrics_public:
            caller = auth.identify_request(request, self.settings)
            if not caller.authenticated:
                message = "metrics need one of the proxy's client keys (or metrics.public: true)"
                return error_response(request.url.path, 401, message)
            if caller.bound_user_id:
                message = "metrics name every user: a key bound to one user may not read them"
                return error_response(request.url.path, 403, message)
        self.metrics.litellm_ready.set(1 if self.monitor.is_ready else 0)
        return Response(self.metrics.exposition(), media_type=METRICS_CONTENT_TYPE)

    async def _health(self, request: Request) -> Response:
        """The status for anyone (probes need it); where LiteLLM is and why it is down
        for trusted callers only."""
        ready, reason = await self.monitor.probe()
        if ready:
            self.monitor.mark_ready()
            answer, details = {"status": "healthy"}, {"litellm": "ready"}
        else:
            answer, details = {"status": "unhealthy"}, {"reason": reason}
        if auth.identify_request(request, self.settings).authenticated:
            answer |= details | {"litellm_url": self.settings.litellm_url}
        return JSONResponse(answer, status_code=200 if ready else 503)

    async def _routing_info(self, request: Request) -> Response:
        """What the pipeline decides for this very request, refusals included."""
        query_model = request.query_params.get("model")
        headers = request.headers
        try:
            who = self._identifier.identify(
                self._identifier.request_id(headers),
                headers,
                auth.identify_request(request, self.settings),
                {"model": query_model} if query_model else None,
            )
        except Refusal as refusal:
            return error_answer(request.url.path, refusal)
        return JSONResponse(who.describe())


def _request_memory(
    settings: Settings,
    metrics: Metrics,
    recall_backend: RecallBackend | None,
    redactor: Redactor,
) -> RequestMemory | None:
    if not settings.memory.enabled:
        return None
    conversations = ConversationMemory(
        open_store(settings.memory),
        settings.memory,
        on_failure=metrics.store_errors.inc,
        redactor=redactor,
        on_pruned=metrics.count_pruned,
    )
    return RequestMemory(
        conversations,
        recall_backend,
        settings.recall,
        on_recall_timeout=metrics.recall_timeouts.inc,
        on_recall_busy=metrics.recall_skipped.labels("busy").inc,
        on_failure=metrics.store_errors.inc,
        on_memories_dropped=metrics.memories_dropped.inc,
        redactor=redactor,
    )


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
            "%s: it needs a local index, and memory.store is %s (a PostgreSQL backend "
            "comes later; recall.backend: supermemory works with any store)",
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
        on_remote_failure=metrics.store_errors.inc,
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
