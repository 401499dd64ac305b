"""`memory-proxy memories export` and `import` (cli/memory_lines.py): the round trip into an
empty store, an exported line read back as the same record, and every import line either
a record as a request would store it or an error naming where, nothing imported."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from memory_proxy.cli.memory_lines import record_from_json
from memory_proxy.identity.client_detection import VALID_ID
from memory_proxy.memory.indexing import MAX_MEMORY_CHARS
from memory_proxy.records.memory import MemoryRecord, memory_id
from tests.cli_memories_support import PORT, json_lines, memory, run, store


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


SHOWN = range(5)  # the errors the command shows; the rest are counted


@given(records)
def test_an_exported_line_reads_back_as_the_same_record(record: MemoryRecord) -> None:
    assert record_from_json(orjson.loads(orjson.dumps(record.describe()))) == record


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
