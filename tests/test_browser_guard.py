"""The browser guard's rules one by one, in process: which hosts, origins and content
types pass, what a preflight gets back, and that a refused request is never read. In
front of a real proxy: test_browser_guard_over_http.py; in Chromium:
test_browser_guard_in_chromium.py."""

from __future__ import annotations

import asyncio
import dataclasses
import email.message
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.types import Message, Scope

from memory_proxy.api.dashboard import CALLED_PATHS, CALLED_PREFIXES, PAGE_PATH
from memory_proxy.app import JSON_APIS
from memory_proxy.browser_guard import BrowserGuard, is_json_content_type
from memory_proxy.config import Settings
from memory_proxy.config.security import SecuritySettings

CHAT = "/v1/chat/completions"
ALLOWED_ORIGIN = "http://localhost:3000"
SECURITY = SecuritySettings(allowed_origins=frozenset({ALLOWED_ORIGIN}))
FOREIGN_HOST = "rebind.attacker.example"
PASSED = 200  # what the stand-in app behind the guard answers


@dataclasses.dataclass
class Exchange:
    status: int
    headers: dict[str, str]
    body: bytes
    reached_app: bool


def guard(proxy_settings: Settings | None = None) -> tuple[BrowserGuard, list[Scope]]:
    """The guard as the app builds it, in front of a stand-in that records what reached it."""
    reached: list[Scope] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        reached.append(scope)
        await send({"type": "http.response.start", "status": PASSED, "headers": []})
        await send({"type": "http.response.body", "body": b"passed"})

    built = BrowserGuard(
        app,
        proxy_settings or Settings(security=SECURITY),
        json_apis=JSON_APIS,
        own_origin_paths=CALLED_PATHS,
        own_origin_prefixes=CALLED_PREFIXES,
        page_path=PAGE_PATH,
    )
    return built, reached


def call(
    method: str,
    path: str,
    headers: dict[str, str],
    *,
    proxy_settings: Settings | None = None,
    http_version: str = "1.1",
) -> Exchange:
    """One request through the guard; reading its body would fail the test."""
    checked, reached = guard(proxy_settings)
    sent: list[Message] = []

    async def receive() -> Message:
        raise AssertionError("the guard read the request body")

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "http_version": http_version,
        "method": method,
        "path": path,
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode("latin-1")) for k, v in headers.items()],
    }
    asyncio.run(checked(scope, receive, send))
    start, *bodies = sent
    answer_headers = {k.decode(): v.decode("latin-1") for k, v in start["headers"]}
    body = b"".join(m.get("body", b"") for m in bodies)
    return Exchange(start["status"], answer_headers, body, bool(reached))


LOCAL = {"host": "127.0.0.1:8764"}


@pytest.mark.parametrize(
    ("host", "answered"),
    [
        ("127.0.0.1:8764", True),
        ("127.0.0.1", True),
        ("localhost:1", True),  # any port
        ("LocalHost:8764", True),  # names are case-insensitive
        ("[::1]:8764", True),
        ("[::1]", True),
        (f"{FOREIGN_HOST}:8764", False),  # DNS rebinding: the page's own name
        ("127.0.0.1.nip.io:8764", False),
        ("localhost.attacker.example", False),
        ("localhost.", False),
        ("[::2]:8764", False),
        ("[::1", False),
        ("", False),
    ],
)
def test_only_the_proxys_own_names_are_answered(host: str, answered: bool) -> None:
    for method, path in [("POST", CHAT), ("GET", "/v1/sessions"), ("OPTIONS", CHAT)]:
        exchange = call(method, path, {"host": host, "content-type": "application/json"})
        if answered:
            assert exchange.status in (PASSED, 204)
        else:
            assert (exchange.status, exchange.reached_app) == (421, False)
            assert "security.allowed_hosts" in json.loads(exchange.body)["error"]["message"]


def test_the_listening_address_and_the_listed_names_are_answered_too() -> None:
    listed = Settings(host="192.0.2.10", security=SecuritySettings(allowed_hosts=("box.lan",)))
    for host in ("192.0.2.10:8764", "box.lan:8764", "BOX.LAN", "localhost:8764"):
        assert call("GET", "/health", {"host": host}, proxy_settings=listed).reached_app
    assert call("GET", "/health", {"host": "box.lan"}).status == 421  # not listed by default


