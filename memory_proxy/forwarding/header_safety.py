"""No header toward LiteLLM may carry CR, LF or NUL: one would end the header line there
and let whatever follows — from a client, a body field, a config value — be read as
headers or a request of its own (RFC 9110 section 5.5). Both upstream clients refuse
such a request before anything is sent."""

from __future__ import annotations

from itertools import chain

from memory_proxy.errors import Refusal

FORBIDDEN = b"\r\n\0"


class UnsafeHeader(Refusal):
    """A request header name or value holds CR, LF or NUL; nothing was sent: 400."""

    def __init__(self, what: str) -> None:
        super().__init__(400, f"{what} contains a line break or NUL character")


def check_headers(headers: list[tuple[bytes, bytes]]) -> None:
    """`UnsafeHeader` for the first header holding a forbidden byte. Every name and value
    joined, searched once for each forbidden byte; each is searched only to name the
    culprit."""
    if not _holds_forbidden(b"".join(chain.from_iterable(headers))):
        return
    for name, value in headers:
        if _holds_forbidden(name) or _holds_forbidden(value):
            shown = name.translate(None, FORBIDDEN).decode("latin-1")
            raise UnsafeHeader(f"header {shown!r}")


def check_request_line(*parts: bytes) -> None:
    """`UnsafeHeader` when a part of the request line (method, path, query) or the Host
    holds a forbidden byte."""
    if _holds_forbidden(b"".join(parts)):
        raise UnsafeHeader("the request line")


def _holds_forbidden(data: bytes) -> bool:
    # A byte's value as an int: `b"\r" in data` would first fail to read its operand as an
    # int (an exception raised and cleared), then search; an int is one memchr. Three of
    # them cost well under `translate`'s ~2,000 instructions (a table built, and a copy).
    return 13 in data or 10 in data or 0 in data
