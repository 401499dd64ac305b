from __future__ import annotations

from pathlib import Path

import pytest

from memory_proxy.config import ConfigError, load_settings
from memory_proxy.config.litellm_known import LITELLM_VERSION

REPO_CONFIG = Path(__file__).resolve().parent.parent / "config.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_shipped_config_loads_with_demo_and_supermemory_models() -> None:
    settings = load_settings(REPO_CONFIG, environ={})
    names = {m.model_name for m in settings.litellm.models}
    assert "demo" in names
    assert any(m.api_base and "supermemory.ai" in m.api_base for m in settings.litellm.models)
    assert settings.memory.store == "sqlite"
    assert settings.user_id_mappings.header_patterns[0].pattern.search("OpenAIClientImpl/Java")


def test_a_header_patterns_name_defaults_to_its_user_id(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "user_id_mappings:\n  header_patterns:\n"
        "    - {header: user-agent, pattern: '^claude-cli/', user_id: claude-cli, name: claude}\n"
        "    - {header: x-team, pattern: '(?P<team>\\w+)', user_id: 'team-{team}'}\n",
    )
    named, unnamed = load_settings(path, environ={}).user_id_mappings.header_patterns
    assert (named.name, named.client_name) == ("claude", "claude")
    assert (unnamed.name, unnamed.client_name) == ("", "team-{team}")
    assert load_settings(path, environ={}).warnings == ()


def test_the_shipped_config_names_its_clients() -> None:
    patterns = load_settings(REPO_CONFIG, environ={}).user_id_mappings.header_patterns
    names = {p.user_id: p.name for p in patterns}
    assert names["claude-cli"] == "claude-code"
    assert names["codex-cli"] == "codex"
    assert names["pycharm-ai"] == "pycharm-ai"
    assert all(p.name for p in patterns)


def test_defaults_without_a_file() -> None:
    settings = load_settings(None, environ={})
    assert (settings.host, settings.port) == ("127.0.0.1", 8764)
    assert settings.litellm_url == "http://127.0.0.1:8765"
    assert settings.user_id_mappings.custom_header == "x-memory-user-id"
    # LLMs may think for minutes before the first token, and pause long between tokens.
    assert settings.upstream_first_byte_timeout_seconds == 600
    assert settings.upstream_idle_timeout_seconds == 300


def test_upstream_timeouts_are_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "proxy:\n  upstream_first_byte_timeout_seconds: 90\n  upstream_idle_timeout_seconds: 2.5\n",
    )
    settings = load_settings(path, environ={})
    assert settings.upstream_first_byte_timeout_seconds == 90
    assert settings.upstream_idle_timeout_seconds == 2.5


def test_priority_command_line_over_environment_over_file(tmp_path: Path) -> None:
    path = write(tmp_path, "proxy:\n  port: 9000\n  host: 127.0.0.2\nmemory:\n  ttl_seconds: 10\n")
    environ = {"PROXY_PORT": "9100", "MEMORY_TTL_SECONDS": "20"}
    settings = load_settings(path, environ=environ, overrides={"proxy.port": 9200})
    assert settings.port == 9200
    assert settings.memory.ttl_seconds == 20
    assert settings.host == "127.0.0.2"
    assert load_settings(path, environ=environ).port == 9100


