"""Survey mapping config: which question is CSAT/NPS/CES on what scale, and who it is about."""

from __future__ import annotations

import math
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from wallboard.kit import Rejection
from wallboard.model import SURVEY_RESPONSE

DEFAULT_SCALES = {"csat": (1.0, 5.0), "nps": (0.0, 10.0), "ces": (1.0, 7.0)}


class Question(BaseModel):
    """One rated question: its KPI, its scale, and how a choice becomes a score."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["csat", "nps", "ces"]
    scale_min: float | None = None  # default by kind: csat 1–5, nps 0–10, ces 1–7
    scale_max: float | None = None
    # For answers that are choices (SurveyMonkey, QuestionPro): "position" scores the n-th
    # choice scale_min + n - 1, "weight" takes the choice's weight; "auto" is the vendor's
    # natural reading (SurveyMonkey: position; QuestionPro: the answer's scale value).
    value: Literal["auto", "position", "weight"] = "auto"

    @model_validator(mode="after")
    def _scale(self) -> Self:
        low, high = DEFAULT_SCALES[self.kind]
        self.scale_min = low if self.scale_min is None else self.scale_min
        self.scale_max = high if self.scale_max is None else self.scale_max
        if self.scale_max <= self.scale_min:
            raise ValueError(f"scale_max ({self.scale_max:g}) must be greater than scale_min "
                             f"({self.scale_min:g})")
        return self


class Attribution(BaseModel):
    """Names of the hidden fields (properties, custom or embedded variables) to read."""

    model_config = ConfigDict(extra="forbid")

    queue: str | None = None
    agent: str | None = None
    team: str | None = None
    contact_id: str | None = None  # the ticket or contact the survey was sent for


class SurveyMapping(BaseModel):
    """How one survey's responses become survey.response events."""

    model_config = ConfigDict(extra="forbid")

    questions: dict[str, Question] = Field(min_length=1)  # question ref/id -> its meaning
    fields: Attribution = Field(default_factory=Attribution)
    queue: str | None = None  # the queue when the response names none
    queues: dict[str, str] = Field(default_factory=dict)  # a field's value -> board queue


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | str):
        text = str(value).strip()
        return text or None
    return None


def number(value: Any, where: str) -> float:
    """A numeric answer (a number, or text holding one); 422 naming `where` otherwise."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise Rejection("unmapped", f"{where}: {value[:40]!r} is not a number") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Rejection("unmapped", f"{where}: {str(value)[:40]!r} is not a number")
    return float(value)


def attribution(mapping: SurveyMapping, hidden: dict[str, Any]) -> dict[str, str]:
    """queue, agent, team and contact_id for an event, from the response's hidden fields."""
    out: dict[str, str] = {}
    for name in ("queue", "agent", "team", "contact_id"):
        field = getattr(mapping.fields, name)
        value = _text(hidden.get(field)) if field else None
        if value is not None:
            out[name] = value
    if "queue" in out:
        out["queue"] = mapping.queues.get(out["queue"], out["queue"])
    elif mapping.queue is not None:
        out["queue"] = mapping.queue
    return out


def survey_event(question: Question, score: float, *, ts: float, response_id: str,
                 revision: str, who: dict[str, str], where: str) -> dict[str, Any]:
    """One survey.response: a response id per question, an event id per revision of it."""
    assert question.scale_min is not None and question.scale_max is not None
    if not question.scale_min <= score <= question.scale_max:
        raise Rejection("unmapped", f"{where}: score {score:g} is outside the configured scale "
                                    f"{question.scale_min:g}..{question.scale_max:g}")
    return {"type": SURVEY_RESPONSE, "id": f"{response_id}@{revision}", "ts": ts,
            "response_id": response_id, "kind": question.kind, "score": score,
            "scale_min": question.scale_min, "scale_max": question.scale_max, **who}
