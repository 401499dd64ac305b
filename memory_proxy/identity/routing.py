"""What the proxy decides for one request: whose memory, which conversation, and whether
the model is Supermemory-routed. Shared by forwarding and the debug endpoints, so the
debug answer is exactly what forwarding does."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from memory_proxy.config import Settings
from memory_proxy.identity.auth import Caller
from memory_proxy.identity.client_detection import ClientIdentity, detect_session, detect_user
from memory_proxy.identity.supermemory import SupermemoryRouting


@dataclass(frozen=True)
class RoutingDecision:
    identity: ClientIdentity
    authenticated: bool
    session_id: str | None
    model: str | None
    supermemory: bool
    memory: bool

    def describe(self) -> dict[str, Any]:
        pattern = self.identity.matched_pattern
        return {
            "user_id": self.identity.user_id,
            "matched_pattern": asdict(pattern) if pattern else None,
            "custom_header_present": self.identity.custom_header_present,
            "is_default": self.identity.is_default,
            "bound_to_key": self.identity.bound_to_key,
            "client": self.identity.client,
            "authenticated": self.authenticated,
            "session_id": self.session_id,
            "model": self.model,
            "supermemory": self.supermemory,
            "memory": self.memory,
        }


def decide(
    headers: Mapping[str, str],
    body: Any,
    settings: Settings,
    supermemory: SupermemoryRouting,
    caller: Caller,
) -> RoutingDecision:
    """Raises `InvalidIdentifier` when the client sent an unusable user or session id.

    A user id fixed by the caller's key beats detection: a bound client key's, or for a
    key that passes through to LiteLLM, the one derived from it (such a caller never names
    one). Supermemory's scope and key go to authenticated callers only.
    """
    model = body.get("model") if isinstance(body, dict) else None
    model = model if isinstance(model, str) else None
    session_id = detect_session(headers, settings.memory.session_header, body)
    if caller.bound_user_id:
        kind = "client-key" if caller.by_client_key else "pass-through-key"
        identity = ClientIdentity(caller.bound_user_id, None, False, bound_to=kind)
    else:
        identity = detect_user(headers, settings.user_id_mappings)
    return RoutingDecision(
        identity=identity,
        authenticated=caller.authenticated,
        session_id=session_id,
        model=model,
        supermemory=caller.authenticated and supermemory.is_routed(model),
        memory=settings.memory.enabled and session_id is not None,
    )