def test_os_environ_references_are_resolved(tmp_path: Path) -> None:
    path = write(tmp_path, "supermemory:\n  api_key: os.environ/MY_SM_KEY\n")
    assert load_settings(path, environ={"MY_SM_KEY": "sm-123"}).supermemory_api_key == "sm-123"
    assert load_settings(path, environ={}).supermemory_api_key is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("proxy: [1, 2\n", "invalid YAML"),
        ("- just\n- a list\n", "top level must be a mapping"),
        ("memory:\n  ttl_seconds: soon\n", "memory.ttl_seconds: expected a positive whole number"),
        (
            "memory:\n  store: mongodb\n",
            "memory.store: expected one of sqlite, postgres, redis, memory",
        ),
        ("proxy:\n  port: 70000\n", "proxy.port: expected a port number"),
        ("proxy:\n  litellm_url: localhost:8765\n", "proxy.litellm_url: expected an http"),
        ("memory:\n  enabled: maybe\n", "memory.enabled: expected true or false"),
        (
            "proxy:\n  upstream_first_byte_timeout_seconds: 0\n",
            "proxy.upstream_first_byte_timeout_seconds: expected a positive number",
        ),
        (
            "proxy:\n  upstream_idle_timeout_seconds: never\n",
            "proxy.upstream_idle_timeout_seconds: expected a positive number",
        ),
        (
            "user_id_mappings:\n  header_patterns:\n"
            "    - {header: user-agent, pattern: '(unclosed', user_id: x}\n",
            "user_id_mappings.header_patterns[0].pattern: invalid regular expression",
        ),
        (
            "user_id_mappings:\n  header_patterns:\n"
            "    - {header: user-agent, pattern: 'x', user_id: '{project}'}\n",
            "header_patterns[0].user_id: uses project but the pattern has no such named group",
        ),
        ("user_id_mappings:\n  header_patterns: {a: 1}\n", "expected a list of patterns"),
        *(
            (
                "user_id_mappings:\n  header_patterns:\n"
                f"    - {{header: user-agent, pattern: x, user_id: x, name: {name}}}\n",
                "user_id_mappings.header_patterns[0].name: expected 1-64 letters, digits or",
            )
            for name in ("''", "'claude code'", "'<b>'", "-x", "x" * 65, "[a]", "7")
        ),
        ("model_list:\n  - litellm_params: {}\n", "model_list[0]: expected a mapping"),
        *(
            (f"memory:\n  {key}: {value}\n", f"memory.{key}: expected a positive number")
            for key in ("retention_days", "max_mb")
            for value in ("0", "-3", "soon", ".inf", ".nan", "true", "[1]")
        ),
        *(
            (f"memory:\n  max_session_messages: {value}\n", f"memory.max_session_messages: {rule}")
            for value, rule in (
                ("1", "expected a whole number of 2 or more"),
                ("0", "expected a positive whole number"),
                ("2.5", "expected a positive whole number"),
                ("many", "expected a positive whole number"),
            )
        ),
    ],
)
def test_errors_name_the_key_and_the_file(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_memory_bounds_are_read_and_off_by_default(tmp_path: Path) -> None:
    defaults = load_settings(None, environ={}).memory
    assert (defaults.retention_days, defaults.max_mb, defaults.max_session_messages) == (
        None,
        None,
        200,
    )
    text = "memory:\n  retention_days: 30\n  max_mb: 512.5\n  max_session_messages: 50\n"
    memory = load_settings(write(tmp_path, text), environ={}).memory
    assert (memory.retention_days, memory.max_mb, memory.max_session_messages) == (30, 512.5, 50)


def test_errors_in_environment_values_name_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"environment variable PROXY_PORT: proxy\.port"):
        load_settings(None, environ={"PROXY_PORT": "eighty"})


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "absent.yaml", environ={})


def test_forward_client_headers_settings_are_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "litellm_settings:\n  model_group_settings:\n"
        "    forward_client_headers_to_llm_api: [a, b]\n"
        "general_settings:\n  forward_client_headers_to_llm_api: true\n",
    )
    litellm = load_settings(path, environ={}).litellm
    assert litellm.forward_client_headers_models == {"a", "b"}
    assert litellm.forward_client_headers_to_all is True


def test_misspelled_keys_of_our_sections_are_named_with_the_closest_known_one(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        "memory:\n  sqlite_pth: other.sqlite3\n  store: sqlite\n"
        "rate_limits:\n  enabled: true\n"
        "auth:\n  client_keys:\n    - {key: 0123456789abcdef, userid: alice}\n"
        "usage:\n  zzz: 1\n",
    )
    warnings = load_settings(path, environ={}).warnings
    assert warnings == (
        f"{path}: memory.sqlite_pth: unknown key, ignored (did you mean sqlite_path?)",
        f"{path}: rate_limits: unknown section, ignored (did you mean rate_limit?)",
        f"{path}: auth.client_keys[0].userid: unknown key, ignored (did you mean user_id?)",
        f"{path}: usage.zzz: unknown key, ignored (known: enabled, max_records)",
    )


def test_litellms_sections_and_unrelated_top_level_keys_are_left_alone(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "model_list:\n  - model_name: m\n    litellm_params: {model: x, mock_response: hi}\n"
        "litellm_settings:\n  drop_params: true\n"
        "general_settings:\n  master_key: os.environ/KEY\n"
        "router_settings:\n  routing_strategy: simple-shuffle\n"
        "environment_variables: {A: b}\n"
        "guardrails: []\n"
        "prompts: []\n"
        "my_notes: anything\n",
    )
    assert load_settings(path, environ={}).warnings == ()


