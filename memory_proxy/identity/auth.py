"""Who is authenticated, and so gets LiteLLM's key (closing the "authentication gap").

IDEs often cannot send an API key to a local endpoint. The rules:
- a caller presenting one of `auth.client_keys` is authenticated; a key bound to a user id
  fixes its identity, whatever its headers say;
- when no client keys are configured, a caller on a loopback address is authenticated;
- an authenticated caller's credential headers are replaced by the upstream key, so our
  client keys never reach LiteLLM;
- any other caller presenting a key (a LiteLLM virtual key, say) passes through untouched
  and LiteLLM judges it; a caller presenting nothing is refused (401).
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.requests import HTTPConnection

from memory_proxy.config import Settings

CREDENTIAL_HEADERS = frozenset({b"authorization", b"x-api-key"})


@dataclass(frozen=True)
class Caller:
    authenticated: bool
    presented_key: bool
    by_client_key: bool = False
    bound_user_id: str | None = None

    @property
    def refused(self) -> bool:
        return not self.authenticated and not self.presented_key


@functools.lru_cache(maxsize=1024)
def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def presented_key(headers: Mapping[str, str]) -> str | None:
    authorization = headers.get("authorization", "")
    if authorization[:7].lower() == "bearer " and authorization[7:].strip():
        return authorization[7:].strip()
    return headers.get("x-api-key") or None


def identify(headers: Mapping[str, str], client_host: str | None, settings: Settings) -> Caller:
    key = presented_key(headers)
    if key is not None:
        for client_key in settings.client_keys:
            # Compare every key in constant time: no timing hint about which one is close.
            if hmac.compare_digest(key.encode(), client_key.key.encode()):
                return Caller(True, True, True, client_key.user_id)
    if not settings.client_keys and is_loopback(client_host):
        return Caller(True, key is not None)
    return Caller(False, key is not None)


def identify_request(request: HTTPConnection, settings: Settings) -> Caller:
    """`identify` for the proxy's own endpoints."""
    return identify(request.headers, request.client.host if request.client else None, settings)


def with_upstream_credentials(
    headers: list[tuple[bytes, bytes]], caller: Caller, upstream_key: str | None
) -> list[tuple[bytes, bytes]]:
    """Authenticated callers' credentials replaced by the upstream key; others untouched.

    Without an upstream key, a local caller's own credential is left for LiteLLM; one of
    our client keys is removed all the same.
    """
    if not caller.authenticated or not (upstream_key or caller.by_client_key):
        return headers
    kept = [(name, value) for name, value in headers if name not in CREDENTIAL_HEADERS]
    if upstream_key:
        kept.append((b"authorization", b"Bearer " + upstream_key.encode()))
    return kept


def startup_problem(settings: Settings) -> str | None:
    """Why the proxy must not start as configured, or None."""
    if settings.client_keys or is_loopback(settings.host):
        return None
    return (
        f"refusing to listen on {settings.host} without client keys: anyone who can reach "
        "the port would use your LiteLLM key. Add keys to config.yaml, e.g.\n"
        "  auth:\n    client_keys:\n      - key: os.environ/MEMORY_PROXY_CLIENT_KEY\n"
        "        user_id: my-laptop   # optional: fixes the user id for this key\n"
        "or listen on 127.0.0.1."
    )
