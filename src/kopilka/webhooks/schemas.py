"""What crosses the API for webhooks."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from kopilka.core.dates import Timestamp

Secret = Annotated[str, Field(min_length=16, max_length=200)]
Events = Annotated[list[str], Field(min_length=1, max_length=50)]


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: AnyHttpUrl
    events: Events
    # omitted: one is generated and returned once, in the answer to this request
    secret: Secret | None = None
    description: Annotated[str | None, Field(max_length=500)] = None


class WebhookPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: AnyHttpUrl | None = None
    events: Events | None = None
    secret: Secret | None = None
    description: Annotated[str | None, Field(max_length=500)] = None
    active: bool | None = None


class ReplayIn(BaseModel):
    """Which deliveries of an endpoint to send again."""

    model_config = ConfigDict(extra="forbid")
    status: Literal["dead"] = "dead"
    since: Timestamp | None = None
