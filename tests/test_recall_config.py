from __future__ import annotations

from pathlib import Path

import pytest

from memory_proxy.config import ConfigError, load_settings
from memory_proxy.config.recall import DEFAULT_EXTRACTORS, DEFAULT_SESSION_HEADERS
from memory_proxy.stores import search_admission, sqlite_vectors
from tests.readme_support import fenced_blocks, section


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    settings = load_settings(None, environ={})
    assert settings.memory.session_headers == DEFAULT_SESSION_HEADERS
    assert settings.memory.project_extractors == DEFAULT_EXTRACTORS
    assert settings.memory.modes == {}
    recall = settings.recall
    assert (recall.enabled, recall.backend, recall.placement) == (True, "local", "user")
    assert (recall.max_tokens, recall.timeout_ms) == (1000, 50)


def test_an_index_opened_with_no_budget_or_cache_size_has_the_configured_defaults() -> None:
    """The indexes write these defaults themselves, so as to import no config."""
    recall = load_settings(None, environ={}).recall
    assert recall.timeout_ms / 1000 == search_admission.DEFAULT_BUDGET
    assert recall.vector_cache_mb * 1024 * 1024 == sqlite_vectors.CACHE_BYTES


def test_every_key_is_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
memory:
  session_headers: [X-Conversation]
  project_extractors:
    - header: x-workspace
    - header: x-meta
      pattern: 'dir=(\\S+)'
    - pattern: 'cwd: (\\S+)'
  modes: {curl: off, ci: read, bot: write, me: on}
recall:
  enabled: false
  placement: system
  max_tokens: 500
  min_score: 0.5
  limit: 3
  timeout_ms: 20
""",
    )
    settings = load_settings(path, environ={})
    assert settings.warnings == ()
    memory = settings.memory
    assert memory.session_headers == ("x-conversation",)
    assert [e.header for e in memory.project_extractors] == ["x-workspace", "x-meta", None]
    assert memory.modes == {"curl": "off", "ci": "read", "bot": "write", "me": "on"}
    recall = settings.recall
    assert (recall.enabled, recall.placement, recall.max_tokens) == (False, "system", 500)
    assert (recall.min_score, recall.limit, recall.timeout_ms) == (0.5, 3, 20)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("recall:\n  placement: top\n", "recall.placement: expected one of user, system"),
        ("recall:\n  timeout_ms: 0\n", "recall.timeout_ms: expected a positive whole number"),
        ("recall:\n  min_score: 1.5\n", "recall.min_score: expected a number from 0 to 1"),
        ("recall:\n  vector_cache_mb: 0\n", "recall.vector_cache_mb: expected a positive whole"),
        ("recall:\n  backend: supermemory\n", "recall.backend: supermemory needs supermemory"),
        ("memory:\n  session_headers: x-id\n", "memory.session_headers: expected a list"),
        ("memory:\n  modes: [curl]\n", "memory.modes: expected a mapping"),
        ("memory:\n  modes: {curl: mute}\n", "memory.modes.curl: expected one of on, read"),
        ("memory:\n  project_extractors: x\n", "memory.project_extractors: expected a list"),
        ("memory:\n  project_extractors: [{}]\n", "project_extractors[0]: expected header"),
        (
            "memory:\n  project_extractors: [{pattern: '(a'}]\n",
            "project_extractors[0].pattern: invalid regular expression",
        ),
        (
            "memory:\n  project_extractors: [{pattern: 'a(b)(c)'}]\n",
            "project_extractors[0].pattern: expected one group (has 2)",
        ),
    ],
)
def test_invalid_values_name_the_key_and_the_file(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_settings(path, environ={})
    assert str(error.value).startswith(f"{path}: ")
    assert expected in str(error.value)


def test_the_old_single_session_header_key_is_reported_unknown(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, "memory:\n  session_header: x\n"), environ={})
    assert any("did you mean session_headers?" in warning for warning in settings.warnings)


def test_redaction_is_on_by_default_and_patterns_are_compiled(tmp_path: Path) -> None:
    assert load_settings(None, environ={}).memory.redact is True
    path = write(
        tmp_path,
        'memory:\n  redact: false\n  redact_patterns:\n    employee-id: "EMP-\\\\d{6}"\n',
    )
    memory = load_settings(path, environ={}).memory
    assert memory.redact is False
    ((name, pattern),) = memory.redact_patterns
    assert (name, pattern.pattern) == ("employee-id", r"EMP-\d{6}")
    assert load_settings(path, environ={}).warnings == ()


@pytest.mark.parametrize(
    ("patterns", "problem"),
    [
        ('{ticket: "EMP-(\\\\d"}', "memory.redact_patterns.ticket: invalid regular expression"),
        ('{ticket: "x*"}', "memory.redact_patterns.ticket: matches the empty string"),
        ('{ticket: "secret"}', r"memory.redact_patterns.ticket: matches its own marker"),
        ('{Ticket_ID: "EMP"}', "memory.redact_patterns.Ticket_ID: a name is 1-40 lower-case"),
        ("{ticket: 12}", "memory.redact_patterns.ticket: expected a regular expression"),
        ('["EMP"]', "memory.redact_patterns: expected a mapping of name to regular"),
    ],
)
def test_a_bad_redaction_pattern_names_its_key_and_file(
    tmp_path: Path, patterns: str, problem: str
) -> None:
    path = write(tmp_path, f"memory:\n  redact_patterns: {patterns}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert str(info.value).startswith(f"{path}: {problem}")


def test_embedding_model_is_off_by_default_and_names_a_model_of_model_list(tmp_path: Path) -> None:
    assert load_settings(None, environ={}).recall.embedding_model is None
    path = write(
        tmp_path,
        "model_list:\n  - model_name: embed\n    litellm_params: {model: ollama/nomic-embed-text}\n"
        "recall:\n  embedding_model: embed\n  min_similarity: 0.7\n  vector_cache_mb: 64\n",
    )
    settings = load_settings(path, environ={})
    assert (settings.recall.embedding_model, settings.recall.min_similarity) == ("embed", 0.7)
    assert settings.recall.vector_cache_mb == 64
    assert settings.warnings == ()


def test_an_embedding_model_litellm_does_not_serve_is_a_config_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "model_list:\n  - model_name: embed\n    litellm_params: {model: ollama/nomic-embed-text}\n"
        "recall:\n  embedding_model: embedd\n",
    )
    with pytest.raises(ConfigError) as error:
        load_settings(path, environ={})
    assert str(error.value).startswith(f"{path}: recall.embedding_model: 'embedd' is not")


def test_the_readmes_embedding_model_example_is_a_valid_config(tmp_path: Path) -> None:
    (example,) = [body for _, body in fenced_blocks(section("Memory")) if "embedding_model" in body]
    settings = load_settings(write(tmp_path, example), environ={})
    assert settings.recall.embedding_model == "embed"
    assert "embed" in settings.memory.private_models
