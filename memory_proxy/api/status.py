"""The proxy's own state over HTTP: `GET /health` (is LiteLLM answering), `GET /metrics`
(Prometheus) and `GET /v1/debug/routing` (what the pipeline decides for this very
request). Each endpoint reads its caller from the scope (api/caller.py)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from memory_proxy.accounting.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from memory_proxy.accounting.metrics import Metrics
from memory_proxy.api.caller import caller_of
from memory_proxy.errors import Refusal, error_answer, error_response
from memory_proxy.forwarding.upstream import UpstreamMonitor
from memory_proxy.identity.identification import Identifier


class HealthAPI:
    def __init__(self, monitor: UpstreamMonitor, litellm_url: str) -> None:
        self._monitor = monitor
        self._litellm_url = litellm_url

    async def health(self, request: Request) -> Response:
        """The status for anyone (probes need it); where LiteLLM is and why it is down
        for trusted callers only."""
        ready, reason = await self._monitor.probe()
        if ready:
            self._monitor.mark_ready()
            answer, details = {"status": "healthy"}, {"litellm": "ready"}
        else:
            answer, details = {"status": "unhealthy"}, {"reason": reason}
        if caller_of(request).authenticated:
            answer |= details | {"litellm_url": self._litellm_url}
        return JSONResponse(answer, status_code=200 if ready else 503)


class MetricsAPI:
    def __init__(self, metrics: Metrics, monitor: UpstreamMonitor, *, public: bool) -> None:
        """`public`: `metrics.public`, the operator's say that anyone may read them."""
        self._metrics = metrics
        self._monitor = monitor
        self._public = public

    async def metrics(self, request: Request) -> Response:
        """Every user and model is named in the metrics: trusted callers not bound to one
        user only, unless the operator says otherwise (`metrics.public`)."""
        if not self._public:
            caller = caller_of(request)
            if not caller.authenticated:
                message = "metrics need one of the proxy's client keys (or metrics.public: true)"
                return error_response(request.url.path, 401, message)
            if caller.bound_user_id:
                message = "metrics name every user: a key bound to one user may not read them"
                return error_response(request.url.path, 403, message)
        self._metrics.litellm_ready.set(1 if self._monitor.is_ready else 0)
        return Response(self._metrics.exposition(), media_type=METRICS_CONTENT_TYPE)


class RoutingAPI:
    def __init__(self, identifier: Identifier) -> None:
        self._identifier = identifier

    async def routing(self, request: Request) -> Response:
        """What the pipeline decides for this very request (`?model=` as its body's
        model), refusals included."""
        query_model = request.query_params.get("model")
        headers = request.headers
        try:
            who = self._identifier.identify(
                self._identifier.request_id(headers),
                headers,
                caller_of(request),
                {"model": query_model} if query_model else None,
            )
        except Refusal as refusal:
            return error_answer(request.url.path, refusal)
        return JSONResponse(who.describe())
