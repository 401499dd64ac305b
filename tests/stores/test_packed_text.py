"""Packed texts: read back as written, whatever their length, as small as zlib's default
packs them, and texts packed by zlib's default (older files) still read; short ones kept
plain where asked."""

from __future__ import annotations

import zlib

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from memory_proxy.stores.packed_text import (
    LEVEL,
    PLAIN_BELOW,
    pack,
    pack_bytes,
    pack_object_unless_short,
    pack_unless_short,
    unpack,
    unpack_bytes,
    unpack_object,
)

PROSE = (
    "The proxy stores each exchange of a session, packed; a question, an answer, code, "
    "JSON arguments of tool calls. "
)


@settings(max_examples=200)
@given(st.text(max_size=5000))
def test_a_text_reads_back_as_it_was(text: str) -> None:
    assert unpack(pack(text)) == text


@given(st.binary(max_size=70_000))
@settings(max_examples=50)
def test_bytes_read_back_with_zlib_alone(data: bytes) -> None:
    assert zlib.decompress(pack_bytes(data)) == data
    assert unpack_bytes(pack_bytes(data)) == data


def test_as_small_as_zlibs_default_window() -> None:
    for length in (10, 80, 300, 1000, 2000, 5000, 40_000, 100_000):
        data = (PROSE * (length // len(PROSE) + 1)).encode()[:length]
        assert len(pack_bytes(data)) <= len(zlib.compress(data, LEVEL)) * 1.01 + 2


def test_texts_packed_before_still_read() -> None:
    assert unpack(zlib.compress(PROSE.encode(), LEVEL)) == PROSE
    assert unpack(PROSE) == PROSE  # plain TEXT, from before texts were packed


def test_a_short_text_is_packed_with_a_window_its_size() -> None:
    """zlib's default window (32 kB) sets up 256 kB of state per text: 60-110 us each."""
    for length, window in ((100, 512), (2000, 2048), (4000, 4096), (100_000, 32_768)):
        header = pack_bytes(b"x" * length)[0]
        assert 1 << ((header >> 4) + 8) == window  # CINFO: log2(window) - 8


@settings(max_examples=200)
@given(st.text(max_size=2 * PLAIN_BELOW))
def test_a_text_kept_plain_when_short_reads_back_as_it_was(text: str) -> None:
    data = text.encode()
    stored = pack_unless_short(data)
    assert isinstance(stored, str) == (len(data) < PLAIN_BELOW)  # bytes, not characters
    assert unpack(stored) == text
    assert unpack_bytes(stored) in (data, text)  # orjson.loads reads either


@settings(max_examples=200)
@given(st.dictionaries(st.text(max_size=8), st.text(max_size=PLAIN_BELOW), max_size=4))
def test_a_json_object_kept_as_it_is_when_short_reads_back_as_it_was(
    message: dict[str, str],
) -> None:
    data = orjson.dumps(message)
    stored = pack_object_unless_short(data)
    assert (stored == data) == (len(data) < PLAIN_BELOW)
    assert unpack_object(stored) == data


@given(st.binary(min_size=1, max_size=40_000))
def test_packed_bytes_never_start_as_a_json_object_does(data: bytes) -> None:
    assert pack_bytes(data)[:1] != b"{"
