"""`recall.backend: both`: the local index and Supermemory side by side.

Every memory goes to both (Supermemory leaves a private model's out). A search asks both
at once (Supermemory is not asked for a request that may go to a private model: it answers
nothing at once); the local hits come first, then Supermemory's (their scores are not
comparable: BM25 against cosine similarity), each text once. The hosted side is given only
part of the recall budget: when it is late or fails, the local hits are used alone, so a
slow network never costs the request its local memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from memory_proxy.logging_setup import log_failure
from memory_proxy.records.memory import MemoryRecord, Privacy, Recalled
from memory_proxy.stores.base import RecallBackend

logger = logging.getLogger("memory_proxy.memory")

REMOTE_SHARE_OF_BUDGET = 0.8


class CombinedRecall:
    """A `RecallBackend` over a local and a remote one; `remote_wait` in seconds;
    `on_remote_late` and `on_remote_failure` count the remote searches given up."""

    def __init__(
        self,
        local: RecallBackend,
        remote: RecallBackend,
        remote_wait: float,
        *,
        on_remote_late: Callable[[], None],
        on_remote_failure: Callable[[], None],
    ) -> None:
        self._local = local
        self._remote = remote
        self._remote_wait = remote_wait
        self._on_remote_late = on_remote_late
        self._on_remote_failure = on_remote_failure

    async def add(self, records: list[MemoryRecord]) -> None:
        """Both are written; a failure of either is raised (counted by the writer) once
        the other has had its turn."""
        results = await asyncio.gather(
            self._local.add(records), self._remote.add(records), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def search(
        self,
        user_id: str,
        project: str | None,
        query: str,
        *,
        limit: int,
        exclude_session: str | None = None,
        min_share: float = 0.0,
        fill_share: float | None = None,
        privacy: Privacy = "hosted",
    ) -> list[Recalled]:
        def ask(backend: RecallBackend) -> asyncio.Task[list[Recalled]]:
            search = backend.search(
                user_id,
                project,
                query,
                limit=limit,
                exclude_session=exclude_session,
                min_share=min_share,
                fill_share=fill_share,
                privacy=privacy,
            )
            return asyncio.ensure_future(search)

        local, remote = ask(self._local), ask(self._remote)
        remote_hits: list[Recalled] = []
        try:
            local_hits = await local
            try:
                remote_hits = await asyncio.wait_for(remote, self._remote_wait)
            except TimeoutError:  # the local hits stand alone
                self._on_remote_late()
                logger.info("Supermemory answered too late; local memories only")
            except Exception as exc:
                self._on_remote_failure()
                log_failure(logger, "Supermemory search failed; local memories only", exc)
        finally:
            remote.cancel()
        return _merged(local_hits, remote_hits, limit)

    async def aclose(self) -> None:
        await self._remote.aclose()  # the local index belongs to the app, which closes it


def _merged(local: list[Recalled], remote: list[Recalled], limit: int) -> list[Recalled]:
    """The local hits, then the remote ones whose text is new, at most `limit`."""
    seen = {hit.record.text for hit in local}
    return [*local, *(hit for hit in remote if hit.record.text not in seen)][:limit]
