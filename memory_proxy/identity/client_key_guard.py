"""The last guard before LiteLLM: none of our client keys leaves the proxy, wherever a
client put it, whoever the caller.

A key is looked for anywhere in a value — as sent (keys are case-sensitive), percent-encoded
(any of its characters, hex in either case: a cookie, a `?key=` copied into a header), and
inside `Basic` credentials (base64 of `user:key`, what a client sends for a URL with the
key as its password).

- A header carrying one is dropped (a cookie with the key in it goes whole: its other parts
  are not ours to rewrite).
- A URL carrying one is refused, not edited: the key may sit in any parameter or in the
  path, percent-encoded or not, and cutting it out would send LiteLLM a request the client
  never made (a `?key=` that authenticates Google-style clients would become an anonymous
  call); a key in a URL also lands in access logs and shell histories, so the client must
  be told to send it in a header instead.

Cost: nothing without client keys. With them, the values are joined and each key is
searched for once (a C substring search): about 3 µs for a Claude Code request's headers
and two keys; only a hit, a `%` or `Basic` credentials lead to more.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from urllib.parse import unquote_to_bytes

from memory_proxy.config import Settings

Headers = list[tuple[bytes, bytes]]

KEY_IN_URL = (
    "a client key was found in the URL; send it in a header instead "
    "(Authorization: Bearer …, x-api-key or x-goog-api-key): URLs end up in logs"
)
_BASIC = b"basic "
_SEPARATOR = b"\n"  # never inside a header value, so no match spans two of them


class ClientKeyGuard:
    """Finds our client keys in header values and URLs. `own_values` are the header values
    the proxy itself sets from its configuration (LiteLLM's key, Supermemory's): never
    dropped, even should a client key be part of one."""

    def __init__(self, keys: Iterable[str], own_values: Iterable[bytes] = ()) -> None:
        self._keys = tuple(key.encode() for key in keys if key)
        self._own = frozenset(own_values)

    @classmethod
    def from_settings(cls, settings: Settings) -> ClientKeyGuard:
        own = [
            *([b"Bearer " + settings.upstream_key.encode()] if settings.upstream_key else []),
            *([settings.supermemory_api_key.encode()] if settings.supermemory_api_key else []),
        ]
        return cls((k.key for k in settings.client_keys), own)

    def in_url(self, raw_path: bytes, query: bytes) -> bool:
        return bool(self._keys) and self._carries_key(raw_path + b"?" + query)

    def holds_key(self, value: str) -> bool:
        """Whether one value (a request id, say) carries a client key."""
        return bool(self._keys) and self._carries_key(value.encode("latin-1"))

    def without_keys(self, headers: Headers) -> Headers:
        """The headers minus every one whose value carries a client key."""
        if not self._keys:
            return headers
        joined = _SEPARATOR.join([value for _, value in headers])
        if not (self._carries_key(joined) or _BASIC in joined.lower()):
            return headers
        return [
            (name, value)
            for name, value in headers
            if value in self._own or not self._carries_key(value, basic=_is_basic(value))
        ]

    def _carries_key(self, data: bytes, *, basic: bool = False) -> bool:
        readings = [data]
        if b"%" in data:
            readings.append(unquote_to_bytes(data))
        if basic:
            readings.append(_basic_credentials(data))
        return any(key in reading for reading in readings for key in self._keys)


def _is_basic(value: bytes) -> bool:
    return value[: len(_BASIC)].lower() == _BASIC


def _basic_credentials(value: bytes) -> bytes:
    """`user:password` of Basic credentials; b"" when they are not base64."""
    token = value[len(_BASIC) :].strip()
    try:
        return base64.b64decode(token + b"=" * (-len(token) % 4), validate=False)
    except (binascii.Error, ValueError):
        return b""
