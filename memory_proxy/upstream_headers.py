"""Every header LiteLLM receives is decided here, and nowhere else: this is the boundary
between what a client sends and what leaves with LiteLLM's key (README "Security").

From the client's headers, for one identified request:

1. dropped: hop-by-hop headers and any the Connection header names (RFC 9110 7.6.1); those
   the proxy sets itself (Host, the Content-Length of a body it buffered, x-request-id)
   and its memory controls (`x-memory*`); every `x-sm-*` and `x-supermemory-*`, which only
   the proxy sets; and a trusted caller's credentials, when they are to be replaced;
2. added: the request's id; LiteLLM's key (`auth.upstream_key`) for a trusted caller; for a
   Supermemory-routed model asked by a trusted caller, the user's scope and Supermemory's
   key;
3. dropped: any header carrying one of our client keys anywhere in its value, whoever sent
   it (client_key_guard.py);
4. refused: a name or value holding CR, LF or NUL (`UnsafeHeader`, a 400): nothing is sent.

Credentials, by trust (identity/auth.py): a trusted caller's are replaced by LiteLLM's key;
without one, a local program's own are left for LiteLLM and a client key's caller's are
removed; a pass-through caller's go as sent, for LiteLLM to judge.
"""

from __future__ import annotations

from memory_proxy.config import Settings
from memory_proxy.forwarding.forwarder import HOP_BY_HOP_HEADERS, with_connection_named
from memory_proxy.forwarding.header_safety import check_headers
from memory_proxy.forwarding.upstream import Headers
from memory_proxy.identity.auth import CREDENTIAL_HEADERS
from memory_proxy.identity.client_key_guard import ClientKeyGuard
from memory_proxy.identity.identification import REQUEST_ID_HEADER, Identification
from memory_proxy.identity.memory_mode import MEMORY_CONTROL_HEADERS
from memory_proxy.identity.supermemory import (
    API_KEY_HEADER,
    CONVERSATION_HEADER,
    SUPERMEMORY_HEADER_PREFIXES,
    USER_ID_HEADER,
)

_REQUEST_ID = REQUEST_ID_HEADER.encode()
# Set by the proxy (or its upstream client) for LiteLLM, never taken from the client as is.
_REPLACED = HOP_BY_HOP_HEADERS | {b"host", b"content-length", _REQUEST_ID, *MEMORY_CONTROL_HEADERS}


class UpstreamHeaders:
    """The headers for LiteLLM, by the configured keys: `build(...)`."""

    def __init__(
        self,
        *,
        upstream_key: str | None,
        supermemory_key: str | None,
        key_guard: ClientKeyGuard,
    ) -> None:
        self._authorization = (
            (b"authorization", b"Bearer " + upstream_key.encode()) if upstream_key else None
        )
        self._supermemory_key = supermemory_key.encode() if supermemory_key else None
        self._key_guard = key_guard
        self._dropped = {
            (streamed, replaced): _dropped(streamed_body=streamed, credentials_replaced=replaced)
            for streamed in (False, True)
            for replaced in (False, True)
        }

    @classmethod
    def from_settings(cls, settings: Settings) -> UpstreamHeaders:
        return cls(
            upstream_key=settings.upstream_key,
            supermemory_key=settings.supermemory_api_key,
            key_guard=ClientKeyGuard.from_settings(settings),
        )

    def build(self, sent: Headers, who: Identification, *, streamed_body: bool) -> Headers:
        """The headers to send for `who`, from `sent` (the client's, as the ASGI scope has
        them: lower-case names). Raises `UnsafeHeader` when one would hold CR, LF or NUL."""
        caller = who.caller
        replaced = caller.authenticated and (
            self._authorization is not None or caller.by_client_key
        )
        dropped = with_connection_named(sent, self._dropped[(streamed_body, replaced)])
        outgoing = [
            (name, value)
            for name, value in sent
            if name not in dropped and not name.startswith(SUPERMEMORY_HEADER_PREFIXES)
        ]
        outgoing.append((_REQUEST_ID, who.request_id.encode()))
        if replaced and self._authorization is not None:
            outgoing.append(self._authorization)
        if who.supermemory:
            outgoing.append((USER_ID_HEADER, who.user_id.encode()))
            if self._supermemory_key:
                outgoing.append((API_KEY_HEADER, self._supermemory_key))
            if who.session_id:
                outgoing.append((CONVERSATION_HEADER, who.session_id.encode()))
        outgoing = self._key_guard.without_keys(outgoing)
        check_headers(outgoing)
        return outgoing


def _dropped(*, streamed_body: bool, credentials_replaced: bool) -> frozenset[bytes]:
    """The client's headers that never reach LiteLLM, by name. A body streamed through
    keeps the client's Content-Length: it is its framing."""
    dropped = _REPLACED - {b"content-length"} if streamed_body else _REPLACED
    return dropped | CREDENTIAL_HEADERS if credentials_replaced else dropped
