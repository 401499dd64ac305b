"""The headers LiteLLM receives, decided in one function (memory_proxy/upstream_headers.py):
a table of caller kinds and headers in, headers out; then a property over any header list
and any caller."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memory_proxy.config import ClientKey, Settings
from memory_proxy.forwarding.header_safety import UnsafeHeader
from memory_proxy.identity.auth import CREDENTIAL_HEADERS, Caller, Trust
from memory_proxy.identity.client_detection import ClientIdentity
from memory_proxy.identity.identification import Identification, Identifier
from memory_proxy.identity.model_privacy import ModelPrivacy
from memory_proxy.identity.supermemory import SupermemoryRouting
from memory_proxy.upstream_headers import UpstreamHeaders
from tests.identity.test_client_key_guard import readings

Headers = list[tuple[bytes, bytes]]

OUR_KEY = "mp-client-key-0123456789"
BOUND_KEY = "mp-bound-key-0123456789ab"
UPSTREAM = "sk-litellm-upstream"
SM_KEY = "sm-secret"
KEYS = (ClientKey(OUR_KEY), ClientKey(BOUND_KEY, "pycharm-ai"))
REQUEST_ID = "req-1"
SUPERMEMORY_PREFIXES = (b"x-sm-", b"x-supermemory-")

CALLERS = {
    "local": Caller(Trust.LOCAL),
    "client key": Caller(Trust.CLIENT_KEY),
    "bound key": Caller(Trust.BOUND_KEY, "pycharm-ai"),
    "pass-through": Caller(Trust.PASS_THROUGH, "key-0123456789abcdef"),
}


def rules(*, upstream: str | None = UPSTREAM, keys: tuple[ClientKey, ...] = KEYS) -> Settings:
    return Settings(upstream_key=upstream, supermemory_api_key=SM_KEY, client_keys=keys)


def who(
    caller: str,
    *,
    routed: bool = False,
    session: str | None = None,
    request_id: str = REQUEST_ID,
    user: str = "alice",
) -> Identification:
    return Identification(
        request_id=request_id,
        caller=CALLERS[caller],
        identity=ClientIdentity(user, None, True),
        session_id=session,
        model="m",
        supermemory_routed=routed,
        memory=False,
    )


def raw(*headers: tuple[str, str]) -> Headers:
    return [(name.encode(), value.encode()) for name, value in headers]


@dataclass(frozen=True)
class Row:
    settings: Settings
    who: Identification
    sent: Headers
    expected: Headers
    streamed: bool = False


OURS = ("x-request-id", REQUEST_ID)
LITELLM_KEY = ("authorization", f"Bearer {UPSTREAM}")
CLIENT_CREDENTIALS = (("authorization", "Bearer sk-dummy"), ("x-api-key", "sk-other"))
FRAMING = (("host", "127.0.0.1:8764"), ("content-length", "2"), ("connection", "keep-alive"))

TABLE = {
    "local: ours replaced, framing and memory controls dropped": Row(
        rules(keys=()),
        who("local"),
        raw(
            *FRAMING,
            ("accept", "*/*"),
            *CLIENT_CREDENTIALS,
            ("x-memory-user-id", "alice"),
            ("x-memory", "read"),
            ("x-memory-project", "p"),
            ("x-request-id", "client-id"),
            ("x-request-id", "another"),
        ),
        raw(("accept", "*/*"), OURS, LITELLM_KEY),
    ),
    "local without an upstream key: its own credentials go": Row(
        rules(upstream=None, keys=()),
        who("local"),
        raw(("accept", "*/*"), *CLIENT_CREDENTIALS),
        raw(("accept", "*/*"), *CLIENT_CREDENTIALS, OURS),
    ),
    "client key: replaced by LiteLLM's": Row(
        rules(),
        who("client key"),
        raw(("authorization", f"Bearer {OUR_KEY}"), ("user-agent", "curl/8")),
        raw(("user-agent", "curl/8"), OURS, LITELLM_KEY),
    ),
    "client key without an upstream key: no credentials at all": Row(
        rules(upstream=None),
        who("client key"),
        raw(("x-api-key", OUR_KEY), ("api-key", "other"), ("user-agent", "curl/8")),
        raw(("user-agent", "curl/8"), OURS),
    ),
    "bound key: replaced by LiteLLM's": Row(
        rules(),
        who("bound key"),
        raw(("x-api-key", BOUND_KEY), ("x-goog-api-key", BOUND_KEY)),
        raw(OURS, LITELLM_KEY),
    ),
    "pass-through: its key goes as sent, LiteLLM's never": Row(
        rules(),
        who("pass-through"),
        raw(("authorization", "Bearer sk-virtual"), ("accept", "*/*")),
        raw(("authorization", "Bearer sk-virtual"), ("accept", "*/*"), OURS),
    ),
    "a body streamed through keeps its Content-Length": Row(
        rules(),
        who("client key"),
        raw(*FRAMING, ("x-api-key", OUR_KEY)),
        raw(("content-length", "2"), OURS, LITELLM_KEY),
        streamed=True,
    ),
    "hop-by-hop, and what Connection names": Row(
        rules(),
        who("pass-through"),
        raw(
            ("connection", "close, X-Private"),
            ("x-private", "1"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("proxy-authorization", "Basic eA=="),
            ("x-other", "2"),
        ),
        raw(("x-other", "2"), OURS),
    ),
    "routed and trusted: our Supermemory scope, not the client's": Row(
        rules(),
        who("client key", routed=True, session="s-1"),
        raw(
            ("x-sm-user-id", "mallory"),
            ("x-supermemory-api-key", "stolen"),
            ("x-sm-conversation-id", "c"),
            ("x-sm-project", "p"),
            ("accept", "*/*"),
        ),
        raw(
            ("accept", "*/*"),
            OURS,
            LITELLM_KEY,
            ("x-sm-user-id", "alice"),
            ("x-supermemory-api-key", SM_KEY),
            ("x-sm-conversation-id", "s-1"),
        ),
    ),
    "routed, no session: no conversation id": Row(
        rules(),
        who("local", routed=True),
        raw(),
        raw(OURS, LITELLM_KEY, ("x-sm-user-id", "alice"), ("x-supermemory-api-key", SM_KEY)),
    ),
    "routed but passing through: no Supermemory header at all": Row(
        rules(),
        who("pass-through", routed=True, session="s-1"),
        raw(("x-api-key", "sk-virtual"), ("x-sm-user-id", "mallory")),
        raw(("x-api-key", "sk-virtual"), OURS),
    ),
    "not routed: the client's Supermemory headers are dropped": Row(
        rules(),
        who("client key", session="s-1"),
        raw(("x-supermemory-anything", "a"), ("x-sm-user-id", "m"), ("accept", "*/*")),
        raw(("accept", "*/*"), OURS, LITELLM_KEY),
    ),
    "a client key anywhere in a value: the header goes": Row(
        rules(),
        who("pass-through"),
        raw(
            ("cookie", f"a=1; token={OUR_KEY}"),
            ("x-note", BOUND_KEY.replace("-", "%2D")),
            ("x-basic", "Basic " + base64.b64encode(f"u:{OUR_KEY}".encode()).decode()),
            ("accept", "*/*"),
        ),
        raw(("accept", "*/*"), OURS),
    ),
    "a user id that is a client key is not sent as the Supermemory scope": Row(
        rules(),
        who("client key", routed=True, user=OUR_KEY),
        raw(),
        raw(OURS, LITELLM_KEY, ("x-supermemory-api-key", SM_KEY)),
    ),
}


@pytest.mark.parametrize("row", TABLE.values(), ids=TABLE.keys())
def test_headers_for_litellm(row: Row) -> None:
    built = UpstreamHeaders.from_settings(row.settings)
    assert built.build(row.sent, row.who, streamed_body=row.streamed) == row.expected


@pytest.mark.parametrize(
    ("settings_", "sent"),
    [
        (rules(), raw(("x-note", "a\nb"))),
        (rules(), [(b"x-note", b"a\0b")]),
        (rules(), [(b"x-no\rte", b"a")]),
        (rules(upstream="sk-key\n"), raw()),  # a config value, read from a file with its newline
    ],
    ids=["LF", "NUL", "CR in a name", "in LiteLLM's key"],
)
def test_a_line_break_or_nul_refuses_the_request(settings_: Settings, sent: Headers) -> None:
    with pytest.raises(UnsafeHeader):
        UpstreamHeaders.from_settings(settings_).build(sent, who("local"), streamed_body=False)


# --- the property ---------------------------------------------------------------------------

FORBIDDEN = set(b"\r\n\0")
names = st.sampled_from(
    [
        *(name.decode() for name in CREDENTIAL_HEADERS),
        "x-sm-user-id",
        "x-sm-conversation-id",
        "x-supermemory-api-key",
        "x-request-id",
        "x-memory-user-id",
        "connection",
        "content-length",
        "host",
        "cookie",
        "accept",
    ]
) | st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True)
keyish = st.sampled_from(
    [
        OUR_KEY,
        BOUND_KEY,
        f"Bearer {OUR_KEY}",
        "Basic " + base64.b64encode(f"me:{BOUND_KEY}".encode()).decode(),
        "%6D%70" + OUR_KEY[2:],
        "sk-virtual",
        "a\r\nx-injected: 1",
        "a\0",
        "keep-alive, x-other",
    ]
)
values = st.text(st.characters(max_codepoint=255), max_size=20) | keyish


@settings(max_examples=400, deadline=None, database=None)
@given(
    sent=st.lists(st.tuples(names, values), max_size=8),
    trust=st.sampled_from(list(Trust)),
    routed=st.booleans(),
    session=st.none() | st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True),
    upstream=st.sampled_from([None, UPSTREAM]),
    keys=st.sampled_from([(), KEYS]),
    streamed=st.booleans(),
)
def test_whatever_comes_in_what_goes_out_follows_the_rules(
    sent: list[tuple[str, str]],
    trust: Trust,
    routed: bool,
    session: str | None,
    upstream: str | None,
    keys: tuple[ClientKey, ...],
    streamed: bool,
) -> None:
    config = rules(upstream=upstream, keys=keys)
    headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in sent]
    identifier = Identifier(
        config, SupermemoryRouting(frozenset()), ModelPrivacy.from_settings(config)
    )
    request_id = identifier.request_id({n: v for n, v in sent})
    caller = Caller(trust, "key-0123456789abcdef" if trust is Trust.PASS_THROUGH else None)
    identified = Identification(
        request_id=request_id,
        caller=caller,
        identity=ClientIdentity("alice", None, True),
        session_id=session,
        model="m",
        supermemory_routed=routed,
        memory=False,
    )
    try:
        out = UpstreamHeaders.from_settings(config).build(
            headers, identified, streamed_body=streamed
        )
    except UnsafeHeader:
        assert any(FORBIDDEN & set(name + value) for name, value in headers)
        return
    client_keys = [key.key.encode() for key in keys]
    for name, value in out:
        assert not FORBIDDEN & set(name + value)
        assert not any(key in form for key in client_keys for form in readings(value))
        if name.startswith(SUPERMEMORY_PREFIXES):
            assert routed and caller.authenticated
    assert [value for name, value in out if name == b"x-request-id"] == [request_id.encode()]
    credentials = [(n, v) for n, v in out if n in CREDENTIAL_HEADERS]
    if caller.authenticated and upstream:
        assert credentials == [(b"authorization", f"Bearer {upstream}".encode())]
    elif caller.by_client_key:
        assert credentials == []
    else:  # a local program without an upstream key, or a key LiteLLM judges: as sent
        named = {t.strip().lower() for n, v in headers if n == b"connection" for t in v.split(b",")}
        assert credentials == [
            (n, v)
            for n, v in headers
            if n in CREDENTIAL_HEADERS
            and n not in named
            and not any(key in form for key in client_keys for form in readings(v))
        ]
