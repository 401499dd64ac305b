"""Requests a web page could make a browser send are refused before the proxy reads a byte.

Callers on this machine are trusted (identity/auth.py), and a browser is one: any page it
shows could speak for it. So, in front of every route (README, "Security"):

- the Host header must name this proxy (`security.allowed_hosts`): a page whose name was
  rebound to 127.0.0.1 (DNS rebinding) sends its own name, and gets a 421;
- a request carrying an Origin must come from `security.allowed_origins`, or from the
  dashboard's own origin to the dashboard's paths; else a 403. So does a request from
  another site's page without one (Chromium sends none on a no-cors GET), unless it is a
  link to the dashboard;
- preflights (OPTIONS) are answered here, never forwarded: LiteLLM allows every origin;
- a POST to a JSON API must say it is JSON, or it gets a 415: what a page may send to
  another origin without a preflight (text/plain, a form, a Blob with no type) never is.

Answers to an allowed origin carry our CORS headers; the forwarder drops LiteLLM's.
"""

from __future__ import annotations

import functools
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from memory_proxy.config import Settings
from memory_proxy.config.security import allowed_host_names
from memory_proxy.errors import error_response
from memory_proxy.identity.auth import is_loopback
from memory_proxy.logging_setup import log_request

ALLOWED_METHODS = b"GET, HEAD, POST, PUT, PATCH, DELETE"
PREFLIGHT_MAX_AGE_SECONDS = b"600"
# What a page of an allowed origin may read from an answer besides the safelisted ones.
EXPOSED_HEADERS = (
    b"x-request-id, x-memory-recalled, x-memory-project, x-memory-session, retry-after, "
    b"x-ratelimit-limit-requests, x-ratelimit-remaining-requests"
)
_FROM_ANOTHER_SITE = frozenset({b"cross-site", b"same-site"})  # Sec-Fetch-Site
# Access-Control-Request-Headers as browsers send it: header names and commas, nothing
# that could end a header line.
_HEADER_NAMES = re.compile(rb"[A-Za-z0-9!#$%&'*+.^_`|~, -]{1,4096}")
_JSON_SUBTYPE = re.compile(r"json|[a-z0-9][a-z0-9!#$&^_.+-]*\+json")
_JSON_PARAMETERS = frozenset({"charset=utf-8", 'charset="utf-8"', ""})  # "": a stray ";"
_SHOWN_CHARACTERS = 100  # of a header value quoted back in an error


@functools.lru_cache(maxsize=256)
def is_json_content_type(value: str) -> bool:
    """`application/json` or `application/<x>+json`, with at most a UTF-8 charset: what a
    JSON API takes, and what a browser sends to another origin only after a preflight."""
    media_type, *parameters = value.split(";")
    kind, _, subtype = media_type.strip().lower().partition("/")
    if kind != "application" or not _JSON_SUBTYPE.fullmatch(subtype):
        return False
    return all(p.strip().lower() in _JSON_PARAMETERS for p in parameters)


@functools.lru_cache(maxsize=256)
def host_name(host: bytes) -> str:
    """The name in a Host header, without its port (`[::1]:8764` is `[::1]`)."""
    text = host.decode("latin-1").lower()
    if text.startswith("["):
        return text[: text.find("]") + 1]
    return text.partition(":")[0]


