"""`memory.postgres_url`: where `memory.store: postgres` keeps everything. A libpq URL
(`postgresql://user:password@host:5432/database`, or `postgres://`), usually given as
`os.environ/NAME` or by the MEMORY_POSTGRES_URL variable so that the password stays out of
the file. Its password never appears in a message: errors show the URL without it."""

from __future__ import annotations

from urllib.parse import SplitResult, parse_qsl, unquote, urlencode, urlsplit

from memory_proxy.config.parsing import SettingsTree

SCHEMES = ("postgresql", "postgres")


def build_postgres_url(tree: SettingsTree, *, needed: bool) -> str | None:
    """The URL, checked (its value never echoed: it may hold a password); required with
    `store: postgres`."""
    key = "memory.postgres_url"
    value = tree.lookup(key)
    if value is None or value == "":
        if needed:
            raise tree.error(
                key, "memory.store is postgres: set it (or the MEMORY_POSTGRES_URL variable)"
            )
        return None
    if not isinstance(value, str):
        raise tree.error(key, "expected a postgresql:// URL")
    parts = urlsplit(value)
    if parts.scheme not in SCHEMES or (not parts.netloc and not parts.query):
        raise tree.error(key, f"expected a postgresql:// URL (got {shown_url(value)!r})")
    return value


def postgres_password(url: str | None) -> str | None:
    """The URL's password (after the user, or as `?password=`), to be kept out of every
    log line."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.password:
        return unquote(parts.password)
    query = dict(parse_qsl(parts.query))
    return query.get("password") or None


def shown_url(url: str) -> str:
    """The URL as messages show it: a password replaced by `***`."""
    parts = urlsplit(url)
    netloc, query = parts.netloc, parts.query
    if parts.password is not None:
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(name == "password" for name, _ in pairs):
        masked = [(name, "***" if name == "password" else value) for name, value in pairs]
        query = urlencode(masked, safe="*/")
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return SplitResult(parts.scheme, netloc, parts.path, query, parts.fragment).geturl()


def postgres_host(url: str) -> str:
    """host:port for messages (`?host=` when given, libpq's defaults when none is)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    host = query.get("host") or parts.hostname or "localhost"
    return f"{host}:{query.get('port') or parts.port or 5432}"
