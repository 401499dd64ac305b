"""`GET /v1/usage`: usage totals over HTTP, for authenticated callers only. A caller whose
key is bound to a user id sees that user's usage only."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from memory_proxy.accounting.usage import UsageRecorder, checked_group, parse_since, summarize
from memory_proxy.config import Settings
from memory_proxy.errors import error_response, unless_store_fails
from memory_proxy.identity.auth import identify_request


class UsageAPI:
    def __init__(self, recorder: UsageRecorder | None, settings: Settings) -> None:
        self._recorder = recorder
        self._settings = settings

    async def totals(self, request: Request) -> Response:
        return await unless_store_fails(request.url.path, "usage store", self._totals(request))

    async def _totals(self, request: Request) -> Response:
        path = request.url.path
        if self._recorder is None:
            return error_response(path, 404, "usage analytics are disabled (usage.enabled)")
        caller = identify_request(request, self._settings)
        if not caller.authenticated:
            return error_response(path, 401, "usage needs one of the proxy's client keys")
        try:
            since = parse_since(request.query_params.get("since"), time.time())
            group_by = checked_group(request.query_params.get("group_by", "user"))
        except ValueError as exc:
            return error_response(path, 400, str(exc))
        records = await self._recorder.log.since(since)
        if caller.bound_user_id:
            records = [r for r in records if r.user_id == caller.bound_user_id]
        summary = summarize(records, group_by)
        return JSONResponse({"object": "usage.summary", "since": since, **summary})
