"""Settings of long-term memory: which headers name a conversation, how a request's
project is found, who gets which memory mode (`memory.*`), and how recall behaves
(`recall.*`). Kept apart from config.py, which builds them into `Settings`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from memory_proxy.config.litellm import LiteLLMSettings
from memory_proxy.config.parsing import (
    SettingsTree,
    as_bool,
    as_positive_int,
    as_str,
    one_of,
)

# The conversation ids clients already send, first found wins: ours, Claude Code's, the
# Codex CLI's (`session-id` and `thread-id` today, `session_id` in older versions),
# LiteLLM's, and Supermemory's.
DEFAULT_SESSION_HEADERS = (
    "x-session-id",
    "x-claude-code-session-id",
    "session-id",
    "session_id",
    "thread-id",
    "x-litellm-session-id",
    "x-sm-conversation-id",
)
# A JSON string's escaped content, up to a bound: the group a body pattern captures.
_JSON_TEXT = r'((?:[^"\\]|\\.){1,1024}?)'
MEMORY_MODES = ("on", "read", "write", "off")
# A redaction pattern's name: in its marker, `[secret:NAME]`, and a metric's label.
_PATTERN_NAME = re.compile(r"^[a-z0-9][a-z0-9\-]{0,39}$")
PLACEMENTS = ("user", "system")
RECALL_BACKENDS = ("local", "supermemory", "both")


@dataclass(frozen=True)
class ProjectExtractor:
    """Where a client names its working directory: a header (its whole value, or the
    pattern's group within it), or a pattern over the raw JSON body (the group is
    JSON-escaped text, unescaped before use)."""

    header: str | None  # lower-case header name; None: the body
    pattern: re.Pattern[str] | None
    body_pattern: re.Pattern[bytes] | None
    # What every match of `body_pattern` begins with, looked for first: a body without it
    # is passed over by one bytes search, cheaper than starting the pattern's (b"": none).
    body_literal: bytes = b""

    @classmethod
    def of(cls, header: str | None, pattern: str | None) -> ProjectExtractor:
        if header is None:
            assert pattern is not None
            return cls(None, None, re.compile(pattern.encode()))
        return cls(header.lower(), re.compile(pattern) if pattern else None, None)

    @classmethod
    def over_body(cls, literal: str, rest: str) -> ProjectExtractor:
        """The body pattern `literal` (as is, not a pattern) followed by `rest`."""
        pattern = re.compile((re.escape(literal) + rest).encode())
        return cls(None, None, pattern, literal.encode())


# Where clients already say their working directory (see README, "Memory").
DEFAULT_EXTRACTORS = (
    # Claude Code 2.x: "# Environment ... - Primary working directory: /path\n"
    ProjectExtractor.over_body("Primary working directory: ", _JSON_TEXT + r'(?:\\n|")'),
    # Older Claude Code, opencode and other agents: "<env>\nWorking directory: /path\n"
    ProjectExtractor.over_body(
        "<env>", r"(?:\\n|\s)*Working directory: " + _JSON_TEXT + r'(?:\\n|")'
    ),
    # The Codex CLI: an input item "<environment_context>\n  <cwd>/path</cwd>"
    ProjectExtractor.over_body(
        "<environment_context>", r"(?:\\n|\s)*<cwd>" + _JSON_TEXT + r"</cwd>"
    ),
    # The Codex CLI's turn metadata header: {"workspaces": {"/path": {...}}}
    ProjectExtractor.of("x-codex-turn-metadata", r'"workspaces"\s*:\s*\{\s*"' + _JSON_TEXT + r'"'),
)


@dataclass(frozen=True)
class RecallSettings:
    enabled: bool = True
    backend: str = "local"  # local (the memory store's SQLite file) | supermemory | both
    placement: str = "user"  # the latest user turn (keeps prompt caching) | system
    max_tokens: int = 1000  # of recalled text in one request, about 4 characters a token
    min_score: float = 0.4  # share of the question's weight a memory must cover
    limit: int = 10  # most memories in one block, and the hits asked of the backend
    timeout_ms: int = 50  # past it the request goes on without recall
    # A model_name of LiteLLM's model_list that embeds memories and questions; None: lexical only
    embedding_model: str | None = None
    min_similarity: float = 0.4  # cosine a memory needs to pass on its meaning alone
    vector_cache_mb: int = 256  # the projects' vectors each process holds in memory, at most


def build_session_headers(tree: SettingsTree) -> tuple[str, ...]:
    return tree.get("memory.session_headers", _as_header_names, DEFAULT_SESSION_HEADERS)


def build_memory_modes(tree: SettingsTree) -> dict[str, str]:
    """`memory.modes`: user id -> on | read | write | off (YAML reads a bare on/off as
    true/false: taken as meant)."""
    modes = tree.lookup("memory.modes") or {}
    if not isinstance(modes, dict):
        raise tree.error("memory.modes", "expected a mapping of user id to on|read|write|off")
    checked = {}
    for user_id, mode in modes.items():
        mode = {True: "on", False: "off"}.get(mode, mode) if isinstance(mode, bool) else mode
        if mode not in MEMORY_MODES:
            raise tree.error(f"memory.modes.{user_id}", "expected one of on, read, write, off")
        checked[str(user_id)] = str(mode)
    return checked


def build_project_extractors(tree: SettingsTree) -> tuple[ProjectExtractor, ...]:
    where = "memory.project_extractors"
    entries = tree.lookup(where)
    if entries is None:
        return DEFAULT_EXTRACTORS
    if not isinstance(entries, list):
        raise tree.error(where, "expected a list of {header} or {pattern} entries")
    return tuple(_build_extractor(tree, f"{where}[{i}]", entry) for i, entry in enumerate(entries))


def build_redact_patterns(tree: SettingsTree) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """`memory.redact_patterns`: name -> regular expression; what it matches is replaced
    by `[secret:NAME]`. A pattern that can match nothing at all, or its own marker (it
    would redact forever), is refused."""
    where = "memory.redact_patterns"
    entries = tree.lookup(where) or {}
    if not isinstance(entries, dict):
        raise tree.error(where, "expected a mapping of name to regular expression")
    patterns = []
    for name, pattern in entries.items():
        at = f"{where}.{name}"
        if not isinstance(name, str) or not _PATTERN_NAME.match(name):
            raise tree.error(at, "a name is 1-40 lower-case letters, digits or '-'")
        if not isinstance(pattern, str) or not pattern:
            raise tree.error(at, "expected a regular expression")
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise tree.error(at, f"invalid regular expression: {exc}") from None
        if compiled.fullmatch(""):
            raise tree.error(at, "matches the empty string")
        if compiled.search(f"[secret:{name}]"):
            raise tree.error(at, f"matches its own marker [secret:{name}]")
        patterns.append((name, compiled))
    return tuple(patterns)


def build_recall(tree: SettingsTree, litellm: LiteLLMSettings) -> RecallSettings:
    d = RecallSettings()
    backend = tree.get("recall.backend", one_of(RECALL_BACKENDS), d.backend)
    if backend != "local" and not tree.lookup("supermemory.api_key"):
        raise tree.error("recall.backend", f"{backend} needs supermemory.api_key (is it set?)")
    return RecallSettings(
        enabled=tree.get("recall.enabled", as_bool, d.enabled),
        backend=backend,
        placement=tree.get("recall.placement", one_of(PLACEMENTS), d.placement),
        max_tokens=tree.get("recall.max_tokens", as_positive_int, d.max_tokens),
        min_score=tree.get("recall.min_score", _as_score, d.min_score),
        limit=tree.get("recall.limit", as_positive_int, d.limit),
        timeout_ms=tree.get("recall.timeout_ms", as_positive_int, d.timeout_ms),
        embedding_model=_embedding_model(tree, litellm),
        min_similarity=tree.get("recall.min_similarity", _as_score, d.min_similarity),
        vector_cache_mb=tree.get("recall.vector_cache_mb", as_positive_int, d.vector_cache_mb),
    )


def _embedding_model(tree: SettingsTree, litellm: LiteLLMSettings) -> str | None:
    """`recall.embedding_model`: a model LiteLLM serves (its model_list's, or an alias)."""
    name = tree.get("recall.embedding_model", as_str, None)
    known = {entry.model_name for entry in litellm.models} | set(litellm.aliases)
    if name is not None and name not in known and not litellm.open_model_list:
        raise tree.error("recall.embedding_model", f"{name!r} is not a model_name of model_list")
    routed = {entry.model_name for entry in litellm.models if entry.supermemory_routed}
    if name in routed:
        raise tree.error("recall.embedding_model", f"{name!r} is routed to Supermemory")
    return name


def _build_extractor(tree: SettingsTree, at: str, entry: Any) -> ProjectExtractor:
    if not isinstance(entry, dict):
        raise tree.error(at, "expected a mapping with header and/or pattern")
    header, pattern = tree.field(at, entry, "header"), tree.field(at, entry, "pattern")
    if header is None and pattern is None:
        raise tree.error(at, "expected header, pattern or both")
    for key, value in (("header", header), ("pattern", pattern)):
        if value is not None and (not isinstance(value, str) or not value):
            raise tree.error(f"{at}.{key}", "expected a non-empty string")
    if pattern is not None:
        try:
            groups = re.compile(pattern).groups
        except re.error as exc:
            raise tree.error(f"{at}.pattern", f"invalid regular expression: {exc}") from None
        if groups != 1:
            raise tree.error(f"{at}.pattern", f"expected one group (has {groups})")
    return ProjectExtractor.of(header, pattern)


def _as_header_names(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise TypeError("expected a list of header names")
    return tuple(as_str(name).strip().lower() for name in value)


def _as_score(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError("expected a number from 0 to 1")
    number = float(value)
    if not 0 <= number <= 1:
        raise ValueError("expected a number from 0 to 1")
    return number
