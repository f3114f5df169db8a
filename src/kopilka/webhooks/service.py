"""Webhook delivery: fan-out of events to endpoints, claims, signed POSTs, outcomes.

``plan_deliveries`` adds to the plan of every event's write (``events.service``) one
pending delivery per active endpoint subscribed to the event, in the transaction of the
change. A worker ``claim``s due deliveries (``FOR UPDATE
SKIP LOCKED`` on PostgreSQL, so any number of workers share them; SQLite serialises writers)
and leases them by setting ``leased_until``: a worker killed mid-delivery loses nothing, the
lease runs out and another worker sends it again. A member's later event is not claimed for
an endpoint while an earlier one to that endpoint is still pending, so a member's events
arrive in order. ``record_outcomes`` writes what happened: delivered on a 2xx, otherwise
retried after an exponential backoff with jitter, dead after ``max_attempts`` (an operator
replays it), and the endpoint disabled after a long run of failures.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
from sqlalchemy import Table, bindparam, exists, func, insert, or_, select, update
from sqlalchemy.orm import Session, aliased

from kopilka.core.config import get_settings
from kopilka.core.db import db_key, now
from kopilka.core.errors import Problem
from kopilka.core.ids import uuid7
from kopilka.core.plan import Plan, table
from kopilka.events.queries import OutboxEvent, with_event
from kopilka.events.service import emit, envelope
from kopilka.webhooks.models import Delivery, DeliveryAttempt, WebhookEndpoint
from kopilka.webhooks.signing import HEADER, sign

TIMEOUT_SECONDS = 10.0
USER_AGENT = "Kopilka-Webhooks/1"
# A receiver's answer is read up to this many bytes, then dropped: only the status counts.
MAX_RESPONSE_BYTES = 64 * 1024


@dataclass
class Policy:
    """Retries and limits. ``backoff(n)`` is the wait after the n-th failed attempt:
    ``base × 2^(n−1)``, capped, times a jitter factor in [0.8, 1.2) so that deliveries that
    failed together do not come back in lockstep."""

    max_attempts: int = 12
    base_seconds: float = 10.0
    max_seconds: float = 6 * 3600.0
    disable_after_failures: int = 100
    timeout_seconds: float = TIMEOUT_SECONDS
    rng: random.Random = field(default_factory=random.Random)

    @classmethod
    def from_settings(cls) -> Policy:
        s = get_settings()
        return cls(
            max_attempts=s.webhook_max_attempts,
            disable_after_failures=s.webhook_disable_after_failures,
            timeout_seconds=s.webhook_timeout_seconds,
        )

    def backoff(self, failed_attempts: int) -> float:
        base = min(self.base_seconds * 2.0 ** max(0, failed_attempts - 1), self.max_seconds)
        return base * (0.8 + 0.4 * self.rng.random())


# ---------------------------------------------------------------------------- fan-out

# Active endpoints, remembered per process for ENDPOINTS_CACHE_SECONDS: every change emits
# an event, and the list changes rarely (a new endpoint receives events within that time).
ENDPOINTS_CACHE_SECONDS = 1.0
_endpoints_lock = threading.Lock()
_endpoints: dict[str, tuple[float, list[tuple[uuid.UUID, frozenset[str]]]]] = {}


def _active_endpoints(session: Session) -> list[tuple[uuid.UUID, frozenset[str]]]:
    key = db_key(session)
    t = time.monotonic()
    with _endpoints_lock:
        hit = _endpoints.get(key)
    if hit is not None and t - hit[0] < ENDPOINTS_CACHE_SECONDS:
        return hit[1]
    rows = [
        (r[0], frozenset(r[1]))
        for r in session.execute(
            select(WebhookEndpoint.id, WebhookEndpoint.events).where(
                WebhookEndpoint.active.is_(True), WebhookEndpoint.deleted_at.is_(None)
            )
        ).all()
    ]
    with _endpoints_lock:
        _endpoints[key] = (t, rows)
    return rows


def clear_cache() -> None:
    with _endpoints_lock:
        _endpoints.clear()


def plan_deliveries(
    plan: Plan,
    session: Session,
    events: Sequence[tuple[uuid.UUID, str, uuid.UUID | None, dt.datetime]],
) -> None:
    """The pending deliveries new events ``(id, type, member_id, created_at)`` need, as a
    part of ``plan`` (written in the events' transaction): one per active endpoint
    subscribed to the event's type (the endpoints are cached for a moment; see
    ``clear_cache``)."""
    endpoints = _active_endpoints(session) if events else []
    plan.insert(
        table(Delivery),
        [
            {
                "id": uuid7(),
                "event_id": event_id,
                "endpoint_id": endpoint_id,
                "member_id": member_id,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": created_at,
                "created_at": created_at,
            }
            for event_id, event_type, member_id, created_at in events
            for endpoint_id, subscribed in endpoints
            if "*" in subscribed or event_type in subscribed
        ],
    )


# ---------------------------------------------------------------------------- claims


@dataclass(frozen=True)
class Claimed:
    """A leased delivery, ready to send."""

    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    url: str
    secret: str
    body: bytes
    leased_until: dt.datetime
    event_id: uuid.UUID
    event_type: str


def body_of(event: OutboxEvent) -> bytes:
    """The raw body of a delivery: the event's envelope as compact UTF-8 JSON."""
    return json.dumps(envelope(event), separators=(",", ":"), ensure_ascii=False).encode()


