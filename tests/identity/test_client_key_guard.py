"""None of our client keys reaches LiteLLM, wherever a client put it: inside a cookie, a
custom header, percent-encoded, in Basic credentials; a URL carrying one is refused."""

from __future__ import annotations

import base64
import string
from urllib.parse import quote, unquote_to_bytes

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memory_proxy.config import ClientKey
from memory_proxy.identity.client_key_guard import ClientKeyGuard
from tests.conftest import ProxyFactory
from tests.fake_upstream import FakeUpstream, Recorded

OUR_KEY = "mp-client-key-0123456789"
BOUND_KEY = "mp-bound-key/0123456789+ab"  # characters a URL encodes
KEYS = (ClientKey(OUR_KEY), ClientKey(BOUND_KEY, "pycharm-ai"))
AUTHENTICATED = {"authorization": f"Bearer {OUR_KEY}"}
PASS_THROUGH = {"x-api-key": "sk-virtual-key"}
CHAT = "/v1/chat/completions"


def percent_encoded(key: str) -> str:
    """Every character encoded, the hex digits in lower case: any encoding must be found."""
    return "".join(f"%{byte:02x}" for byte in key.encode())


def leaked(request: Recorded) -> list[str]:
    """Where a client key appears in what the upstream received (as sent or decoded)."""
    places = [(name.decode("latin-1"), value) for name, value in request.raw_headers] + [
        ("path", request.path.encode()),
        ("query", request.query.encode()),
    ]
    return [
        where
        for where, value in places
        for key in (OUR_KEY, BOUND_KEY)
        if any(key.encode() in form for form in readings(value))
    ]


def readings(value: bytes) -> list[bytes]:
    """The value as sent, percent-decoded, and Basic credentials base64-decoded."""
    forms = [value, unquote_to_bytes(value)]
    scheme, _, credentials = value.partition(b" ")
    if scheme.lower() == b"basic":
        forms.append(base64.b64decode(credentials.strip() + b"==", validate=False))
    return forms


@pytest.mark.parametrize(
    "target",
    [
        f"{CHAT}?key={OUR_KEY}",
        f"{CHAT}?beta=true&token={quote(BOUND_KEY, safe='')}",
        f"{CHAT}?k={percent_encoded(OUR_KEY)}",
        f"/v1/{OUR_KEY}/chat/completions",
    ],
    ids=["query", "percent-encoded-query", "all-encoded", "path"],
)
@pytest.mark.parametrize("caller", [AUTHENTICATED, PASS_THROUGH], ids=["ours", "pass-through"])
def test_a_url_carrying_a_client_key_is_refused_in_the_clients_format(
    fake_upstream: tuple[FakeUpstream, str],
    run_proxy: ProxyFactory,
    target: str,
    caller: dict[str, str],
) -> None:
    upstream, url = fake_upstream
    with run_proxy(url, client_keys=KEYS) as proxy:
        response = httpx.post(f"{proxy}{target}", json={"model": "m"}, headers=caller)
        anthropic = httpx.post(f"{proxy}/v1/messages?key={OUR_KEY}", json={}, headers=caller)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "in a header" in error["message"] and OUR_KEY not in response.text
    assert anthropic.status_code == 400 and anthropic.json()["type"] == "error"
    assert upstream.requests == []


@pytest.mark.parametrize(
    "sent",
    [
        {**PASS_THROUGH, "cookie": f"theme=dark; token={OUR_KEY}; lang=en"},
        {**PASS_THROUGH, "x-forwarded-auth": f"key={OUR_KEY};scope=all"},
        {**AUTHENTICATED, "x-note": f"see {quote(BOUND_KEY, safe='')} here"},
        {**PASS_THROUGH, "x-note": percent_encoded(OUR_KEY)},
        {"x-api-key": f"{OUR_KEY}-and-more"},  # not our key: it passes through, so LiteLLM...
        {"authorization": "Basic " + base64.b64encode(f"me:{OUR_KEY}".encode()).decode()},
    ],
    ids=["cookie", "custom", "url-encoded", "all-encoded", "longer-key", "basic"],
)
def test_a_header_carrying_a_client_key_anywhere_is_dropped(
    fake_upstream: tuple[FakeUpstream, str],
    run_proxy: ProxyFactory,
    sent: dict[str, str],
) -> None:
    upstream, url = fake_upstream
    with run_proxy(url, client_keys=KEYS) as proxy:
        response = httpx.post(
            f"{proxy}{CHAT}?beta=true", json={}, headers={"x-kept": "yes", **sent}
        )
    assert response.status_code == 200
    (forwarded,) = upstream.requests
    assert leaked(forwarded) == []
    assert forwarded.headers["x-kept"] == "yes"  # the others pass
    assert forwarded.query == "beta=true"


