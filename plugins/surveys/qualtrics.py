"""Qualtrics: a form-encoded trigger on a secret path, the response fetched by API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Self
from urllib.parse import parse_qsl, quote

from pydantic import Field, Secret, model_validator

from wallboard.kit import RateLimitConfig, Rejection, parse_time

from .base import SurveySource, TokenConfig, check_token
from .mapping import attribution, number, survey_event

COMPLETED = "Complete"


class QualtricsConfig(TokenConfig, RateLimitConfig):
    """The path token of the publicationUrl, and the API token that reads responses."""

    api_url: str = Field(pattern=r"^https?://[^/\s]+/?$")  # https://{datacenter}.qualtrics.com
    api_token: Secret[Annotated[str, Field(min_length=8)]]

    @model_validator(mode="after")
    def _authenticated(self) -> Self:
        if self.token is None and self.path_token is None:
            raise ValueError("set path_token (and/or token): Qualtrics does not sign its "
                             "event subscriptions")
        return self


class QualtricsSource(SurveySource[QualtricsConfig]):
    """Qualtrics completedResponse subscriptions: each callback triggers one API read."""

    type: ClassVar[str] = "qualtrics"

    def authenticate(self, headers: Mapping[str, str], body: bytes,
                     path_token: str | None) -> None:
        """The configured secret path token and/or header."""
        check_token(self.config, headers, path_token)

    async def responses(self, headers: Mapping[str, str], body: bytes) -> list[dict[str, Any]]:
        """GET /API/v3/surveys/{SurveyID}/responses/{ResponseID}; values by question id."""
        config = self.config
        try:
            form = dict(parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=True))
        except (UnicodeDecodeError, ValueError) as exc:
            raise Rejection("malformed", f"body is not form-encoded: {exc}") from None
        survey_id, response_id = form.get("SurveyID"), form.get("ResponseID")
        if not survey_id or not response_id:
            raise Rejection("malformed", "SurveyID and ResponseID are required")
        if form.get("Status", COMPLETED) != COMPLETED:
            return []
        mapping = self.survey(survey_id)
        url = (f"{config.api_url.rstrip('/')}/API/v3/surveys/{quote(survey_id, safe='')}"
               f"/responses/{quote(response_id, safe='')}")
        payload = await self.api_json(url, {"X-API-TOKEN": config.api_token.get_secret_value()})
        result = payload.get("result") if isinstance(payload, dict) else None
        values = result.get("values") if isinstance(result, dict) else None
        if not isinstance(values, dict):
            raise Rejection("upstream", f"GET {url}: no result.values in the answer")
        stamp = values.get("recordedDate") or values.get("endDate")
        ts = parse_time(stamp) or parse_time(form.get("CompletedDate"))
        if ts is None:
            raise Rejection("upstream", f"GET {url}: recordedDate is not an RFC 3339 time")
        who = attribution(mapping, values)  # embedded data fields sit among the values
        events = []
        for qid, question in mapping.questions.items():
            if values.get(qid) is None:
                continue  # not answered
            where = f"response {response_id} {qid}"
            score = number(values[qid], where)
            events.append(survey_event(question, score, ts=ts,
                                       response_id=f"{response_id}:{qid}",
                                       revision=str(stamp), who=who, where=where))
        return events
