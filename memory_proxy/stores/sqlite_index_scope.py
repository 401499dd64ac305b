"""The scope tokens of the memory index: each memory's `scope` column holds one for its
user and one for its user and project, and a search ANDs the right one with its words
(sqlite_index.py says why)."""

from __future__ import annotations

import functools
import hashlib

SCOPES_KEPT = 1024  # (user, project) pairs whose scope is kept: few write at once


def _scope_token(*parts: str) -> str:
    """Digits only, so that the porter stemmer leaves it alone."""
    digest = hashlib.blake2b("\0".join(parts).encode(), digest_size=8).digest()
    return str(int.from_bytes(digest, "big"))


def _user_token(user_id: str) -> str:
    return _scope_token("user", user_id)


def project_token(user_id: str, project: str) -> str:
    return _scope_token("project", user_id, project)


@functools.lru_cache(SCOPES_KEPT)
def search_token(user_id: str, project: str | None) -> str:
    """The scope token of a user's search (of one project, or of every one); kept, as
    every search asks for its own (a digest ~1 us) and a proxy serves few scopes at once."""
    return _user_token(user_id) if project is None else project_token(user_id, project)


@functools.lru_cache(SCOPES_KEPT)
def index_scope(user_id: str, project: str) -> str:
    """What a memory's `scope` column holds in the index; kept, as every memory written
    asks for its own and two digests cost ~2 us (a batch's memories are mostly one user's
    and project's)."""
    return f"{_user_token(user_id)} {project_token(user_id, project)}"
