"""What the proxy decides for one request: whose memory, which conversation, whether the
model is Supermemory-routed, and whether it is private. Shared by forwarding and the debug
endpoints, so the debug answer is exactly what forwarding does."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from memory_proxy.config import Settings
from memory_proxy.identity.auth import Caller
from memory_proxy.identity.client_detection import ClientIdentity, detect_session, detect_user
from memory_proxy.identity.memory_mode import memory_mode, reads, writes
from memory_proxy.identity.model_privacy import ModelPrivacy
from memory_proxy.identity.project import detect_project
from memory_proxy.identity.supermemory import SupermemoryRouting
from memory_proxy.records.memory import Privacy


@dataclass(frozen=True)
class RoutingDecision:
    identity: ClientIdentity
    authenticated: bool
    session_id: str | None
    model: str | None
    supermemory: bool
    memory: bool
    project: str = ""  # GENERAL_PROJECT: the user's memory outside any project
    memory_mode: str = "on"  # on | read | write | off
    model_privacy: Privacy = "hosted"  # where LiteLLM may send the request

    @property
    def reads_memory(self) -> bool:
        return reads(self.memory_mode)

    @property
    def writes_memory(self) -> bool:
        return writes(self.memory_mode)

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
            "memory_mode": self.memory_mode,
            "project": self.project or None,
            "model_privacy": self.model_privacy,
        }


def decide(
    headers: Mapping[str, str],
    body: Any,
    settings: Settings,
    supermemory: SupermemoryRouting,
    privacy: ModelPrivacy,
    caller: Caller,
    raw_body: bytes | None = None,
) -> RoutingDecision:
    """Raises `InvalidIdentifier` when the client sent an unusable user, session or
    project id, or `x-memory` value.

    A user id fixed by the caller's key beats detection: a bound client key's, or for a
    key that passes through to LiteLLM, the one derived from it (such a caller never names
    one). Supermemory's scope and key go to authenticated callers only. `raw_body` is
    searched for the client's working directory (chat requests only).
    """
    model = body.get("model") if isinstance(body, dict) else None
    model = model if isinstance(model, str) else None
    memory = settings.memory
    session_id = detect_session(headers, memory.session_headers, body)
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
        memory=memory.enabled and session_id is not None,
        project=detect_project(headers, raw_body, memory.project_extractors),
        memory_mode=memory_mode(headers, identity.user_id, memory.modes),
        model_privacy=privacy.of_request(model, body),
    )
