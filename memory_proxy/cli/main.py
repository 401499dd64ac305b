"""`memory-proxy`: the proxy alone, in front of a LiteLLM that runs elsewhere;
`memory-proxy usage`: the usage totals as a table; `memory-proxy memories`: long-term
memories (memories.py); `memory-proxy mcp-config`: adding its memory tools to a client
(mcp_config.py); `memory-proxy migrate`: the store copied into PostgreSQL (migrate.py)."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import uvicorn
from uvicorn.supervisors import Multiprocess

from memory_proxy.accounting.metrics import MULTIPROCESS_DIRECTORY
from memory_proxy.accounting.usage import GROUPS, parse_since, summarize
from memory_proxy.app import MemoryProxy
from memory_proxy.cli.mcp_config import mcp_config
from memory_proxy.cli.memories import memories
from memory_proxy.cli.migrate import migrate
from memory_proxy.cli.settings import load_or_exit
from memory_proxy.config import LOG_FORMATS, Settings
from memory_proxy.logging_setup import configure_logging
from memory_proxy.records.usage import UsageRecord
from memory_proxy.stores.base import StoreUnavailable
from memory_proxy.stores.open import open_usage_log

# Options shared with start-proxies.
config_option = click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="LITELLM_CONFIG",
    help="The config.yaml shared with LiteLLM (env LITELLM_CONFIG).  [default: config.yaml "
    "in the working directory, else the repository's, which scripts/start uses]",
)
log_format_option = click.option(
    "--log-format", type=click.Choice(LOG_FORMATS), help="Log lines as text or JSON."
)


# Workers are separate processes: each rebuilds its settings from what the CLI was given.
WORKER_ARGUMENTS_ENV = "MEMORY_PROXY_WORKER_ARGUMENTS"


def uvicorn_config(app: MemoryProxy | str, settings: Settings, **extra: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # configure_logging owns the handlers
        access_log=False,
        # LiteLLM's own Server and Date headers pass through; do not add a second pair.
        server_header=False,
        date_header=False,
        timeout_graceful_shutdown=30,
        **extra,
    )


def create_app_or_exit(settings: Settings, **options: Any) -> MemoryProxy:
    """The app, or an error naming the store setting and exit status 2 before serving."""
    try:
        return MemoryProxy(settings, **options)
    except StoreUnavailable as exc:
        source = settings.config_path or "defaults"
        click.echo(f"error: {source}: {exc}", err=True)
        raise SystemExit(2) from None


def workers_problem(settings: Settings) -> str | None:
    """Why several workers cannot share this configuration, or None."""
    if settings.memory.store == "memory":
        return (
            "--workers needs a store the workers share: memory.store 'memory' lives in "
            "one process (use sqlite or redis)"
        )
    if settings.rate_limit.enabled and settings.memory.store != "redis":
        return "--workers with rate limiting needs memory.store: redis to enforce one limit"
    return None


def worker_app() -> MemoryProxy:
    """The app in one worker process (uvicorn's factory)."""
    arguments = json.loads(os.environ[WORKER_ARGUMENTS_ENV])
    # The parent process has warned already.
    settings = load_or_exit(Path(arguments["config"]), arguments["overrides"], warn=False)
    configure_logging(settings.log_format, settings.secrets(), prefix=f"[{os.getpid()}] ")
    return create_app_or_exit(settings)


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@config_option
@click.option("--host", help="Address to listen on (env PROXY_HOST).  [default: 127.0.0.1]")
@click.option("--port", type=int, help="Port to listen on (env PROXY_PORT).  [default: 8764]")
@click.option(
    "--litellm-url",
    help="Where LiteLLM answers (env LITELLM_BASE_URL).  [default: http://127.0.0.1:8765]",
)
@log_format_option
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    envvar="PROXY_WORKERS",
    show_default=True,
    help="Worker processes sharing the port and the SQLite or Redis store (env PROXY_WORKERS).",
)
@click.pass_context
def main(
    ctx: click.Context,
    config: Path | None,
    host: str | None,
    port: int | None,
    litellm_url: str | None,
    log_format: str | None,
    workers: int,
) -> None:
    """Serve the memory proxy: recognise each client, scope its memory, forward to LiteLLM.

    `memory-proxy usage` prints the usage totals instead.
    """
    ctx.obj = config
    if ctx.invoked_subcommand is not None:
        return
    overrides = {
        "proxy.host": host,
        "proxy.port": port,
        "proxy.litellm_url": litellm_url,
        "proxy.log_format": log_format,
    }
    settings = load_or_exit(config, overrides)
    configure_logging(settings.log_format, settings.secrets())
    problem = workers_problem(settings) if workers > 1 else None
    if problem:  # refused before the app opens its stores, which nothing would close
        click.echo(f"error: {problem}", err=True)
        raise SystemExit(2)
    app = create_app_or_exit(settings)  # also checks the store before any worker starts
    if workers == 1:
        uvicorn.Server(uvicorn_config(app, settings)).run()
        return
    assert settings.config_path is not None  # load_or_exit found one
    os.environ[WORKER_ARGUMENTS_ENV] = json.dumps(
        {"config": str(settings.config_path.resolve()), "overrides": overrides}
    )
    worker_config = uvicorn_config(
        "memory_proxy.cli.main:worker_app", settings, factory=True, workers=workers
    )
    # The workers write their metrics here, so that any of them can answer for all.
    with tempfile.TemporaryDirectory(prefix="memory-proxy-metrics-") as metrics_directory:
        os.environ[MULTIPROCESS_DIRECTORY] = metrics_directory
        Multiprocess(worker_config, sockets=[worker_config.bind_socket()]).run()


