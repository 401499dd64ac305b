"""Who is authenticated, and so gets LiteLLM's key (closing the "authentication gap").

IDEs often cannot send an API key to a local endpoint. The rules:
- a caller presenting one of `auth.client_keys` is authenticated; a key bound to a user id
  fixes its identity, whatever its headers say;
- when no client keys are configured, a caller on a loopback address is authenticated;
- an authenticated caller's credential headers are replaced by the upstream key, so our
  client keys never reach LiteLLM (upstream_headers.py);
- any other caller presenting a key (a LiteLLM virtual key, say) passes through untouched
  and LiteLLM judges it; its memory scope is a user id derived from that key, never one it
  names, and it never gets the Supermemory key;
- a caller presenting nothing, or two different credentials, is refused (401).
"""

from __future__ import annotations

import enum
import functools
import hashlib
import hmac
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from memory_proxy.config import ClientKey, Settings
from memory_proxy.identity.client_detection import PASS_THROUGH_PREFIX

RawHeaders = Iterable[tuple[bytes, bytes]]

# Every header LiteLLM reads a key from (litellm/proxy/auth/user_api_key_auth.py,
# SpecialHeaders): ours are recognised in any of them, and removed from all of them.
CREDENTIAL_HEADERS = frozenset(
    {
        b"authorization",
        b"x-api-key",
        b"api-key",
        b"x-goog-api-key",
        b"ocp-apim-subscription-key",
        b"x-litellm-api-key",
    }
)
_AUTH_SCHEMES = (b"bearer", b"basic")  # LiteLLM strips either before reading the key
NO_KEY = "an API key is required (Authorization: Bearer … or x-api-key)"
CONFLICTING_KEYS = "two different credentials were presented: send one key, in one header"


class Trust(enum.Enum):
    """How far the proxy trusts a caller (the rules above)."""

    LOCAL = "local"  # a program on this machine, when no client keys are configured
    CLIENT_KEY = "client-key"  # one of `auth.client_keys`, bound to no user
    BOUND_KEY = "bound-key"  # one of `auth.client_keys` bound to a user id: that user only
    PASS_THROUGH = "pass-through"  # a key that is not ours: LiteLLM judges it
    REFUSED = "refused"  # no key, or two different ones: a 401 wherever a caller counts


# A tuple: `in` finds a member by identity, where a set would call Enum.__hash__ (Python).
_AUTHENTICATED = (Trust.LOCAL, Trust.CLIENT_KEY, Trust.BOUND_KEY)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling, as far as trust goes; the same value for every route."""

    trust: Trust
    # The user id the presented key fixes: a bound client key's, or for a key that passes
    # through to LiteLLM, one derived from that key.
    bound_user_id: str | None = None
    refusal: str | None = None  # why a REFUSED caller gets a 401

    @property
    def authenticated(self) -> bool:
        """Trusted with LiteLLM's key, any user id and the local APIs."""
        return self.trust in _AUTHENTICATED

    @property
    def by_client_key(self) -> bool:
        return self.trust is Trust.CLIENT_KEY or self.trust is Trust.BOUND_KEY


LOCAL_CALLER = Caller(Trust.LOCAL)
_NO_KEY = Caller(Trust.REFUSED, refusal=NO_KEY)
_CONFLICTING = Caller(Trust.REFUSED, refusal=CONFLICTING_KEYS)
_CLIENT_KEY = Caller(Trust.CLIENT_KEY)


@functools.lru_cache(maxsize=1024)
def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _credential(value: bytes) -> bytes | None:
    """The key in a credential header's value, as LiteLLM would read it."""
    value = value.strip()
    scheme, _, rest = value.partition(b" ")
    if scheme.lower() in _AUTH_SCHEMES:
        return rest.strip() or None
    return value or None


def presented_credentials(headers: RawHeaders) -> set[bytes]:
    """The distinct keys in the raw headers: duplicated headers count, unlike in a dict."""
    return {
        key for name, value in headers if name in CREDENTIAL_HEADERS and (key := _credential(value))
    }


def pass_through_user_id(key: bytes) -> str:
    """A memory scope only the key's holder reaches; the key itself cannot be read back
    from it (so it may be logged). 64 bits: no two keys meet by chance."""
    return PASS_THROUGH_PREFIX + hashlib.sha256(key).hexdigest()[:16]


def identify(
    headers: RawHeaders, client_host: str | None, client_keys: tuple[ClientKey, ...]
) -> Caller:
    """`headers` as the ASGI scope has them: lower-case names, every occurrence."""
    if not client_keys and is_loopback(client_host):
        return LOCAL_CALLER
    keys = presented_credentials(headers)
    if len(keys) > 1:
        return _CONFLICTING
    if not keys:
        return _NO_KEY
    (key,) = keys
    for client_key in client_keys:
        # Constant time: no timing hint about how close a guess is.
        if hmac.compare_digest(key, client_key.key.encode()):
            if client_key.user_id:
                return Caller(Trust.BOUND_KEY, client_key.user_id)
            return _CLIENT_KEY
    return Caller(Trust.PASS_THROUGH, pass_through_user_id(key))


def startup_problem(settings: Settings) -> str | None:
    """Why the proxy must not start as configured, or None."""
    reserved = _reserved_user_id(settings)
    if reserved:
        where, user_id = reserved
        return (
            f"{where}: user id {user_id!r} starts with {PASS_THROUGH_PREFIX!r}, which is "
            "reserved for callers whose key passes through to LiteLLM; choose another"
        )
    if settings.client_keys or is_loopback(settings.host):
        return None
    return (
        f"refusing to listen on {settings.host} without client keys: anyone who can reach "
        "the port would use your LiteLLM key. Add keys to config.yaml, e.g.\n"
        "  auth:\n    client_keys:\n      - key: os.environ/MEMORY_PROXY_CLIENT_KEY\n"
        "        user_id: my-laptop   # optional: fixes the user id for this key\n"
        "or listen on 127.0.0.1."
    )


def _reserved_user_id(settings: Settings) -> tuple[str, str] | None:
    """A configured user id in the pass-through namespace: (its key, the id), or None."""
    mappings = settings.user_id_mappings
    configured = [
        ("user_id_mappings.default_user_id", mappings.default_user_id),
        *(
            (f"user_id_mappings.header_patterns[{i}].user_id", entry.user_id)
            for i, entry in enumerate(mappings.header_patterns)
        ),
        *(
            (f"auth.client_keys[{i}].user_id", key.user_id)
            for i, key in enumerate(settings.client_keys)
            if key.user_id
        ),
    ]
    return next(((w, u) for w, u in configured if u.startswith(PASS_THROUGH_PREFIX)), None)