def test_a_missing_host_is_refused_on_http_1_1_only() -> None:
    assert call("GET", "/v1/sessions", {}).status == 400
    assert call("GET", "/v1/sessions", {}, http_version="1.0").reached_app  # no browser


OWN = "http://127.0.0.1:8764"


@pytest.mark.parametrize(
    ("method", "path", "headers", "answered"),
    [
        # Not a browser, or a browser's own navigation: as before.
        ("POST", CHAT, {}, True),
        ("GET", "/v1/sessions", {"sec-fetch-site": "none"}, True),
        # A page of an allowed origin, on any route.
        ("POST", CHAT, {"origin": ALLOWED_ORIGIN}, True),
        ("GET", "/v1/memories", {"origin": ALLOWED_ORIGIN, "sec-fetch-site": "same-site"}, True),
        # Any other page: refused, whatever it asks.
        ("POST", CHAT, {"origin": "http://127.0.0.1:9999"}, False),
        ("POST", CHAT, {"origin": "http://localhost:3000/"}, False),  # origins are exact
        ("POST", CHAT, {"origin": "null"}, False),  # a sandboxed frame, a file:// page
        ("DELETE", "/v1/sessions/x", {"origin": "https://attacker.example"}, False),
        ("POST", "/v1/audio/transcriptions", {"origin": "https://attacker.example"}, False),
        # The dashboard's own origin: for what the dashboard calls, nothing else.
        ("DELETE", "/v1/sessions/x", {"origin": OWN, "sec-fetch-site": "same-origin"}, True),
        ("POST", "/v1/feedback", {"origin": OWN}, True),
        ("GET", "/ui/static/app.js", {"origin": OWN}, True),
        ("POST", CHAT, {"origin": OWN}, False),
        ("GET", "/metrics", {"origin": OWN}, False),
        ("GET", "/v1/sessions", {"origin": "http://127.0.0.1:8765"}, False),  # another port
        ("GET", "/v1/sessions", {"origin": "https://127.0.0.1:8764"}, False),  # another scheme
        # Chromium's no-cors GETs from another page carry no Origin: Sec-Fetch-Site tells.
        ("GET", "/v1/sessions", {"sec-fetch-site": "same-site"}, False),
        ("GET", "/v1/models", {"sec-fetch-site": "cross-site"}, False),
        ("GET", "/v1/sessions", {"sec-fetch-site": "same-origin"}, True),
        # ...except a link to the dashboard from another site's page.
        (
            "GET",
            "/ui",
            {
                "sec-fetch-site": "cross-site",
                "sec-fetch-mode": "navigate",
                "sec-fetch-dest": "document",
            },
            True,
        ),
        (
            "GET",
            "/v1/sessions",
            {
                "sec-fetch-site": "cross-site",
                "sec-fetch-mode": "navigate",
                "sec-fetch-dest": "document",
            },
            False,
        ),
        ("GET", "/ui", {"sec-fetch-site": "cross-site", "sec-fetch-mode": "no-cors"}, False),
    ],
)
def test_web_pages_use_the_proxy_only_from_allowed_origins(
    method: str, path: str, headers: dict[str, str], answered: bool
) -> None:
    sent = LOCAL | {"content-type": "application/json"} | headers
    exchange = call(method, path, sent)
    assert exchange.reached_app is answered
    if not answered:
        assert exchange.status == 403
        assert json.loads(exchange.body)["error"]["type"] == "permission_error"


def test_refusals_speak_the_clients_format() -> None:
    anthropic = call("POST", "/v1/messages", LOCAL | {"origin": "https://attacker.example"})
    assert json.loads(anthropic.body)["error"]["type"] == "permission_error"
    assert json.loads(anthropic.body)["type"] == "error"
    foreign = call("POST", "/v1/messages", {"host": FOREIGN_HOST})
    assert json.loads(foreign.body)["type"] == "error"


