"""QuestionPro: no signing scheme; a secret header and/or path token, the response in the body."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, Self

import orjson
from pydantic import model_validator

from wallboard.kit import Rejection

from .base import SurveySource, TokenConfig, check_token
from .mapping import Question, attribution, number, survey_event

# QuestionPro writes times like "05 Oct, 2020 02:51:51 PM PDT": the zone is an abbreviation.
_ZONES = {"UTC": 0, "GMT": 0, "PST": -8, "PDT": -7, "MST": -7, "MDT": -6, "CST": -6, "CDT": -5,
          "EST": -5, "EDT": -4, "BST": 1, "CET": 1, "CEST": 2, "IST": 5.5, "IDT": 3}


class QuestionProConfig(TokenConfig):
    """`token` (sent in the webhook's requestHeader) and/or `path_token` (in its URL)."""

    @model_validator(mode="after")
    def _authenticated(self) -> Self:
        if self.token is None and self.path_token is None:
            raise ValueError("set token (a secret request header) and/or path_token: "
                             "QuestionPro does not sign its webhooks")
        return self


def parse_questionpro_time(text: Any) -> float | None:
    """Epoch seconds of "05 Oct, 2020 02:51:51 PM PDT"; None when not in that form."""
    if not isinstance(text, str):
        return None
    stamp, _, zone = text.strip().rpartition(" ")
    if zone not in _ZONES:
        return None
    try:
        local = datetime.strptime(stamp, "%d %b, %Y %I:%M:%S %p")
    except ValueError:
        return None
    return local.replace(tzinfo=timezone(timedelta(hours=_ZONES[zone]))).timestamp()


class QuestionProSource(SurveySource[QuestionProConfig]):
    """QuestionPro `{complete_response}` webhooks (the v2 Responses API's response object)."""

    type: ClassVar[str] = "questionpro"

    def authenticate(self, headers: Mapping[str, str], body: bytes,
                     path_token: str | None) -> None:
        """The configured secret header and/or path token."""
        check_token(self.config, headers, path_token)

    async def responses(self, headers: Mapping[str, str], body: bytes) -> list[dict[str, Any]]:
        """Rated answers by questionID; customVariables attribute them."""
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise Rejection("malformed", f"body is not JSON: {exc}") from None
        if isinstance(payload, dict) and isinstance(payload.get("response"), dict):
            payload = payload["response"]  # the API wraps it; the template may not
        if not isinstance(payload, dict) or not isinstance(payload.get("responseSet"), list):
            raise Rejection("malformed", "expected a response with surveyID, responseID and "
                                         "a responseSet list")
        survey_id, response_id = payload.get("surveyID"), payload.get("responseID")
        if survey_id is None or response_id is None:
            raise Rejection("malformed", "surveyID and responseID are required")
        status = payload.get("responseStatus")
        if status is not None and str(status).lower() != "completed":
            return []
        mapping = self.survey(str(survey_id))
        stamp = payload.get("timestamp")
        ts = parse_questionpro_time(stamp)
        if ts is None:
            ts = self.clock.time()  # an unknown format: count it now rather than refuse it
        custom = payload.get("customVariables")
        who = attribution(mapping, custom if isinstance(custom, dict) else {})
        events = []
        for i, item in enumerate(payload["responseSet"]):
            if not isinstance(item, dict):
                continue
            qid = str(item.get("questionID"))
            question = mapping.questions.get(qid) or mapping.questions.get(
                str(item.get("questionCode")))
            values = item.get("answerValues")
            if question is None or not isinstance(values, list) or not values:
                continue
            where = f"responseSet[{i}] (question {qid})"
            score = _score(question, values[0], where)
            events.append(survey_event(question, score, ts=ts,
                                       response_id=f"{response_id}:{qid}",
                                       revision=str(stamp or "1"), who=who, where=where))
        return events


def _score(question: Question, answer: Any, where: str) -> float:
    value = answer.get("value") if isinstance(answer, dict) else None
    if not isinstance(value, dict):
        raise Rejection("malformed", f"{where}.answerValues[0].value must be an object")
    if question.value == "weight":
        return number(value.get("weight"), f"{where}.value.weight")
    scale = number(value.get("scale"), f"{where}.value.scale")
    if question.value == "position":
        assert question.scale_min is not None
        return question.scale_min + scale - 1
    return scale
