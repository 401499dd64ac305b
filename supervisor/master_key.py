"""LiteLLM's master key: the user's, or a strong random one for this run.

LiteLLM refuses weak keys such as sk-1234. A generated key goes to the child's
environment and to the memory proxy as its upstream key; it is never printed.
"""

from __future__ import annotations

import secrets
from collections.abc import MutableMapping

MASTER_KEY_VARIABLE = "LITELLM_MASTER_KEY"


def ensure_master_key(environ: MutableMapping[str, str]) -> bool:
    """Set a generated key when none is set; True when it generated one."""
    if environ.get(MASTER_KEY_VARIABLE):
        return False
    environ[MASTER_KEY_VARIABLE] = "sk-" + secrets.token_urlsafe(32)
    return True
