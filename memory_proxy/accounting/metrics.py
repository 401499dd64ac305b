"""Prometheus metrics for `GET /metrics`, one registry per app.

Label values are bounded: user ids and models the configuration does not name are folded
into "other", so a client sending random ids cannot grow the series without limit. With
several workers (`PROMETHEUS_MULTIPROC_DIR` set by `memory-proxy --workers`), each worker
writes its values to that directory and any of them answers with the sum of all.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric as Family

from memory_proxy.accounting.tallies import CountTally, HistogramTally, Tallies, TallyFlush
from memory_proxy.config import Settings
from memory_proxy.stores.base import STORE_OPERATIONS, StoreOperation

OTHER = "other"
MULTIPROCESS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
MAX_COUNTED_KEYS = 4096
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

Metric = TypeVar("Metric", bound=MetricWrapperBase)
Timing = Histogram | HistogramTally  # where a histogram child's observations go


class _Children(Generic[Metric]):
    """A labelled metric's children, each looked up once: `labels()` costs three times
    the increment. The label values are bounded, so is the cache."""

    def __init__(self, metric: Metric) -> None:
        self._metric: Metric = metric
        self._children: dict[tuple[str, ...], Metric] = {}

    def __call__(self, *labels: str) -> Metric:
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = self._metric.labels(*labels)
        return child


class _WorkersCollector:
    """The sum of every worker's files, leaving out a file still empty: a starting worker
    creates its file before sizing it, and the library's collector fails the whole scrape
    on that moment (prometheus/client_python#1199). A file sized once stays sized."""

    def __init__(self, directory: str) -> None:
        self._directory = Path(directory)

    def collect(self) -> Iterable[Family]:
        sized = [str(file) for file in self._directory.glob("*.db") if _is_sized(file)]
        merged: Iterable[Family] = multiprocess.MultiProcessCollector.merge(sized)
        return merged


def _is_sized(file: Path) -> bool:
    try:
        return file.stat().st_size > 0
    except FileNotFoundError:  # a stopped worker's live gauges, removed since the glob
        return False


class Metrics:
    def __init__(self, settings: Settings) -> None:
        mappings = settings.user_id_mappings
        self._users = {mappings.default_user_id}
        self._users |= {p.user_id for p in mappings.header_patterns if "{" not in p.user_id}
        self._users |= {k.user_id for k in settings.client_keys if k.user_id}
        self._models = {m.model_name for m in settings.litellm.models}
        self.registry = CollectorRegistry()
        r = self.registry
        # In one process, requests are counted and timed in plain numbers (tallies.py),
        # moved into the metrics below whenever the registry is read: this first.
        self._shared = MULTIPROCESS_DIRECTORY in os.environ
        self._tallies = Tallies()
        if not self._shared:
            r.register(TallyFlush(self._tallies))  # type: ignore[arg-type]
        self.requests = Counter(
            "memory_proxy_requests",
            "Forwarded requests by user, model and HTTP status.",
            ["user", "model", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "memory_proxy_request_seconds",
            "Whole request time, through the last byte.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.first_byte = Histogram(
            "memory_proxy_time_to_first_byte_seconds",
            "Time until the first body byte from LiteLLM.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "memory_proxy_requests_in_flight",
            "Requests being forwarded now.",
            registry=r,
            multiprocess_mode="livesum",
        )
        # Counted here, and read by the gauge when scraped: a gauge's increment takes a
        # lock and four calls. Workers (--workers) each keep theirs in the shared files.
        self._in_flight = 0
        if not self._shared:
            self.in_flight.set_function(lambda: self._in_flight)
        self.upstream_errors = Counter(
            "memory_proxy_upstream_errors",
            "LiteLLM unavailable, failed, or cut an answer short.",
            ["outcome"],
            registry=r,
        )
        self.store_errors = Counter(
            "memory_proxy_memory_store_errors",
            "Memory store failures (memory degraded), by operation: load and append (a "
            "session's history), purge (expired sessions), search (recall), "
            "placements_read and placements_write (where recalled blocks went).",
            ["operation"],
            registry=r,
        )
        for operation in STORE_OPERATIONS:  # every series there from the start, at 0
            self.store_errors.labels(operation)
        self.usage_records_dropped = Counter(
            "memory_proxy_usage_records_dropped",
            "Usage records lost: the write queue was full or the usage log failed.",
            registry=r,
        )
        self.memories_dropped = Counter(
            "memory_proxy_memories_dropped",
            "Long-term memories lost: the write queue was full or the memory index failed.",
            registry=r,
        )
        self.recall_timeouts = Counter(
            "memory_proxy_recall_timeouts",
            "Recall searches given up as too slow, the request going on without them "
            "(with recall.backend both: Supermemory's part, the local hits kept).",
            registry=r,
        )
        self.redactions = Counter(
            "memory_proxy_redactions",
            "Secrets replaced by a marker before memory kept a text, by kind.",
            ["kind"],
            registry=r,
        )
        self.embeddings_late = Counter(
            "memory_proxy_recall_embeddings_late",
            "Questions whose embedding (recall.embedding_model) was not back within "
            "recall.timeout_ms: recalled by their words alone.",
            registry=r,
        )
        self.embedding_failures = Counter(
            "memory_proxy_embedding_failures",
            "Batches of memories LiteLLM failed to embed after retries (tried again later).",
            registry=r,
        )
        self.recall_skipped = Counter(
            "memory_proxy_recall_skipped",
            "Recall searches not made, the request going on without them at once, by "
            "reason: busy (the index had more searches waiting than it could finish within "
            "recall.timeout_ms).",
            ["reason"],
            registry=r,
        )
        self.pruned = Counter(
            "memory_proxy_pruned",
            "What memory dropped to stay in its bounds, by what: old_memories "
            "(memory.retention_days), memories_over_max_mb, session_messages "
            "(memory.max_session_messages), expired_sessions (memory.ttl_seconds).",
            ["what"],
            registry=r,
        )
        self.rate_limited = Counter(
            "memory_proxy_rate_limited", "Requests refused by the rate limit.", registry=r
        )
        self.malformed_bodies = Counter(
            "memory_proxy_malformed_bodies",
            "JSON requests that did not parse, or that memory or usage could not rewrite.",
            registry=r,
        )
        self.litellm_restarts = Counter(
            "memory_proxy_litellm_restarts", "LiteLLM restarts by the supervisor.", registry=r
        )
        self.litellm_ready = Gauge(
            "memory_proxy_litellm_ready",
            "1 when LiteLLM answers its readiness probe.",
            registry=r,
            multiprocess_mode="livemax",
        )

        self._requests = _Children(self.requests)
        # Each request's (user id, model, status) straight to its child, and its model
        # to its histograms' children: the label lookups once per key.
        self._counted: dict[tuple[str | None, str | None, int], Counter | CountTally] = {}
        self._timed: dict[str | None, tuple[Timing, Timing]] = {}  # by model
        self._latency = _Children(self.latency)
        self._first_byte = _Children(self.first_byte)
        self._redactions = _Children(self.redactions)
        self._store_errors = _Children(self.store_errors)

    def user_label(self, user_id: str) -> str:
        return user_id if user_id in self._users else OTHER

    def model_label(self, model: str | None) -> str:
        if model is None:
            return "none"
        return model if model in self._models else OTHER

    def count(self, user_id: str | None, model: str | None, status: int) -> None:
        """One request answered, forwarded or refused."""
        key = (user_id, model, status)
        child = self._counted.get(key)
        if child is None:
            label = (self.user_label(user_id or ""), self.model_label(model), str(status))
            child = self._counting(self._requests(*label))
            if len(self._counted) < MAX_COUNTED_KEYS:  # ids are the clients': bounded here
                self._counted[key] = child
        child.inc()

    def redacted(self, kind: str) -> None:
        """One secret kept out of memory (kinds are the built-in ones and the configured
        patterns' names: bounded)."""
        self._redactions(kind).inc()

    def store_failed(self, operation: StoreOperation) -> None:
        """One operation of memory's store failed (or was given up): memory went on
        without it."""
        self._store_errors(operation).inc()

    def count_pruned(self, what: str, count: int) -> None:
        """`count` of `what` dropped by memory's bounds (a fixed set of kinds)."""
        self.pruned.labels(what).inc(count)

    def forwarding(self, change: int) -> None:
        """A request began (1) or ended (-1) being forwarded."""
        self._in_flight += change
        if self._shared:
            self.in_flight.inc(change)

    def requests_in_flight(self) -> int:
        """This process's requests in flight, as the gauge counts them."""
        return self._in_flight

    def observe(
        self, model: str | None, seconds: float, first_byte: float | None, outcome: str
    ) -> None:
        """One forwarded request's times, and its failure if LiteLLM failed."""
        histograms = self._timed.get(model)
        if histograms is None:
            label = self.model_label(model)
            histograms = (
                self._timing(self._latency(label)),
                self._timing(self._first_byte(label)),
            )
            if len(self._timed) < MAX_COUNTED_KEYS:  # model names are the clients' too
                self._timed[model] = histograms
        histograms[0].observe(seconds)
        if first_byte is not None:
            histograms[1].observe(first_byte)
        if outcome.startswith("upstream_"):
            self.upstream_errors.labels(outcome).inc()

    def _counting(self, child: Counter) -> Counter | CountTally:
        """What counts for `child`: its tally, or itself when workers share the values."""
        return child if self._shared else self._tallies.counter(child)

    def _timing(self, child: Histogram) -> Timing:
        return child if self._shared else self._tallies.histogram(child)

    def exposition(self) -> bytes:
        if MULTIPROCESS_DIRECTORY in os.environ:
            merged = CollectorRegistry()
            merged.register(_WorkersCollector(os.environ[MULTIPROCESS_DIRECTORY]))
            return generate_latest(merged)
        return generate_latest(self.registry)

    @staticmethod
    def process_stopped() -> None:
        """A worker's live gauges leave the sum when it stops."""
        if MULTIPROCESS_DIRECTORY in os.environ:
            multiprocess.mark_process_dead(os.getpid())
