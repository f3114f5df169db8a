"""What the health checks answer."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class LiveOut(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    status: Literal["ok"]


class ReadyOut(BaseModel):
    """``checks``: each check's outcome (``database``, ``schema``): ``ok`` or what is
    wrong, in words an operator can act on."""

    model_config = ConfigDict(extra="forbid", strict=True)
    status: Literal["ok", "unavailable"]
    checks: dict[str, str]
