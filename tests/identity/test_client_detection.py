from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from memory_proxy.cli.main import main
from memory_proxy.config import HeaderPattern, UserIdMappings, load_settings
from memory_proxy.config.recall import DEFAULT_SESSION_HEADERS as SESSION_HEADERS
from memory_proxy.identity.client_detection import (
    MAX_MATCHED_HEADER_LENGTH,
    InvalidIdentifier,
    UserDetector,
    detect_session,
    detect_user,
)
from tests.fake_upstream import FakeUpstream
from tests.sdks import anthropic, openai
from tests.shipped_config_support import (
    CLAUDE_CODE_CLIENT,
    CODEX_CLIENT,
    one_user_for_claude_code_and_codex,
    shipped_proxy,
)
from tests.support import wait_until

MAPPINGS = UserIdMappings(
    custom_header="x-memory-user-id",
    header_patterns=(
        HeaderPattern("user-agent", re.compile("OpenAIClientImpl/Java"), "pycharm-ai"),
        HeaderPattern("user-agent", re.compile("claude-cli|Claude Code"), "claude-cli"),
        HeaderPattern("x-project", re.compile(r"^(?P<project>[a-z]+)$"), "proj-{project}"),
        HeaderPattern("user-agent", re.compile("curl"), "curl"),
    ),
    default_user_id="default-dev",
)


def test_custom_header_wins_over_patterns() -> None:
    identity = detect_user(
        {"x-memory-user-id": "alice", "user-agent": "OpenAIClientImpl/Java"}, MAPPINGS
    )
    assert identity.user_id == "alice"
    assert identity.custom_header_present and identity.matched_pattern is None
    assert not identity.is_default


def test_first_matching_pattern_wins() -> None:
    identity = detect_user({"user-agent": "claude-cli/1.0.98 (external, cli) curl"}, MAPPINGS)
    assert identity.user_id == "claude-cli"
    assert identity.matched_pattern is not None
    assert identity.matched_pattern.pattern == "claude-cli|Claude Code"
    assert identity.matched_pattern.header == "user-agent"


# The user-agent each real client sends: the CLIs' as recorded from Claude Code 2.1.332 and
# Codex 0.169.0 (tests/clients runs them live), the SDKs' from the installed SDKs themselves
# (asked in the test, not at collection: tests/sdks.py).
SHIPPED_CONFIG = Path(__file__).resolve().parents[2] / "config.yaml"
REAL_USER_AGENTS = [
    ("claude-cli/2.1.332 (external, cli)", "claude-cli"),
    ("claude-cli/2.1.332 (external, sdk-cli)", "claude-cli"),
    ("codex_exec/0.169.0 (Debian 12.0.0; x86_64) dumb (codex_exec; 0.169.0)", "codex-cli"),
    ("codex-tui/0.169.0 (Debian 12.0.0; x86_64) xterm-256color (codex-tui; 0.169.0)", "codex-cli"),
    ("codex_cli_rs/0.20.0 (Ubuntu 24.4.0; x86_64) WindowsTerminal", "codex-cli"),
    ("OpenAIClientImpl/Java 2.1.0", "pycharm-ai"),
]
SDK_CLIENTS = [
    ("openai.OpenAI", "openai-python"),
    ("openai.AsyncOpenAI", "openai-python"),
    ("anthropic.Anthropic", "anthropic-python"),
    ("anthropic.AsyncAnthropic", "anthropic-python"),
]


SHIPPED_NAMES = {
    "claude-cli": "claude-code",
    "codex-cli": "codex",
    "pycharm-ai": "pycharm-ai",
    "openai-python": "openai-python",
    "anthropic-python": "anthropic-python",
}


@pytest.mark.parametrize(("user_agent", "user_id"), REAL_USER_AGENTS)
def test_the_shipped_config_recognises_what_real_clients_send(
    user_agent: str, user_id: str
) -> None:
    mappings = load_settings(SHIPPED_CONFIG, environ={}).user_id_mappings
    identity = detect_user({"user-agent": user_agent}, mappings)
    assert (identity.user_id, identity.client) == (user_id, SHIPPED_NAMES[user_id])


@pytest.mark.parametrize(("client", "user_id"), SDK_CLIENTS)
def test_the_shipped_config_recognises_what_the_sdks_send(client: str, user_id: str) -> None:
    sdk, _, name = client.partition(".")
    user_agent = getattr({"openai": openai, "anthropic": anthropic}[sdk], name)(api_key="k")
    test_the_shipped_config_recognises_what_real_clients_send(user_agent.user_agent, user_id)