class BrowserGuard:
    """Pure ASGI in front of the whole app: refuses, answers a preflight, or passes the
    request on untouched (a few dict lookups when no browser is involved)."""

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        *,
        json_apis: frozenset[str],
        own_origin_paths: frozenset[str],
        own_origin_prefixes: tuple[str, ...],
        page_path: str,
    ) -> None:
        """`json_apis`: the paths whose POST body is JSON; `own_origin_*`: what the
        dashboard calls, the only paths its own origin may use; `page_path`: the
        dashboard, which a link from another site may open."""
        self._app = app
        self._hosts = allowed_host_names(settings.security, settings.host)
        self._origins = frozenset(o.encode() for o in settings.security.allowed_origins)
        self._json_apis = json_apis
        self._own_origin_paths = own_origin_paths
        self._own_origin_prefixes = own_origin_prefixes
        self._page_path = page_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers: dict[bytes, bytes] = dict(scope["headers"])
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await _refuse(scope, receive, send, *refusal)
            return
        origin = headers.get(b"origin")
        if scope["method"] == "OPTIONS":
            await _answer_options(origin, headers, send)
            return
        if origin is not None and origin in self._origins:
            send = _with_cors_headers(send, origin)
        await self._app(scope, receive, send)

    def _refusal(self, scope: Scope, headers: dict[bytes, bytes]) -> tuple[int, str] | None:
        """The status and message for a request that must not go further, or None."""
        host = headers.get(b"host")
        if host is None:
            if scope["http_version"] != "1.0":  # RFC 9112, 3.2: a 400
                return 400, "an HTTP/1.1 request needs a Host header"
        elif host_name(host) not in self._hosts:
            return 421, (
                f"this proxy does not answer for Host {_shown(host)}: if clients reach it "
                "by that name, add it to security.allowed_hosts"
            )
        path: str = scope["path"]
        origin = headers.get(b"origin")
        if origin is not None:
            if origin not in self._origins and not self._is_own_origin(origin, host, path):
                return 403, (
                    f"requests from web pages at {_shown(origin)} are refused: add the "
                    "origin to security.allowed_origins to let its pages use the proxy"
                )
        elif headers.get(b"sec-fetch-site") in _FROM_ANOTHER_SITE and not self._is_link_to_page(
            scope, headers
        ):
            return 403, "requests from another site's web page are refused"
        if scope["method"] == "POST" and path in self._json_apis:
            content_type = headers.get(b"content-type", b"")
            if not is_json_content_type(content_type.decode("latin-1")):
                return 415, (
                    "send the body as JSON, with content-type: application/json (got "
                    f"{_shown(content_type) if content_type else 'none'})"
                )
        return None

    def _is_own_origin(self, origin: bytes, host: bytes | None, path: str) -> bool:
        """The dashboard's page, calling what it calls: its origin is this very host."""
        return (
            host is not None
            and origin == b"http://" + host
            and (path in self._own_origin_paths or path.startswith(self._own_origin_prefixes))
        )

    def _is_link_to_page(self, scope: Scope, headers: dict[bytes, bytes]) -> bool:
        """Opening the dashboard from a link on another site: harmless (the page holds no
        data, and frames are forbidden), and a thing users do."""
        return (
            scope["path"] == self._page_path
            and scope["method"] in ("GET", "HEAD")
            and headers.get(b"sec-fetch-mode") == b"navigate"
            and headers.get(b"sec-fetch-dest") == b"document"
        )


def startup_note(settings: Settings) -> str | None:
    """What a proxy listening beyond loopback says at start: the names it answers to."""
    if is_loopback(settings.host):
        return None
    names = sorted(allowed_host_names(settings.security, settings.host))
    return (
        f"listening on {settings.host}: requests are answered only when their Host is one "
        f"of {', '.join(names)} (any port); clients that reach the proxy by another name "
        "or address need it in security.allowed_hosts"
    )


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
    path: str = scope["path"]
    await error_response(path, status, message)(scope, receive, send)
    log_request({"method": scope["method"], "endpoint": path, "status": status, "refused": message})


async def _answer_options(origin: bytes | None, headers: dict[bytes, bytes], send: Send) -> None:
    """A preflight from an allowed origin, or a plain OPTIONS: the proxy answers itself."""
    if origin is None:
        answer = [(b"allow", ALLOWED_METHODS + b", OPTIONS")]
    else:
        answer = [
            (b"access-control-allow-origin", origin),
            (b"access-control-allow-methods", ALLOWED_METHODS),
            (b"access-control-max-age", PREFLIGHT_MAX_AGE_SECONDS),
            (b"vary", b"origin"),
        ]
        requested = headers.get(b"access-control-request-headers")
        if requested and _HEADER_NAMES.fullmatch(requested):
            answer.append((b"access-control-allow-headers", requested))
        if headers.get(b"access-control-request-private-network") == b"true":
            answer.append((b"access-control-allow-private-network", b"true"))
    await send({"type": "http.response.start", "status": 204, "headers": answer})
    await send({"type": "http.response.body", "body": b""})


def _with_cors_headers(send: Send, origin: bytes) -> Send:
    """`send`, with the headers that let a page of `origin` read the answer."""
    cors = [
        (b"access-control-allow-origin", origin),
        (b"access-control-expose-headers", EXPOSED_HEADERS),
        (b"vary", b"origin"),
    ]

    async def send_with_cors(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message["headers"], *cors]}
        await send(message)

    return send_with_cors


def _shown(value: bytes) -> str:
    """A header value quoted in an error or log line: short, and escaped."""
    return repr(value[:_SHOWN_CHARACTERS].decode("latin-1"))