printable = string.ascii_letters + string.digits + string.punctuation + " "
fillers = st.text(st.sampled_from(printable), max_size=20)
header_names = st.sampled_from(
    ["cookie", "x-custom", "x-api-key", "api-key", "authorization", "user-agent", "x-session-id"]
)


def encodings(char: str) -> list[str]:
    return [char, quote(char, safe=""), f"%{ord(char):02x}", f"%{ord(char):02X}"]


@st.composite
def embedded_keys(draw: st.DrawFn) -> str:
    """A key inside other text, any of its characters percent-encoded (either case)."""
    key = draw(st.sampled_from([OUR_KEY, BOUND_KEY]))
    encoded = "".join(draw(st.sampled_from(encodings(char))) for char in key)
    return draw(fillers) + encoded + draw(fillers)


def test_no_header_or_url_going_upstream_carries_a_client_key(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    upstream, url = fake_upstream
    with run_proxy(url, client_keys=KEYS) as proxy, httpx.Client(base_url=proxy) as client:

        @settings(max_examples=150, deadline=None, database=None)
        @given(
            caller=st.sampled_from([AUTHENTICATED, PASS_THROUGH, {}]),
            headers=st.lists(st.tuples(header_names, fillers.map(str.strip)), max_size=4),
            where=st.sampled_from(["header", "query", "nowhere"]),
            name=header_names,
            embedded=embedded_keys(),
        )
        def check(
            caller: dict[str, str],
            headers: list[tuple[str, str]],
            where: str,
            name: str,
            embedded: str,
        ) -> None:
            sent = [*caller.items(), *headers]
            target = CHAT
            if where == "header":
                sent.append((name, embedded.strip()))
            elif where == "query":
                target += "?q=" + embedded.replace(" ", "+").replace("#", "%23").replace("&", "%26")
            seen = len(upstream.requests)
            response = client.post(target, json={}, headers=sent)
            assert response.status_code != 500
            for request in upstream.requests[seen:]:
                assert leaked(request) == [], (request.raw_headers, request.query)
            if where == "query":
                assert response.status_code == 400

        check()


def test_the_proxys_own_values_and_keyless_settings_pass_untouched() -> None:
    own = b"Bearer sk-upstream-" + OUR_KEY.encode()  # a client key inside LiteLLM's key
    guard = ClientKeyGuard([OUR_KEY], [own])
    sent = [(b"authorization", own), (b"x-note", OUR_KEY.encode()), (b"accept", b"*/*")]
    assert guard.without_keys(sent) == [(b"authorization", own), (b"accept", b"*/*")]
    assert guard.in_url(b"/v1/chat/completions", b"") is False
    no_keys = ClientKeyGuard([])
    assert no_keys.without_keys(sent) is sent
    assert no_keys.in_url(f"/{OUR_KEY}".encode(), b"") is False


@settings(max_examples=300, deadline=None, database=None)
@given(
    headers=st.lists(st.tuples(header_names, fillers), max_size=6),
    at=st.integers(0, 6),
    name=header_names,
    embedded=embedded_keys(),
    scheme=st.sampled_from(["", "Bearer ", "bearer ", "Basic ", "BASIC "]),
)
def test_the_guard_finds_a_key_however_it_is_embedded(
    headers: list[tuple[str, str]], at: int, name: str, embedded: str, scheme: str
) -> None:
    guard = ClientKeyGuard([k.key for k in KEYS])
    value = embedded
    if scheme.lower().startswith("basic"):
        value = base64.b64encode(unquote_to_bytes(embedded)).decode()
    raw = [(n.encode(), v.encode()) for n, v in headers]
    raw.insert(at, (name.encode(), (scheme + value).encode()))
    kept = guard.without_keys(raw)
    assert len(kept) < len(raw)
    for key in (OUR_KEY, BOUND_KEY):
        assert not any(key.encode() in form for _, value in kept for form in readings(value))
    assert guard.in_url(b"/v1/x", quote(embedded, safe="=&%").encode())
    assert guard.in_url(quote(f"/v1/{embedded}", safe="/%").encode(), b"")
