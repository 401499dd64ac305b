"""Log set-up: one line per request, as text or JSON, with secrets scrubbed.

Redaction works on the formatted line, so a secret cannot leak through any logger,
whichever code path wrote it.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any, TextIO

import orjson

ACCESS_LOGGER = "memory_proxy.access"
_access = logging.getLogger(ACCESS_LOGGER)
REDACTED = "[redacted]"
# Credentials that travel in headers, if ever a line carries one.
_CREDENTIAL_PATTERNS = re.compile(
    r"(?i)((?:authorization|x-api-key|x-supermemory-api-key)['\"]?\s*[:=]\s*['\"]?)"
    r"(?:bearer\s+)?[^\s'\",}]+"
)


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    lowered = text.lower()
    if "authorization" not in lowered and "api-key" not in lowered:
        return text  # the pattern cannot match: skip it (a quarter of a log line's cost)
    return _CREDENTIAL_PATTERNS.sub(lambda m: m.group(1) + REDACTED, text)


class _RequestLine:
    """A request line's message, made only if a handler shows it: a JSON line carries the
    fields themselves (joining them is a third of a text line's cost)."""

    __slots__ = ("fields",)

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    def __str__(self) -> str:
        return " ".join(
            [f"{key}={value}" for key, value in self.fields.items() if value is not None]
        )


class _RedactingFormatter(logging.Formatter):
    def __init__(self, secrets: Iterable[str], json_lines: bool, prefix: str) -> None:
        super().__init__()
        self._secrets = tuple(s for s in secrets if s)
        self._json = json_lines
        self._prefix = prefix

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "fields", None) or {}
        if self._json:
            # A request line's fields say it all; other lines carry their message.
            entry = fields or {"message": record.getMessage()}
            exception = self.formatException(record.exc_info) if record.exc_info else None
            line = self._json_line(record.created, record.levelname, record.name, entry, exception)
        else:
            line = f"{self._prefix}{record.levelname:<7} {record.getMessage()}"
            if record.exc_info:
                line += "\n" + self.formatException(record.exc_info)
        return redact(line, self._secrets)

    def request_line(self, fields: dict[str, Any]) -> str:
        """A request's line, as `format` makes it from the record `log_request` would log."""
        if self._json:
            entry = fields or {"message": ""}
            line = self._json_line(time.time(), "INFO", ACCESS_LOGGER, entry, None)
        else:
            line = f"{self._prefix}INFO    {_RequestLine(fields)}"
        return redact(line, self._secrets)

    @staticmethod
    def _json_line(
        created: float, level: str, name: str, entry: dict[str, Any], exception: str | None
    ) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
        head = {"time": f"{stamp}.{int((created - int(created)) * 1000):03d}Z"}
        head |= {"level": level.lower(), "logger": name, **entry}
        if exception is not None:
            head["exception"] = exception
        return orjson.dumps(head, default=str).decode()


class _LineHandler(logging.StreamHandler[TextIO]):
    """The one handler: every logger's lines, redacted, to stdout. A request line goes
    straight to the stream when this handler is the only place it can go (no other
    handler, no filter: a test's capture, say), skipping the LogRecord and the logging
    machinery's calls, which cost as much as the line itself."""

    def __init__(self, formatter: _RedactingFormatter) -> None:
        super().__init__(sys.stdout)
        self.setFormatter(formatter)
        self._lines = formatter

    def takes_request_lines_alone(self) -> bool:
        """Whether the access logger's records would reach this handler and no other, and
        be filtered by nothing (asked per line: handlers and filters come and go)."""
        if self.filters or self.level > logging.INFO:
            return False
        reached = False
        logger: logging.Logger | None = _access
        while logger is not None:
            if logger.filters:
                return False
            for handler in logger.handlers:
                if handler is not self:
                    return False
                reached = True
            if not logger.propagate:
                break
            logger = logger.parent
        return reached

    def write_request_line(self, fields: dict[str, Any]) -> bool:
        """False when it could not be written here (the logging machinery reports why)."""
        try:
            line = self._lines.request_line(fields)
            self.acquire()
            try:
                self.stream.write(line + self.terminator)
                self.stream.flush()
            finally:
                self.release()
        except Exception:
            return False
        return True


_handler: _LineHandler | None = None


def configure_logging(
    log_format: str = "text", secrets: Iterable[str] = (), prefix: str = ""
) -> None:
    """Route our and uvicorn's loggers to stdout through one redacting formatter."""
    global _handler
    handler = _handler = _LineHandler(_RedactingFormatter(secrets, log_format == "json", prefix))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per probe is noise
    # No line shows the thread, process or calling function: not gathering them takes
    # a third off every record (the logging HOWTO's "Optimization" section).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None
    # Our access line replaces uvicorn's, which knows nothing of users or models.
    logging.getLogger("uvicorn.access").disabled = True


def log_request(fields: dict[str, Any]) -> None:
    """The one line per forwarded request."""
    if not _access.isEnabledFor(logging.INFO):
        return
    handler = _handler
    if (
        handler is not None
        and handler.takes_request_lines_alone()
        and handler.write_request_line(fields)
    ):
        return
    _access.info(_RequestLine(fields), extra={"fields": fields})


def log_failure(logger: logging.Logger, what: str, exc: BaseException) -> None:
    """A boundary that degrades (a store, the rate limiter): one warning line, and the
    traceback at debug level, so a bug in our code is not mistaken for an outage."""
    logger.warning("%s: %s", what, str(exc) or type(exc).__name__)
    logger.debug("%s: traceback", what, exc_info=exc)


class ThrottledFailures:
    """log_failure for a boundary that may fail on every request (a database restarting
    under load): the first failure at once, then at most one line per `every` seconds,
    saying how many failed meanwhile (each is counted by its owner all the same)."""

    def __init__(
        self,
        logger: logging.Logger,
        every: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._every = every
        self._clock = clock
        self._next: float | None = None
        self._held = 0

    def __call__(self, what: str, exc: BaseException) -> None:
        now = self._clock()
        if self._next is not None and now < self._next:
            self._held += 1
            return
        if self._held:
            what = f"{what} ({self._held} more failed since the last line)"
        log_failure(self._logger, what, exc)
        self._held, self._next = 0, now + self._every
