"""Kit for sources fed by HTTP requests: a body-size limit and refusals counted by reason.

A refusal answers with its status and a reason, is counted per source and reason in
`wallboard_source_requests_rejected_total`, and is logged once (one line per request, at
WARNING the first time a source sees that reason, DEBUG after that, so a flood of bad
requests cannot flood the log). Messages never include a secret or a signature.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from aiohttp import web

from wallboard.ingest.pipeline import Ack
from wallboard.journal.interface import JournalDown
from wallboard.kit.source import SourceRunner
from wallboard.model.events import EventError

log = logging.getLogger(__name__)

# Every reason a route may give, with its status: the metric's labels stay bounded.
REASONS: dict[str, int] = {
    "too_large": 413,  # the body is longer than the source's limit
    "missing_signature": 401,  # no signature (or token) header, or no path token
    "bad_signature": 403,  # the signature (or token) does not match
    "malformed": 422,  # authentic but not the vendor's documented shape
    "unmapped": 422,  # authentic, but no configured survey/question maps it, or a bad score
    "upstream": 502,  # the vendor's API did not give the details the callback points to
    "too_many_events": 413,  # more events in one request than server.max_batch_events
}
DEFAULT_MAX_BODY_BYTES = 256 * 1024
REJECTIONS_LISTED = 100  # refused events listed in full in an answer; the rest are counted
ERROR_CHARS = 300  # an error message is cut to this: an answer stays small whatever was sent
ACK_HEADERS = ("X-Wallboard-Accepted", "X-Wallboard-Duplicates", "X-Wallboard-Late",
               "X-Wallboard-Failed")


class Rejections:
    """A request's refused events: the first REJECTIONS_LISTED in full, all counted by reason."""

    def __init__(self) -> None:
        self.listed: list[dict[str, Any]] = []
        self.total = 0
        self.reasons: Counter[str] = Counter()

    def add(self, position: str, where: int, exc: EventError) -> None:
        """Record one refused event at `position` ('index' or 'line') `where`."""
        self.total += 1
        self.reasons[exc.code] += 1
        if len(self.listed) < REJECTIONS_LISTED:
            self.listed.append({position: where, "field": exc.field[:ERROR_CHARS],
                                "reason": exc.code, "error": exc.message[:ERROR_CHARS]})

    def answer(self) -> dict[str, Any]:
        """The answer's `rejected`, `rejected_total` and `rejected_reasons`."""
        return {"rejected": self.listed, "rejected_total": self.total,
                "rejected_reasons": dict(self.reasons)}


def ack_answer(ack: Ack) -> dict[str, int]:
    """What became of a request's events, for a JSON answer."""
    return {"accepted": ack.accepted, "duplicates": ack.duplicates, "late": ack.late,
            "failed": ack.failed}


def ack_headers(ack: Ack) -> dict[str, str]:
    """The same as headers, for answers without a body (a vendor that expects 204)."""
    return dict(zip(ACK_HEADERS, map(str, ack), strict=True))


class Rejection(Exception):
    """A request refused for `reason` (a key of REASONS); the message says what was wrong."""

    def __init__(self, reason: str, message: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}; use one of {list(REASONS)}")
        super().__init__(message)
        self.reason = reason
        self.status = REASONS[reason]


async def read_body(request: web.Request, limit: int) -> bytes:
    """The raw body, refusing (413) one longer than `limit` bytes without reading it all."""
    if request.content_length is not None and request.content_length > limit:
        raise Rejection("too_large", f"body of {request.content_length} bytes exceeds the "
                                     f"limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(64 * 1024)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:  # chunked or lying Content-Length: stop reading at once
            raise Rejection("too_large", f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)


def count(runner: SourceRunner, reason: str) -> bool:
    """Count one refusal of `reason` (a key of REASONS) for the source; True the first time."""
    if reason not in REASONS:
        raise ValueError(f"unknown rejection reason {reason!r}; use one of {list(REASONS)}")
    counts = runner.status.rejected
    first = reason not in counts
    counts[reason] = counts.get(reason, 0) + 1
    return first


def signature_reason(code: str) -> str:
    """The refusal reason of a `SignatureError` code: missing, or present but not valid."""
    return "missing_signature" if code.startswith("missing_") else "bad_signature"


def refuse(runner: SourceRunner, request: web.Request, rejection: Rejection) -> web.Response:
    """Count and log a refusal, and answer with its status and reason."""
    first = count(runner, rejection.reason)
    # The route's pattern, not the path: a path may carry the source's secret token.
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "?"
    log.log(logging.WARNING if first else logging.DEBUG,
            "source %s: refused %s %s from %s: %s (%s)", runner.name, request.method,
            route, request.remote, rejection.reason, rejection)
    return web.json_response({"error": str(rejection), "reason": rejection.reason},
                             status=rejection.status)


def json_error(status: int, message: str) -> web.Response:
    """An error answer: `{"error": message}` with `status`."""
    return web.json_response({"error": message}, status=status)


def journal_down(exc: JournalDown) -> web.Response:
    """503 with Retry-After: nothing of the request was stored, the sender retries later."""
    return web.json_response(
        {"error": f"journal down, nothing was accepted; retry later: {exc}",
         "retry_after_s": exc.retry_after_s},
        status=503, headers={"Retry-After": str(exc.retry_after_s)})
