"""Which project a memory tool works on: the argument's forms, and a root naming the same
project as the chat requests of Claude Code and the Codex CLI in that directory."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memory_proxy.api.mcp_server.workspace import (
    ProjectChoice,
    from_argument,
    from_header,
    from_roots,
    root_directory,
)
from memory_proxy.config.recall import DEFAULT_EXTRACTORS
from memory_proxy.identity.client_detection import InvalidIdentifier
from memory_proxy.identity.project import detect_project, project_id

HERON = "/home/me/src/heron service"

# Path segments as people name directories: any printable text but a separator.
_SEGMENT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\"),
    min_size=1,
    max_size=12,
)
DIRECTORIES = st.lists(_SEGMENT, min_size=1, max_size=5).map(lambda parts: "/" + "/".join(parts))


def claude_code_request(directory: str) -> bytes:
    """A Claude Code 2.x chat request's body, its working directory in its system prompt."""
    environment = f"# Environment\n - Primary working directory: {directory}\n - Platform: linux"
    return json.dumps({"system": [{"type": "text", "text": environment}], "messages": []}).encode()


def codex_request(directory: str) -> bytes:
    context = f"<environment_context>\n  <cwd>{directory}</cwd>\n</environment_context>"
    item = {"role": "user", "content": [{"type": "input_text", "text": context}]}
    return json.dumps({"input": [item]}).encode()


@given(DIRECTORIES)
def test_a_root_names_the_project_the_clients_chat_requests_name(directory: str) -> None:
    rooted = from_roots(["file://" + quote(directory)])
    assert rooted is not None and rooted.source == "roots"
    for body in (claude_code_request(directory), codex_request(directory)):
        assert detect_project({}, body, DEFAULT_EXTRACTORS) == rooted.project, body


def test_a_root_as_claude_code_sends_it() -> None:
    # Claude Code 2.1.332's roots/list answer for a directory with a space (pathToFileURL).
    assert root_directory("file:///home/me/src/heron%20service") == HERON
    assert from_roots(["file:///home/me/src/heron%20service"]) == ProjectChoice(
        project_id(HERON), "roots"
    )


@pytest.mark.parametrize(
    "uri", ["https://example.com/x", "file://fileserver/share", "file:", "untitled:1"]
)
def test_a_root_that_is_no_local_directory_names_nothing(uri: str) -> None:
    assert root_directory(uri) is None
    assert from_roots([uri]) is None


def test_the_first_local_root_wins() -> None:
    chosen = from_roots(["https://example.com", f"file://{quote(HERON)}", "file:///elsewhere"])
    assert chosen == ProjectChoice(project_id(HERON), "roots")


def test_the_argument_is_a_path_an_id_or_the_general_memory() -> None:
    assert from_argument(HERON) == ProjectChoice(project_id(HERON), "argument")
    assert from_argument(r"C:\Users\me\heron") == ProjectChoice(
        project_id(r"C:\Users\me\heron"), "argument"
    )
    assert from_argument("heron-1a2b3c4d") == ProjectChoice("heron-1a2b3c4d", "argument")
    assert from_argument("  ") == ProjectChoice("", "argument")
    assert from_header(None) == ProjectChoice("", "general")
    assert from_header("heron-1a2b3c4d").describe() == {"id": "heron-1a2b3c4d", "source": "header"}


@pytest.mark.parametrize("bad", ["a b", "x" * 200, "-starts-with-a-dash", "tab\there"])
def test_an_argument_that_is_no_id_nor_path_is_refused(bad: str) -> None:
    with pytest.raises(InvalidIdentifier, match="project must be"):
        from_argument(bad)
