"""The redactor: every kind of secret replaced by its marker, near misses (hashes, UUIDs,
images, code) left alone, and three properties: redacting twice changes nothing, no
generated secret survives wherever it is put, and text without secrets comes back as is."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
import string
import uuid

import orjson
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from memory_proxy.config import ClientKey, MemorySettings, Settings
from memory_proxy.memory.redaction import Redactor
from memory_proxy.memory.secret_rules import random_value
from memory_proxy.records.memory import MemoryRecord, memory_id
from memory_proxy.records.messages import Message
from tests.memory import secret_samples as samples

REDACTOR = Redactor()


@pytest.mark.parametrize(
    ("secret", "marker"),
    [
        (samples.OPENAI_KEY, "[secret:openai-key sk-proj-…]"),
        (samples.LEGACY_OPENAI_KEY, "[secret:openai-key sk-…]"),
        (samples.ANTHROPIC_KEY, "[secret:anthropic-key sk-ant-…]"),
        (samples.GOOGLE_KEY, "[secret:google-api-key AIza…]"),
        (samples.AWS_ACCESS_KEY_ID, "[secret:aws-access-key AKIA…]"),
        (samples.GITHUB_TOKEN, "[secret:github-token ghp_…]"),
        (samples.GITHUB_PAT, "[secret:github-token github_pat_…]"),
        (samples.GITLAB_TOKEN, "[secret:gitlab-token glpat-…]"),
        (samples.SLACK_TOKEN, "[secret:slack-token xoxb-…]"),
        (samples.STRIPE_KEY, "[secret:stripe-key sk_live_…]"),
        (samples.NPM_TOKEN, "[secret:npm-token npm_…]"),
        (samples.HUGGINGFACE_TOKEN, "[secret:huggingface-token hf_…]"),
        (samples.JWT, "[secret:jwt eyJ…]"),
        (samples.PRIVATE_KEY, "[secret:private-key]"),
    ],
)
def test_each_kind_of_token_becomes_its_marker(secret: str, marker: str) -> None:
    for text in (f"use {secret} now", f'{{"key": "{secret}"}}', f"KEY={secret}\n", secret):
        assert REDACTOR.text(text) == text.replace(secret, marker)


def test_an_aws_secret_key_is_redacted_beside_its_access_key_id_only() -> None:
    pair = f"id {samples.AWS_ACCESS_KEY_ID}\nsecret {samples.AWS_SECRET_ACCESS_KEY}\n"
    assert (
        REDACTOR.text(pair) == "id [secret:aws-access-key AKIA…]\nsecret [secret:aws-secret-key]\n"
    )
    alone = f"the value {samples.AWS_SECRET_ACCESS_KEY} alone"
    assert REDACTOR.text(alone) == alone
    commit = "3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39"  # 40 hex digits: never a secret key
    assert commit in REDACTOR.text(f"{samples.AWS_ACCESS_KEY_ID} at commit {commit}")


@pytest.mark.parametrize(
    "named",
    [
        "Your AWS secret access key is {}.",
        "aws_secret_access_key = {}",
        "AWS secret key:\n`{}`",
        "the AWS key pair's secret part, {}",
    ],
)
def test_an_aws_secret_key_named_as_one_is_redacted_without_its_access_key_id(
    named: str,
) -> None:
    """As a model repeats it later in the conversation, its key id far behind."""
    text = named.format(samples.AWS_SECRET_ACCESS_KEY)
    assert REDACTOR.text(text) == named.format("[secret:aws-secret-key]")


@pytest.mark.parametrize(
    "text",
    [
        f"aws s3 cp ./build s3://assets/{'Ab1' * 13}x/ --recursive",  # 40 in a path: not alone
        f"On AWS we deploy with a pipeline that builds the key {samples.AWS_SECRET_ACCESS_KEY}",
        f"the laws of the secret {samples.AWS_SECRET_ACCESS_KEY}",  # not `aws`
        f"AWS secret access key: [secret:aws-secret-key] {samples.AWS_SECRET_ACCESS_KEY}",
    ],
)
def test_an_aws_secret_key_needs_its_name_close_by(text: str) -> None:
    """The last: a marker is no name, so redacting twice changes nothing."""
    assert REDACTOR.text(text) is text


def test_an_exchange_is_redacted_as_one_text() -> None:
    """A secret known only beside another (an AWS secret key beside its key id) is kept
    out of each message of the exchange, not only the one that holds both."""
    told: Message = {
        "role": "user",
        "content": f"{samples.AWS_ACCESS_KEY_ID} {samples.AWS_SECRET_ACCESS_KEY}",
    }
    answered: Message = {"role": "assistant", "content": f"ok: {samples.AWS_SECRET_ACCESS_KEY}"}
    alone: Message = {"role": "user", "content": f"just {samples.AWS_SECRET_ACCESS_KEY}"}
    assert [m["content"] for m in REDACTOR.messages([told, answered])] == [
        "[secret:aws-access-key AKIA…] [secret:aws-secret-key]",
        "ok: [secret:aws-secret-key]",
    ]
    assert REDACTOR.messages([alone, answered]) == [alone, answered]


def test_a_url_keeps_its_user_and_host() -> None:
    assert (
        REDACTOR.text(f"DATABASE_URL={samples.DATABASE_URL}")
        == "DATABASE_URL=postgres://shop:[secret:url-password]@db.internal:5432/shop"
    )
    assert (
        REDACTOR.text("git clone https://bob:p@ss@w0rd@git.example.com/x.git")
        == "git clone https://bob:[secret:url-password]@git.example.com/x.git"
    )


def test_a_private_key_goes_whole_even_unfinished_or_escaped_in_json() -> None:
    begin = "-----BEGIN OPENSSH " + "PRIVATE KEY-----"
    unfinished = f"key:\n{begin}\n{samples.PEM_BODY}\n"
    assert REDACTOR.text(unfinished) == "key:\n[secret:private-key]"
    escaped = orjson.dumps({"key": samples.PRIVATE_KEY}).decode()
    assert REDACTOR.text(escaped) == '{"key":"[secret:private-key]"}'
    cut_short = orjson.dumps({"key": f"{begin}\n{samples.PEM_BODY}", "next": 1}).decode()
    assert REDACTOR.text(cut_short) == '{"key":"[secret:private-key]","next":1}'


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("DB_PASSWORD=x8Kd92LmQz7", "DB_PASSWORD=[secret:assigned-secret]"),
        ('"client_secret": "a1b2c3d4e5f6g7h8"', '"client_secret": "[secret:assigned-secret]"'),
        ("api-key: Zt5r9Qw2Lp7Xk3", "api-key: [secret:assigned-secret]"),
        ("Authorization: Bearer abc123DEF456ghi789", "Authorization: Bearer [secret:auth-header]"),
        ("Authorization: Basic dXNlcjpodW50ZXIy", "Authorization: Basic [secret:auth-header]"),
    ],
)
def test_secrets_assigned_to_a_secret_name_or_in_an_auth_header(text: str, redacted: str) -> None:
    assert REDACTOR.text(text) == redacted


@pytest.mark.parametrize(
    "text",
    [
        "commit 3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39 fixed it",
        f"request {uuid.UUID(int=0x123E4567E89B12D3A456426614174000)}",
        f"sha256:{hashlib.sha256(b'x').hexdigest()}",
        '"integrity": "sha512-' + base64.b64encode(hashlib.sha512(b"x").digest()).decode() + '"',
        "data:image/png;base64," + base64.b64encode(bytes(range(256)) * 4).decode(),
        "pip install sk-learn-and-friends-of-the-ecosystem",
        "a risk-assessment-framework-for-2024 and a disk-image-builder-v2",
        "max_tokens=4096, tokenizer: cl100k_base, token_count: 1234567890",
        "password = getpass.getpass()\ntoken: Optional[str] = None\nsecret = secrets.token_hex(32)",
        "password=changeme token=test1234 API_KEY=${API_KEY} secret: <your-secret-here>",
        "postgres://user:password@localhost/db and redis://:${REDIS_PASSWORD}@cache:6379",
        "ssh://git@github.com/org/repo.git and https://example.com:8443/path?q=1",
        "AKIA1234 is too short, ghp_short too, eyJhbGciOiJIUzI1NiJ9 is one part only",
        "-----BEGIN PUBLIC KEY-----\nMFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAKj34GkxFhD90vcN\n",
        "the bearer of bad news, basic authentication explained",
    ],
)
def test_near_misses_survive(text: str) -> None:
    assert REDACTOR.text(text) is text


def test_the_proxys_own_keys_are_redacted_exactly() -> None:
    settings = Settings(
        upstream_key="litellm-master-0123456789",
        client_keys=(ClientKey("mp-client-key-abcdef"),),
        supermemory_api_key="short",  # too short to redact without redacting words
    )
    redactor = Redactor.configured(settings)
    text = "keys litellm-master-0123456789, mp-client-key-abcdef and a short one"
    assert redactor.text(text) == "keys [secret:proxy-key], [secret:proxy-key] and a short one"


def test_configured_patterns_and_redaction_off() -> None:
    pattern = ("employee-id", re.compile(r"EMP-\d{6}"))
    on = Settings(memory=MemorySettings(redact_patterns=(pattern,)))
    assert Redactor.configured(on).text("ask EMP-123456") == "ask [secret:employee-id]"
    off = Settings(memory=MemorySettings(redact=False, redact_patterns=(pattern,)))
    text = f"ask EMP-123456 with {samples.OPENAI_KEY}"
    assert Redactor.configured(off).text(text) is text


def test_each_redaction_is_counted_by_kind() -> None:
    kinds: list[str] = []
    redactor = Redactor(on_redacted=kinds.append)
    redactor.text(" ".join(samples.SEVEN.values()))
    assert sorted(kinds) == sorted(samples.SEVEN)


def test_a_message_keeps_its_shape_and_its_tool_calls_stay_json() -> None:
    arguments = orjson.dumps({"command": f"export TOKEN={samples.GITHUB_TOKEN}", "n": [1]})
    message: Message = {
        "role": "assistant",
        "content": f"set {samples.OPENAI_KEY}",
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "sh", "arguments": arguments.decode()},
            },
            {"id": "c2", "type": "function", "function": {"name": "sh", "arguments": "{}"}},
            {"id": "c3", "type": "function", "function": {"name": "x", "arguments": samples.JWT}},
        ],
    }
    redacted = REDACTOR.message(message)
    assert redacted["content"] == "set [secret:openai-key sk-proj-…]"
    calls = redacted["tool_calls"]
    assert orjson.loads(calls[0]["function"]["arguments"]) == {
        "command": "export TOKEN=[secret:github-token ghp_…]",
        "n": [1],
    }
    assert calls[1] is message["tool_calls"][1]  # nothing to redact: the very same call
    assert calls[2]["function"]["arguments"] == "[secret:jwt eyJ…]"  # not JSON: as text


def test_a_memory_record_gets_the_id_of_its_redacted_text() -> None:
    text = f"User: my key is {samples.OPENAI_KEY}\nAssistant: noted"
    record = MemoryRecord(memory_id("u", "p", text), "u", "p", "s", "c", None, 1.0, text)
    redacted = REDACTOR.record(record)
    assert redacted.text == "User: my key is [secret:openai-key sk-proj-…]\nAssistant: noted"
    assert redacted.id == memory_id("u", "p", redacted.text)
    assert dataclasses.replace(redacted, id=record.id, text=record.text) == record


# --- properties ----------------------------------------------------------------------

ALPHANUMERIC = string.ascii_letters + string.digits
DELIMITERS = [" ", "\n", "\t", "=", ": ", '"', "'", "(", "`", ",", "\\n", "<", ">", "[", "|"]


def _body(alphabet: str, size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet, min_size=size, max_size=size + 20).filter(
        lambda body: sum(map(str.isdigit, body)) and sum(map(str.isalpha, body))
    )


def _token(lead: str, alphabet: str, size: int) -> st.SearchStrategy[str]:
    return _body(alphabet, size).map(lambda body: lead + body)


SECRETS = st.one_of(
    _token("sk-proj-", ALPHANUMERIC + "_-", 40),
    _token("sk-ant-api03-", ALPHANUMERIC + "_-", 80),
    _token("AIza", ALPHANUMERIC + "_-", 35),
    _token("AKIA", string.ascii_uppercase + "234567", 16).map(lambda key: key[:20]),
    st.tuples(st.sampled_from(["ghp_", "gho_", "ghs_"]), _body(ALPHANUMERIC, 36)).map("".join),
    _token("github_pat_", ALPHANUMERIC + "_", 82),
    _token("glpat-", ALPHANUMERIC + "_-", 20),
    _token("xoxb-", string.digits + "-" + ALPHANUMERIC, 40),
    _token("sk_live_", ALPHANUMERIC, 24),
    _token("npm_", ALPHANUMERIC, 36),
    st.text(string.ascii_letters, min_size=34, max_size=40)
    .filter(lambda body: body.lower() != body != body.upper())
    .map(lambda body: "hf_" + body),
    st.tuples(_body(ALPHANUMERIC, 20), _body(ALPHANUMERIC, 30), _body(ALPHANUMERIC + "_-", 43)).map(
        lambda parts: "eyJ" + parts[0] + ".eyJ" + parts[1] + "." + parts[2]
    ),
    _body(string.ascii_letters + string.digits + "+/", 64).map(
        lambda body: f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----"
    ),
)
ASSIGNED = st.tuples(
    st.sampled_from(["password", "DB_PASSWORD", "api_key", "client_secret", "GITHUB_TOKEN"]),
    st.sampled_from(["=", ": ", " = ", '": "', "="]),
    _body(ALPHANUMERIC + "!#%&*+-./@^~", 16).filter(random_value),
)
# Not `$NAME` (a shell variable's placeholder) nor a masked one (`***`, `xxxx`, `...`): the
# redactor leaves what already hides a password (`mysql://app:ab***@db`), by design.
URL_PASSWORDS = _body(ALPHANUMERIC + "!$&*+-.~", 10).filter(
    lambda p: not p.startswith("$") and not any(m in p for m in ("***", "xxxx", "XXXX", "..."))
)


@given(st.text(), st.sampled_from(DELIMITERS), SECRETS, st.sampled_from(DELIMITERS), st.text())
def test_no_generated_secret_survives_wherever_it_is(
    before: str, left: str, secret: str, right: str, after: str
) -> None:
    assume(secret not in before + after)
    text = before + left + secret + right + after
    redacted = REDACTOR.text(text)
    assert secret not in redacted
    assert REDACTOR.text(redacted) == redacted


@given(st.text(), ASSIGNED, URL_PASSWORDS, st.text())
def test_no_assigned_secret_or_url_password_survives(
    before: str, assigned: tuple[str, str, str], password: str, after: str
) -> None:
    name, operator, value = assigned
    assume(value not in before + after and password not in before + after)
    url = f"mysql://app:{password}@db.example.com/app"
    text = f"{before}\n{name}{operator}{value}\n{url} {after}"
    redacted = REDACTOR.text(text)
    assert value not in redacted
    assert f":{password}@" not in redacted
    assert REDACTOR.text(redacted) == redacted


AWS_SECRET_KEYS = st.text(ALPHANUMERIC + "/+", min_size=40, max_size=40).filter(
    lambda key: key.lower() != key != key.upper()
)
AWS_NAMES = st.sampled_from(
    ["AWS secret access key: ", "aws_secret_access_key=", "AWS key ", "the aws secret is `"]
)


# Not `=`: 40 characters and a `=` are the end of something longer in base64.
AFTER_AWS_SECRET_KEYS = [delimiter for delimiter in DELIMITERS if delimiter != "="]


@given(st.text(), AWS_NAMES, AWS_SECRET_KEYS, st.sampled_from(AFTER_AWS_SECRET_KEYS), st.text())
def test_no_aws_secret_key_named_as_one_survives(
    before: str, name: str, secret: str, right: str, after: str
) -> None:
    assume(secret not in before + after)
    text = f"{before}\n{name}{secret}{right}{after}"
    redacted = REDACTOR.text(text)
    assert secret not in redacted
    assert REDACTOR.text(redacted) == redacted


@given(
    st.lists(st.text(), min_size=2, max_size=5),
    st.data(),
    AWS_SECRET_KEYS,
)
def test_no_aws_secret_key_survives_in_an_exchange_that_holds_its_key_id(
    contents: list[str], data: st.DataObject, secret: str
) -> None:
    """Whichever messages hold the key id and the secret key, alone or together."""
    assume(not any(secret in content for content in contents))
    messages: list[Message] = [{"role": "user", "content": content} for content in contents]
    where = st.integers(0, len(messages) - 1)
    for index, said in ((data.draw(where), samples.AWS_ACCESS_KEY_ID), (data.draw(where), secret)):
        messages[index]["content"] += f"\n{said}\n"
    redacted = REDACTOR.messages(messages)
    assert not any(secret in message["content"] for message in redacted)


AWS_WORDS = st.one_of(
    st.sampled_from(["aws", "AWS ", "secret", " key", ":", "[", "]", " ", "\n", "=", "`"]),
    st.sampled_from(["[secret:aws-secret-key]", "[secret:aws-access-key AKIA…]"]),
    AWS_SECRET_KEYS,
)


@given(st.lists(AWS_WORDS, max_size=30).map("".join))
def test_redacting_aws_names_and_keys_twice_changes_nothing(text: str) -> None:
    """Markers name AWS keys too: they must not make a name for the next key."""
    once = REDACTOR.text(text)
    assert REDACTOR.text(once) == once


@given(st.text())
def test_redacting_twice_changes_nothing(text: str) -> None:
    once = REDACTOR.text(text)
    assert REDACTOR.text(once) == once


HEX = "0123456789abcdef"
ORDINARY = st.one_of(
    # Pieces of secrets' shapes that ordinary text holds, never completed here.
    st.sampled_from(["def", "return", "the", "=", ":", "(", ")", "\n", " ", "import os"]),
    st.sampled_from(["sk", "AKIA", "eyJ", "://", "-----BEGIN", "-----END", "KEY"]),
    st.from_regex(r"[a-z_][a-z0-9_]{0,20}", fullmatch=True),
    st.text(HEX, min_size=40, max_size=40),  # commit
    st.text(HEX, min_size=64, max_size=64).map(lambda digest: "sha256:" + digest),
    st.uuids().map(str),
    st.binary(min_size=1, max_size=300).map(
        lambda data: "data:image/png;base64," + base64.b64encode(data).decode()
    ),
    # Not negative: "sk" then "-10000000" is an OpenAI key's shape (found by this test).
    st.integers(min_value=0).map(str),
)


@example("sk-----BEGIN" + "0" * 40)  # found by this test: pieces glued into a dash rule
@given(st.lists(ORDINARY, max_size=60).map("".join))
def test_text_without_secrets_is_unchanged(text: str) -> None:
    assert REDACTOR.text(text) is text
