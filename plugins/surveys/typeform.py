"""Typeform: `Typeform-Signature: sha256=<base64 HMAC-SHA256>`, answers in the body."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import orjson
from pydantic import Field, Secret

from wallboard.kit import Rejection, SignatureError, parse_time, verify

from .base import SurveyConfig, SurveySource
from .mapping import attribution, number, survey_event

SIGNATURE_HEADER = "Typeform-Signature"


class TypeformConfig(SurveyConfig):
    """The webhook's secret, and per form id which field refs are rated questions."""

    secret: Secret[Annotated[str, Field(min_length=8)]]


def verify_signature(secret: str, body: bytes, header: str | None) -> None:
    """Raise Rejection unless the header is sha256=base64(HMAC-SHA256(secret, raw body))."""
    try:
        verify(secret, body, header, tolerance_s=None, prefix="sha256=", encoding="base64")
    except SignatureError as exc:
        if exc.reason == "missing_signature":
            raise Rejection("missing_signature", f"the request has no {SIGNATURE_HEADER}") \
                from None
        raise Rejection("bad_signature", f"{SIGNATURE_HEADER} does not match the body") from None


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Rejection("malformed", f"{where} must be an object")
    return value


class TypeformSource(SurveySource[TypeformConfig]):
    """Typeform `form_response` webhooks; each rated answer becomes a survey.response."""

    type: ClassVar[str] = "typeform"

    def authenticate(self, headers: Mapping[str, str], body: bytes,
                     path_token: str | None) -> None:
        """The signature over the raw body, before anything is parsed."""
        if path_token is not None:
            raise Rejection("bad_signature", "typeform sources take no path token")
        verify_signature(self.config.secret.get_secret_value(), body, headers.get(SIGNATURE_HEADER))

    async def responses(self, headers: Mapping[str, str], body: bytes) -> list[dict[str, Any]]:
        """Rated answers mapped by `field.ref`; hidden fields attribute them."""
        try:
            payload = _object(orjson.loads(body), "body")
        except orjson.JSONDecodeError as exc:
            raise Rejection("malformed", f"body is not JSON: {exc}") from None
        form = _object(payload.get("form_response"), "form_response")
        form_id, token = form.get("form_id"), form.get("token")
        if not isinstance(form_id, str) or not isinstance(token, str) or not token:
            raise Rejection("malformed", "form_response.form_id and form_response.token are "
                                         "required")
        mapping = self.survey(form_id)
        ts = parse_time(form.get("submitted_at"))
        if ts is None:
            raise Rejection("malformed", "form_response.submitted_at is not an RFC 3339 time")
        hidden = form.get("hidden")
        who = attribution(mapping, hidden if isinstance(hidden, dict) else {})
        answers = form.get("answers")
        if not isinstance(answers, list):
            raise Rejection("malformed", "form_response.answers must be a list")
        events = []
        for i, answer in enumerate(answers):
            if not isinstance(answer, dict) or not isinstance(answer.get("field"), dict):
                raise Rejection("malformed", f"form_response.answers[{i}] has no field")
            ref = answer["field"].get("ref")
            question = mapping.questions.get(ref) if isinstance(ref, str) else None
            if question is None:
                continue  # comments and other questions the board does not count
            where = f"form_response.answers[{i}] ({ref})"
            score = number(answer.get("number"), f"{where}.number")
            # Typeform responses are not edited: the token is the response, one revision.
            events.append(survey_event(question, score, ts=ts, response_id=f"{token}:{ref}",
                                       revision="1", who=who, where=where))
        return events
