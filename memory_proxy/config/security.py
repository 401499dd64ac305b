"""Settings of what browsers may do (`security.*`): the origins whose web pages may call
the proxy, and the names it answers to besides the loopback ones (the Host header, which
stops DNS rebinding). Kept apart from config/__init__.py, which builds them into `Settings`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from memory_proxy.config.parsing import SettingsTree

# Names only this machine can be reached by: a page can never be served from them by a
# stranger, so they are always allowed, whatever the list says.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
_DEFAULT_PORTS = {"http": ":80", "https": ":443"}
# scheme://host[:port], as browsers send an Origin: lower case, no path, no default port.
_ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://(?:\[[0-9a-f:.]+\]|[a-z0-9._~-]+)(?::[0-9]{1,5})?")
_HOST_NAME = re.compile(r"[a-z0-9_]([a-z0-9._-]{0,251}[a-z0-9_])?")


@dataclass(frozen=True)
class SecuritySettings:
    allowed_origins: frozenset[str] = frozenset()  # exact origins, as browsers send them
    allowed_hosts: tuple[str, ...] = ()  # more names; IPv6 in brackets; any port


def build_security(tree: SettingsTree) -> SecuritySettings:
    return SecuritySettings(
        allowed_origins=frozenset(
            _checked_list(tree, "security.allowed_origins", as_origin, "origins")
        ),
        allowed_hosts=tuple(_checked_list(tree, "security.allowed_hosts", as_host_name, "names")),
    )


def allowed_host_names(security: SecuritySettings, bound_host: str) -> frozenset[str]:
    """Every name the Host header may carry: the loopback names, the address the proxy
    listens on, and `security.allowed_hosts`."""
    return frozenset((*LOOPBACK_HOSTS, as_host_name(bound_host), *security.allowed_hosts))


def as_origin(value: Any) -> str:
    """An origin as a browser serialises it (`http://localhost:3000`); a default port is
    dropped, since browsers never send it."""
    if not isinstance(value, str):
        raise TypeError("expected an origin such as http://localhost:3000")
    origin = value.strip().lower()
    if origin in ("*", "null"):
        raise ValueError(
            f"{origin!r} would let any web page use the proxy: list exact origins such as "
            "http://localhost:3000"
        )
    if not _ORIGIN.fullmatch(origin):
        raise ValueError("expected scheme://host[:port] with no path, e.g. http://localhost:3000")
    default_port = _DEFAULT_PORTS.get(origin.partition(":")[0])
    return origin.removesuffix(default_port) if default_port else origin


def as_host_name(value: Any) -> str:
    """A host name or address as the Host header carries it, without the port: lower
    case, an IPv6 address in brackets."""
    if not isinstance(value, str):
        raise TypeError("expected a host name or address")
    name = value.strip().lower()
    try:
        return f"[{ipaddress.IPv6Address(name.removeprefix('[').removesuffix(']'))}]"
    except ValueError:
        pass
    if not _HOST_NAME.fullmatch(name):
        raise ValueError("expected a host name or address, with no scheme, port or wildcard")
    return name


def _checked_list(
    tree: SettingsTree, dotted: str, convert: Callable[[Any], str], what: str
) -> list[str]:
    entries = tree.lookup(dotted) or []
    if not isinstance(entries, list):
        raise tree.error(dotted, f"expected a list of {what}")
    checked = []
    for index, entry in enumerate(entries):
        try:
            checked.append(convert(tree.resolve(entry)))
        except (TypeError, ValueError) as exc:
            raise tree.error(f"{dotted}[{index}]", f"{exc} (got {entry!r})") from None
    return checked
