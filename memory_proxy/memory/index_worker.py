"""The index process (index_process.py): reads batches of exchanges from its socket,
makes their memories (indexing.MemoryMaker: redacted before anything is written) and
writes each batch in one transaction of the SQLite file, answering for each. It ends
when the proxy closes its side (or dies), after writing everything sent. It runs in a
session of its own and ignores SIGINT and SIGTERM, so that what the proxy sends while it
shuts down is still written.

    python -m memory_proxy.memory.index_worker FD
"""

from __future__ import annotations

import asyncio
import collections
import logging
import marshal
import pickle
import signal
import socket
import sys

from memory_proxy.logging_setup import configure_logging
from memory_proxy.memory.index_process import WorkerSettings, frame, read_frame
from memory_proxy.memory.indexing import Exchange, MemoryMaker
from memory_proxy.memory.redaction import Redactor
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex

logger = logging.getLogger("memory_proxy.memory")


async def serve(fd: int) -> None:
    reader, writer = await asyncio.open_unix_connection(sock=socket.socket(fileno=fd))
    first = await read_frame(reader)
    if first is None:
        return
    settings: WorkerSettings = pickle.loads(first)
    configure_logging(settings.log_format, settings.redaction.secrets)
    redacted: collections.Counter[str] = collections.Counter()

    def count(kind: str) -> None:
        redacted[kind] += 1

    maker = MemoryMaker(Redactor.of(settings.redaction, count).text)
    index = SQLiteMemoryIndex(settings.sqlite_path)
    try:
        while (batch := await read_frame(reader)) is not None:
            exchanges = [Exchange(*one) for one in marshal.loads(batch)]
            lost, reason = 0, ""
            try:
                made = map(maker.memory, exchanges)
                await index.add([record for record in made if record is not None])
            except Exception as exc:
                lost, reason = len(exchanges), f"the memory index failed: {exc}"
                logger.debug("the memory index failed: traceback", exc_info=exc)
            writer.write(frame(marshal.dumps((len(exchanges), lost, reason, dict(redacted)))))
            redacted.clear()
            await writer.drain()
    finally:
        await index.aclose()
        writer.close()


def main() -> None:
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, signal.SIG_IGN)
    asyncio.run(serve(int(sys.argv[1])))


if __name__ == "__main__":
    main()
