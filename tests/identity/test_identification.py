"""One request's identification (identity/identification.py): an immutable value, and the
request id it carries."""

from __future__ import annotations

import httpx
import pytest

from memory_proxy.config import ClientKey, Settings
from memory_proxy.errors import Refusal
from memory_proxy.identity.auth import LOCAL_CALLER, NO_KEY, Caller, Trust
from memory_proxy.identity.identification import Identifier
from memory_proxy.identity.model_privacy import ModelPrivacy
from memory_proxy.identity.supermemory import SupermemoryRouting
from tests.conftest import ProxyFactory
from tests.fake_upstream import FakeUpstream

OUR_KEY = "mp-client-key-0123456789"
WITH_KEYS = Settings(client_keys=(ClientKey(OUR_KEY),))


def identifier(settings: Settings = WITH_KEYS) -> Identifier:
    routed = SupermemoryRouting(frozenset({"sm-model"}))
    return Identifier(settings, routed, ModelPrivacy.from_settings(settings))


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("mine-1", True),
        ("a" * 128, True),
        ("a" * 129, False),
        ("two words", False),
        ("line\n", False),
        (OUR_KEY, False),  # it would be logged, stored and sent on
        (f"x.{OUR_KEY}.y", False),
    ],
)
def test_the_clients_request_id_is_kept_when_it_is_a_valid_id_without_a_client_key(
    sent: str, kept: bool
) -> None:
    request_id = identifier().request_id({"x-request-id": sent})
    assert (request_id == sent) is kept
    if not kept:
        assert len(request_id) == 32 and int(request_id, 16) >= 0
    assert len(identifier().request_id({})) == 32


def test_an_identification_cannot_be_changed_and_trust_decides_supermemory() -> None:
    ask = {"model": "sm-model"}
    local = identifier(Settings()).identify("r1", {}, LOCAL_CALLER, ask)
    passing = identifier().identify(
        "r2", {}, Caller(Trust.PASS_THROUGH, "key-0123456789abcdef"), ask
    )
    assert (local.supermemory, passing.supermemory) == (True, False)
    assert passing.supermemory_routed and passing.user_id == "key-0123456789abcdef"
    with pytest.raises(AttributeError):  # immutable
        local.session_id = "s"  # type: ignore[misc]


def test_a_refused_caller_is_a_401() -> None:
    with pytest.raises(Refusal) as refused:
        identifier().identify("r", {}, Caller(Trust.REFUSED, refusal=NO_KEY), None)
    assert refused.value.status == 401 and refused.value.message == NO_KEY


def test_a_request_id_carrying_a_client_key_is_replaced_everywhere(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    """A client key sent as the request id would be dropped on its way to LiteLLM (with
    the whole header), and kept in the usage log: the proxy names the request itself."""
    upstream, url = fake_upstream
    sent = {"authorization": f"Bearer {OUR_KEY}", "x-request-id": OUR_KEY}
    with run_proxy(url, client_keys=WITH_KEYS.client_keys) as proxy:
        answer = httpx.post(f"{proxy}/v1/chat/completions", json={"model": "m"}, headers=sent)
    assert answer.status_code == 200
    request_id = answer.headers["x-request-id"]
    assert request_id != OUR_KEY and len(request_id) == 32
    (received,) = upstream.requests
    assert [v for n, v in received.raw_headers if n == b"x-request-id"] == [request_id.encode()]
