"""HTTP endpoints for webhooks and their delivery log (admin; analysts may read)."""

from __future__ import annotations

import secrets
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from kopilka.audit.service import record
from kopilka.core.auth import SessionDep, require
from kopilka.core.db import now
from kopilka.core.errors import Problem, field_error, validation_problem
from kopilka.core.principal import Principal
from kopilka.events.service import EVENT_TYPES
from kopilka.webhooks import service
from kopilka.webhooks.models import Delivery, DeliveryAttempt, WebhookEndpoint
from kopilka.webhooks.schemas import (
    DeliveryDetailOut,
    DeliveryOut,
    DeliveryPage,
    ReplayedOut,
    ReplayIn,
    WebhookCreated,
    WebhookIn,
    WebhookOut,
    WebhookPage,
    WebhookPatch,
)

router = APIRouter(tags=["webhooks"])

Admin = Annotated[Principal, Depends(require("admin"))]
Reader = Annotated[Principal, Depends(require("admin", "analyst"))]


def _check_events(events: list[str]) -> None:
    bad = [i for i, e in enumerate(events) if e != "*" and e not in EVENT_TYPES]
    if bad:
        raise validation_problem(
            [
                field_error(f"events[{i}]", f"unknown event type {events[i]!r}", "unknown")
                for i in bad
            ]
        )


def _out(e: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": str(e.id),
        "url": e.url,
        "events": e.events,
        "description": e.description,
        "active": e.active,
        "disabled_reason": e.disabled_reason,
        "consecutive_failures": e.consecutive_failures,
        "created_at": e.created_at.isoformat(),
    }


def _get(session: SessionDep, webhook_id: uuid.UUID) -> WebhookEndpoint:
    e = session.get(WebhookEndpoint, webhook_id)
    if e is None or e.deleted_at is not None:
        raise Problem(404, "webhook_not_found", f"no webhook {webhook_id}")
    return e


def _delivery_out(d: Delivery) -> dict[str, Any]:
    return {
        "id": str(d.id),
        "event_id": str(d.event_id),
        "member_id": str(d.member_id) if d.member_id else None,
        "status": d.status,
        "attempts": d.attempts,
        "next_attempt_at": d.next_attempt_at.isoformat() if d.status == "pending" else None,
        "last_status_code": d.last_status_code,
        "last_error": d.last_error,
        "last_duration_ms": d.last_duration_ms,
        "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
        "created_at": d.created_at.isoformat(),
    }


# ``secret`` is in the answer only when Kopilka generated it
@router.post(
    "/webhooks",
    status_code=201,
    response_model=WebhookCreated,
    response_model_exclude_unset=True,
)
def create(body: WebhookIn, session: SessionDep, principal: Admin) -> dict[str, Any]:
    """Subscribe a URL to events (``["*"]`` for all). The secret signs every delivery; if
    none is given one is generated. It is returned in this answer only, never again."""
    _check_events(body.events)
    secret = body.secret or f"whsec_{secrets.token_urlsafe(32)}"
    e = WebhookEndpoint(
        url=str(body.url),
        events=body.events,
        secret=secret,
        description=body.description,
        active=True,
        consecutive_failures=0,
    )
    session.add(e)
    session.flush()
    record(
        session,
        principal.actor,
        "webhook.create",
        "webhook",
        str(e.id),
        after={"url": e.url, "events": e.events},
    )
    session.commit()
    service.clear_cache()
    out = _out(e)
    if body.secret is None:
        out["secret"] = secret
    return out


@router.get("/webhooks", response_model=WebhookPage)
def list_(session: SessionDep, _: Reader) -> dict[str, Any]:
    rows = session.execute(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.deleted_at.is_(None))
        .order_by(WebhookEndpoint.created_at)
    ).scalars()
    return {"items": [_out(e) for e in rows], "next_cursor": None}


@router.get("/webhooks/{webhook_id}", response_model=WebhookOut)
def get(webhook_id: uuid.UUID, session: SessionDep, _: Reader) -> dict[str, Any]:
    return _out(_get(session, webhook_id))


@router.patch("/webhooks/{webhook_id}", response_model=WebhookOut)
def patch(
    webhook_id: uuid.UUID, body: WebhookPatch, session: SessionDep, principal: Admin
) -> dict[str, Any]:
    """Change an endpoint; ``{"active": true}`` turns a disabled one back on (its run of
    failures starts again from zero). A new secret signs from the next delivery on."""
    e = _get(session, webhook_id)
    before = _out(e)
    if body.events is not None:
        _check_events(body.events)
        e.events = body.events
    if body.url is not None:
        e.url = str(body.url)
    if body.secret is not None:
        e.secret = body.secret
    if body.description is not None:
        e.description = body.description
    if body.active is not None:
        e.active = body.active
        e.disabled_reason = None if body.active else "disabled by an operator"
        if body.active:
            e.consecutive_failures = 0
    after = _out(e)
    record(
        session,
        principal.actor,
        "webhook.update",
        "webhook",
        str(e.id),
        before=before,
        after={**after, **({"secret": "(changed)"} if body.secret is not None else {})},
    )
    session.commit()
    service.clear_cache()
    return after


