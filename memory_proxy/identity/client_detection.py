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

MAX_MATCHED_HEADER_LENGTH = 1024
VALID_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+\-]{0,127}$")
ID_RULE = "1 to 128 letters, digits or . _ : @ + - (starting with a letter or digit)"


class InvalidIdentifier(ValueError):
    """A client-supplied user or session id that cannot be used as a memory key."""


@dataclass(frozen=True)
class PatternMatch:
    header: str
    value: str
    pattern: str
    user_id: str


@dataclass(frozen=True)
class ClientIdentity:
    user_id: str
    matched_pattern: PatternMatch | None
    custom_header_present: bool
    bound_to_key: bool = False  # fixed by the client key the caller presented

    @property
    def client(self) -> str:
        """How the caller was recognised, for usage analytics: the pattern that matched."""
        if self.bound_to_key:
            return "client-key"
        if self.custom_header_present:
            return "custom-header"
        return self.matched_pattern.pattern if self.matched_pattern else "default"

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
        return ClientIdentity(checked_id(explicit.strip(), mappings.custom_header), None, True)
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
        if VALID_ID.match(user_id) is None:
            continue  # a named group captured something unusable as an id: try the next pattern
        return ClientIdentity(
            user_id, PatternMatch(entry.header, value, entry.pattern.pattern, user_id), False
        )
    return ClientIdentity(mappings.default_user_id, None, False)


def detect_session(
    headers: Mapping[str, str], session_headers: tuple[str, ...], body: Any = None
) -> str | None:
    """The conversation this request belongs to, or None when the client names none: the
    first of `session_headers` it sends, else `metadata.session_id` in the body."""
    for name in session_headers:
        value = headers.get(name)
        if value:
            return checked_id(value.strip(), name)
    if isinstance(body, dict):
        metadata = body.get("metadata")
        if isinstance(metadata, dict) and isinstance(metadata.get("session_id"), str):
            return checked_id(metadata["session_id"], "metadata.session_id")
    return None


def checked_id(value: str, source: str) -> str:
    """`value` if it can be a memory key (user, session or project id); else refused."""
    if VALID_ID.match(value) is None:
        raise InvalidIdentifier(f"{source} must be {ID_RULE}")
    return value
