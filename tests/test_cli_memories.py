"""`memory-proxy memories`: search, list, forget, export and import on a real SQLite file,
and the export -> import round trip."""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st

from memory_proxy.cli.main import main
from memory_proxy.cli.memory_lines import record_from_json
from memory_proxy.identity.client_detection import VALID_ID
from memory_proxy.identity.project import project_id
from memory_proxy.memory.indexing import MAX_MEMORY_CHARS
from memory_proxy.records.memory import MemoryRecord, memory_id
from memory_proxy.stores import sqlite_space
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex
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

PORT = "User: which port does staging use?\nAssistant: The staging database runs on port 5433."


def memory(
    text: str,
    *,
    user: str = "default-dev",
    project: str = "shop",
    at: float = 1.0,
    session: str | None = "s1",
    model: str | None = "m",
    private: bool = False,
) -> MemoryRecord:
    identifier = memory_id(user, project, text)
    return MemoryRecord(identifier, user, project, session, "claude-cli", model, at, text, private)


def store(tmp_path: Path, name: str, *records: MemoryRecord) -> Path:
    """A config naming its own SQLite file, holding `records`."""
    config = tmp_path / f"{name}.yaml"
    config.write_text(f"memory:\n  sqlite_path: {tmp_path / name}.sqlite3\n")

    async def add() -> None:
        index = SQLiteMemoryIndex(tmp_path / f"{name}.sqlite3")
        try:
            await index.add(list(records))
        finally:
            await index.aclose()

    asyncio.run(add())
    return config


def run(config: Path, *arguments: str, given: str | None = None) -> Result:
    return CliRunner().invoke(main, ["memories", "--config", str(config), *arguments], input=given)


def json_lines(output: str) -> list[dict[str, Any]]:
    """One object a line; not str.splitlines, which also splits at U+2028 inside text."""
    return [orjson.loads(line) for line in output.split("\n") if line]


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


def test_export_then_import_into_an_empty_store_gives_the_same_memories(tmp_path: Path) -> None:
    records = [
        memory(PORT, at=5),
        memory("general", project="", session=None, model=None, at=1),
        memory("bob's", user="bob", at=3),
        memory("unicode ✓ \u2028 line", user="bob", project="blog", at=3),
        memory("told a local model", at=4, private=True),
    ]
    source = store(tmp_path, "source", *records)
    exported = run(source, "export")
    assert exported.exit_code == 0
    dump = tmp_path / "memories.jsonl"
    dump.write_text(exported.stdout, encoding="utf-8")
    target = store(tmp_path, "target")
    first = run(target, "import", str(dump))
    second = run(target, "import", str(dump))  # identical memories are stored once
    again = run(target, "export")
    bob = run(source, "export", "--user", "bob", "--project", "blog")
    assert exported.stderr == "exported 5 memories\n"
    assert json_lines(exported.stdout) == [record.describe() for record in records]
    assert first.exit_code == second.exit_code == 0
    assert first.output == f"imported {dump}: 5 read, 5 new (memories already stored are kept)\n"
    assert second.output == f"imported {dump}: 5 read, 0 new (memories already stored are kept)\n"
    assert again.stdout == exported.stdout
    assert [m["text"] for m in json_lines(bob.stdout)] == [records[3].text]


def test_an_invalid_file_imports_nothing_and_says_where(tmp_path: Path) -> None:
    good = orjson.dumps(memory("fine").describe()).decode()
    edited = orjson.dumps({**memory("fine").describe(), "text": "edited"}).decode()
    dump = tmp_path / "bad.jsonl"
    dump.write_text("\n".join([good, "", "{not json", "[1]", edited, '{"user_id": "x"}']))
    config = store(tmp_path, "m")
    result = run(config, "import", str(dump))
    listed = run(config, "list", "--json")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith(f"Error: {dump}:3: ")
    assert lines[1:] == [
        f"{dump}:4: expected a JSON object",
        f"{dump}:5: id: does not match the memory's user, project and text (leave it out)",
        f"{dump}:6: text: expected some text",
        "nothing was imported",
    ]
    assert listed.output == ""


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


ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:@+\-]{0,20}", fullmatch=True)
labels = st.text(st.characters(blacklist_categories=["Cc", "Cs"]), min_size=1, max_size=40)
now = time.time()
records = st.builds(
    lambda user, project, text, session, model, at, private: memory(
        text, user=user, project=project, session=session, model=model, at=at, private=private
    ),
    user=ids,
    project=st.one_of(st.just(""), ids),
    text=st.text(min_size=1, max_size=MAX_MEMORY_CHARS),
    session=st.none() | ids,
    model=st.none() | labels,
    at=st.floats(min_value=0, max_value=now),
    private=st.booleans(),
)


