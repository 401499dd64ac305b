"""What of LiteLLM's console output is worth a line of ours: its warnings, errors and
anything unfamiliar, not its ASCII banner, its routine INFO lines (start-up, one access
line per request and per probe) or the frames of its tracebacks, whose exception lines say
what went wrong. `start-proxies --verbose` shows everything."""

from __future__ import annotations

import re

_ANSI_CODE = re.compile(r"\x1b\[[0-9;]*m")
_ROUTINE = re.compile(
    r"^(?:INFO:\s"  # uvicorn's lines: start-up, shutdown, one per request
    r"|\d\d:\d\d:\d\d - LiteLLM[\w ]*:INFO:"  # LiteLLM's own loggers at INFO
    r"|[█╗╔╝╚═║][\s█╗╔╝╚═║]*$"  # the banner's letters
    r"|#.*#$"  # the banner's feedback box
    r"|Thank you for using LiteLLM"
    r"|Give Feedback / Get Help:"
    r"|During handling of the above exception"
    r"|The above exception was the direct cause)"
)
# Lines after which LiteLLM's indented lines are routine: the model names it lists at
# start, a traceback's frames.
_INDENTED_LINES_FOLLOW = ("LiteLLM: Proxy initialized with Config", "Traceback (most recent")


class LiteLLMOutputFilter:
    """Judges one process's lines in order (a traceback's frames follow its first line)."""

    def __init__(self) -> None:
        self._skipping_indented = False

    def keep(self, line: str) -> bool:
        text = _ANSI_CODE.sub("", line).rstrip()
        if not text:
            return False
        if self._skipping_indented and text[0].isspace():
            return False
        self._skipping_indented = text.startswith(_INDENTED_LINES_FOLLOW)
        return not (self._skipping_indented or _ROUTINE.match(text.lstrip()))
