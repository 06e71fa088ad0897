"""The `history:` section: how long interval history is kept and how the forecast is made."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class HistoryConfig(BaseModel):
    """Interval history (15-minute records per queue and team) and the intraday forecast."""

    model_config = ConfigDict(extra="forbid")

    # Kept apart from the raw events' journal.retention_days: a year's comparison needs 400.
    retention_days: int = Field(400, ge=1, le=3660)
    # same_weekday_mean: an interval's forecast is the mean of the same interval on the last
    # `forecast_weeks` same weekdays that have data (docs/reports.md#forecast).
    forecast: Literal["same_weekday_mean"] = "same_weekday_mean"
    forecast_weeks: int = Field(4, ge=1, le=12)
