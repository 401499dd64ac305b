"""Who is calling and what for, decided once per request: the caller's trust, whose memory
(user id, client, project), which conversation, what memory may do, the model and where it
goes (Supermemory-routed, private). One immutable value, shared by forwarding and the debug
endpoints, so the debug answer is exactly what forwarding does; every later step takes what
it needs from it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

from memory_proxy.config import Settings
from memory_proxy.errors import Refusal
from memory_proxy.identity import auth
from memory_proxy.identity.auth import Caller, Trust
from memory_proxy.identity.client_detection import (
    VALID_ID,
    ClientIdentity,
    UserDetector,
    detect_session,
)
from memory_proxy.identity.client_key_guard import KEY_IN_URL, ClientKeyGuard
from memory_proxy.identity.memory_mode import memory_mode, reads, writes
from memory_proxy.identity.model_check import ModelCheck
from memory_proxy.identity.model_privacy import ModelPrivacy
from memory_proxy.identity.project import detect_project, named_project
from memory_proxy.identity.supermemory import SupermemoryRouting
from memory_proxy.records.memory import Privacy

REQUEST_ID_HEADER = "x-request-id"


class Identification(NamedTuple):
    """Immutable. A NamedTuple, not a frozen dataclass, which sets each field through
    object.__setattr__: built per request, by position, in 4.3k instructions instead of
    20.6k."""

    request_id: str  # the client's x-request-id when usable, else ours
    caller: Caller  # trust, and the user a key is bound to
    identity: ClientIdentity  # user id, and how the client was recognised (its name)
    session_id: str | None
    model: str | None
    supermemory_routed: bool  # the model is Supermemory-routed (supermemory.py)
    memory: bool  # session memory: on, and a session named
    project: str = ""  # GENERAL_PROJECT: the user's memory outside any project
    memory_mode: str = "on"  # on | read | write | off
    model_privacy: Privacy = "hosted"  # where LiteLLM may send the request

    @property
    def user_id(self) -> str:
        return self.identity.user_id

    @property
    def trust(self) -> Trust:
        return self.caller.trust

    @property
    def supermemory(self) -> bool:
        """Supermemory's scope and key go with the request: a routed model, asked by a
        trusted caller."""
        return self.supermemory_routed and self.caller.authenticated

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
            "authenticated": self.caller.authenticated,
            "session_id": self.session_id,
            "model": self.model,
            "supermemory": self.supermemory,
            "memory": self.memory,
            "memory_mode": self.memory_mode,
            "project": self.project or None,
            "model_privacy": self.model_privacy,
        }


@dataclass(frozen=True, slots=True)
class MemoryOwner:
    """Whose long-term memory a memory tool call (MCP) works on, by a chat request's rules:
    the user and how its client was recognised, the project its headers name (None: none)
    and what memory may do for it. A tool call has no body, model or session."""

    caller: Caller
    identity: ClientIdentity
    named_project: str | None
    memory_mode: str = "on"

    @property
    def user_id(self) -> str:
        return self.identity.user_id

    @property
    def reads_memory(self) -> bool:
        return reads(self.memory_mode)

    @property
    def writes_memory(self) -> bool:
        return writes(self.memory_mode)


class Identifier:
    """Identifies requests by the configured rules: client keys, user id mappings, memory's
    session headers, project extractors and modes, Supermemory routing, private models."""

    def __init__(
        self, settings: Settings, supermemory: SupermemoryRouting, privacy: ModelPrivacy
    ) -> None:
        self._client_keys = settings.client_keys
        self._key_guard = ClientKeyGuard.from_settings(settings)
        self._detect_user = UserDetector(settings.user_id_mappings)
        self._memory = settings.memory
        self._supermemory = supermemory
        self._privacy = privacy
        self._model_check = ModelCheck(settings.litellm)

    def check_url(self, raw_path: bytes, query: bytes) -> None:
        """A 400 for a URL carrying one of our client keys: it is not sent on, nor edited
        (client_key_guard.py)."""
        if self._key_guard.in_url(raw_path, query):
            raise Refusal(400, KEY_IN_URL)

    def request_id(self, headers: Mapping[str, str]) -> str:
        """The client's x-request-id when it is a valid id that carries none of our client
        keys (it is logged, stored and sent on); else a new one."""
        sent = headers.get(REQUEST_ID_HEADER)
        if sent is not None and VALID_ID.match(sent) and not self._key_guard.holds_key(sent):
            return sent
        return os.urandom(16).hex()  # uuid4().hex's format, at a fifth of its cost

    def caller(self, headers: auth.RawHeaders, client_host: str | None) -> Caller:
        """`headers` as the ASGI scope has them: lower-case names, every occurrence."""
        return auth.identify(headers, client_host, self._client_keys)

    def identify(
        self,
        request_id: str,
        headers: Mapping[str, str],
        caller: Caller,
        body: Any,
        raw_body: bytes | None = None,
        llm_call: bool = False,
    ) -> Identification:
        """Raises `Refusal` (401) for a refused caller, `InvalidIdentifier` (400) when the
        client sent an unusable user, session or project id, or `x-memory` value.

        `headers` must have lower-case names. A user id fixed by the caller's key beats
        detection: a bound client key's, or for a key that passes through to LiteLLM, the
        one derived from it (such a caller never names one). `raw_body` is searched for the
        client's working directory (chat requests only). An `llm_call` (a path of one of
        the LLM APIs) naming a model LiteLLM would fail on is refused (400, model_check.py).
        """
        if caller.refusal:
            raise Refusal(401, caller.refusal)
        if llm_call:
            self._model_check.check(body)
        model = body.get("model") if isinstance(body, dict) else None
        model = model if isinstance(model, str) else None
        memory = self._memory
        session_id = detect_session(headers, memory.session_headers, body)
        identity = self._identity(headers, caller)
        return Identification(  # by position: keywords cost a NamedTuple twice as much
            request_id,
            caller,
            identity,
            session_id,
            model,
            self._supermemory.is_routed(model),
            memory.enabled and session_id is not None,
            detect_project(headers, raw_body, memory.project_extractors),
            memory_mode(headers, identity.user_id, memory.modes),
            self._privacy.of_request(model, body),
        )

    def memory_owner(self, headers: Mapping[str, str], caller: Caller) -> MemoryOwner:
        """Raises `Refusal` (401) for a refused caller, `InvalidIdentifier` (400) for an
        unusable user or project id or `x-memory` value. `headers`: lower-case names."""
        if caller.refusal:
            raise Refusal(401, caller.refusal)
        identity = self._identity(headers, caller)
        return MemoryOwner(
            caller,
            identity,
            named_project(headers),
            memory_mode(headers, identity.user_id, self._memory.modes),
        )

    def _identity(self, headers: Mapping[str, str], caller: Caller) -> ClientIdentity:
        """A user id fixed by the caller's key beats detection: a bound client key's, or for
        a key that passes through to LiteLLM, the one derived from it."""
        if caller.bound_user_id:
            kind = "client-key" if caller.by_client_key else "pass-through-key"
            return ClientIdentity(caller.bound_user_id, None, False, bound_to=kind)
        return self._detect_user(headers)
