"""`?limit=&offset=` of the local list endpoints, checked."""

from __future__ import annotations

from starlette.requests import Request

MAX_OFFSET = 10**9  # far past any list here; SQLite's integers end at 2**63


def page(request: Request, default: int, maximum: int) -> tuple[int, int]:
    """(limit, offset), the limit capped at `maximum`; ValueError says what is wrong."""
    try:
        limit = min(int(request.query_params.get("limit", default)), maximum)
        offset = int(request.query_params.get("offset", 0))
    except ValueError:
        raise ValueError("limit and offset must be numbers") from None
    if limit < 1 or offset < 0:
        raise ValueError("limit must be >= 1, offset >= 0")
    if offset > MAX_OFFSET:
        raise ValueError(f"offset must be at most {MAX_OFFSET}")
    return limit, offset
