from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from memory_proxy.config.recall import DEFAULT_EXTRACTORS, ProjectExtractor
from memory_proxy.identity.client_detection import VALID_ID, InvalidIdentifier
from memory_proxy.identity.project import detect_project, project_id
from memory_proxy.records.memory import GENERAL_PROJECT

REPO = "/home/dev/src/litellm-memory-proxy"
REPO_ID = project_id(REPO)

# Claude Code 2.1's system prompt section (the real CLI, see README "Memory").
CLAUDE_CODE_21_SYSTEM = (
    "You are Claude Code, Anthropic's official CLI for Claude.\n\n# Environment\n"
    "You have been invoked in the following environment: \n"
    f" - Primary working directory: {REPO}\n - Is a git repository: true\n"
    " - Platform: linux\n - Shell: bash\n"
)
OLDER_ENV_SYSTEM = (
    "You are an interactive CLI tool.\n\n<env>\n"
    f"Working directory: {REPO}\nIs directory a git repo: Yes\nPlatform: darwin\n</env>\n"
)
CODEX_ENVIRONMENT = (
    f"<environment_context>\n  <cwd>{REPO}</cwd>\n  <shell>zsh</shell>\n</environment_context>"
)


def raw(body: object) -> bytes:
    return json.dumps(body).encode()


def claude_code_body(system: str = CLAUDE_CODE_21_SYSTEM) -> bytes:
    return raw(
        {
            "model": "claude-sonnet-4-5",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
            "system": [
                {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.0"},
                {"type": "text", "text": system, "cache_control": {"type": "ephemeral"}},
            ],
        }
    )


def codex_body() -> bytes:
    return raw(
        {
            "model": "gpt-5",
            "instructions": "You are Codex.",
            "input": [
                {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": CODEX_ENVIRONMENT}],
                },
                {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "fix the tests"}],
                },
            ],
        }
    )


def test_project_ids_are_the_directory_name_and_a_hash_of_the_whole_path() -> None:
    assert REPO_ID.startswith("litellm-memory-proxy-")
    assert len(REPO_ID) == len("litellm-memory-proxy-") + 8
    assert project_id(REPO + "/") == REPO_ID  # one directory, one project
    assert project_id("/tmp/litellm-memory-proxy") != REPO_ID  # same name, elsewhere


@given(st.text(max_size=300))
def test_any_directory_gives_a_valid_id(directory: str) -> None:
    assert VALID_ID.match(project_id(directory))


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (claude_code_body(), {}),
        (claude_code_body(OLDER_ENV_SYSTEM), {}),
        (codex_body(), {}),
        (b"{}", {"x-codex-turn-metadata": json.dumps({"workspaces": {REPO: {"x": 1}}})}),
    ],
    ids=["claude-code-2.1", "older-env-block", "codex-environment-context", "codex-header"],
)
def test_the_working_directory_clients_send_names_the_project(
    body: bytes, headers: dict[str, str]
) -> None:
    assert detect_project(headers, body, DEFAULT_EXTRACTORS) == REPO_ID


def test_escaped_paths_are_unescaped_before_hashing() -> None:
    windows = r"C:\Users\dev\new project"
    body = claude_code_body(CLAUDE_CODE_21_SYSTEM.replace(REPO, windows))
    assert detect_project({}, body, DEFAULT_EXTRACTORS) == project_id(windows)
    assert project_id(windows).startswith("new-project-")


def test_the_explicit_header_wins_and_is_used_as_given() -> None:
    headers = {"x-memory-project": "my-project"}
    assert detect_project(headers, claude_code_body(), DEFAULT_EXTRACTORS) == "my-project"


@pytest.mark.parametrize("bad", ["", "a b", "../etc", "x" * 200])
def test_an_unusable_explicit_project_is_refused(bad: str) -> None:
    with pytest.raises(InvalidIdentifier, match="x-memory-project"):
        detect_project({"x-memory-project": bad}, None, DEFAULT_EXTRACTORS)


def test_without_any_the_request_uses_the_general_memory() -> None:
    body = raw({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert detect_project({}, body, DEFAULT_EXTRACTORS) == GENERAL_PROJECT
    assert detect_project({}, None, DEFAULT_EXTRACTORS) == GENERAL_PROJECT


def test_extractors_run_in_order_and_a_header_may_be_the_directory_itself() -> None:
    extractors = (
        ProjectExtractor.of("x-workspace", None),
        *DEFAULT_EXTRACTORS,
    )
    headers = {"x-workspace": "/srv/other"}
    assert detect_project(headers, claude_code_body(), extractors) == project_id("/srv/other")
    assert detect_project({}, claude_code_body(), extractors) == REPO_ID


def test_captures_are_bounded() -> None:
    huge = "/" + "a" * 5000
    body = claude_code_body(CLAUDE_CODE_21_SYSTEM.replace(REPO, huge))
    assert detect_project({}, body, DEFAULT_EXTRACTORS) == GENERAL_PROJECT


body_pieces = st.sampled_from(
    [
        "Primary working directory: ",
        "<env>",
        "Working directory: ",
        "<environment_context>",
        "<cwd>",
        "</cwd>",
        "\n",
        " ",
        '"',
        "\\",
        REPO,
    ]
) | st.text(max_size=12)


@given(st.lists(body_pieces, max_size=12))
def test_looking_for_a_body_pattern_s_literal_first_never_changes_what_is_found(
    pieces: list[str],
) -> None:
    """Each default body pattern is passed over when its literal is missing; the project
    found is the one the patterns alone find, escaped in JSON or not."""
    for body in (raw({"system": "".join(pieces)}), "".join(pieces).encode("utf-8", "replace")):
        assert detect_project({}, body, DEFAULT_EXTRACTORS) == patterns_alone(body)


def patterns_alone(body: bytes) -> str:
    for extractor in DEFAULT_EXTRACTORS:
        if extractor.body_pattern is None:
            continue
        assert extractor.body_literal
        found = extractor.body_pattern.search(body)
        if found is None:
            continue
        try:
            text = orjson.loads(b'"' + found.group(1) + b'"')
        except orjson.JSONDecodeError:
            continue
        if text:
            return project_id(text)
    return GENERAL_PROJECT
