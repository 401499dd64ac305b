"""Where recalled blocks went, as the store several processes share holds it
(memory/placed_blocks.py). A proxy keeps a block's place after the request has gone on;
a test of several proxies or workers asking a conversation's next turn at once waits for
it, as a client's next turn, seconds later, need not."""

from __future__ import annotations

import asyncio

from memory_proxy.config import MemorySettings
from memory_proxy.stores.open import open_placements
from tests.support import wait_until


def _blocks_kept(memory: MemorySettings, user_id: str, session: str) -> int:
    """The blocks placed in the user's `session` that the shared store holds."""

    async def count() -> int:
        placements = open_placements(memory, read_budget=5.0)
        assert placements is not None
        try:
            return len(await placements.placed(user_id, session))
        finally:
            await placements.aclose()

    return asyncio.run(count())


def wait_until_kept(memory: MemorySettings, user_id: str, session: str) -> None:
    """Until the shared store holds the block placed in the user's `session`."""
    wait_until(lambda: _blocks_kept(memory, user_id, session) == 1)