def test_a_matching_patterns_name_is_the_client_else_its_user_id() -> None:
    named = HeaderPattern("user-agent", re.compile("^claude-cli/"), "claude-cli", "claude-code")
    unnamed = HeaderPattern("x-team", re.compile(r"(?P<team>\w+)"), "team-{team}")
    mappings = UserIdMappings(header_patterns=(named, unnamed))
    claude = detect_user({"user-agent": "claude-cli/2.1.332 (external, cli)"}, mappings)
    team = detect_user({"x-team": "apollo"}, mappings)
    assert (claude.user_id, claude.client) == ("claude-cli", "claude-code")
    assert claude.matched_pattern is not None
    assert claude.matched_pattern.name == "claude-code"
    assert (team.user_id, team.client) == ("team-apollo", "team-{team}")


def test_a_shipped_clients_name_is_its_client_in_usage_memories_and_the_recalled_block(
    fake_upstream: tuple[FakeUpstream, str], tmp_path: Path
) -> None:
    upstream, url = fake_upstream
    with shipped_proxy(url, tmp_path) as proxy:
        proxy.as_claude_code("Our staging database is heron-17", "cc-1", "/src/heron")
        wait_until(lambda: proxy.memory_count() == 1)
        asked = proxy.as_claude_code("What is the staging database called?", "cc-2", "/src/heron")
        wait_until(lambda: proxy.memory_count() == 2)
        by_client = httpx.get(f"{proxy.url}/v1/usage", params={"group_by": "client"}).json()
        memories = httpx.get(f"{proxy.url}/v1/memories").json()["data"]
    usage = CliRunner().invoke(
        main, ["usage", "--config", str(proxy.config), "--group-by", "client", "--json"]
    )
    assert asked.headers["x-memory-recalled"] == "1"
    recalled = json.loads(upstream.requests[-1].body)["messages"][-1]["content"]
    assert '<memory date="' in str(recalled)
    assert f'client="{CLAUDE_CODE_CLIENT}">' in str(recalled)
    assert {row["client"]: row["requests"] for row in by_client["data"]} == {CLAUDE_CODE_CLIENT: 2}
    assert [row["client"] for row in json.loads(usage.output)["data"]] == [CLAUDE_CODE_CLIENT]
    assert {memory["client"] for memory in memories} == {CLAUDE_CODE_CLIENT}


def test_config_yamls_example_gives_claude_code_and_codex_one_memory_per_directory(
    fake_upstream: tuple[FakeUpstream, str], tmp_path: Path
) -> None:
    """The commented example applied: what Claude Code was told in a directory, Codex
    recalls in the same directory (both name it by the same path), not in another; usage
    and memories still tell the two clients apart."""
    _, url = fake_upstream
    config = yaml.safe_dump(one_user_for_claude_code_and_codex())
    with shipped_proxy(url, tmp_path, config_text=config) as proxy:
        told = proxy.as_claude_code("Our staging database is heron-17", "cc-1", "/src/heron")
        wait_until(lambda: proxy.memory_count() == 1)
        here = proxy.as_codex("What is the staging database called?", "cx-1", "/src/heron")
        elsewhere = proxy.as_codex("What is the staging database called?", "cx-2", "/src/lunch")
        wait_until(lambda: proxy.memory_count() == 3)
        memories = httpx.get(f"{proxy.url}/v1/memories").json()["data"]
    assert told.headers["x-memory-project"] == here.headers["x-memory-project"]
    assert (here.headers["x-memory-recalled"], elsewhere.headers["x-memory-recalled"]) == ("1", "0")
    assert {(m["user_id"], m["client"]) for m in memories} == {
        ("me", CLAUDE_CODE_CLIENT),
        ("me", CODEX_CLIENT),
    }


def test_named_groups_fill_the_user_id() -> None:
    assert detect_user({"x-project": "apollo"}, MAPPINGS).user_id == "proj-apollo"


def test_default_when_nothing_matches() -> None:
    identity = detect_user({"user-agent": "Mozilla/5.0"}, MAPPINGS)
    assert identity.user_id == "default-dev"
    assert identity.is_default


