"""Delighted: `X-Delighted-Webhook-Signature: sha256=<hex HMAC-SHA256>`; edits re-sent."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import orjson
from pydantic import Field, Secret

from wallboard.kit import Rejection, SignatureError, verify

from .base import SurveyConfig, SurveySource
from .mapping import attribution, number, survey_event

SIGNATURE_HEADER = "X-Delighted-Webhook-Signature"
RESPONSE_EVENTS = frozenset({"survey_response.created", "survey_response.updated"})
SCORE = "score"  # the one rated answer of a Delighted response: its key under `questions`


class DelightedConfig(SurveyConfig):
    """The API key that signs webhooks; `surveys` keyed by survey type (nps, csat, ces…)."""

    api_key: Secret[Annotated[str, Field(min_length=8)]]


def verify_signature(api_key: str, body: bytes, header: str | None) -> None:
    """Raise Rejection unless the header is sha256=hex(HMAC-SHA256(api_key, raw body))."""
    try:
        verify(api_key, body, header, tolerance_s=None, prefix="sha256=")
    except SignatureError as exc:
        if exc.reason == "missing_signature":
            raise Rejection("missing_signature", f"the request has no {SIGNATURE_HEADER}") \
                from None
        raise Rejection("bad_signature", f"{SIGNATURE_HEADER} does not match the body") from None


class DelightedSource(SurveySource[DelightedConfig]):
    """Delighted survey_response webhooks; an update replaces the response's earlier score."""

    type: ClassVar[str] = "delighted"

    def authenticate(self, headers: Mapping[str, str], body: bytes,
                     path_token: str | None) -> None:
        """The signature over the raw body, before anything is parsed."""
        if path_token is not None:
            raise Rejection("bad_signature", "delighted sources take no path token")
        verify_signature(self.config.api_key.get_secret_value(), body,
                         headers.get(SIGNATURE_HEADER))

    async def responses(self, headers: Mapping[str, str], body: bytes) -> list[dict[str, Any]]:
        """The score of a created or updated response; other events (unsubscribes) count 0."""
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise Rejection("malformed", f"body is not JSON: {exc}") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("event_data"), dict):
            raise Rejection("malformed", "expected {\"event_type\", \"event_data\": {...}}")
        if payload.get("event_type") not in RESPONSE_EVENTS:
            return []
        data = payload["event_data"]
        rid = data.get("id")
        if not isinstance(rid, str | int) or isinstance(rid, bool) or rid == "":
            raise Rejection("malformed", "event_data.id is required")
        kind = data.get("survey_type") or "nps"
        mapping = self.survey(str(kind))
        question = mapping.questions.get(SCORE)
        if question is None:
            raise Rejection("unmapped", f"sources.{self.name}.surveys.{kind}.questions has no "
                                        f"{SCORE!r} entry")
        # Each edit re-sends the response with a later updated_at: that is its revision.
        changed = data.get("updated_at", data.get("created_at"))
        ts = number(changed, "event_data.updated_at")
        properties = data.get("person_properties")
        who = attribution(mapping, properties if isinstance(properties, dict) else {})
        score = number(data.get("score"), "event_data.score")
        return [survey_event(question, score, ts=ts, response_id=f"{rid}:{SCORE}",
                             revision=f"{ts:.0f}", who=who, where="event_data.score")]
