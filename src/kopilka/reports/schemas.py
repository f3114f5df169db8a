"""What crosses the API for reports."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ReportIndexOut(BaseModel):
    """The reports there are, and when the nightly rollup last ran (null: never)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    reports: list[str]
    rolled_up_at: str | None


class FiltersOut(BaseModel):
    """The filters the report ran with (``from``/``to``: local dates, inclusive)."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)
    from_: str = Field(alias="from")
    to: str
    store: str | None
    channel: str | None
    tier: str | None
    grain: Literal["day", "week", "month"]


class ReportOut(BaseModel):
    """One report. ``items`` are its rows, one object per row with the keys of
    ``columns`` (amounts as decimal strings, dates as ISO text, counts as integers, null
    where there is nothing to show); ``summary`` holds the report's totals.
    ``ignored_filters``: the filters given that this report does not apply. Each report's
    columns are described in docs/reports.md."""

    model_config = ConfigDict(extra="forbid", strict=True)
    report: str
    filters: FiltersOut
    ignored_filters: list[str]
    summary: dict[str, Any]
    columns: list[str]
    items: list[dict[str, Any]]
