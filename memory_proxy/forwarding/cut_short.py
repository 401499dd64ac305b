"""An answer that ends before LiteLLM finished it (LiteLLM cut it, or paused past the idle
timeout): the client must see it unfinished, and the log must say so once, naming the
request.

ASGI gives an app no way to abort a response (django/asgiref#47). What uvicorn does when
the app returns before the final body message is what the client needs: it closes the
connection, so the rest of the Content-Length or the chunked terminator never comes and
every HTTP library reports an incomplete body. But it also logs "ASGI callable returned
without completing response." at ERROR, naming nothing (uvicorn 0.54, run_asgi in
protocols/http/httptools_impl.py and h11_impl.py). Sending the final body message instead
is no way out: uvicorn raises when a Content-Length is not reached, and a chunked answer
would end cleanly, a truncated JSON or SSE stream looking whole to the client.

So the forwarder logs one warning naming the request and marks it (a context variable:
uvicorn's run_asgi awaits the app in the same task, so it sees the mark), and a filter on
uvicorn's logger drops its line for marked requests only; any other early return still
gets it.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

logger = logging.getLogger("memory_proxy.forwarding")

UVICORN_LOGGER = "uvicorn.error"
UVICORN_LINE = "ASGI callable returned without completing response."
_left_unfinished: ContextVar[bool] = ContextVar("left_unfinished", default=False)


def leave_unfinished(request_id: str, why: str) -> None:
    """Say once why the answer to `request_id` ends unfinished; the forwarder then
    returns without the final body message, and uvicorn closes the connection."""
    logger.warning(
        "request %s: answer cut short (%s); the client sees it unfinished", request_id, why
    )
    _left_unfinished.set(True)


class _UnfinishedOnPurpose(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.msg == UVICORN_LINE and _left_unfinished.get())


_FILTER = _UnfinishedOnPurpose()


def quiet_uvicorn_about_cut_answers() -> None:
    """Install the filter (once, however often called; uvicorn's logging set-up keeps a
    logger's filters)."""
    logging.getLogger(UVICORN_LOGGER).addFilter(_FILTER)
