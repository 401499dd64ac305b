"""Usage over HTTP, for authenticated callers only: `GET /v1/usage` (totals),
`GET /v1/usage/series` (the charts' time series) and `POST /v1/feedback` (a rating of one
answer, by its `x-request-id`). A caller whose key is bound to a user id sees, and rates,
that user's usage only."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from memory_proxy.accounting.series import (
    checked_bucket,
    checked_series_group,
    checked_window,
    series_view,
)
from memory_proxy.accounting.usage import UsageRecorder, checked_group, parse_since, summarize
from memory_proxy.api.caller import caller_of
from memory_proxy.errors import error_response, unless_store_fails
from memory_proxy.identity.auth import Caller
from memory_proxy.identity.client_detection import VALID_ID
from memory_proxy.records.series import aggregate
from memory_proxy.records.usage import FEEDBACK_SCORES, MAX_FEEDBACK_COMMENT, Feedback
from memory_proxy.stores.base import UsageLog

MAX_FEEDBACK_BODY = 16 * 1024
Handler = Callable[[Request, UsageLog, Caller], Awaitable[Response]]


class UsageAPI:
    def __init__(self, recorder: UsageRecorder | None) -> None:
        self._recorder = recorder

    async def totals(self, request: Request) -> Response:
        return await self._answer(request, self._totals)

    async def series(self, request: Request) -> Response:
        return await self._answer(request, self._series)

    async def feedback(self, request: Request) -> Response:
        return await self._answer(request, self._feedback)

    async def _answer(self, request: Request, handler: Handler) -> Response:
        """The checks every usage endpoint shares, then `handler`; a 503 when the store
        fails."""
        path = request.url.path
        if self._recorder is None:
            return error_response(path, 404, "usage analytics are disabled (usage.enabled)")
        caller = caller_of(request)
        if not caller.authenticated:
            return error_response(path, 401, "usage needs one of the proxy's client keys")
        log = self._recorder.log
        return await unless_store_fails(path, "usage store", handler(request, log, caller))

    async def _totals(self, request: Request, log: UsageLog, caller: Caller) -> Response:
        try:
            since = parse_since(request.query_params.get("since"), time.time())
            group_by = checked_group(request.query_params.get("group_by", "user"))
        except ValueError as exc:
            return error_response(request.url.path, 400, str(exc))
        records = await log.since(since)
        if caller.bound_user_id:
            records = [r for r in records if r.user_id == caller.bound_user_id]
        summary = summarize(records, group_by, await log.feedback_since(since))
        return JSONResponse({"object": "usage.summary", "since": since, **summary})

    async def _series(self, request: Request, log: UsageLog, caller: Caller) -> Response:
        params = request.query_params
        now = time.time()
        try:
            bucket = checked_bucket(params.get("bucket", "1h"))
            group_by = params.get("group_by", "model")
            field = checked_series_group(group_by)
            given = params.get("since")
            first, last = checked_window(parse_since(given, now) if given else None, now, bucket)
        except ValueError as exc:
            return error_response(request.url.path, 400, str(exc))
        if caller.bound_user_id:
            # Its own records only, bucketed here: the log's series counts every user.
            owner = caller.bound_user_id
            records = [r for r in await log.since(first * bucket) if r.user_id == owner]
            data = aggregate(records, first, last, bucket, field)
        else:
            data = await log.series(first, last, bucket, field)
        return JSONResponse(series_view(data, first, last, bucket, group_by))

    async def _feedback(self, request: Request, log: UsageLog, caller: Caller) -> Response:
        path = request.url.path
        try:
            rating = _rating(await _bounded_body(request))
        except ValueError as exc:
            return error_response(path, 400, str(exc))
        request_id, score, comment = rating
        record = await log.find(request_id)
        if record is None and self._recorder is not None:
            await self._recorder.written()  # an answer rated as soon as it arrived
            record = await log.find(request_id)
        if record is None or (caller.bound_user_id and record.user_id != caller.bound_user_id):
            return error_response(path, 404, f"no request {request_id!r} in the usage log")
        feedback = Feedback(request_id, record.time, score, comment, time.time())
        await log.add_feedback(feedback)
        return JSONResponse({"object": "feedback", **feedback.as_dict()}, status_code=201)


async def _bounded_body(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FEEDBACK_BODY:
            raise ValueError(f"the body is larger than {MAX_FEEDBACK_BODY} bytes")
    return bytes(body)


def _rating(body: bytes) -> tuple[str, float, str]:
    """(request id, score, comment) from `{"request_id", "score", "comment"}`."""
    low, high = FEEDBACK_SCORES
    try:
        payload: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ValueError("the body must be a JSON object") from None
    if not isinstance(payload, dict):
        raise ValueError("the body must be a JSON object")
    request_id, score = payload.get("request_id"), payload.get("score")
    comment = payload.get("comment", "")
    if not isinstance(request_id, str) or not VALID_ID.match(request_id):
        raise ValueError("request_id must be the x-request-id of an answer")
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        raise ValueError(f"score must be a number from {low:g} to {high:g}")
    if not low <= score <= high:
        raise ValueError(f"score must be a number from {low:g} to {high:g}")
    if comment is None:
        comment = ""
    if not isinstance(comment, str) or len(comment) > MAX_FEEDBACK_COMMENT:
        raise ValueError(f"comment must be text of at most {MAX_FEEDBACK_COMMENT} characters")
    return request_id, float(score), comment