def test_preflights_are_answered_without_reaching_the_app() -> None:
    asks = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,x-memory-user-id,x-session-id",
    }
    allowed = call("OPTIONS", CHAT, LOCAL | asks | {"origin": ALLOWED_ORIGIN})
    assert (allowed.status, allowed.reached_app) == (204, False)
    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert allowed.headers["access-control-allow-headers"] == asks["access-control-request-headers"]
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert allowed.headers["access-control-max-age"] == "600"
    assert allowed.headers["vary"] == "origin"
    refused = call("OPTIONS", CHAT, LOCAL | asks | {"origin": "http://127.0.0.1:9999"})
    assert (refused.status, refused.reached_app) == (403, False)
    assert "access-control-allow-origin" not in refused.headers
    plain = call("OPTIONS", CHAT, LOCAL)  # no browser: what the proxy takes
    assert (plain.status, plain.reached_app) == (204, False)
    assert "OPTIONS" in plain.headers["allow"]


def test_a_preflight_gets_back_only_header_names() -> None:
    odd = {"origin": ALLOWED_ORIGIN, "access-control-request-headers": "x-a, x-b\tx-c"}
    assert "access-control-allow-headers" not in call("OPTIONS", CHAT, LOCAL | odd).headers


def test_answers_to_an_allowed_origin_say_so_and_others_do_not() -> None:
    allowed = call(
        "POST", CHAT, LOCAL | {"origin": ALLOWED_ORIGIN, "content-type": "application/json"}
    )
    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert allowed.headers["vary"] == "origin"
    assert "x-request-id" in allowed.headers["access-control-expose-headers"]
    plain = call("POST", CHAT, LOCAL | {"content-type": "application/json"})
    assert not any(name.startswith("access-control-") for name in plain.headers)


# ---- content types ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "is_json"),
    [
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ("Application/JSON;Charset=UTF-8", True),
        ('application/json; charset="utf-8"', True),
        ("application/vnd.api+json", True),
        ("application/merge-patch+json; charset=utf-8", True),
        ("text/plain", False),
        ("text/plain; x=json", False),  # the "json" of cc0445f's test
        ("text/json", False),
        ("application/x-www-form-urlencoded", False),
        ("multipart/form-data; boundary=json", False),
        ("application/jsonp", False),
        ("application/json-patch", False),
        ("application/+json", False),
        ("application/json; charset=latin-1", False),
        ("application/json; boundary=x", False),
        ("application/json, text/plain", False),
        ("", False),
    ],
)
def test_only_json_content_types_are_json(content_type: str, is_json: bool) -> None:
    assert is_json_content_type(content_type) is is_json
    headers = LOCAL | ({"content-type": content_type} if content_type else {})
    for path in sorted(JSON_APIS):
        exchange = call("POST", path, headers)
        assert exchange.reached_app is is_json
        if not is_json:
            assert exchange.status == 415
            assert "application/json" in json.loads(exchange.body)["error"]["message"]


def test_only_posts_to_json_apis_need_json() -> None:
    upload = {"content-type": "multipart/form-data; boundary=x"}
    assert call("POST", "/v1/audio/transcriptions", LOCAL | upload).reached_app
    assert call("GET", CHAT, LOCAL | {"content-type": "text/plain"}).reached_app


PARTS = [
    "application",
    "text",
    "multipart",
    "/",
    "json",
    "+json",
    "vnd.x",
    "plain",
    ";",
    " ",
    "\t",
    "charset",
    "=",
    "utf-8",
    '"',
    "x",
    ",",
    "JSON",
    "UTF-8",
]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(PARTS), max_size=12).map("".join) | st.text(max_size=40))
def test_what_passes_as_json_is_json_to_a_mime_parser_and_nothing_more(content_type: str) -> None:
    """Whatever the guard takes as JSON, Python's own MIME parser reads as
    application/json or application/<x>+json with at most a UTF-8 charset."""
    if not is_json_content_type(content_type):
        return
    parsed = email.message.Message()
    parsed["content-type"] = content_type
    media_type = parsed.get_content_type()
    assert media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )
    parameters = (parsed.get_params() or [])[1:]
    assert all((n.lower(), str(v).lower()) == ("charset", "utf-8") for n, v in parameters)


@settings(max_examples=200, deadline=None)
@given(
    subtype=st.sampled_from(["json", "vnd.api+json", "problem+json"]),
    charset=st.sampled_from(["", "; charset=utf-8", ";charset=UTF-8", ' ; charset="utf-8"']),
    upper=st.booleans(),
)
def test_every_json_form_passes(subtype: str, charset: str, upper: bool) -> None:
    content_type = f"application/{subtype}{charset}"
    assert is_json_content_type(content_type.upper() if upper else content_type)