def test_only_a_bounded_prefix_of_a_header_is_matched() -> None:
    value = "x" * MAX_MATCHED_HEADER_LENGTH + "curl"
    assert detect_user({"user-agent": value}, MAPPINGS).is_default


@pytest.mark.parametrize(
    "bad", ["", "a b", "../etc", "x" * 200, "ümlaut", "alice\n", "alice\r", "alice\x0b", "a\x00"]
)
def test_unusable_explicit_user_ids_are_refused(bad: str) -> None:
    with pytest.raises(InvalidIdentifier, match="x-memory-user-id must be"):
        detect_user({"x-memory-user-id": bad}, MAPPINGS)


def test_spaces_and_tabs_around_a_header_value_are_not_part_of_the_id() -> None:
    """uvicorn's httptools parser keeps a header's trailing whitespace; h11 drops it."""
    assert detect_user({"x-memory-user-id": " alice \t"}, MAPPINGS).user_id == "alice"
    assert detect_session({"x-session-id": "s1 "}, SESSION_HEADERS) == "s1"


def test_session_precedence() -> None:
    body = {"metadata": {"session_id": "from-body"}}
    both = {"x-session-id": "s1", "x-sm-conversation-id": "s2"}
    assert detect_session(both, SESSION_HEADERS, body) == "s1"
    assert detect_session({"x-sm-conversation-id": "s2"}, SESSION_HEADERS, body) == "s2"
    assert detect_session({}, SESSION_HEADERS, body) == "from-body"
    assert detect_session({}, SESSION_HEADERS, {"metadata": "nope"}) is None
    assert detect_session({}, SESSION_HEADERS, None) is None


@pytest.mark.parametrize(
    "header",
    [
        "x-claude-code-session-id",  # Claude Code 2.x
        "session-id",  # the Codex CLI (0.169)
        "thread-id",  # the Codex CLI, the same id
        "session_id",  # older Codex CLI versions
        "x-litellm-session-id",  # LiteLLM's own
    ],
)
def test_the_conversation_ids_real_clients_send_name_the_session(header: str) -> None:
    sid = "019a9544-7ab1-73c1-837e-1fa681f4462b"
    assert detect_session({header: sid}, SESSION_HEADERS) == sid


def test_only_the_configured_headers_name_a_session() -> None:
    assert detect_session({"x-claude-code-session-id": "s1"}, ("x-session-id",)) is None


@pytest.mark.parametrize("bad", ["a/b", "abc\n", "abc\r\n", "abc\n\n", "abc\x00"])
def test_invalid_session_id_is_refused(bad: str) -> None:
    with pytest.raises(InvalidIdentifier, match="x-claude-code-session-id"):
        detect_session({"x-claude-code-session-id": bad}, SESSION_HEADERS)
    with pytest.raises(InvalidIdentifier, match=r"metadata\.session_id"):
        detect_session({}, SESSION_HEADERS, {"metadata": {"session_id": bad}})


def test_a_pattern_whose_group_captures_a_line_break_gives_no_user_id() -> None:
    loose = HeaderPattern("x-project", re.compile(r"(?P<project>[a-z\n]+)"), "proj-{project}")
    mappings = UserIdMappings(header_patterns=(loose,))
    assert detect_user({"x-project": "apollo\n"}, mappings).is_default


def test_user_ids_of_pass_through_keys_cannot_be_named() -> None:
    with pytest.raises(InvalidIdentifier, match="reserved"):
        detect_user({"x-memory-user-id": "key-0123456789abcdef"}, MAPPINGS)


header_values = st.none() | st.sampled_from(
    ["curl/8.5", "claude-cli/2.1", "OpenAIClientImpl/Java", "web", "a" * 1100, "Bad\nId", ""]
)
requests_headers = st.fixed_dictionaries(
    {},
    optional={
        "user-agent": header_values.filter(lambda v: v is not None),
        "x-project": header_values.filter(lambda v: v is not None),
        "x-memory-user-id": st.sampled_from(["alice", "bob"]),
    },
)


@given(st.lists(requests_headers, max_size=10))
def test_users_kept_by_header_value_are_those_detection_finds(
    requests: list[dict[str, str]],
) -> None:
    """Whatever came before, a request's user is the one its own headers give."""
    detector = UserDetector(MAPPINGS)
    for headers in requests:
        assert detector(headers) == detect_user(headers, MAPPINGS)
