"""`start-proxies`: LiteLLM and the memory proxy, started and kept running by one command."""

from __future__ import annotations

from pathlib import Path

import click

from memory_proxy.cli.main import config_option, log_format_option
from supervisor.launcher import LaunchOptions, launch


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@config_option
@click.option(
    "--host", help="Address the memory proxy listens on (env PROXY_HOST).  [default: 127.0.0.1]"
)
@click.option("--litellm-port", type=int, default=8765, show_default=True, help="Port for LiteLLM.")
@click.option(
    "--memoryproxy-port", type=int, help="Port clients use (env PROXY_PORT).  [default: 8764]"
)
@click.option(
    "--litellm-bin",
    help="The litellm executable (env LITELLM_BIN); by default the project's .venv-litellm.",
)
@click.option(
    "--litellm-url",
    help="Use an already running LiteLLM at this URL and start nothing else.",
)
@click.option(
    "--startup-timeout",
    type=float,
    default=120,
    show_default=True,
    help="Seconds LiteLLM may take to become ready.",
)
@log_format_option
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help="Show all of LiteLLM's output (its banner, INFO lines, tracebacks' frames) and "
    "uvicorn's start-up lines.",
)
def main(
    config: Path | None,
    host: str | None,
    litellm_port: int,
    memoryproxy_port: int | None,
    litellm_bin: str | None,
    litellm_url: str | None,
    startup_timeout: float,
    log_format: str | None,
    verbose: bool,
) -> None:
    """Start LiteLLM and the memory proxy in front of it; keep LiteLLM running.

    Point clients at the memory proxy (http://127.0.0.1:8764). LiteLLM is restarted if it
    crashes or hangs; Ctrl-C stops both and leaves no process behind.
    """
    raise SystemExit(
        launch(
            LaunchOptions(
                config=config,
                host=host,
                litellm_port=litellm_port,
                proxy_port=memoryproxy_port,
                litellm_bin=litellm_bin,
                litellm_url=litellm_url,
                startup_timeout=startup_timeout,
                log_format=log_format,
                verbose=verbose,
            )
        )
    )
