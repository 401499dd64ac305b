"""Which callers get LiteLLM's credentials injected (closing the "authentication gap").

IDEs often cannot send an API key to a local endpoint. A caller on a loopback address is
trusted: whatever credential it sent is replaced by the upstream key. Any other caller's
headers pass through untouched, so LiteLLM judges its key itself; the proxy never hands
LiteLLM's key to a caller it has not authenticated.
"""

from __future__ import annotations

import ipaddress

CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key"})


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def with_upstream_credentials(
    headers: list[tuple[str, str]], client_host: str | None, upstream_key: str | None
) -> list[tuple[str, str]]:
    if not upstream_key or not is_loopback(client_host):
        return headers
    kept = [(name, value) for name, value in headers if name not in CREDENTIAL_HEADERS]
    kept.append(("authorization", f"Bearer {upstream_key}"))
    return kept
