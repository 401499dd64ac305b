"""`memory-proxy memories`: search, list, forget and compact on a real SQLite file, and
stores without a readable index explained (export and import: test_cli_memory_lines)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from memory_proxy.identity.project import project_id
from memory_proxy.stores import sqlite_space
from tests.cli_memories_support import PORT, json_lines, memory, run, store
from tests.fake_upstream import FakeUpstream
from tests.shipped_config_support import (
    CLAUDE_CODE_CLIENT,
    CLAUDE_CODE_USER,
    CODEX_CLIENT,
    CODEX_USER,
    shipped_proxy,
)
from tests.stores.test_sqlite_index_schema import old_file
from tests.support import wait_until


def test_search_shows_the_best_matches_of_the_default_user_or_another(tmp_path: Path) -> None:
    fillers = [memory(f"unrelated note {n}", user="carol") for n in range(20)]
    config = store(tmp_path, "m", memory(PORT), memory("lunch is pizza"), *fillers)
    plain = run(config, "search", "staging port")
    as_json = run(config, "search", "staging port", "--json")
    carol = run(config, "search", "unrelated note", "--user", "carol", "--limit", "3", "--json")
    nobody = run(config, "search", "staging", "--user", "dave")
    assert plain.exit_code == 0, plain.output
    header, *text = plain.output.splitlines()
    assert header.startswith(f"{memory(PORT).id}  ")
    assert "shop  claude-cli  score " in header
    assert text == [
        "    User: which port does staging use?",
        "    Assistant: The staging " + PORT[58:],
    ]
    (hit,) = json_lines(as_json.output)
    assert {**hit, "score": None} == {**memory(PORT).describe(), "score": None}
    assert hit["score"] > 0
    assert len(json_lines(carol.output)) == 3
    assert nobody.output == "no memories of 'dave' match\n"


def test_list_is_newest_first_and_narrowed_by_project(tmp_path: Path) -> None:
    records = [memory("a", at=1), memory("b", project="", at=2), memory("c", at=3)]
    config = store(tmp_path, "m", *records)
    everything = run(config, "list", "--json")
    general = run(config, "list", "--project", "", "--json")
    newest = run(config, "list", "--limit", "1")
    bad = run(config, "list", "--project", "a b")
    assert [m["text"] for m in json_lines(everything.output)] == ["c", "b", "a"]
    assert [m["text"] for m in json_lines(general.output)] == ["b"]
    assert newest.output.splitlines()[1:] == ["    c"]
    assert bad.exit_code == 2
    assert "expected 1-128 letters" in bad.output


def test_a_private_models_memories_are_listed_and_found_marked(tmp_path: Path) -> None:
    told_llama = memory(PORT, private=True)
    config = store(tmp_path, "m", told_llama, memory("lunch is pizza", at=2))
    listed = run(config, "list").output.splitlines()
    found = run(config, "search", "staging port").output.splitlines()
    assert listed[0].endswith("  claude-cli") and "private" not in listed[0]
    assert listed[2] == f"{told_llama.id}  {listed[2].split('  ')[1]}  default-dev  shop  " + (
        "claude-cli  private"
    )
    assert found[0].startswith(f"{told_llama.id}  ") and "  claude-cli  private  score " in found[0]


def test_forget_asks_first_and_forgets_one_memory_or_a_project(tmp_path: Path) -> None:
    one, other, elsewhere = memory("one"), memory("two", at=2), memory("three", project="blog")
    config = store(tmp_path, "m", one, other, elsewhere)
    declined = run(config, "forget", one.id, given="n\n")
    accepted = run(config, "forget", one.id, given="y\n")
    missing = run(config, "forget", one.id, "--yes")
    project = run(config, "forget", "--project", "shop", "--yes")
    empty = run(config, "forget", "--project", "shop", "--yes")
    neither = run(config, "forget")
    both = run(config, "forget", one.id, "--project", "shop")
    left = run(config, "list", "--json")
    assert declined.exit_code == 1
    assert declined.output.endswith("[y/N]: n\nAborted!\n")
    assert "Forget this memory of 'default-dev'?\n    one" in declined.output
    assert accepted.exit_code == 0
    assert f"forgot memory {one.id}" in accepted.output
    assert missing.exit_code == 1
    assert missing.output == f"Error: no memory {one.id!r}\n"
    assert project.output == "forgot 1 memory in project 'shop' of every user\n"
    assert "no memories in project 'shop' of every user" in empty.output
    assert neither.exit_code == both.exit_code == 2
    assert [m["text"] for m in json_lines(left.output)] == ["three"]


CLAUDES = memory(PORT, user="claude-cli", at=2)
CODEXS = memory("User: deploy?\nAssistant: merge to main.", user="codex-cli", project="", at=3)


def test_list_and_search_show_every_users_memories_unless_a_user_is_named(
    tmp_path: Path,
) -> None:
    config = store(tmp_path, "m", memory("lunch is pizza", at=1), CLAUDES, CODEXS)
    listed = run(config, "list")
    as_json = run(config, "list", "--json")
    searched = run(config, "search", "staging port deploy", "--json")
    codex = run(config, "list", "--user", "codex-cli", "--json")
    nothing = run(config, "search", "kubernetes")
    nobody = run(config, "list", "--user", "dave")
    assert listed.exit_code == 0, listed.output
    headers = [line for line in listed.output.splitlines() if not line.startswith("    ")]
    assert [line.split("  ")[2:] for line in headers] == [
        ["codex-cli", "(general)", "claude-cli"],
        ["claude-cli", "shop", "claude-cli"],
        ["default-dev", "shop", "claude-cli"],
    ]
    assert [m["user_id"] for m in json_lines(as_json.output)] == [
        "codex-cli",
        "claude-cli",
        "default-dev",
    ]
    assert {m["user_id"] for m in json_lines(searched.output)} == {"claude-cli", "codex-cli"}
    assert [m["text"] for m in json_lines(codex.output)] == [CODEXS.text]
    assert nothing.output == "no memories match\n"
    assert nobody.output == "no memories of 'dave'\n"


def test_forget_takes_an_id_alone_a_whole_user_or_a_project_of_everyone(tmp_path: Path) -> None:
    elsewhere = memory("blog fact", user="claude-cli", project="blog", at=4)
    kept = memory("default shop fact", at=5)
    config = store(tmp_path, "m", CLAUDES, CODEXS, elsewhere, kept)
    by_id = run(config, "forget", CODEXS.id, given="y\n")
    not_theirs = run(config, "forget", CLAUDES.id, "--user", "codex-cli", "--yes")
    declined = run(config, "forget", "--user", "claude-cli", given="n\n")
    whole_user = run(config, "forget", "--user", "claude-cli", "--yes")
    none_left = run(config, "forget", "--user", "claude-cli", "--yes")
    shop = run(config, "forget", "--project", "shop", "--user", "default-dev", "--yes")
    left = run(config, "list", "--json")
    assert "Forget this memory of 'codex-cli'?" in by_id.output
    assert f"forgot memory {CODEXS.id}" in by_id.output
    assert not_theirs.output == f"Error: no memory {CLAUDES.id!r} of 'codex-cli'\n"
    assert "Forget 2 memories in every project of 'claude-cli'? [y/N]: n" in declined.output
    assert whole_user.output == "forgot 2 memories in every project of 'claude-cli'\n"
    assert none_left.output == "Error: no memories in every project of 'claude-cli'\n"
    assert shop.output == "forgot 1 memory in project 'shop' of 'default-dev'\n"
    assert json_lines(left.output) == []


def test_list_shows_real_clients_memories_on_a_fresh_start_with_the_shipped_config(
    fake_upstream: tuple[FakeUpstream, str], tmp_path: Path
) -> None:
    _, url = fake_upstream
    with shipped_proxy(url, tmp_path) as proxy:
        told = proxy.as_claude_code("The staging database is heron-17", "cc-1", "/src/heron")
        asked = proxy.as_codex("Deploys run on Fridays", "cx-1", "/src/heron")
        assert (told.status_code, asked.status_code) == (200, 200)
        wait_until(lambda: proxy.memory_count() == 2)
    listed = run(proxy.config, "list")
    as_json = json_lines(run(proxy.config, "list", "--json").output)
    assert "heron-17" in listed.output and "Fridays" in listed.output
    assert [(m["user_id"], m["client"]) for m in as_json] == [
        (CODEX_USER, CODEX_CLIENT),
        (CLAUDE_CODE_USER, CLAUDE_CODE_CLIENT),
    ]
    assert as_json[0]["project"] == as_json[1]["project"] == project_id("/src/heron")


@pytest.mark.parametrize(
    ("config_text", "message"),
    [
        ("memory:\n  store: memory\n", "use GET /v1/memories"),
        ("memory:\n  store: redis\n", "long-term memories need a local index"),
    ],
)
def test_stores_without_a_readable_index_are_explained(
    tmp_path: Path, config_text: str, message: str
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(config_text)
    result = run(config, "list")
    assert result.exit_code == 1
    assert message in result.output


def test_a_bad_time_already_stored_is_listed_not_a_traceback(tmp_path: Path) -> None:
    config = store(tmp_path, "m", memory("from the far future", at=1e20))
    result = run(config, "list")
    assert result.exit_code == 0, result.output
    assert "from the far future" in result.output


def test_compact_lets_a_big_old_file_shrink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sqlite_space, "VACUUM_AT_OPEN_BYTES", 0)  # too big to switch at open
    path = tmp_path / "old.sqlite3"
    old_file(
        path, [("alice", "shop", f"User: fact {n}?\nAssistant: {'x' * 900}") for n in range(300)]
    )
    config = tmp_path / "old.yaml"
    config.write_text(f"memory:\n  sqlite_path: {path}\n")
    assert run(config, "forget", "--user", "alice", "--yes").exit_code == 0
    assert caplog.text.count("cannot shrink yet") == 1 and "memories compact" in caplog.text
    before = path.stat().st_size

    result = run(config, "compact")

    assert result.exit_code == 0, result.output
    assert path.stat().st_size < before / 2
    assert result.output.startswith(f"{path}: ")
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA auto_vacuum").fetchone() == (2,)
