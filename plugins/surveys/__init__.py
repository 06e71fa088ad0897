"""Survey connectors: Typeform, SurveyMonkey, Delighted, QuestionPro and Qualtrics webhooks."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from wallboard.kit import Source, hookimpl

from .base import ROUTE, TOKEN_ROUTE, SurveySource, head_survey, post_survey
from .delighted import DelightedSource
from .qualtrics import QualtricsSource
from .questionpro import QuestionProSource
from .surveymonkey import SurveyMonkeySource
from .typeform import TypeformSource

__all__ = ["DelightedSource", "QualtricsSource", "QuestionProSource", "SurveyMonkeySource",
           "SurveySource", "TypeformSource"]


@hookimpl
def register_source_types() -> list[type[Source[Any]]]:
    """The survey source types."""
    return [TypeformSource, SurveyMonkeySource, DelightedSource, QuestionProSource,
            QualtricsSource]


@hookimpl
def register_routes() -> list[web.AbstractRouteDef]:
    """One route per configured survey source (by name), with an optional secret path token."""
    return [web.post(ROUTE, post_survey), web.head(ROUTE, head_survey),
            web.post(TOKEN_ROUTE, post_survey), web.head(TOKEN_ROUTE, head_survey)]
