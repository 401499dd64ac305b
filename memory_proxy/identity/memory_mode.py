"""What memory may do for one request: read (inject history, recall), write (store the
exchange, index it), both (`on`, the default) or neither (`off`).

The operator sets a mode per user id (`memory.modes`); a request may narrow it with the
`x-memory` header, never widen it: a user configured `off` stays off.
"""

from __future__ import annotations

from collections.abc import Mapping

from memory_proxy.config.recall import MEMORY_MODES
from memory_proxy.identity.client_detection import InvalidIdentifier

MODE_HEADER = "x-memory"
# The proxy's own request headers (mode, project, the default user id header): read here,
# never forwarded.
MEMORY_CONTROL_HEADERS = frozenset({b"x-memory", b"x-memory-project", b"x-memory-user-id"})
# mode -> (reads, writes)
_ABILITIES = {
    "on": (True, True),
    "read": (True, False),
    "write": (False, True),
    "off": (False, False),
}
_MODES = {abilities: mode for mode, abilities in _ABILITIES.items()}


def memory_mode(headers: Mapping[str, str], user_id: str, configured: Mapping[str, str]) -> str:
    """Raises `InvalidIdentifier` (answered with a 400) for an `x-memory` value it does
    not know."""
    mode = configured.get(user_id, "on")
    asked = headers.get(MODE_HEADER)
    if asked is None:
        return mode
    asked = asked.strip().lower()
    if asked not in _ABILITIES:
        raise InvalidIdentifier(f"{MODE_HEADER} must be one of {', '.join(MEMORY_MODES)}")
    (reads, writes), (may_read, may_write) = _ABILITIES[mode], _ABILITIES[asked]
    return _MODES[(reads and may_read, writes and may_write)]


def reads(mode: str) -> bool:
    return _ABILITIES[mode][0]


def writes(mode: str) -> bool:
    return _ABILITIES[mode][1]
