"""What a SQLite file and its write-ahead log still hold of a text, byte for byte: the
tests of forgetting grep the files themselves, as someone with the disk would.

Text may be stored zlib-compressed, so every zlib stream found in the bytes is inflated
too (as far as it goes: a stream half overwritten still yields its first half). A search
that finds a token nowhere proves something only when the same search finds a token
that was not forgotten: the tests check both."""

from __future__ import annotations

import re
import secrets
import zlib
from pathlib import Path

# A zlib header (RFC 1950): deflate with any window (CINFO 0-7: texts are packed with a
# window their size), then a byte that makes the pair a multiple of 31 (checked below).
_ZLIB_HEADER = re.compile(rb"(?=([\x08\x18\x28\x38\x48\x58\x68\x78].))", re.DOTALL)  # overlapping
_INFLATED_AT_MOST = 1 << 20
_PIECE = 256
TAIL = 12  # FTS5 stores a term after the prefix it shares with the term before it


def unique_token() -> str:
    """A word no other text holds, that the index's stemmer leaves whole (it ends in a
    digit), lower-case as the index stores it."""
    return f"zq{secrets.token_hex(10)}7"


def traces(database: Path, token: str) -> int:
    """How often `token` (its tail: see TAIL) is in the database file and its -wal,
    plainly or inside a zlib stream."""
    needle = token.encode()[-TAIL:]
    found = 0
    for path in (database, Path(f"{database}-wal")):
        if path.exists():
            found += _count(path.read_bytes(), needle)
    return found


def _count(data: bytes, needle: bytes) -> int:
    found = data.count(needle)
    view = memoryview(data)
    for header in _ZLIB_HEADER.finditer(data):
        if int.from_bytes(header.group(1), "big") % 31 == 0:
            found += _inflated(view[header.start() :]).count(needle)
    return found


def _inflated(stream: memoryview) -> bytes:
    """What a zlib stream inflates to, up to where it breaks off or is corrupt: fed in
    small pieces, so that the output before a damaged part is kept."""
    inflater = zlib.decompressobj()
    inflated = bytearray()
    for start in range(0, len(stream), _PIECE):
        try:
            inflated += inflater.decompress(stream[start : start + _PIECE])
        except zlib.error:
            break
        if inflater.eof or len(inflated) > _INFLATED_AT_MOST:
            break
    return bytes(inflated)
