"""Text as the SQLite file keeps it: zlib-compressed, a BLOB. Memories and session messages
are most of the file, and chat text (prose, code, JSON) compresses to 35-55% at 1-2 kB a
piece, for about 30 us to pack 2 kB and 10 us to unpack it (measured here).

Rows written before are plain TEXT: a str is read as it is, so a file needs no rewrite for
this (the memory index rewrites its own anyway, sqlite_index_schema.py)."""

from __future__ import annotations

import zlib

LEVEL = 6  # zlib's default: level 9 gains under 1% on texts this short


def pack(text: str) -> bytes:
    return zlib.compress(text.encode(), LEVEL)


def pack_bytes(data: bytes) -> bytes:
    return zlib.compress(data, LEVEL)


def unpack(stored: bytes | str) -> str:
    """A packed text, or a plain one from before."""
    return stored if isinstance(stored, str) else zlib.decompress(stored).decode()


def unpack_bytes(stored: bytes | str) -> bytes | str:
    """Packed bytes inflated, or a plain text from before, as it is (for orjson.loads,
    which reads either)."""
    return stored if isinstance(stored, str) else zlib.decompress(stored)
