"""Text as the SQLite file keeps it: zlib-compressed, a BLOB. Memories and session messages
are most of the file, and chat text (prose, code, JSON) compresses to 35-55% at 1-2 kB a
piece.

Each text is packed with a window just large enough for it: zlib's default (32 kB, and
256 kB of state set up per call) cost 60-110 us for any text here, a 2 kB one 18 us with
its own window, to the same size within 0.1% (a window never needs to be longer than the
text). `zlib.decompress` reads any window, so the stored format is unchanged.

Rows written before are plain TEXT: a str is read as it is, so a file needs no rewrite for
this (the memory index rewrites its own anyway, sqlite_index_schema.py).

A short text costs deflate about as much as a 1 kB one (~50k instructions for a chat message
of 150-300 bytes, inflating it ~7k on every read) to save a few hundred bytes at most:
`pack_unless_short` keeps texts under `PLAIN_BELOW` bytes plain, where the column tells a
TEXT from a BLOB (SQLite's session messages and memories). Where a column holds bytes only
(PostgreSQL's `bytea`), `pack_object_unless_short` keeps a short JSON object as its bytes:
they start with `{`, and a zlib stream never does (its first byte is 0x18-0x78 for the
windows used here), so `unpack_object` tells them apart."""

from __future__ import annotations

import zlib

LEVEL = 6  # zlib's default: level 9 gains under 1% on texts this short
MIN_WINDOW_BITS, MAX_WINDOW_BITS = 9, 15  # zlib's bounds: 512 bytes to 32 kB
DEFAULT_MEMORY_LEVEL = 8
PLAIN_BELOW = 512  # bytes: zlib's smallest window; shorter texts are stored as they are


def pack(text: str) -> bytes:
    return pack_bytes(text.encode())


def pack_bytes(data: bytes) -> bytes:
    window = min(MAX_WINDOW_BITS, max(MIN_WINDOW_BITS, (len(data) - 1).bit_length()))
    # The hash table and buffers scaled to the window as the default ones are to 32 kB.
    memory = DEFAULT_MEMORY_LEVEL - (MAX_WINDOW_BITS - window)
    packer = zlib.compressobj(LEVEL, zlib.DEFLATED, window, max(1, memory))
    return packer.compress(data) + packer.flush()


def pack_unless_short(data: bytes) -> bytes | str:
    """UTF-8 `data` packed, or as its text when shorter than PLAIN_BELOW bytes (read back
    as it is by `unpack` and `unpack_bytes`)."""
    return data.decode() if len(data) < PLAIN_BELOW else pack_bytes(data)


def pack_object_unless_short(data: bytes) -> bytes:
    """A JSON object's UTF-8 `data` packed, or as it is when shorter than PLAIN_BELOW."""
    return data if len(data) < PLAIN_BELOW else pack_bytes(data)


def unpack_object(stored: bytes) -> bytes:
    """A JSON object's bytes, inflated unless they were kept as they are."""
    return stored if stored[:1] == b"{" else zlib.decompress(stored)


def unpack(stored: bytes | str) -> str:
    """A packed text, or a plain one from before."""
    return stored if isinstance(stored, str) else zlib.decompress(stored).decode()


def unpack_bytes(stored: bytes | str) -> bytes | str:
    """Packed bytes inflated, or a plain text from before, as it is (for orjson.loads,
    which reads either)."""
    return stored if isinstance(stored, str) else zlib.decompress(stored)
