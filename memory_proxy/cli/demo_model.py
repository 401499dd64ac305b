"""Where LiteLLM finds the offline `demo` model: the proxy's own `/demo/v1`, on the port the
proxy listens on. The shipped config reads that URL from MEMORY_PROXY_DEMO_URL, which
start-proxies sets for the LiteLLM it starts; a proxy that LiteLLM would not reach that way
says so at start, since `demo` would then fail with another server's answer, or none."""

from __future__ import annotations

from urllib.parse import urlsplit

from memory_proxy.api.echo_model import ECHO_PATH
from memory_proxy.config import ModelEntry, Settings

DEMO_URL_VARIABLE = "MEMORY_PROXY_DEMO_URL"
DEMO_BASE_PATH = ECHO_PATH.removesuffix("/chat/completions")  # /demo/v1
_ANY_ADDRESS = ("", "0.0.0.0", "::")


def local_url(host: str, port: int) -> str:
    """How a program on this machine reaches a server listening on host:port."""
    if host in _ANY_ADDRESS:
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def demo_url(settings: Settings) -> str:
    """The `api_base` that reaches this proxy's demo."""
    return local_url(settings.host, settings.port) + DEMO_BASE_PATH


def demo_problems(settings: Settings) -> list[str]:
    """A sentence for each model that should reach this proxy's demo and would not."""
    problems = []
    for index, model in enumerate(settings.litellm.models):
        problem = _problem(model, settings)
        if problem:
            where = f"{settings.config_path}: model_list[{index}] ({model.model_name})"
            problems.append(f"{where}: {problem}")
    return problems


def _problem(model: ModelEntry, settings: Settings) -> str | None:
    wanted = demo_url(settings)
    variable = model.api_base_variable
    if model.api_base is None:
        if variable != DEMO_URL_VARIABLE:
            return None
        return (
            f"api_base is os.environ/{variable}, which is not set, so LiteLLM cannot reach "
            f"the demo: set {variable}={wanted} for LiteLLM (start-proxies does)"
        )
    address = urlsplit(model.api_base)
    if address.path.rstrip("/") != DEMO_BASE_PATH:
        return None
    try:
        port = address.port or (443 if address.scheme == "https" else 80)
    except ValueError:  # not a port number: LiteLLM cannot reach it either
        port = None
    if port == settings.port:
        return None
    fix = (
        f"set {variable}={wanted} for LiteLLM (start-proxies does)"
        if variable
        else f"make it {wanted}, or os.environ/{DEMO_URL_VARIABLE} (start-proxies sets it)"
    )
    return (
        f"api_base {model.api_base} is not this proxy's port ({settings.port}): LiteLLM "
        f"will send `{model.model_name}` there; {fix}"
    )
