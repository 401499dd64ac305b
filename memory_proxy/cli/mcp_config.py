"""`memory-proxy mcp-config --client claude|codex`: what adds the proxy's memory tools
(`/mcp`) to Claude Code or the Codex CLI, for the config the proxy runs on: its address
and port, and, when `auth.client_keys` has keys, the header that carries one — read from
an environment variable when the client runs, never written into a file here."""

from __future__ import annotations

import json
from pathlib import Path

import click

from memory_proxy.cli.settings import load_or_exit
from memory_proxy.config import Settings
from memory_proxy.errors import MCP_PATH
from memory_proxy.identity.project import PROJECT_HEADER, project_id

SERVER = "memory"  # the name the clients give the server: tools are mcp__memory__…
KEY_VARIABLE = "MEMORY_PROXY_CLIENT_KEY"
_EVERY_ADDRESS = frozenset({"", "0.0.0.0", "::"})  # listening everywhere: reach it locally


def mcp_url(settings: Settings) -> str:
    host = "127.0.0.1" if settings.host in _EVERY_ADDRESS else settings.host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{settings.port}{MCP_PATH}"


def claude_code(url: str, with_key: bool, project: str | None) -> str:
    header = f"Authorization: Bearer ${{{KEY_VARIABLE}}}"
    headers: dict[str, str] = {"Authorization": header.split(": ", 1)[1]} if with_key else {}
    if project is not None:
        headers[PROJECT_HEADER] = project
    add = f"claude mcp add --transport http {SERVER} {url}"
    add += "".join(f' --header "{name}: {value}"' for name, value in headers.items())
    server: dict[str, object] = {"type": "http", "url": url}
    if headers:
        server["headers"] = headers
    mcp_json = json.dumps({"mcpServers": {SERVER: server}}, indent=2)
    return "\n".join(
        [
            "# Claude Code, in this directory (--scope user: in every one):",
            add,
            "# or, for one project, .mcp.json at its root:",
            mcp_json,
            f"# claude -p asks no one: allow the tools with --allowedTools mcp__{SERVER}",
        ]
    )


def codex(url: str, with_key: bool, project: str | None) -> str:
    add = f"codex mcp add {SERVER} --url {url}"
    table = [f"[mcp_servers.{SERVER}]", f'url = "{url}"', 'default_tools_approval_mode = "approve"']
    if with_key:
        add += f" --bearer-token-env-var {KEY_VARIABLE}"
        table.append(f'bearer_token_env_var = "{KEY_VARIABLE}"')
    if project is not None:
        table.append(f'http_headers = {{ "{PROJECT_HEADER}" = "{project}" }}')
    return "\n".join(
        [
            "# The Codex CLI:",
            add,
            "# or in ~/.codex/config.toml (a trusted project's .codex/config.toml: that one):",
            *table,
            "# (codex exec's approval_policy 'never' refuses MCP tools that need approval)",
        ]
    )


@click.command("mcp-config")
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The config.yaml the proxy runs on (default: the one given to memory-proxy).",
)
@click.option("--client", type=click.Choice(["claude", "codex"]), required=True)
@click.option(
    "--project",
    type=click.Path(file_okay=False, path_type=Path),
    help="A working directory whose project the tools use by default (the x-memory-project "
    "header), for a client that gives no roots (the Codex CLI).",
)
@click.pass_obj
def mcp_config(
    default_config: Path | None, config: Path | None, client: str, project: Path | None
) -> None:
    """How to add the memory tools (/mcp) to Claude Code or the Codex CLI."""
    settings = load_or_exit(config or default_config, serving=False, warn=False)
    named = None if project is None else project_id(str(project.resolve()))
    snippet = claude_code if client == "claude" else codex
    click.echo(snippet(mcp_url(settings), bool(settings.client_keys), named))
    if settings.client_keys:
        click.echo(f"# export {KEY_VARIABLE}=<one of auth.client_keys> before starting it")