@given(records)
def test_an_exported_line_reads_back_as_the_same_record(record: MemoryRecord) -> None:
    assert record_from_json(orjson.loads(orjson.dumps(record.describe()))) == record


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
)
# Each field valid, almost valid or anything: a time past calendars or a day ahead, an id
# with a line break, a text one character too long, a label with a control character.
field_values = {
    "user_id": ids | ids.map(lambda i: i + "\n"),
    "project": st.none() | st.just("") | ids,
    "session_id": st.none() | ids | ids.map(lambda i: i + "\r\nx: y") | st.just(""),
    "text": st.text(min_size=1, max_size=20)
    | st.integers(MAX_MEMORY_CHARS - 1, MAX_MEMORY_CHARS + 1).map("x".__mul__),
    "created_at": st.floats(min_value=-1e30, max_value=1e30)
    | st.sampled_from([now, now + 86_000, now + 87_000, 1e20, float("inf"), float("nan")])
    | st.integers(-(2**70), 2**70),
    "client": labels | st.text(max_size=300),
    "model": st.none() | labels | st.text(max_size=300),
    "private": st.booleans(),
}
fields = st.fixed_dictionaries(
    {},
    optional={name: values | json_values for name, values in field_values.items()}
    | {"id": json_values | ids},
)


@given(st.one_of(json_values, fields, st.fixed_dictionaries(field_values)))
def test_any_import_line_is_a_record_as_a_request_would_store_it_or_a_value_error(
    item: Any,
) -> None:
    try:
        record = record_from_json(item)
    except ValueError:
        return
    assert record.id == memory_id(record.user_id, record.project, record.text)
    assert VALID_ID.match(record.user_id) and (not record.project or VALID_ID.match(record.project))
    assert record.session_id is None or VALID_ID.match(record.session_id)
    assert 0 < len(record.text) <= MAX_MEMORY_CHARS
    assert math.isfinite(record.created_at) and 0 <= record.created_at <= time.time() + 86_400
    time.gmtime(record.created_at)  # what recall shows: a real date
    for label in (record.client, record.model or "x"):
        assert 0 < len(label) <= 256 and not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in label)
    assert record.private is (item.get("private") is True)  # absent: from before, hosted


def line(**changes: Any) -> str:
    """An exported memory's line with `changes` (a value None removes the field)."""
    item = {**memory("fine").describe(), **changes}
    del item["id"]  # derived again from user, project and text
    return orjson.dumps({k: v for k, v in item.items() if v is not None}).decode()


def test_import_checks_each_field_as_the_request_path_does(tmp_path: Path) -> None:
    """A time past calendars (which broke recall for every request that matched it), ids
    that could never come from a request, a text larger than any memory: refused, with the
    line, and nothing is imported."""
    tomorrow_and_more = time.time() + 2 * 86400
    bad_lines = {
        "created_at: expected epoch seconds from 1970 to tomorrow": [
            line(created_at=1e20),
            line(created_at=-1.0),
            line(created_at=tomorrow_and_more),
        ],
        "session_id: expected a session id or null": [
            line(session_id="s\r\nx-injected: 1"),
            line(session_id="a" * 129),
            line(session_id=""),
        ],
        "user_id: expected a user id": [line(user_id="bob\n")],
        "text: expected at most 2000 characters": [
            line(text="x" * 2001),
            line(text="y" * 30_000_000),
        ],
        "client: expected 1 to 256 characters, no control characters": [
            line(client="c" * 257),
            line(client="claude\x1b[31m"),
            line(client=""),
        ],
        "model: expected 1 to 256 characters, no control characters, or null": [
            line(model="m" * 257),
            line(model="gpt\n4"),
        ],
        "private: expected true or false": [line(private="yes"), line(private=1)],
    }
    lines = [line(), *(text for texts in bad_lines.values() for text in texts), line(text="ok")]
    dump = tmp_path / "bad.jsonl"
    dump.write_text("\n".join(lines) + "\n")
    config = store(tmp_path, "m")
    result = run(config, "import", str(dump))
    listed = run(config, "list", "--json")
    assert result.exit_code == 1
    expected = [
        (number, problem)
        for number, problem in enumerate(
            (problem for problem, texts in bad_lines.items() for _ in texts), start=2
        )
    ]
    shown = result.output.removeprefix("Error: ").splitlines()
    assert shown[: len(SHOWN)] == [f"{dump}:{n}: {p}" for n, p in expected[: len(SHOWN)]]
    assert shown[-2:] == [f"… and {len(expected) - len(SHOWN)} more", "nothing was imported"]
    assert listed.output == ""
    for number, problem in expected:  # each line says what is wrong with it
        alone = tmp_path / f"line-{number}.jsonl"
        alone.write_text(lines[number - 1])
        assert f"{alone}:1: {problem}" in run(config, "import", str(alone)).output


SHOWN = range(5)  # the errors the command shows; the rest are counted


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
        path, [("alice", "shop", f"User: fact {n}?\nAssistant: {'x' * 900}") for n in range(60)]
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