main.add_command(memories)
main.add_command(mcp_config)
main.add_command(migrate)


@main.command()
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The config.yaml naming the store (default: the one given to memory-proxy).",
)
@click.option("--since", help="Epoch seconds, an ISO 8601 time, or a duration: 15m, 24h, 7d.")
@click.option("--group-by", type=click.Choice(GROUPS), default="model", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print what GET /v1/usage answers.")
@click.pass_obj
def usage(
    default_config: Path | None,
    config: Path | None,
    since: str | None,
    group_by: str,
    as_json: bool,
) -> None:
    """Usage totals per model, user or client, read from the configured store."""
    settings = load_or_exit(config or default_config, serving=False)
    if not settings.usage.enabled:
        raise click.ClickException("usage analytics are disabled (usage.enabled: false)")
    if settings.memory.store == "memory":
        raise click.ClickException(
            "memory.store is 'memory': the usage log lives inside the running proxy; "
            "ask it with GET /v1/usage"
        )
    try:
        moment = parse_since(since, datetime.now().timestamp())
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    try:
        records = asyncio.run(_read_usage(settings, moment))
    except Exception as exc:  # an unreachable Redis, an unreadable file
        raise click.ClickException(f"cannot read the usage log: {exc}") from None
    summary = summarize(records, group_by)
    if as_json:
        click.echo(json.dumps({"object": "usage.summary", "since": moment, **summary}, indent=2))
    else:
        click.echo(usage_table(summary, moment))


async def _read_usage(settings: Settings, moment: float) -> list[UsageRecord]:
    log = open_usage_log(settings.memory, settings.usage)
    try:
        return await log.since(moment)
    finally:
        await log.aclose()


# (summary key, column title, format)
_COLUMNS = (
    ("requests", "requests", "{:d}"),
    ("errors", "errors", "{:d}"),
    ("streams", "streams", "{:d}"),
    ("prompt_tokens", "prompt tok", "{:d}"),
    ("completion_tokens", "completion tok", "{:d}"),
    ("cost", "cost $", "{:.4f}"),
    ("mean_first_byte_ms", "first byte ms", "{:.1f}"),
)


def usage_table(summary: dict[str, Any], since: float) -> str:
    """The summary as aligned text columns, with a total line."""
    group_by = summary["group_by"]
    header = [group_by, *(title for _, title, _ in _COLUMNS)]
    rows = [
        [str(row[group_by]), *("-" if row[k] is None else f.format(row[k]) for k, _, f in _COLUMNS)]
        for row in [*summary["data"], {group_by: "total", **summary["total"]}]
    ]
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first, *numbers = cells
        padded = [first.ljust(widths[0])]
        padded += [cell.rjust(width) for cell, width in zip(numbers, widths[1:], strict=True)]
        return "  ".join(padded).rstrip()

    period = datetime.fromtimestamp(since).isoformat(" ", "seconds") if since else "the start"
    rule = "-" * len(line(header))
    return "\n".join(
        [f"usage since {period}", line(header), rule, *map(line, rows[:-1]), rule, line(rows[-1])]
    )
