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


# ---------------------------------------------------------------------------- answers


class WebhookOut(BaseModel):
    """An endpoint; ``disabled_reason`` says why one is off (by an operator, or after a
    run of ``consecutive_failures``)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    id: str
    url: str
    events: list[str]
    description: str | None
    active: bool
    disabled_reason: str | None
    consecutive_failures: int
    created_at: str


class WebhookCreated(WebhookOut):
    """The new endpoint; ``secret`` only when Kopilka generated it (shown this once)."""

    secret: str | None = None


class WebhookPage(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    items: list[WebhookOut]
    next_cursor: str | None


class DeliveryOut(BaseModel):
    """One event sent (or to send) to one endpoint; ``next_attempt_at`` while pending."""

    model_config = ConfigDict(extra="forbid", strict=True)
    id: str
    event_id: str
    member_id: str | None
    status: Literal["pending", "delivered", "dead"]
    attempts: int
    next_attempt_at: str | None
    last_status_code: int | None
    last_error: str | None
    last_duration_ms: int | None
    delivered_at: str | None
    created_at: str


class DeliveryPage(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    items: list[DeliveryOut]
    next_cursor: str | None


class AttemptOut(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    number: int
    attempted_at: str
    outcome: str
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryDetailOut(DeliveryOut):
    """A delivery with every attempt, in order."""

    attempt_log: list[AttemptOut]


class ReplayedOut(BaseModel):
    """How many dead deliveries were sent again."""

    model_config = ConfigDict(extra="forbid", strict=True)
    replayed: int
