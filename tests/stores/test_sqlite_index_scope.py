"""The scope tokens a file holds are the same in every version and every process (the
index process writes them, the proxy searches with them), however they are computed."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from memory_proxy.stores.sqlite_index_scope import index_scope, project_token, search_token


def test_the_tokens_are_those_files_already_hold() -> None:
    assert search_token("alice", None) == "14319182765110014940"
    assert search_token("alice", "shop") == "6697469057274596755"
    assert index_scope("alice", "shop") == "14319182765110014940 6697469057274596755"


@given(st.text(), st.text())
def test_a_memorys_scope_is_its_users_token_then_its_projects(user: str, project: str) -> None:
    for _ in range(2):  # computed, then remembered
        assert index_scope(user, project) == (
            f"{search_token(user, None)} {project_token(user, project)}"
        )