def claim(
    session: Session, limit: int = 50, at: dt.datetime | None = None, lease_seconds: int = 60
) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries to active endpoints and commit the lease. A
    member's later event is not taken while an earlier one to the same endpoint is pending,
    so a batch holds at most one delivery per member and endpoint."""
    at = at or now()
    earlier = aliased(Delivery)
    blocked = exists().where(
        earlier.endpoint_id == Delivery.endpoint_id,
        earlier.member_id == Delivery.member_id,
        earlier.status == "pending",
        earlier.created_at < Delivery.created_at,
    )
    endpoints = select(
        Delivery.id, Delivery.endpoint_id, WebhookEndpoint.url, WebhookEndpoint.secret
    ).join(WebhookEndpoint, WebhookEndpoint.id == Delivery.endpoint_id)
    q = (
        with_event(endpoints, Delivery.event_id)
        .where(
            Delivery.status == "pending",
            Delivery.next_attempt_at <= at,
            or_(Delivery.leased_until.is_(None), Delivery.leased_until < at),
            WebhookEndpoint.active.is_(True),
            WebhookEndpoint.deleted_at.is_(None),
            or_(Delivery.member_id.is_(None), ~blocked),
        )
        .order_by(Delivery.next_attempt_at, Delivery.created_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True, of=Delivery)
    rows = session.execute(q).all()
    until = at + dt.timedelta(seconds=lease_seconds)
    if rows:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_([r[0] for r in rows]))
            .values(leased_until=until)
            .execution_options(synchronize_session=False)
        )
    session.commit()
    return [
        Claimed(did, eid, url, secret, body_of(ev), until, ev.id, ev.type)
        for did, eid, url, secret, ev in rows
    ]


def renew(
    session: Session,
    ids: Sequence[uuid.UUID],
    held_until: dt.datetime,
    until: dt.datetime,
) -> set[uuid.UUID]:
    """Extend to ``until`` the lease of those deliveries still held under ``held_until``
    and still pending, and commit; the ids renewed. A delivery missing from the answer is
    no longer the caller's (its lease ran out and another worker took it, an operator
    replayed it, its endpoint was deleted): the caller must not send it."""
    if not ids:
        return set()
    renewed = session.execute(
        update(Delivery)
        .where(
            Delivery.id.in_(list(ids)),
            Delivery.status == "pending",
            Delivery.leased_until == held_until,
        )
        .values(leased_until=until)
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    ).scalars()
    out = set(renewed)
    session.commit()
    return out


def release(session: Session, claimed: Sequence[Claimed]) -> None:
    """Give back leases not used (a worker stopping): others may send them at once."""
    for c in claimed:
        session.execute(
            update(Delivery)
            .where(Delivery.id == c.delivery_id, Delivery.leased_until == c.leased_until)
            .values(leased_until=None)
            .execution_options(synchronize_session=False)
        )
    session.commit()


# ---------------------------------------------------------------------------- sending


@dataclass(frozen=True)
class Result:
    """How one POST ended."""

    claimed: Claimed
    outcome: str  # success | http_error | timeout | network_error
    status_code: int | None
    error: str | None
    duration_ms: int
    attempted_at: dt.datetime

    @property
    def ok(self) -> bool:
        return self.outcome == "success"


def deliver(
    claimed: Claimed,
    client: httpx.Client,
    timeout: float = TIMEOUT_SECONDS,
    clock: Callable[[], dt.datetime] = now,
) -> Result:
    """POST one delivery, signed; a 2xx acknowledges, anything else (or no answer within
    ``timeout``) is a failure. Redirects are not followed."""
    attempted_at = clock()
    started = time.perf_counter()
    headers = {
        "Content-Type": "application/json",
        HEADER: sign(claimed.secret, int(time.time()), claimed.body),
        "Kopilka-Event-Id": str(claimed.event_id),
        "Kopilka-Event-Type": claimed.event_type,
        "Kopilka-Delivery": str(claimed.delivery_id),
        "User-Agent": USER_AGENT,
    }
    status: int | None = None
    error: str | None = None
    try:
        with client.stream(
            "POST", claimed.url, content=claimed.body, headers=headers, timeout=timeout
        ) as r:
            status = r.status_code
            read = 0
            for chunk in r.iter_bytes():
                read += len(chunk)
                if read >= MAX_RESPONSE_BYTES:
                    break
        outcome = "success" if 200 <= status < 300 else "http_error"
        if outcome == "http_error":
            error = f"HTTP {status}"
    except httpx.TimeoutException as exc:
        outcome, error = "timeout", f"no answer in {timeout:g} s ({type(exc).__name__})"
    except httpx.HTTPError as exc:
        outcome, error = "network_error", f"{type(exc).__name__}: {exc}"[:500]
    ms = int((time.perf_counter() - started) * 1000)
    return Result(claimed, outcome, status, error, ms, attempted_at)


# ---------------------------------------------------------------------------- outcomes


def record_outcomes(
    session: Session,
    results: Sequence[Result],
    policy: Policy,
    holder: str,
    at: dt.datetime | None = None,
) -> None:
    """Write the attempts of a batch, in one transaction: each one logged; the delivery
    delivered, rescheduled or dead; the endpoint's run of failures counted, and the endpoint
    disabled (with a ``webhook.disabled`` event) when that run gets too long."""
    if not results:
        return
    at = at or now()
    ids = [r.claimed.delivery_id for r in results]
    numbers = dict(
        session.execute(
            select(DeliveryAttempt.delivery_id, func.max(DeliveryAttempt.number))
            .where(DeliveryAttempt.delivery_id.in_(ids))
            .group_by(DeliveryAttempt.delivery_id)
        ).all()
    )
    session.execute(
        insert(DeliveryAttempt),
        [
            {
                "id": uuid7(),
                "delivery_id": r.claimed.delivery_id,
                "number": (numbers.get(r.claimed.delivery_id) or 0) + 1,
                "outcome": r.outcome,
                "status_code": r.status_code,
                "error": r.error,
                "duration_ms": r.duration_ms,
                "attempted_at": r.attempted_at,
                "worker": holder[:100],
            }
            for r in results
        ],
    )
    # a run of failures per endpoint, in the order the results came
    failures: dict[uuid.UUID, int] = {}
    succeeded: set[uuid.UUID] = set()
    for r in results:
        if r.ok:
            succeeded.add(r.claimed.endpoint_id)
            failures.pop(r.claimed.endpoint_id, None)
        else:
            failures[r.claimed.endpoint_id] = failures.get(r.claimed.endpoint_id, 0) + 1
    table = cast(Table, Delivery.__table__)
    conn = session.connection()
    oks = [r for r in results if r.ok]
    if oks:  # delivered whoever holds the lease now: the receiver has it
        conn.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"), table.c.status == "pending")
            .values(
                status="delivered",
                delivered_at=at,
                attempts=table.c.attempts + 1,
                last_status_code=bindparam("b_code"),
                last_error=None,
                last_duration_ms=bindparam("b_ms"),
                leased_until=None,
            ),
            [
                {"b_id": r.claimed.delivery_id, "b_code": r.status_code, "b_ms": r.duration_ms}
                for r in oks
            ],
        )
    failed = [r for r in results if not r.ok]
    current = (
        {
            row.id: row
            for row in conn.execute(
                select(
                    table.c.id, table.c.attempts, table.c.leased_until, table.c.next_attempt_at
                ).where(
                    table.c.id.in_([r.claimed.delivery_id for r in failed]),
                    table.c.status == "pending",
                )
            )
        }
        if failed
        else {}
    )
    params: list[dict[str, Any]] = []
    for r in failed:
        row = current.get(r.claimed.delivery_id)
        if row is None or row.leased_until != r.claimed.leased_until:
            continue  # no longer ours: its new holder decides what comes next
        attempts = row.attempts + 1
        dead = attempts >= policy.max_attempts
        params.append(
            {
                "b_id": r.claimed.delivery_id,
                "b_lease": r.claimed.leased_until,
                "b_attempts": attempts,
                "b_status": "dead" if dead else "pending",
                "b_next": (
                    row.next_attempt_at
                    if dead
                    else at + dt.timedelta(seconds=policy.backoff(attempts))
                ),
                "b_code": r.status_code,
                "b_error": r.error,
                "b_ms": r.duration_ms,
            }
        )
    if params:
        conn.execute(
            update(table)
            .where(
                table.c.id == bindparam("b_id"),
                table.c.status == "pending",
                table.c.leased_until == bindparam("b_lease"),
            )
            .values(
                attempts=bindparam("b_attempts"),
                status=bindparam("b_status"),
                next_attempt_at=bindparam("b_next"),
                last_status_code=bindparam("b_code"),
                last_error=bindparam("b_error"),
                last_duration_ms=bindparam("b_ms"),
                leased_until=None,
            ),
            params,
        )
    for endpoint_id in succeeded - failures.keys():
        session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.consecutive_failures != 0)
            .values(consecutive_failures=0)
            .execution_options(synchronize_session=False)
        )
    for endpoint_id, n in failures.items():
        _count_failures(session, endpoint_id, n, endpoint_id in succeeded, policy)
    session.commit()


def _count_failures(
    session: Session, endpoint_id: uuid.UUID, n: int, after_success: bool, policy: Policy
) -> None:
    """``n`` more failures in a row (or just ``n`` when a success came before them); the
    count moves in SQL, as several workers may fail on one endpoint at once."""
    count = n if after_success else WebhookEndpoint.consecutive_failures + n
    session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id)
        .values(consecutive_failures=count)
        .execution_options(synchronize_session=False)
    )
    disabled = session.execute(
        update(WebhookEndpoint)
        .where(
            WebhookEndpoint.id == endpoint_id,
            WebhookEndpoint.active.is_(True),
            WebhookEndpoint.consecutive_failures >= policy.disable_after_failures,
        )
        .values(
            active=False,
            disabled_reason=(
                f"disabled after {policy.disable_after_failures} failed deliveries in a row"
            ),
        )
        .returning(WebhookEndpoint.url, WebhookEndpoint.consecutive_failures)
        .execution_options(synchronize_session=False)
    ).first()
    if disabled is not None:
        clear_cache()
        emit(
            session,
            "webhook.disabled",
            {
                "endpoint_id": str(endpoint_id),
                "url": disabled[0],
                "consecutive_failures": disabled[1],
            },
        )


# ---------------------------------------------------------------------------- operators


def replay(session: Session, delivery: Delivery, at: dt.datetime | None = None) -> None:
    """Put a delivery (dead, or delivered and lost by the receiver) back in the queue, to be
    sent at once with a fresh count of attempts (not committed).

    A delivery a worker is sending now (its lease has not run out) is left alone: 409
    ``delivery_in_flight``. Clearing that lease would let a second worker send it while
    the first one still is, and the first one's outcome would then be dropped."""
    at = at or now()
    # one conditional UPDATE, so a worker claiming it meanwhile cannot slip in between
    result = session.execute(
        update(Delivery)
        .where(
            Delivery.id == delivery.id,
            or_(Delivery.leased_until.is_(None), Delivery.leased_until < at),
        )
        .values(
            status="pending",
            attempts=0,
            next_attempt_at=at,
            leased_until=None,
            delivered_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    if not getattr(result, "rowcount", 0):
        raise Problem(
            409,
            "delivery_in_flight",
            "a worker is sending this delivery now: replay it once that attempt is recorded",
        )
    session.refresh(delivery)


def replay_dead(session: Session, endpoint_id: uuid.UUID, since: dt.datetime | None = None) -> int:
    """Every dead delivery of an endpoint (created since ``since``) back in the queue (not
    committed); how many."""
    cond = [Delivery.endpoint_id == endpoint_id, Delivery.status == "dead"]
    if since is not None:
        cond.append(Delivery.created_at >= since)
    result = session.execute(
        update(Delivery)
        .where(*cond)
        .values(status="pending", attempts=0, next_attempt_at=now(), leased_until=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0))


def retire(session: Session, endpoint: WebhookEndpoint, reason: str) -> int:
    """An endpoint deleted: its pending deliveries are dead with ``reason`` (not
    committed); how many."""
    result = session.execute(
        update(Delivery)
        .where(Delivery.endpoint_id == endpoint.id, Delivery.status == "pending")
        .values(status="dead", last_error=reason, leased_until=None)
        .execution_options(synchronize_session=False)
    )
    clear_cache()
    return int(getattr(result, "rowcount", 0))


def lag_seconds(session: Session, at: dt.datetime | None = None) -> float:
    """Age of the oldest event still pending to an active endpoint (0 when none)."""
    oldest = session.execute(
        select(func.min(Delivery.created_at))
        .join(WebhookEndpoint, WebhookEndpoint.id == Delivery.endpoint_id)
        .where(
            Delivery.status == "pending",
            WebhookEndpoint.active.is_(True),
            WebhookEndpoint.deleted_at.is_(None),
        )
    ).scalar()
    return 0.0 if oldest is None else max(0.0, ((at or now()) - oldest).total_seconds())
