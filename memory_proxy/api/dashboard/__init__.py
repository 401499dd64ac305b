"""The dashboard at `GET /ui`: one static page (no build step, no CDN, uPlot vendored)
that draws what the usage, sessions and feedback APIs answer, and `GET /v1/live`, the
server-sent events of its live view.

The page holds no data, so it is served to loopback callers too when client keys are
configured (they then type a key, which the page sends to the APIs); every API it calls
follows the sessions API's rules. A strict Content-Security-Policy allows our own scripts
and styles only, and the page writes data with textContent, never as HTML.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from memory_proxy.api.caller import caller_of
from memory_proxy.api.memories import MEMORIES_PATH, PROJECTS_PATH
from memory_proxy.errors import error_response
from memory_proxy.identity.auth import is_loopback

STATIC = Path(__file__).parent / "static"
PAGE_PATH = "/ui"
STATIC_PREFIX = "/ui/static/"
# What the page calls (static/app.js; a test holds the two together): the only paths a
# request from the page's own origin may use (memory_proxy/browser_guard.py).
CALLED_PATHS = frozenset(
    {
        PAGE_PATH,
        "/health",
        "/v1/usage",
        "/v1/usage/series",
        "/v1/sessions",
        MEMORIES_PATH,
        PROJECTS_PATH,
        "/v1/feedback",
        "/v1/live",
    }
)
CALLED_PREFIXES = (STATIC_PREFIX, "/v1/sessions/", MEMORIES_PATH + "/")
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}


class DashboardPage:
    def __init__(self) -> None:
        # Only the files shipped beside this module, by their exact names.
        self._files = {
            STATIC_PREFIX + str(path.relative_to(STATIC)): path
            for path in STATIC.rglob("*")
            if path.suffix in _TYPES
        }

    async def page(self, request: Request) -> Response:
        return self._serve(request, STATIC / "index.html")

    async def static(self, request: Request) -> Response:
        path = self._files.get(request.url.path)
        if path is None:
            return error_response(request.url.path, 404, "no such file")
        return self._serve(request, path)

    def _serve(self, request: Request, path: Path) -> Response:
        client = request.client.host if request.client else None
        allowed = is_loopback(client) or caller_of(request).authenticated
        if not allowed:
            return error_response(request.url.path, 401, "the dashboard needs a client key")
        return FileResponse(path, media_type=_TYPES[path.suffix], headers=_HEADERS)