def test_a_misspelled_litellm_param_is_named_with_the_closest_known_one(tmp_path: Path) -> None:
    """LiteLLM starts with `api_bse` and fails at the first request; a key like no known
    one (a provider's own parameter, passed on by LiteLLM) is not ours to judge."""
    path = write(
        tmp_path,
        "model_list:\n"
        "  - model_name: m\n"
        "    litellm_params:\n"
        "      {model: openai/x, api_bse: http://h, extra_body: {}, vertex_projct: p}\n",
    )
    assert load_settings(path, environ={}).warnings == (
        f"{path}: model_list[0].litellm_params.api_bse: not a parameter of LiteLLM "
        f"{LITELLM_VERSION} (did you mean api_base?)",
        f"{path}: model_list[0].litellm_params.vertex_projct: not a parameter of LiteLLM "
        f"{LITELLM_VERSION} (did you mean vertex_project?)",
    )


def test_what_litellm_routes_by_is_read_from_its_sections(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "model_list:\n"
        "  - model_name: m\n"
        "    litellm_params: {model: openai/x, api_key: os.environ/MY_KEY}\n"
        "    model_info: {id: m-1}\n"
        "  - model_name: n\n"
        "    litellm_params: {model: y, custom_llm_provider: groq, api_key: literal}\n"
        "  - model_name: o\n"
        "    litellm_params: {model: azure/z, api_key: os.environ/K, azure_ad_token: t}\n"
        "router_settings:\n  routing_groups: [{group_name: cheap, models: [m]}]\n"
        "litellm_settings:\n  model_alias_map: {gpt4: m}\n"
        "environment_variables: {MY_KEY: from-the-file}\n",
    )
    litellm = load_settings(path, environ={}).litellm
    assert [
        (m.api_key_variable, m.deployment, m.provider, m.model_id, m.other_credentials)
        for m in litellm.models
    ] == [
        ("MY_KEY", "openai/x", "openai", "m-1", False),
        (None, "y", "groq", None, False),
        ("K", "azure/z", "azure", None, True),
    ]
    assert litellm.routing_groups == {"cheap"}
    assert litellm.alias_map_names == {"gpt4"}
    assert litellm.environment_variables == {"MY_KEY"}
    assert not litellm.open_model_list and not litellm.keys_elsewhere
    assert litellm.environment is None  # start-proxies sets it: it starts LiteLLM


@pytest.mark.parametrize(
    ("text", "environ"),
    [
        ("general_settings: {database_url: postgres://db}\n", {}),
        ("general_settings: {store_model_in_db: true}\n", {}),
        ("router_settings: {router_general_settings: {pass_through_all_models: true}}\n", {}),
        ("", {"DATABASE_URL": "postgres://db"}),
    ],
)
def test_litellm_may_serve_models_the_file_does_not_list(
    tmp_path: Path, text: str, environ: dict[str, str]
) -> None:
    path = write(tmp_path, "model_list: [{model_name: m, litellm_params: {model: x}}]\n" + text)
    assert load_settings(path, environ=environ).litellm.open_model_list


@pytest.mark.parametrize(
    "text",
    [
        "general_settings: {key_management_system: hashicorp_vault}\n",
        "litellm_settings: {api_key: k}\n",
        "general_settings: {forward_llm_provider_auth_headers: true}\n",
    ],
)
def test_litellm_may_find_keys_outside_the_environment(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    assert load_settings(path, environ={}).litellm.keys_elsewhere


def test_the_shipped_config_has_no_unknown_keys() -> None:
    assert load_settings(REPO_CONFIG, environ={}).warnings == ()


def test_relative_store_paths_follow_the_config_file_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_directory = (tmp_path / "etc").resolve()
    config_directory.mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    path = config_directory / "config.yaml"
    path.write_text("memory:\n  sqlite_path: state/memory.sqlite3\n")
    assert load_settings(path, environ={}).memory.sqlite_path == (
        config_directory / "state/memory.sqlite3"
    )
    path.write_text("")  # the default store sits beside the config file too
    relative = Path("../etc/config.yaml")
    assert load_settings(relative, environ={}).memory.sqlite_path == (
        config_directory / "data/memory.sqlite3"
    )
    path.write_text("memory:\n  sqlite_path: ~/memory.sqlite3\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert load_settings(path, environ={}).memory.sqlite_path == tmp_path / "memory.sqlite3"
