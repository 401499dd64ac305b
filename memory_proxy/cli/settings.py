"""Settings for a command: loaded, or the reason on stderr and exit status 2. Shared by
`memory-proxy`, its subcommands and `start-proxies`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from memory_proxy.config import ConfigError, Settings, load_settings
from memory_proxy.identity.auth import startup_problem


def load_or_exit(
    config: Path,
    overrides: dict[str, Any] | None = None,
    *,
    serving: bool = True,
    warn: bool = True,
) -> Settings:
    """Settings, or an error naming the key and file and exit status 2; for serving, also
    refuses settings that would expose LiteLLM's key to the network. Unknown keys are
    warned about here, before anything serves."""
    try:
        settings = load_settings(config, overrides=overrides)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    for warning in settings.warnings if warn else ():
        click.echo(f"warning: {warning}", err=True)
    problem = startup_problem(settings) if serving else None
    if problem:
        click.echo(f"error: {problem}", err=True)
        raise SystemExit(2)
    return settings
