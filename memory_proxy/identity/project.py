"""Which project a request belongs to, so that long-term memory is kept per (user,
project): the `x-memory-project` header, else the working directory the client already
sends (found by the configured extractors), else none (the user's general memory).

A directory becomes a readable and unique id: its name plus a short hash of the whole
path (`/home/me/src/litellm-memory-proxy` -> `litellm-memory-proxy-3f2a9c1d`). Extraction
is cheap: body patterns run over the raw request bytes (JSON-escaped text; the captured
group is unescaped), and every capture is bounded.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

import orjson

from memory_proxy.config.recall import ProjectExtractor
from memory_proxy.identity.client_detection import checked_id
from memory_proxy.records.memory import GENERAL_PROJECT

PROJECT_HEADER = "x-memory-project"
MAX_MATCHED_HEADER_LENGTH = 4096
MAX_NAME_LENGTH = 48
_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9._+\-]+")
_SEPARATORS = re.compile(r"[/\\]")


def detect_project(
    headers: Mapping[str, str], body: bytes | None, extractors: tuple[ProjectExtractor, ...]
) -> str:
    """The request's project id, or GENERAL_PROJECT. Raises `InvalidIdentifier` for an
    unusable `x-memory-project` (it is used as given, so it must be a valid id)."""
    explicit = named_project(headers)
    if explicit is not None:
        return explicit
    for extractor in extractors:
        directory = _directory(extractor, headers, body)
        if directory:
            return project_id(directory)
    return GENERAL_PROJECT


def named_project(headers: Mapping[str, str]) -> str | None:
    """The project `x-memory-project` names, or None when it is absent; `InvalidIdentifier`
    when it is no valid id."""
    explicit = headers.get(PROJECT_HEADER)
    return None if explicit is None else checked_id(explicit.strip(), PROJECT_HEADER)


def project_id(directory: str) -> str:
    """The directory's name, made safe, and 8 hex digits of the whole path's hash."""
    path = directory.strip()
    path = path.rstrip("/\\") or path
    name = _UNSAFE_IN_NAME.sub("-", _SEPARATORS.split(path)[-1]).strip("-._+")
    digest = hashlib.sha256(path.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{name[:MAX_NAME_LENGTH] or 'project'}-{digest}"


def _directory(
    extractor: ProjectExtractor, headers: Mapping[str, str], body: bytes | None
) -> str | None:
    if extractor.body_pattern is not None:
        if not body or body.find(extractor.body_literal) < 0:  # find: `in` tries an int first
            return None
        found = extractor.body_pattern.search(body)
        return _unescaped(found.group(1)) if found else None
    assert extractor.header is not None
    value = headers.get(extractor.header)
    if not value:
        return None
    value = value[:MAX_MATCHED_HEADER_LENGTH]
    if extractor.pattern is None:
        return value.strip()
    found_in_header = extractor.pattern.search(value)
    return found_in_header.group(1) if found_in_header else None


def _unescaped(escaped: bytes) -> str | None:
    """The text of a JSON string's content, or None when it is not valid JSON text."""
    try:
        text = orjson.loads(b'"' + escaped + b'"')
    except orjson.JSONDecodeError:
        return None
    return text if isinstance(text, str) else None
