"""Reading the shared config file: the merged settings tree, the value converters, and
the check for keys that nothing reads (misspellings, mostly).

`memory_proxy.config` builds the typed settings from these.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from memory_proxy.errors import ProxyError

ENV_REFERENCE_PREFIX = "os.environ/"
# LiteLLM's top-level sections: the proxy reads some of them, checks none of their keys.
LITELLM_SECTIONS = frozenset(
    {
        "model_list",
        "litellm_settings",
        "general_settings",
        "router_settings",
        "environment_variables",
        "include",
        "mcp_servers",
        "mcp_tools",
        "guardrails",
        "policies",
        "policy_attachments",
        "prompts",
        "plugins",
        "agents",
        "agent_list",
        "callback_settings",
        "credential_list",
        "search_tools",
        "sandbox_tools",
        "vector_store_registry",
        "files_settings",
        "assistant_settings",
        "finetune_settings",
        "pass_through_endpoints",
        "worker_registry",
    }
)
# How alike an unknown top-level key must be to one of our sections to be called a typo.
SECTION_TYPO_SIMILARITY = 0.8
_LIST_INDEX = re.compile(r"\[\d+\]")

T = TypeVar("T")


class ConfigError(ProxyError):
    """A setting is missing or malformed; the message names the key and its source."""


def environment_variable(value: Any) -> str | None:
    """NAME when `value` is `os.environ/NAME` (read from the environment, as LiteLLM does)."""
    if isinstance(value, str) and value.startswith(ENV_REFERENCE_PREFIX):
        return value[len(ENV_REFERENCE_PREFIX) :]
    return None


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        where = "" if path.is_absolute() else f" ({path.absolute()})"
        raise ConfigError(f"{path}: cannot read config file{where}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return data


class SettingsTree:
    """The merged settings tree, remembering where each overridden value came from and
    which keys were read: every key the settings know is read whatever the others say,
    so a key of the file that was never read is one nobody knows."""

    def __init__(
        self,
        raw: dict[str, Any],
        file_label: str,
        environ: Mapping[str, str],
        directory: Path | None = None,
    ):
        self.file = raw
        self.raw = copy.deepcopy(raw)
        self.file_label = file_label
        self.environ = environ
        self.directory = directory  # the config file's, for relative paths
        self.sources: dict[str, str] = {}
        self.read: set[str] = set()  # dotted keys; "[]" stands for any index of a list

    def override(self, dotted: str, value: Any, source: str) -> None:
        *parents, leaf = dotted.split(".")
        node = self.raw
        for name in parents:
            child = node.get(name)
            if not isinstance(child, dict):
                child = {}
                node[name] = child
            node = child
        node[leaf] = value
        self.sources[dotted] = source

    def source(self, dotted: str) -> str:
        return self.sources.get(dotted, self.file_label)

    def error(self, dotted: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.source(dotted)}: {dotted}: {problem}")

    def lookup(self, dotted: str) -> Any:
        """The value at a dotted key, `os.environ/NAME` resolved; None when absent."""
        self.read.add(dotted)
        node: Any = self.raw
        walked: list[str] = []
        for name in dotted.split("."):
            if node is None:
                return None
            if not isinstance(node, dict):
                raise self.error(".".join(walked), "must be a mapping")
            node = node.get(name)
            walked.append(name)
        return self.resolve(node)

    def field(self, where: str, entry: dict[str, Any], key: str) -> Any:
        """A key of one entry of a list setting (`where` is `auth.client_keys[0]`)."""
        self.read.add(f"{_LIST_INDEX.sub('[]', where)}.{key}")
        return self.resolve(entry.get(key))

    def resolve(self, value: Any) -> Any:
        name = environment_variable(value)
        return value if name is None else self.environ.get(name)

    def get(self, dotted: str, convert: Callable[[Any], T], default: T) -> T:
        value = self.lookup(dotted)
        if value is None:
            return default
        try:
            return convert(value)
        except (TypeError, ValueError) as exc:
            raise self.error(dotted, f"{exc} (got {value!r})") from None

    def path(self, dotted: str, default: Path) -> Path:
        """A file path; a relative one is taken from the config file's directory, so that
        the proxy finds the same file whatever directory it was started from."""
        path = self.get(dotted, lambda value: Path(as_str(value)).expanduser(), default)
        return self.directory / path if self.directory else path

    def unknown_keys(self) -> list[str]:
        """A warning for each key of the file in our sections that nothing read, and for
        each unknown section that looks like a misspelling of ours; LiteLLM's are not
        ours to judge. Call it after every setting was read."""
        ours = {dotted.split(".")[0] for dotted in self.read} - LITELLM_SECTIONS
        warnings = []
        for section, value in self.file.items():
            name = str(section)
            if name in ours:
                warnings += self._unknown_below(name, name, value)
            elif name not in LITELLM_SECTIONS:
                close = difflib.get_close_matches(
                    name, sorted(ours), n=1, cutoff=SECTION_TYPO_SIMILARITY
                )
                if close:
                    warnings.append(
                        f"{self.file_label}: {name}: unknown section, ignored "
                        f"(did you mean {close[0]}?)"
                    )
        return warnings

    def _unknown_below(self, where: str, pattern: str, value: Any) -> list[str]:
        """`where` names the value as the user sees it, `pattern` as `read` holds it."""
        if isinstance(value, list):
            return [
                warning
                for index, item in enumerate(value)
                for warning in self._unknown_below(f"{where}[{index}]", f"{pattern}[]", item)
            ]
        prefix = pattern + "."
        known = {
            dotted[len(prefix) :].split(".")[0].removesuffix("[]")
            for dotted in self.read
            if dotted.startswith(prefix)
        }
        if not isinstance(value, dict) or not known:
            return []
        warnings = []
        for key, child in value.items():
            name = str(key)
            if name in known:
                warnings += self._unknown_below(f"{where}.{name}", f"{prefix}{name}", child)
                continue
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(sorted(known))}"
            warnings.append(f"{self.file_label}: {where}.{name}: unknown key, ignored ({hint})")
        return warnings


def as_str(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError("expected a string")
    return str(value)


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise TypeError("expected true or false")


def as_positive_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("expected a positive whole number")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise TypeError("expected a positive whole number") from None
    if number <= 0 or (isinstance(value, float) and not value.is_integer()):
        raise ValueError("expected a positive whole number")
    return number


def as_port(value: Any) -> int:
    port = as_positive_int(value)
    if port > 65535:
        raise ValueError("expected a port number from 1 to 65535")
    return port


def as_positive_float(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError("expected a positive number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError("expected a positive number") from None
    if number <= 0:
        raise ValueError("expected a positive number")
    return number


def one_of(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        text = as_str(value)
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return text

    return convert


def as_http_url(value: Any) -> str:
    url = as_str(value).rstrip("/")
    if not re.match(r"^https?://[^/\s]+", url):
        raise ValueError("expected an http:// or https:// URL")
    return url
