"""Prefixed output, honcho style: `litellm | line`. Whole lines only, so the child's
output and our own log lines never interleave mid-line."""

from __future__ import annotations

import sys
from typing import TextIO

PREFIX_WIDTH = 7


def prefix(name: str) -> str:
    return f"{name:<{PREFIX_WIDTH}} | "


class Printer:
    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def line(self, name: str, text: str) -> None:
        stream = self._stream or sys.stdout
        stream.write(prefix(name) + text.rstrip("\r\n") + "\n")
        stream.flush()
