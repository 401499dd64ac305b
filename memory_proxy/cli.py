"""`memory-proxy`: the proxy alone, in front of a LiteLLM that runs elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import uvicorn

from memory_proxy.app import MemoryProxy
from memory_proxy.auth import startup_problem
from memory_proxy.config import LOG_FORMATS, ConfigError, Settings, load_settings
from memory_proxy.logging_setup import configure_logging

# Options shared with start-proxies.
config_option = click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    default="config.yaml",
    show_default=True,
    envvar="LITELLM_CONFIG",
    help="The config.yaml shared with LiteLLM (env LITELLM_CONFIG).",
)
log_format_option = click.option(
    "--log-format", type=click.Choice(LOG_FORMATS), help="Log lines as text or JSON."
)


def load_or_exit(config: Path, overrides: dict[str, Any]) -> Settings:
    """Settings, or an error naming the key and file and exit status 2; also refuses
    settings that would expose LiteLLM's key to the network."""
    try:
        settings = load_settings(config, overrides=overrides)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    problem = startup_problem(settings)
    if problem:
        click.echo(f"error: {problem}", err=True)
        raise SystemExit(2)
    return settings


def uvicorn_config(app: MemoryProxy, settings: Settings) -> uvicorn.Config:
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
    )


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@config_option
@click.option("--host", help="Address to listen on (env PROXY_HOST).  [default: 127.0.0.1]")
@click.option("--port", type=int, help="Port to listen on (env PROXY_PORT).  [default: 8764]")
@click.option(
    "--litellm-url",
    help="Where LiteLLM answers (env LITELLM_BASE_URL).  [default: http://127.0.0.1:8765]",
)
@log_format_option
def main(
    config: Path,
    host: str | None,
    port: int | None,
    litellm_url: str | None,
    log_format: str | None,
) -> None:
    """Serve the memory proxy: recognise each client, scope its memory, forward to LiteLLM."""
    settings = load_or_exit(
        config,
        {
            "proxy.host": host,
            "proxy.port": port,
            "proxy.litellm_url": litellm_url,
            "proxy.log_format": log_format,
        },
    )
    configure_logging(settings.log_format, settings.secrets())
    uvicorn.Server(uvicorn_config(MemoryProxy(settings), settings)).run()
