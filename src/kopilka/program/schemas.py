"""What crosses the API for the programme (the programme file's own schema is
``program/schema.py``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class AppliedOut(BaseModel):
    """The programme version in force after applying a file; ``changed`` is false when
    the file was the one in force already (``digest``: of its canonical form)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    version: int
    changed: bool
    digest: str
