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
    """`UnsafeHeader` for the first header holding a forbidden byte. One pass over every
    name and value joined (under 1 µs for 20 headers); each is searched only to name the
    culprit."""
    if not _holds_forbidden(b"".join(chain.from_iterable(headers))):
        return
    for name, value in headers:
        if _holds_forbidden(name) or _holds_forbidden(value):
            shown = name.translate(None, FORBIDDEN).decode("latin-1")
            raise UnsafeHeader(f"header {shown!r}")


def check_head(head: bytes, lines: int, headers: list[tuple[bytes, bytes]]) -> None:
    """The cheap test of a whole request head made of `lines` lines joined by CRLF and
    ended by a blank line: any CR, LF or NUL beyond those separators is one too many.
    One pass over the head (about 1 µs for a 15-header request), instead of three
    searches of every name and value; `headers` is searched only to name the culprit."""
    if len(head.translate(None, FORBIDDEN)) != len(head) - 2 * (lines + 1):
        check_headers(headers)
        raise UnsafeHeader("the request line")


def _holds_forbidden(data: bytes) -> bool:
    return len(data.translate(None, FORBIDDEN)) != len(data)
