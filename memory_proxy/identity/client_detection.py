"""Who is calling: the memory scope (user id) and conversation (session id) of a request.

Header values come from the network and are untrusted: only a bounded prefix is matched
against the configured patterns, and ids that reach memory keys or Supermemory are
restricted to a safe alphabet and length.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from memory_proxy.config import UserIdMappings
from memory_proxy.errors import Refusal

MAX_MATCHED_HEADER_LENGTH = 1024
MAX_KNOWN_CLIENTS = 1024  # header values whose user is kept (UserDetector)
# \Z, not $: `$` also matches before a final newline, and an id ends up in a header.
# Anchored in the pattern itself, so `.match` and `.fullmatch` both check the whole id.
VALID_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+\-]{0,127}\Z")
ID_RULE = "1 to 128 letters, digits or . _ : @ + - (starting with a letter or digit)"
# What HTTP allows around a header value (RFC 9110 OWS); uvicorn's httptools parser keeps
# the trailing part. Nothing else is stripped: a line break must fail the check, not vanish.
OPTIONAL_WHITESPACE = " \t"
# User ids of callers whose key passes through to LiteLLM (auth.pass_through_user_id):
# no header, pattern or setting may produce one, so only that key's holder reaches it.
PASS_THROUGH_PREFIX = "key-"


class InvalidIdentifier(Refusal):
    """A client-supplied user or session id that cannot be used as a memory key: 400."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)


@dataclass(frozen=True)
class PatternMatch:
    header: str
    value: str
    pattern: str
    user_id: str
    name: str  # the client's name (the entry's `name`, else its user_id as written)


@dataclass(frozen=True)
class ClientIdentity:
    user_id: str
    matched_pattern: PatternMatch | None
    custom_header_present: bool
    # The kind of key that fixed the user id ("client-key", "pass-through-key"), or None.
    bound_to: str | None = None

    @property
    def bound_to_key(self) -> bool:
        return self.bound_to is not None

    @property
    def client(self) -> str:
        """How the caller was recognised, for usage analytics and memories: the matching
        pattern's name."""
        if self.bound_to:
            return self.bound_to
        if self.custom_header_present:
            return "custom-header"
        return self.matched_pattern.name if self.matched_pattern else "default"

    @property
    def is_default(self) -> bool:
        return (
            self.matched_pattern is None
            and not self.custom_header_present
            and not self.bound_to_key
        )


def detect_user(headers: Mapping[str, str], mappings: UserIdMappings) -> ClientIdentity:
    """Custom header wins; then the first matching pattern; then the default user id.

    `headers` must have lower-case names (Starlette's `Headers` and our own dicts do).
    """
    explicit = headers.get(mappings.custom_header)
    if explicit is not None:
        user_id = _checked_user_id(explicit.strip(OPTIONAL_WHITESPACE), mappings.custom_header)
        return ClientIdentity(user_id, None, True)
    for entry in mappings.header_patterns:
        value = headers.get(entry.header)
        if value is None:
            continue
        value = value[:MAX_MATCHED_HEADER_LENGTH]
        found = entry.pattern.search(value)
        if found is None:
            continue
        groups = {name: text or "" for name, text in found.groupdict().items()}
        user_id = entry.user_id.format_map(groups)
        if not _is_usable_user_id(user_id):
            continue  # a named group captured something unusable as an id: try the next pattern
        matched = PatternMatch(
            entry.header, value, entry.pattern.pattern, user_id, entry.client_name
        )
        return ClientIdentity(user_id, matched, False)
    return ClientIdentity(mappings.default_user_id, None, False)


class UserDetector:
    """`detect_user`, its answers kept by the values of the headers the patterns read: a
    client sends the same User-Agent on every request, so the patterns run once per value
    seen, not once per request. Bounded: the values are the clients'."""

    def __init__(self, mappings: UserIdMappings) -> None:
        self._mappings = mappings
        self._read = tuple(dict.fromkeys(entry.header for entry in mappings.header_patterns))
        self._known: dict[tuple[str | None, ...], ClientIdentity] = {}

    def __call__(self, headers: Mapping[str, str]) -> ClientIdentity:
        if self._mappings.custom_header in headers:
            return detect_user(headers, self._mappings)  # checked each time: it may refuse
        values = tuple([headers.get(name) for name in self._read])
        identity = self._known.get(values)
        if identity is None:
            identity = detect_user(headers, self._mappings)
            if len(self._known) < MAX_KNOWN_CLIENTS and _short(values):
                self._known[values] = identity
        return identity


def _short(values: tuple[str | None, ...]) -> bool:
    return all(value is None or len(value) <= MAX_MATCHED_HEADER_LENGTH for value in values)


def detect_session(
    headers: Mapping[str, str], session_headers: tuple[str, ...], body: Any = None
) -> str | None:
    """The conversation this request belongs to, or None when the client names none: the
    first of `session_headers` it sends, else `metadata.session_id` in the body."""
    for name in session_headers:
        value = headers.get(name)
        if value:
            return checked_id(value.strip(OPTIONAL_WHITESPACE), name)
    if isinstance(body, dict):
        metadata = body.get("metadata")
        if isinstance(metadata, dict) and isinstance(metadata.get("session_id"), str):
            return checked_id(metadata["session_id"], "metadata.session_id")
    return None


def _is_usable_user_id(value: str) -> bool:
    """A valid id outside the namespace reserved for pass-through keys."""
    return VALID_ID.match(value) is not None and not value.startswith(PASS_THROUGH_PREFIX)


def _checked_user_id(value: str, source: str) -> str:
    if value.startswith(PASS_THROUGH_PREFIX):
        raise InvalidIdentifier(
            f"{source} must not start with {PASS_THROUGH_PREFIX!r} (reserved for callers "
            "whose key passes through to LiteLLM)"
        )
    return checked_id(value, source)


def checked_id(value: str, source: str) -> str:
    """`value` if it can be a memory key (user, session or project id); else refused."""
    if VALID_ID.match(value) is None:
        raise InvalidIdentifier(f"{source} must be {ID_RULE}")
    return value
