"""What crosses the API for API keys (never a secret, except once, on creation)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from kopilka.apikeys.service import DEFAULT_GRACE_SECONDS, MAX_GRACE_SECONDS
from kopilka.core.dates import Timestamp


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Annotated[str, Field(min_length=1, max_length=200)]
    role: Annotated[str, Field(description="admin, manager, analyst, cashier or partner")]
    store: Annotated[str | None, Field(min_length=1, max_length=64)] = None
    partner: Annotated[str | None, Field(min_length=1, max_length=64)] = None
    expires_at: Annotated[Timestamp | None, Field(description="RFC 3339 with offset")] = None


class ApiKeyRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_seconds: Annotated[int, Field(ge=0, le=MAX_GRACE_SECONDS)] = DEFAULT_GRACE_SECONDS


class ApiKeyOut(BaseModel):
    id: str
    name: str
    role: str
    store: str | None
    partner: str | None
    hint: str
    status: str
    created_at: str | None
    created_by: str | None
    expires_at: str | None
    revoked_at: str | None
    last_used_at: str | None
    replaced_by: str | None


class ApiKeyIssued(ApiKeyOut):
    key: Annotated[str, Field(description="the key itself: shown this once, never again")]


class ApiKeyList(BaseModel):
    items: list[ApiKeyOut]
    next_cursor: str | None
