"""`memory-proxy memories`: search, list, forget, export and import on a real SQLite file,
and the export -> import round trip."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st

from memory_proxy.cli.main import main
from memory_proxy.cli.memories import record_from_json
from memory_proxy.records.memory import MemoryRecord, memory_id
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex

PORT = "User: which port does staging use?\nAssistant: The staging database runs on port 5433."


def memory(
    text: str,
    *,
    user: str = "default-dev",
    project: str = "shop",
    at: float = 1.0,
    session: str | None = "s1",
    model: str | None = "m",
) -> MemoryRecord:
    return MemoryRecord(
        memory_id(user, project, text), user, project, session, "claude-cli", model, at, text
    )


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
    assert f"no memory {one.id!r} for user 'default-dev'" in missing.output
    assert project.output == "forgot 1 memory in project 'shop'\n"
    assert "no memories in project 'shop' for user 'default-dev'" in empty.output
    assert neither.exit_code == both.exit_code == 2
    assert [m["text"] for m in json_lines(left.output)] == ["three"]


def test_export_then_import_into_an_empty_store_gives_the_same_memories(tmp_path: Path) -> None:
    records = [
        memory(PORT, at=5),
        memory("general", project="", session=None, model=None, at=1),
        memory("bob's", user="bob", at=3),
        memory("unicode ✓ \u2028 line", user="bob", project="blog", at=3),
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
    assert exported.stderr == "exported 4 memories\n"
    assert json_lines(exported.stdout) == [record.describe() for record in records]
    assert first.exit_code == second.exit_code == 0
    assert "imported 4 memories" in first.output
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
records = st.builds(
    lambda user, project, text, session, model, at: memory(
        text, user=user, project=project, session=session, model=model, at=at
    ),
    user=ids,
    project=st.one_of(st.just(""), ids),
    text=st.text(min_size=1),
    session=st.none() | st.text(),
    model=st.none() | st.text(),
    at=st.floats(min_value=0, max_value=2e10),
)


@given(records)
def test_an_exported_line_reads_back_as_the_same_record(record: MemoryRecord) -> None:
    assert record_from_json(orjson.loads(orjson.dumps(record.describe()))) == record


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
)
fields = st.fixed_dictionaries(
    {},
    optional={
        name: json_values | ids
        for name in ("id", "user_id", "project", "text", "created_at", "session_id", "client")
    },
)


@given(st.one_of(json_values, fields))
def test_any_json_is_a_record_or_a_value_error(item: Any) -> None:
    try:
        record = record_from_json(item)
    except ValueError:
        return
    assert record.id == memory_id(record.user_id, record.project, record.text)
