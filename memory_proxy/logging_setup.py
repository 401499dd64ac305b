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
from typing import Any

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


class _RedactingFormatter(logging.Formatter):
    def __init__(self, secrets: Iterable[str], json_lines: bool, prefix: str) -> None:
        super().__init__()
        self._secrets = tuple(s for s in secrets if s)
        self._json = json_lines
        self._prefix = prefix

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "fields", None) or {}
        if self._json:
            entry: dict[str, Any] = {
                "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                + f".{int(record.msecs):03d}Z",
                "level": record.levelname.lower(),
                "logger": record.name,
                # A request line's fields say it all; other lines carry their message.
                **(fields or {"message": record.getMessage()}),
            }
            if record.exc_info:
                entry["exception"] = self.formatException(record.exc_info)
            line = orjson.dumps(entry, default=str).decode()
        else:
            line = f"{self._prefix}{record.levelname:<7} {record.getMessage()}"
            if record.exc_info:
                line += "\n" + self.formatException(record.exc_info)
        return redact(line, self._secrets)


def configure_logging(
    log_format: str = "text", secrets: Iterable[str] = (), prefix: str = ""
) -> None:
    """Route our and uvicorn's loggers to stdout through one redacting formatter."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_RedactingFormatter(secrets, log_format == "json", prefix))
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
    text = " ".join(f"{key}={value}" for key, value in fields.items() if value is not None)
    _access.info(text, extra={"fields": fields})


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
