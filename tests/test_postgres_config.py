"""`memory.postgres_url`: required with `store: postgres`, read from the environment as
LiteLLM reads its secrets, and its password never shown."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memory_proxy.config import ConfigError, load_settings
from memory_proxy.config.postgres import postgres_host, postgres_password, shown_url

URL = "postgresql://team:pa55word@db.internal:6543/memory"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_the_store_needs_a_url_and_says_where_to_put_it(tmp_path: Path) -> None:
    path = write(tmp_path, "memory:\n  store: postgres\n")
    with pytest.raises(ConfigError) as missing:
        load_settings(path, environ={})
    assert str(missing.value) == (
        f"{path}: memory.postgres_url: memory.store is postgres: set it "
        "(or the MEMORY_POSTGRES_URL variable)"
    )


def test_the_url_comes_from_the_file_an_os_environ_reference_or_the_variable(
    tmp_path: Path,
) -> None:
    plain = write(tmp_path, f"memory:\n  store: postgres\n  postgres_url: {URL}\n")
    assert load_settings(plain, environ={}).memory.postgres_url == URL
    referenced = write(tmp_path, "memory:\n  store: postgres\n  postgres_url: os.environ/PG\n")
    assert load_settings(referenced, environ={"PG": URL}).memory.postgres_url == URL
    bare = write(tmp_path, "memory:\n  store: postgres\n")
    settings = load_settings(bare, environ={"MEMORY_POSTGRES_URL": URL})
    assert settings.memory.postgres_url == URL
    assert "pa55word" in settings.secrets()  # kept out of every log line
    assert load_settings(None, environ={}).memory.postgres_url is None


def test_a_malformed_url_is_refused_without_showing_its_password(tmp_path: Path) -> None:
    path = write(tmp_path, "memory:\n  postgres_url: mysql://team:pa55word@db/memory\n")
    with pytest.raises(ConfigError) as malformed:
        load_settings(path, environ={})
    assert str(malformed.value) == (
        f"{path}: memory.postgres_url: expected a postgresql:// URL "
        "(got 'mysql://team:***@db/memory')"
    )


def test_hosts_are_named_as_libpq_would_reach_them() -> None:
    assert postgres_host(URL) == "db.internal:6543"
    assert postgres_host("postgresql:///memory?host=/run/postgresql") == "/run/postgresql:5432"
    assert postgres_host("postgres://db/memory?port=7000") == "db:7000"


@given(password=st.text(min_size=4), in_query=st.booleans())
def test_no_password_is_ever_shown(password: str, in_query: bool) -> None:
    def url(secret: str) -> str:
        if in_query:
            return f"postgresql://team@db:5432/memory?sslmode=require&password={secret}"
        return f"postgresql://team:{secret}@db:5432/memory?sslmode=require"

    assert postgres_password(url(quote(password, safe=""))) == password
    assert shown_url(url(quote(password, safe=""))) == url("***")


def test_max_mb_is_said_to_be_ignored_on_postgresql(tmp_path: Path) -> None:
    path = write(tmp_path, f"memory:\n  store: postgres\n  postgres_url: {URL}\n  max_mb: 100\n")
    assert load_settings(path, environ={}).warnings == (
        f"{path}: memory.max_mb: ignored with memory.store: postgres (the database's disk "
        "is its owner's to bound; retention_days applies)",
    )
