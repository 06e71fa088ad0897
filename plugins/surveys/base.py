"""The survey source base and the one route every survey source is posted to."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, TypeVar

from aiohttp import web
from pydantic import Field, Secret

from wallboard.kit import (
    DEFAULT_MAX_BODY_BYTES,
    INGEST,
    Emit,
    PushSource,
    Rejection,
    SourceConfig,
    SourceError,
    read_body,
    refuse,
)
from wallboard.model import EventError

from .mapping import SurveyMapping

ROUTE = "/api/surveys/{source}"
TOKEN_ROUTE = "/api/surveys/{source}/{token}"


class SurveyConfig(SourceConfig):
    """What every survey source has: its surveys' mappings and a body-size limit."""

    surveys: dict[str, SurveyMapping] = Field(min_length=1)  # survey/form id -> mapping
    max_body_bytes: int = Field(DEFAULT_MAX_BODY_BYTES, ge=1024, le=16 * 1024 * 1024)


SC = TypeVar("SC", bound=SurveyConfig)

# A secret URL path segment: /api/surveys/{source}/{path_token}.
_PathToken = Secret[Annotated[str, Field(min_length=24, pattern=r"^[A-Za-z0-9_-]+$")]]


class TokenConfig(SurveyConfig):
    """A source without a signing scheme: a secret header and/or a secret path token."""

    token: Secret[Annotated[str, Field(min_length=24)]] | None = None  # sent in `token_header`
    token_header: str = Field("X-Wallboard-Token", min_length=1)
    path_token: _PathToken | None = None


class SurveySource(PushSource[SC]):
    """A survey tool posting to POST /api/surveys/{source}; up while the server runs."""

    type: ClassVar[str]
    every_node: ClassVar[bool] = True  # requests reach any node behind the load balancer

    async def run(self, emit: Emit) -> None:
        """Nothing to connect to: report up and wait for requests."""
        await self.serve_requests()

    def survey(self, survey_id: str) -> SurveyMapping:
        """The mapping of a survey, or a 422 naming the id."""
        mapping = self.config.surveys.get(survey_id)
        if mapping is None:
            raise Rejection("unmapped", f"survey {survey_id[:64]!r} is not configured under "
                                        f"sources.{self.name}.surveys")
        return mapping

    def authenticate(self, headers: Mapping[str, str], body: bytes,
                     path_token: str | None) -> None:
        """Raise Rejection (401 missing, 403 wrong) unless the request is the vendor's."""
        raise NotImplementedError

    async def responses(self, headers: Mapping[str, str], body: bytes) -> list[dict[str, Any]]:
        """The survey.response events an authentic request carries (or points to)."""
        raise NotImplementedError

    async def api_json(self, url: str, headers: dict[str, str]) -> Any:
        """GET a vendor API resource; failures become a 502 the vendor will retry."""
        try:
            return await self.get_json(url, headers=headers)
        except SourceError as exc:
            raise Rejection("upstream", str(exc)) from None


def check_token(config: TokenConfig, headers: Mapping[str, str], path_token: str | None) -> None:
    """The configured header token and/or path token must match, compared in constant time."""
    if config.path_token is not None:
        if path_token is None:
            raise Rejection("missing_signature", "this source needs its secret path token")
        if not hmac.compare_digest(config.path_token.get_secret_value().encode(),
                                   path_token.encode()):
            raise Rejection("bad_signature", "wrong path token")
    elif path_token is not None:
        raise Rejection("bad_signature", "this source has no path token")
    if config.token is not None:
        given = headers.get(config.token_header)
        if not given:
            raise Rejection("missing_signature", f"the request has no {config.token_header}")
        if not hmac.compare_digest(config.token.get_secret_value().encode(),
                                   given.strip().encode()):
            raise Rejection("bad_signature", f"wrong {config.token_header}")


async def head_survey(request: web.Request) -> web.Response:
    """SurveyMonkey checks a subscription URL with HEAD before it posts to it."""
    found = request.app[INGEST].find(request.match_info["source"], SurveySource)
    return web.Response(status=200 if found is not None else 404)


async def post_survey(request: web.Request) -> web.Response:
    """Authenticate, map and store one callback; 202 once its events are in the journal.

    413 (too large), 401 (no signature or token), 403 (wrong one), 422 (not mappable) and
    502 (the vendor's API failed) carry a reason and are counted per source and reason.
    """
    ingest = request.app[INGEST]
    found = ingest.find(request.match_info["source"], SurveySource)
    if found is None:
        ingest.refused("unauthorized")
        return web.json_response({"error": "no survey source of that name"}, status=404)
    runner, source = found
    config = source.config
    try:
        body = await read_body(request, config.max_body_bytes)
        source.authenticate(request.headers, body, request.match_info.get("token"))
        raws = await source.responses(request.headers, body)
        try:
            events = ingest.all(runner, raws)
        except EventError as exc:
            raise Rejection("unmapped", f"{exc.field}: {exc.message}") from None
    except Rejection as exc:
        return refuse(runner, request, exc)
    runner.touch()  # an authentic callback, even one that carries no response
    stored = await ingest.store(runner, events)
    if stored.down is not None:
        return stored.retry_later()
    return web.json_response(stored.answer(), status=202)
