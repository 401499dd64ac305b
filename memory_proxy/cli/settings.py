"""Settings for a command: loaded, or the reason on stderr and exit status 2. Shared by
`memory-proxy`, its subcommands and `start-proxies`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from memory_proxy.cli.demo_model import demo_problems
from memory_proxy.config import ConfigError, Settings, load_settings
from memory_proxy.identity.auth import startup_problem

CONFIG_NAME = "config.yaml"
# The repository's own, which scripts/start uses: found when the package is installed from
# the repository (scripts/start installs it so), absent otherwise.
PROJECT_CONFIG = Path(__file__).resolve().parents[2] / CONFIG_NAME


def config_file(given: Path | None) -> Path:
    """--config (or LITELLM_CONFIG); else config.yaml in the working directory; else the
    repository's, the one scripts/start runs on, so that `memory-proxy usage` and
    `memory-proxy memories` work from any directory."""
    if given is not None:
        return given
    here = Path(CONFIG_NAME)
    if here.is_file():
        return here
    if PROJECT_CONFIG.is_file():
        return PROJECT_CONFIG
    raise ConfigError(
        f"no {CONFIG_NAME} in {Path.cwd()}: pass --config PATH (or set LITELLM_CONFIG)"
    )


def load_or_exit(
    config: Path | None,
    overrides: dict[str, Any] | None = None,
    *,
    serving: bool = True,
    warn: bool = True,
) -> Settings:
    """Settings, or an error naming the key and file and exit status 2; for serving, also
    refuses settings that would expose LiteLLM's key to the network. Warnings (unknown keys;
    for serving, a `demo` this proxy would not answer) are printed here unless `warn` is
    false, before anything serves."""
    try:
        settings = load_settings(config_file(config), overrides=overrides)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    for warning in startup_warnings(settings, serving=serving) if warn else ():
        click.echo(f"warning: {warning}", err=True)
    problem = startup_problem(settings) if serving else None
    if problem:
        click.echo(f"error: {problem}", err=True)
        raise SystemExit(2)
    return settings


def startup_warnings(settings: Settings, *, serving: bool = True) -> list[str]:
    """Keys of the file that nothing reads; for serving, models that should reach this
    proxy's demo and would not."""
    return [*settings.warnings, *(demo_problems(settings) if serving else ())]
