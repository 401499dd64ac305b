"""Which project a memory tool works on. MCP clients send no working directory with their
requests, so the tools use what the protocol gives, in this order, and every result says
which one it was (`source`):

1. `argument`: the tool's own `project`, a project id as results show it, or a working
   directory's path (mapped as a chat request's is: identity/project.py), "" for the
   user's general memory;
2. `roots`: the client's workspace folders, its first `file://` root (`roots/list`). On
   protocol 2026-07-28 the question rides inside the call (the tool answers "input
   required" and the client calls again with its roots), so no session is kept between
   requests and any `--workers` process can answer each of them;
3. `header`: `x-memory-project` from the client's MCP configuration;
4. `general`: the user's memory outside any project.

A root reaches the same project id as the chat requests of Claude Code and the Codex CLI
in that directory: both name it by its path, which `project_id` maps alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from memory_proxy.identity.client_detection import checked_id
from memory_proxy.identity.project import project_id
from memory_proxy.records.memory import GENERAL_PROJECT

ProjectSource = Literal["argument", "roots", "header", "general"]
_SEPARATORS = ("/", "\\")  # a path has one; a project id never does
PROJECT_ARGUMENT = "project"


@dataclass(frozen=True)
class ProjectChoice:
    project: str  # GENERAL_PROJECT for the general memory
    source: ProjectSource

    def describe(self) -> dict[str, Any]:
        return {"id": self.project or None, "source": self.source}


GENERAL = ProjectChoice(GENERAL_PROJECT, "general")


def from_argument(value: str) -> ProjectChoice:
    """The tool's `project`: a directory (any path), the general memory (""), or a project
    id; `InvalidIdentifier` for anything else."""
    value = value.strip()
    if not value:
        return ProjectChoice(GENERAL_PROJECT, "argument")
    if any(separator in value for separator in _SEPARATORS):
        return ProjectChoice(project_id(value), "argument")
    return ProjectChoice(checked_id(value, PROJECT_ARGUMENT), "argument")


def from_roots(uris: list[str]) -> ProjectChoice | None:
    """The first root that is a local directory, as a project; None when there is none."""
    for uri in uris:
        directory = root_directory(uri)
        if directory:
            return ProjectChoice(project_id(directory), "roots")
    return None


def from_header(named: str | None) -> ProjectChoice:
    return GENERAL if named is None else ProjectChoice(named, "header")


def root_directory(uri: str) -> str | None:
    """The local path of a `file://` URI (percent-decoded, as the client's working
    directory is written), or None for any other URI."""
    parts = urlsplit(uri)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        return None
    path = unquote(parts.path, errors="surrogateescape")
    return path or None
