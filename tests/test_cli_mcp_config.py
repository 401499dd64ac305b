"""`memory-proxy mcp-config`: the set-up lines of README "Memory tools for agents (MCP)",
for the running config (tests/clients runs the real CLIs with the README's own lines)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from memory_proxy.cli.main import main
from memory_proxy.identity.project import project_id

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def mcp_config(tmp_path: Path, config_text: str, *options: str) -> str:
    config = tmp_path / "config.yaml"
    config.write_text(config_text)
    result = CliRunner().invoke(main, ["mcp-config", "--config", str(config), *options])
    assert result.exit_code == 0, result.output
    return result.output


def claude_json(output: str) -> dict[str, Any]:
    """The .mcp.json it prints: the lines from `{` alone to `}` alone."""
    lines = output.splitlines()
    start, end = lines.index("{"), lines.index("}")
    parsed: dict[str, Any] = json.loads("\n".join(lines[start : end + 1]))
    return parsed


def codex_table(output: str) -> dict[str, Any]:
    """The config.toml table it prints (its comment lines and command line left out)."""
    lines = [line for line in output.splitlines() if line[:1] != "#" and "codex mcp" not in line]
    server: dict[str, Any] = tomllib.loads("\n".join(lines))["mcp_servers"]["memory"]
    return server


def readme_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.DOTALL)


@pytest.mark.parametrize(
    ("client", "blocks"),
    [
        ("claude", [("bash", "claude mcp add"), ("json", '{\n  "mcpServers"')]),
        ("codex", [("bash", "codex mcp add"), ("toml", "[mcp_servers.memory]")]),
    ],
)
def test_the_readme_set_up_is_what_it_prints_for_the_shipped_config(
    client: str, blocks: list[tuple[str, str]]
) -> None:
    result = CliRunner().invoke(
        main, ["mcp-config", "--config", str(REPO / "config.yaml"), "--client", client]
    )
    assert result.exit_code == 0, result.output
    for language, opening in blocks:
        (block,) = [b for b in readme_blocks(language) if b.startswith(opening)]
        assert block.strip() in result.output, (block, result.output)


def test_with_client_keys_the_key_comes_from_the_environment(tmp_path: Path) -> None:
    config = "auth:\n  client_keys:\n    - key: sk-the-actual-key-0123456789\n"
    claude = mcp_config(tmp_path, config, "--client", "claude")
    assert '--header "Authorization: Bearer ${MEMORY_PROXY_CLIENT_KEY}"' in claude
    server = claude_json(claude)["mcpServers"]["memory"]
    assert server["headers"] == {"Authorization": "Bearer ${MEMORY_PROXY_CLIENT_KEY}"}
    codex = mcp_config(tmp_path, config, "--client", "codex")
    assert "--bearer-token-env-var MEMORY_PROXY_CLIENT_KEY" in codex
    assert codex_table(codex)["bearer_token_env_var"] == "MEMORY_PROXY_CLIENT_KEY"
    assert "sk-the-actual-key" not in claude + codex


def test_a_project_is_named_by_its_header_and_the_address_is_a_local_one(
    tmp_path: Path,
) -> None:
    where = tmp_path / "heron"
    where.mkdir()
    config = (
        "proxy:\n  host: 0.0.0.0\n  port: 9764\n"
        "auth:\n  client_keys: [{key: sk-k-0123456789abcdef}]\n"
    )
    codex = mcp_config(tmp_path, config, "--client", "codex", "--project", str(where))
    server = codex_table(codex)
    assert server["url"] == "http://127.0.0.1:9764/mcp"
    assert server["http_headers"] == {"x-memory-project": project_id(str(where.resolve()))}
    assert server["default_tools_approval_mode"] == "approve"
