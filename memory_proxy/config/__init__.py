"""Typed settings, loaded once from the config.yaml shared with LiteLLM.

Priority: command line > environment > config file > defaults. Every problem is a
`ConfigError` naming the key and where its value came from, so the launcher can exit
non-zero before anything listens or is spawned.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memory_proxy.config.litellm import LiteLLMSettings as LiteLLMSettings
from memory_proxy.config.litellm import ModelEntry as ModelEntry
from memory_proxy.config.litellm import build_litellm, unknown_litellm_params
from memory_proxy.config.parsing import ConfigError as ConfigError
from memory_proxy.config.parsing import (
    SettingsTree,
    as_bool,
    as_http_url,
    as_port,
    as_positive_float,
    as_positive_int,
    as_str,
    one_of,
    read_yaml,
)
from memory_proxy.config.postgres import build_postgres_url, postgres_password
from memory_proxy.config.private_models import build_private_models
from memory_proxy.config.recall import (
    DEFAULT_EXTRACTORS,
    DEFAULT_SESSION_HEADERS,
    ProjectExtractor,
    RecallSettings,
    build_memory_modes,
    build_project_extractors,
    build_recall,
    build_redact_patterns,
    build_session_headers,
)
from memory_proxy.config.security import SecuritySettings, build_security

MEMORY_STORES = ("sqlite", "postgres", "redis", "memory")
# A header pattern's `name`: shown as the client in usage, the dashboard and recalled memories.
CLIENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+\-]{0,63}\Z")
LOG_FORMATS = ("text", "json")
DEFAULT_SUPERMEMORY_URL = "https://api.supermemory.ai"

# Environment variable -> dotted config key it overrides (names from the seed documents).
ENVIRONMENT_OVERRIDES: dict[str, str] = {
    "LITELLM_BASE_URL": "proxy.litellm_url",
    "PROXY_HOST": "proxy.host",
    "PROXY_PORT": "proxy.port",
    "REDIS_URL": "memory.redis_url",
    "MEMORY_POSTGRES_URL": "memory.postgres_url",
    "MEMORY_TTL_SECONDS": "memory.ttl_seconds",
    "MAX_CONTEXT_MESSAGES": "memory.max_context_messages",
    "ENABLE_RATE_LIMITING": "rate_limit.enabled",
    "MAX_REQUESTS_PER_MINUTE": "rate_limit.requests_per_minute",
    "SUPERMEMORY_API_KEY": "supermemory.api_key",
    "LITELLM_MASTER_KEY": "auth.upstream_key",
}


@dataclass(frozen=True)
class HeaderPattern:
    """One `user_id_mappings.header_patterns` entry, its regular expression compiled once."""

    header: str  # lower-case header name
    pattern: re.Pattern[str]
    user_id: str  # may hold "{group}" placeholders filled from the match's named groups
    name: str = ""  # the client's name; "" (not configured): the user_id as written

    @property
    def client_name(self) -> str:
        return self.name or self.user_id


@dataclass(frozen=True)
class UserIdMappings:
    custom_header: str = "x-memory-user-id"
    header_patterns: tuple[HeaderPattern, ...] = ()
    default_user_id: str = "default-dev"


@dataclass(frozen=True)
class MemorySettings:
    enabled: bool = True
    store: str = "sqlite"
    sqlite_path: Path = Path("data/memory.sqlite3")
    redis_url: str = "redis://127.0.0.1:6379/0"
    postgres_url: str | None = None  # with store: postgres (config/postgres.py)
    ttl_seconds: int = 3600
    max_context_messages: int = 20
    max_context_tokens: int = 8000
    session_headers: tuple[str, ...] = DEFAULT_SESSION_HEADERS
    project_extractors: tuple[ProjectExtractor, ...] = DEFAULT_EXTRACTORS
    modes: dict[str, str] = field(default_factory=dict)  # user id -> on | read | write | off
    redact: bool = True  # secrets replaced by markers before anything is kept
    redact_patterns: tuple[tuple[str, re.Pattern[str]], ...] = ()  # (name, expression)
    private_models: frozenset[str] = frozenset()  # model_names kept from hosted models
    retention_days: float | None = None  # long-term memories older are dropped (None: kept)
    max_mb: float | None = None  # the SQLite file's bytes in use, oldest memories dropped past it
    max_session_messages: int = 200  # a session's newest kept, the older dropped


@dataclass(frozen=True)
class RateLimitSettings:
    enabled: bool = False
    requests_per_minute: int = 60
    burst: int = 10


@dataclass(frozen=True)
class UsageSettings:
    enabled: bool = True
    max_records: int = 100_000  # the oldest are dropped past this


@dataclass(frozen=True)
class ClientKey:
    """A key a client may present to the proxy, optionally bound to a user id."""

    key: str
    user_id: str | None = None


@dataclass(frozen=True)
class Settings:
    config_path: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8764
    litellm_url: str = "http://127.0.0.1:8765"
    upstream_key: str | None = None
    client_keys: tuple[ClientKey, ...] = ()
    upstream_wait_seconds: float = 15.0
    upstream_first_byte_timeout_seconds: float = 600.0  # LLMs may think for minutes
    upstream_idle_timeout_seconds: float = 300.0
    log_format: str = "text"
    supermemory_api_key: str | None = None
    supermemory_url: str = DEFAULT_SUPERMEMORY_URL  # its API, for recall.backend supermemory|both
    metrics_public: bool = False  # /metrics for anyone, not only authenticated callers
    security: SecuritySettings = field(default_factory=SecuritySettings)
    user_id_mappings: UserIdMappings = field(default_factory=UserIdMappings)
    memory: MemorySettings = field(default_factory=MemorySettings)
    recall: RecallSettings = field(default_factory=RecallSettings)
    rate_limit: RateLimitSettings = field(default_factory=RateLimitSettings)
    usage: UsageSettings = field(default_factory=UsageSettings)
    litellm: LiteLLMSettings = field(default_factory=LiteLLMSettings)
    warnings: tuple[str, ...] = ()  # keys of the file that nothing reads, and why

    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in a log line."""
        keys = (
            self.upstream_key,
            self.supermemory_api_key,
            *(k.key for k in self.client_keys),
            postgres_password(self.memory.postgres_url),
        )
        return tuple(s for s in keys if s)


