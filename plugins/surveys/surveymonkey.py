"""SurveyMonkey: `Sm-Signature` (base64 HMAC-SHA1 keyed `key&secret`), answers fetched by API."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import orjson
from pydantic import Field, Secret

from wallboard.kit import (
    Emit,
    RateLimitConfig,
    Rejection,
    SourceError,
    parse_time,
    sign,
)
from wallboard.model import SURVEY_RETRACTED

from .base import SurveyConfig, SurveySource
from .mapping import Question, attribution, number, survey_event

SIGNATURE_HEADER, API_KEY_HEADER = "Sm-Signature", "Sm-Apikey"
RESPONSE_EVENTS = frozenset({"response_completed", "response_updated"})
DELETED = "response_deleted"
Choices = dict[str, dict[str, tuple[int, float | None]]]  # question -> choice -> (pos, weight)


class SurveyMonkeyConfig(SurveyConfig, RateLimitConfig):
    """The app's key and secret (they sign callbacks) and the token that reads responses."""

    api_key: Secret[Annotated[str, Field(min_length=4)]]  # half of the signing key
    api_secret: Secret[Annotated[str, Field(min_length=8)]]
    access_token: Secret[Annotated[str, Field(min_length=8)]]
    api_url: str = Field("https://api.surveymonkey.com", pattern=r"^https?://[^/\s]+/?$")
    refresh_s: float = Field(3600.0, ge=10)  # how often survey details (choices) are re-read


def compute(api_key: str, api_secret: str, body: bytes) -> str:
    """base64(HMAC-SHA1(key = api_key & api_secret, raw body))."""
    return sign(f"{api_key}&{api_secret}", body, algorithm="sha1", encoding="base64")


def verify_signature(config: SurveyMonkeyConfig, body: bytes, headers: Mapping[str, str]) -> None:
    """Raise Rejection unless Sm-Apikey is ours and Sm-Signature signs the raw body."""
    signature, key = headers.get(SIGNATURE_HEADER), headers.get(API_KEY_HEADER)
    if not signature:
        raise Rejection("missing_signature", f"the request has no {SIGNATURE_HEADER}")
    api_key = config.api_key.get_secret_value()
    expected = compute(api_key, config.api_secret.get_secret_value(), body)
    matched = hmac.compare_digest(expected.encode(), signature.strip().encode())
    if key is not None:  # sent by SurveyMonkey: it must be the configured one too
        matched &= hmac.compare_digest(api_key.encode(), key.strip().encode())
    if not matched:
        raise Rejection("bad_signature", f"{SIGNATURE_HEADER} does not match the body")


def read_choices(details: Any) -> Choices:
    """Each question's choices with their 1-based position and weight, from survey details."""
    out: Choices = {}
    pages = details.get("pages") if isinstance(details, dict) else None
    if not isinstance(pages, list):
        raise ValueError("survey details have no pages list")
    for page in pages:
        for question in (page.get("questions") or []) if isinstance(page, dict) else []:
            answers = question.get("answers") if isinstance(question, dict) else None
            choices = answers.get("choices") if isinstance(answers, dict) else None
            if not isinstance(choices, list):
                continue
            table = out.setdefault(str(question.get("id")), {})
            for i, choice in enumerate(choices, start=1):
                if isinstance(choice, dict) and choice.get("id") is not None:
                    weight = choice.get("weight")
                    position = choice.get("position")
                    table[str(choice["id"])] = (
                        position if isinstance(position, int) else i,
                        float(weight) if isinstance(weight, int | float) else None)
    return out


