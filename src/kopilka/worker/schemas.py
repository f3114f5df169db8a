"""What crosses the API for the worker's scheduled jobs."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class JobOut(BaseModel):
    """A scheduled job: how often it runs (null: no longer scheduled by this code), how
    many times it ran, whether a worker runs it now (``holder``) and its last run."""

    model_config = ConfigDict(extra="forbid", strict=True)
    name: str
    every_seconds: int | None
    runs: int
    running: bool
    holder: str | None
    last_started_at: str | None
    last_finished_at: str | None
    last_result: str | None


class JobList(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    items: list[JobOut]