def load_settings(
    config_path: Path | None,
    *,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Read the config file, apply environment and command-line overrides, validate.

    `overrides` maps dotted keys (``proxy.port``) to command-line values; None values are
    ignored so that unset click options fall through to the lower priorities.
    """
    environ = os.environ if environ is None else environ
    raw = read_yaml(config_path) if config_path else {}
    directory = config_path.resolve().parent if config_path else None
    tree = SettingsTree(raw, str(config_path) if config_path else "defaults", environ, directory)
    for name, key in ENVIRONMENT_OVERRIDES.items():
        if environ.get(name):
            tree.override(key, environ[name], f"environment variable {name}")
    for key, value in (overrides or {}).items():
        if value is not None:
            tree.override(key, value, "command line")
    settings = _build_settings(tree, config_path)
    ignored = []
    if settings.memory.store == "postgres" and settings.memory.max_mb is not None:
        ignored.append(
            f"{tree.source('memory.max_mb')}: memory.max_mb: ignored with memory.store: "
            "postgres (the database's disk is its owner's to bound; retention_days applies)"
        )
    warnings = (*tree.unknown_keys(), *unknown_litellm_params(tree), *ignored)
    return dataclasses.replace(settings, warnings=warnings)


def _build_settings(tree: SettingsTree, config_path: Path | None) -> Settings:
    defaults = Settings()
    litellm = build_litellm(tree)
    return Settings(
        config_path=config_path,
        host=tree.get("proxy.host", as_str, defaults.host),
        port=tree.get("proxy.port", as_port, defaults.port),
        litellm_url=tree.get("proxy.litellm_url", as_http_url, defaults.litellm_url),
        upstream_key=tree.get("auth.upstream_key", as_str, None),
        client_keys=_build_client_keys(tree),
        upstream_wait_seconds=tree.get(
            "proxy.upstream_wait_seconds", as_positive_float, defaults.upstream_wait_seconds
        ),
        upstream_first_byte_timeout_seconds=tree.get(
            "proxy.upstream_first_byte_timeout_seconds",
            as_positive_float,
            defaults.upstream_first_byte_timeout_seconds,
        ),
        upstream_idle_timeout_seconds=tree.get(
            "proxy.upstream_idle_timeout_seconds",
            as_positive_float,
            defaults.upstream_idle_timeout_seconds,
        ),
        log_format=tree.get("proxy.log_format", one_of(LOG_FORMATS), defaults.log_format),
        supermemory_api_key=tree.get("supermemory.api_key", as_str, None),
        supermemory_url=tree.get("supermemory.base_url", as_http_url, defaults.supermemory_url),
        metrics_public=tree.get("metrics.public", as_bool, defaults.metrics_public),
        security=build_security(tree),
        user_id_mappings=_build_user_id_mappings(tree),
        memory=_build_memory(tree, litellm),
        recall=build_recall(tree, litellm),
        rate_limit=_build_rate_limit(tree),
        usage=UsageSettings(
            enabled=tree.get("usage.enabled", as_bool, UsageSettings.enabled),
            max_records=tree.get("usage.max_records", as_positive_int, UsageSettings.max_records),
        ),
        litellm=litellm,
    )


def _build_user_id_mappings(tree: SettingsTree) -> UserIdMappings:
    defaults = UserIdMappings()
    entries = tree.lookup("user_id_mappings.header_patterns") or []
    if not isinstance(entries, list):
        raise tree.error("user_id_mappings.header_patterns", "expected a list of patterns")
    patterns = tuple(_build_header_pattern(tree, i, entry) for i, entry in enumerate(entries))
    return UserIdMappings(
        custom_header=tree.get(
            "user_id_mappings.custom_header", as_str, defaults.custom_header
        ).lower(),
        header_patterns=patterns,
        default_user_id=tree.get(
            "user_id_mappings.default_user_id", as_str, defaults.default_user_id
        ),
    )


def _build_header_pattern(tree: SettingsTree, index: int, entry: Any) -> HeaderPattern:
    where = f"user_id_mappings.header_patterns[{index}]"
    if not isinstance(entry, dict):
        raise tree.error(where, "expected a mapping with header, pattern and user_id")
    values: dict[str, str] = {}
    for key in ("header", "pattern", "user_id"):
        value = tree.field(where, entry, key)
        if not isinstance(value, str) or not value:
            raise tree.error(f"{where}.{key}", "expected a non-empty string")
        values[key] = value
    try:
        compiled = re.compile(values["pattern"])
    except re.error as exc:
        raise tree.error(f"{where}.pattern", f"invalid regular expression: {exc}") from None
    unknown = set(re.findall(r"{(\w+)}", values["user_id"])) - set(compiled.groupindex)
    if unknown:
        raise tree.error(
            f"{where}.user_id",
            f"uses {', '.join(sorted(unknown))} but the pattern has no such named group",
        )
    name = tree.field(where, entry, "name")
    if name is not None and (not isinstance(name, str) or not CLIENT_NAME.match(name)):
        rule = "expected 1-64 letters, digits or . _ : @ + - (a letter or digit first)"
        raise tree.error(f"{where}.name", rule)
    return HeaderPattern(values["header"].lower(), compiled, values["user_id"], name or "")


def _build_client_keys(tree: SettingsTree) -> tuple[ClientKey, ...]:
    entries = tree.lookup("auth.client_keys") or []
    if not isinstance(entries, list):
        raise tree.error("auth.client_keys", "expected a list of {key, user_id} entries")
    keys = []
    for index, entry in enumerate(entries):
        where = f"auth.client_keys[{index}]"
        if not isinstance(entry, dict):
            raise tree.error(where, "expected a mapping with key and optional user_id")
        key = tree.field(where, entry, "key")
        if not isinstance(key, str) or len(key) < 16:
            raise tree.error(
                f"{where}.key", "expected a secret of at least 16 characters (is it set?)"
            )
        user_id = tree.field(where, entry, "user_id")
        if user_id is not None and not isinstance(user_id, str):
            raise tree.error(f"{where}.user_id", "expected a string")
        keys.append(ClientKey(key, user_id))
    return tuple(keys)


def _build_memory(tree: SettingsTree, litellm: LiteLLMSettings) -> MemorySettings:
    d = MemorySettings()
    store = tree.get("memory.store", one_of(MEMORY_STORES), d.store)
    return MemorySettings(
        enabled=tree.get("memory.enabled", as_bool, d.enabled),
        store=store,
        sqlite_path=tree.path("memory.sqlite_path", d.sqlite_path),
        redis_url=tree.get("memory.redis_url", as_str, d.redis_url),
        postgres_url=build_postgres_url(tree, needed=store == "postgres"),
        ttl_seconds=tree.get("memory.ttl_seconds", as_positive_int, d.ttl_seconds),
        max_context_messages=tree.get(
            "memory.max_context_messages", as_positive_int, d.max_context_messages
        ),
        max_context_tokens=tree.get(
            "memory.max_context_tokens", as_positive_int, d.max_context_tokens
        ),
        session_headers=build_session_headers(tree),
        project_extractors=build_project_extractors(tree),
        modes=build_memory_modes(tree),
        redact=tree.get("memory.redact", as_bool, d.redact),
        redact_patterns=build_redact_patterns(tree),
        private_models=build_private_models(tree, litellm),
        retention_days=tree.get("memory.retention_days", _as_finite_positive, None),
        max_mb=tree.get("memory.max_mb", _as_finite_positive, None),
        max_session_messages=tree.get(
            "memory.max_session_messages", _as_whole_exchange, d.max_session_messages
        ),
    )


def _as_finite_positive(value: Any) -> float:
    number = as_positive_float(value)
    if not math.isfinite(number):
        raise ValueError("expected a positive number")
    return number


def _as_whole_exchange(value: Any) -> int:
    """At least one question and its answer."""
    number = as_positive_int(value)
    if number < 2:
        raise ValueError("expected a whole number of 2 or more")
    return number


def _build_rate_limit(tree: SettingsTree) -> RateLimitSettings:
    d = RateLimitSettings()
    return RateLimitSettings(
        enabled=tree.get("rate_limit.enabled", as_bool, d.enabled),
        requests_per_minute=tree.get(
            "rate_limit.requests_per_minute", as_positive_int, d.requests_per_minute
        ),
        burst=tree.get("rate_limit.burst", as_positive_int, d.burst),
    )