@router.delete("/webhooks/{webhook_id}", status_code=204)
def delete(webhook_id: uuid.UUID, session: SessionDep, principal: Admin) -> None:
    """Stop sending to this endpoint: it disappears from the API, its pending deliveries
    are dead, its delivery log is kept."""
    e = _get(session, webhook_id)
    e.active = False
    e.deleted_at = now()
    e.disabled_reason = "deleted"
    retired = service.retire(session, e, "endpoint deleted")
    record(
        session,
        principal.actor,
        "webhook.delete",
        "webhook",
        str(e.id),
        before=_out(e),
        after={"pending_retired": retired},
    )
    session.commit()
    service.clear_cache()


@router.get("/webhooks/{webhook_id}/deliveries", response_model=DeliveryPage)
def deliveries(
    webhook_id: uuid.UUID,
    session: SessionDep,
    _: Reader,
    status: Annotated[str | None, Query(pattern="^(pending|delivered|dead)$")] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """The delivery log, newest first."""
    _get(session, webhook_id)
    q = (
        select(Delivery)
        .where(Delivery.endpoint_id == webhook_id)
        .order_by(Delivery.id.desc())
        .limit(limit + 1)
    )
    if status:
        q = q.where(Delivery.status == status)
    if cursor:
        try:
            q = q.where(Delivery.id < uuid.UUID(cursor))
        except ValueError as exc:
            raise validation_problem(
                [{**field_error("cursor", "not a cursor"), "in": "query"}]
            ) from exc
    rows = list(session.execute(q).scalars())
    return {
        "items": [_delivery_out(d) for d in rows[:limit]],
        "next_cursor": str(rows[limit - 1].id) if len(rows) > limit else None,
    }


def _delivery(session: SessionDep, webhook_id: uuid.UUID, delivery_id: uuid.UUID) -> Delivery:
    d = session.get(Delivery, delivery_id)
    if d is None or d.endpoint_id != webhook_id:
        raise Problem(404, "delivery_not_found", f"no delivery {delivery_id}")
    return d


@router.get("/webhooks/{webhook_id}/deliveries/{delivery_id}", response_model=DeliveryDetailOut)
def delivery(
    webhook_id: uuid.UUID, delivery_id: uuid.UUID, session: SessionDep, _: Reader
) -> dict[str, Any]:
    """One delivery with every attempt: when, the outcome, the status code, the time."""
    _get(session, webhook_id)
    d = _delivery(session, webhook_id, delivery_id)
    attempts = session.execute(
        select(DeliveryAttempt)
        .where(DeliveryAttempt.delivery_id == d.id)
        .order_by(DeliveryAttempt.number)
    ).scalars()
    return {
        **_delivery_out(d),
        "attempt_log": [
            {
                "number": a.number,
                "attempted_at": a.attempted_at.isoformat(),
                "outcome": a.outcome,
                "status_code": a.status_code,
                "error": a.error,
                "duration_ms": a.duration_ms,
            }
            for a in attempts
        ],
    }


def _require_active(e: WebhookEndpoint) -> None:
    if not e.active:
        raise Problem(
            409,
            "webhook_inactive",
            "the webhook is disabled: turn it on (PATCH active=true) before replaying",
        )


@router.post("/webhooks/{webhook_id}/deliveries/{delivery_id}/replay", response_model=DeliveryOut)
def replay(
    webhook_id: uuid.UUID, delivery_id: uuid.UUID, session: SessionDep, principal: Admin
) -> dict[str, Any]:
    """Send a delivery again (a dead one, or one the receiver lost), at once."""
    e = _get(session, webhook_id)
    d = _delivery(session, webhook_id, delivery_id)
    _require_active(e)
    before = d.status
    service.replay(session, d)
    record(
        session,
        principal.actor,
        "webhook.replay",
        "webhook",
        str(e.id),
        before={"delivery_id": str(d.id), "status": before},
        after={"status": d.status},
    )
    session.commit()
    return _delivery_out(d)


@router.post("/webhooks/{webhook_id}/replay", response_model=ReplayedOut)
def replay_many(
    webhook_id: uuid.UUID, body: ReplayIn, session: SessionDep, principal: Admin
) -> dict[str, Any]:
    """Send every dead delivery of the endpoint again (``since``: created from then on)."""
    e = _get(session, webhook_id)
    _require_active(e)
    n = service.replay_dead(session, e.id, body.since)
    record(
        session,
        principal.actor,
        "webhook.replay",
        "webhook",
        str(e.id),
        after={
            "status": body.status,
            "since": body.since.isoformat() if body.since else None,
            "replayed": n,
        },
    )
    session.commit()
    return {"replayed": n}