class SurveyMonkeySource(SurveySource[SurveyMonkeyConfig]):
    """SurveyMonkey response webhooks: verified, then the response details fetched and mapped.

    `run` keeps each configured survey's details (choice positions and weights) cached,
    re-read every `refresh_s`: the source is down while the API cannot be reached.
    """

    type: ClassVar[str] = "surveymonkey"

    def __init__(self, name: str, config: SurveyMonkeyConfig) -> None:
        super().__init__(name, config)
        self.choices: dict[str, Choices] = {}

    @property
    def _config(self) -> SurveyMonkeyConfig:
        return self.config

    def _url(self, path: str) -> str:
        return self._config.api_url.rstrip("/") + path

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._config.access_token.get_secret_value()}"}

    async def load_choices(self, survey_id: str) -> Choices:
        """GET /v3/surveys/{id}/details and cache its choices; SourceError on failure."""
        url = self._url(f"/v3/surveys/{survey_id}/details")
        details = await self.get_json(url, headers=self._headers())
        try:
            self.choices[survey_id] = read_choices(details)
        except (ValueError, AttributeError) as exc:
            raise SourceError(f"GET {url}: {exc}") from None
        return self.choices[survey_id]

    async def run(self, emit: Emit) -> None:
        """Read every configured survey's details, report up, and refresh them periodically."""
        while True:
            for survey_id in self._config.surveys:
                await self.load_choices(survey_id)
            self.connected()
            await self.clock.sleep(self._config.refresh_s)

    def authenticate(self, headers: Mapping[str, str], body: bytes,
                     path_token: str | None) -> None:
        """The signature over the raw body, before anything is parsed."""
        if path_token is not None:
            raise Rejection("bad_signature", "surveymonkey sources take no path token")
        verify_signature(self._config, body, headers)

    async def responses(self, headers: Mapping[str, str], body: bytes) -> list[dict[str, Any]]:
        """For response_completed/updated: fetch the response's details and map its answers."""
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise Rejection("malformed", f"body is not JSON: {exc}") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("resources"), dict):
            raise Rejection("malformed", "expected {\"event_type\", \"object_id\", "
                                         "\"resources\": {\"survey_id\"}}")
        event_type = payload.get("event_type")
        if event_type not in RESPONSE_EVENTS and event_type != DELETED:
            return []  # created, disqualified, collector events: nothing to count
        survey_id, response_id = payload["resources"].get("survey_id"), payload.get("object_id")
        if not isinstance(survey_id, str | int) or not isinstance(response_id, str | int):
            raise Rejection("malformed", "object_id and resources.survey_id are required")
        survey_id, response_id = str(survey_id), str(response_id)
        mapping = self.survey(survey_id)
        if event_type == DELETED:
            return self._deleted(payload, response_id, list(mapping.questions))
        url = self._url(f"/v3/surveys/{survey_id}/responses/{response_id}/details")
        details = await self.api_json(url, self._headers())
        if not isinstance(details, dict):
            raise Rejection("upstream", f"GET {url}: not a response object")
        if details.get("response_status") != "completed":
            return []
        modified = details.get("date_modified") or details.get("date_created")
        ts = parse_time(modified)
        if ts is None:
            raise Rejection("upstream", f"GET {url}: date_modified is not an RFC 3339 time")
        custom = details.get("custom_variables")
        who = attribution(mapping, custom if isinstance(custom, dict) else {})
        events = []
        for qid, answer in _answers(details):
            question = mapping.questions.get(qid)
            if question is None:
                continue
            score = await self._score(survey_id, qid, question, answer)
            events.append(survey_event(question, score, ts=ts, response_id=f"{response_id}:{qid}",
                                       revision=str(modified), who=who,
                                       where=f"response {response_id} question {qid}"))
        return events

    def _deleted(self, payload: dict[str, Any], response_id: str,
                 questions: list[str]) -> list[dict[str, Any]]:
        """A deleted response leaves every window: one survey.retracted per mapped question."""
        ts = parse_time(payload.get("event_datetime"))
        if ts is None:
            raise Rejection("malformed", "event_datetime is not an RFC 3339 time")
        return [{"type": SURVEY_RETRACTED, "id": f"{response_id}:{qid}@deleted", "ts": ts,
                 "response_id": f"{response_id}:{qid}"} for qid in questions]

    async def _score(self, survey_id: str, qid: str, question: Question,
                     answer: dict[str, Any]) -> float:
        where = f"question {qid}"
        choice = answer.get("choice_id")
        if choice is None:
            return number(answer.get("text"), f"{where}.text")  # a slider or numeric answer
        table = self.choices.get(survey_id, {}).get(qid, {})
        if str(choice) not in table:  # new survey or edited since: read the details again
            try:
                table = (await self.load_choices(survey_id)).get(qid, {})
            except SourceError as exc:
                raise Rejection("upstream", str(exc)) from None
        if str(choice) not in table:
            raise Rejection("unmapped", f"{where}: choice {choice} is not in the survey details")
        position, weight = table[str(choice)]
        if question.value == "weight":
            if weight is None:
                raise Rejection("unmapped", f"{where}: choice {choice} has no weight")
            return weight
        assert question.scale_min is not None
        return question.scale_min + position - 1


def _answers(details: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(question id, first answer) of every answered question in a response's details."""
    out = []
    for page in details.get("pages") or []:
        for question in (page.get("questions") or []) if isinstance(page, dict) else []:
            answers = question.get("answers") if isinstance(question, dict) else None
            if isinstance(answers, list) and answers and isinstance(answers[0], dict):
                out.append((str(question.get("id")), answers[0]))
    return out
