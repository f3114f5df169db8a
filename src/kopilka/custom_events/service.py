"""Custom events: record one, reward it by the programme's event rules, read them back.

Recording is one transaction: the event row, the points (ledger entries of kind
``reward``), the personal coupons and the outbox events commit together or not at all.

Concurrency: the member's wallets are locked (``ledger.lock_wallets``, the lock purchases
take) before the limits are counted, so two events of one member are serialised and a
limit of one per day is never passed twice. ``activities.external_id`` is unique and the
row is written with ``INSERT … ON CONFLICT DO NOTHING``, so an event sent twice at the same
instant is recorded once; the loser answers the winner's answer.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kopilka.core import pagination
from kopilka.core.db import now
from kopilka.core.errors import Problem, field_error, validation_problem
from kopilka.core.ids import uuid7
from kopilka.core.money import fmt
from kopilka.core.principal import Principal
from kopilka.coupons import issue as coupons
from kopilka.custom_events import evaluate
from kopilka.custom_events.models import Activity, ActivityReward
from kopilka.custom_events.schemas import EventIn
from kopilka.events.service import emit
from kopilka.ledger import service as ledger
from kopilka.members import service as members
from kopilka.members.queries import Member
from kopilka.program.service import Program, current_program
from kopilka.spec.control_group import in_control_group
from kopilka.spec.custom_events import EventRuleSpec

# ---------------------------------------------------------------------------- reading


def event_json(row: Activity) -> dict[str, Any]:
    """The answer about an event: the same for its first recording, a replay and GET."""
    return {**row.answer, "properties": row.properties}


def get_event(session: Session, event_id: uuid.UUID) -> dict[str, Any]:
    """One custom event, or 404 ``custom_event_not_found``."""
    row = session.get(Activity, event_id)
    if row is None:
        raise Problem(404, "custom_event_not_found", f"no custom event {event_id}")
    return event_json(row)


def list_events(
    session: Session,
    member_id: uuid.UUID,
    *,
    type: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[dict[str, Any]], str | None]:
    """A member's custom events, newest recorded first (ids are time-ordered)."""
    members.get_member(session, member_id)
    q = (
        select(Activity)
        .where(Activity.member_id == member_id)
        .order_by(Activity.id.desc())
        .limit(limit + 1)
    )
    if type is not None:
        q = q.where(Activity.type == type)
    if (last := pagination.after(cursor)) is not None:
        q = q.where(Activity.id < last)
    shown, nxt = pagination.page(list(session.execute(q).scalars()), limit)
    return [event_json(r) for r in shown], nxt


# ---------------------------------------------------------------------------- recording


def request_hash(body: EventIn) -> str:
    """The content of an event, for telling a retry from another event with the same
    ``external_id``: the instant (not its offset) and the properties in key order."""
    data = body.model_dump(mode="json")
    data["occurred_at"] = body.occurred_at.astimezone(dt.UTC).isoformat()
    raw = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


def _existing(session: Session, external_id: str) -> Activity | None:
    return session.execute(
        select(Activity)
        .where(Activity.external_id == external_id)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def _replay(found: Activity, body_hash: str) -> tuple[int, dict[str, Any]]:
    if found.request_hash != body_hash:
        raise Problem(
            409,
            "duplicate_external_id",
            f"custom event {found.external_id!r} was recorded with other content",
            errors=[field_error("external_id", "already used for another event", "duplicate")],
            extra={"custom_event_id": str(found.id)},
        )
    return 200, event_json(found)


def _check_type(program: Program, body: EventIn) -> None:
    known = program.spec.event_types
    if known is not None and body.type not in known:
        raise validation_problem(
            [field_error("type", f"unknown event type {body.type!r}", "unknown")],
            f"the programme knows no event type {body.type!r}",
        )


def _insert_statement(session: Session) -> Any:
    dialect_insert: Any = (
        postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    )
    return (
        dialect_insert(Activity)
        .on_conflict_do_nothing(index_elements=["external_id"])
        .returning(Activity.id)
    )


def _limit_reached(
    session: Session, member_id: uuid.UUID, rule: EventRuleSpec, occurred_at: dt.datetime, tz: str
) -> str | None:
    """The first limit of the rule this member has reached for an event at
    ``occurred_at`` (``limit_per_day`` …), counting the rule's earlier granted rewards
    in the same calendar day / ISO week / month of the programme's time zone."""
    limits = rule.limits
    windows = evaluate.periods(occurred_at, tz)
    base = [
        ActivityReward.member_id == member_id,
        ActivityReward.rule == rule.name,
        ActivityReward.status == "granted",
    ]
    for name in evaluate.LIMIT_PERIODS:
        cap = getattr(limits, name)
        if cap is None:
            continue
        q = select(func.count()).select_from(ActivityReward).where(*base)
        if name in windows:
            start, end = windows[name]
            q = q.where(ActivityReward.occurred_at >= start, ActivityReward.occurred_at < end)
        if session.execute(q).scalar_one() >= cap:
            return f"limit_{name}"
    return None


def record_event(
    session: Session, body: EventIn, principal: Principal
) -> tuple[int, dict[str, Any]]:
    """Record a custom event and reward it by the programme's event rules (not committed).

    201 the first time; 200 with the same answer when the same event comes again; 409
    ``duplicate_external_id`` when its content differs; 422 ``validation_error`` for an
    unknown type or unusable properties, ``member_blocked`` for a member who is not
    active; 404 ``member_not_found``."""
    body_hash = request_hash(body)
    found = _existing(session, body.external_id)
    if found is not None:
        session.rollback()
        return _replay(found, body_hash)
    program = current_program(session)
    spec = program.spec
    _check_type(program, body)
    rules = [r for r in spec.event_rules if r.event == body.type]
    errors = evaluate.property_errors(rules, body.properties)
    if errors:
        raise validation_problem(errors, "the event's properties do not suit its rules")
    member = members.resolve_member(session, body.member, spec.default_phone_region, "member")
    if member.status != "active":
        raise Problem(
            422,
            "member_blocked",
            f"member {member.id} is {member.status}",
            errors=[field_error("member", f"the member is {member.status}", "blocked")],
        )
    # Serialise this member's events (and purchases) before counting the limits.
    ledger.lock_member(session, member.id, spec, [c.code for c in spec.currencies])
    found = _existing(session, body.external_id)
    if found is not None:  # a twin committed while we waited for the lock
        session.rollback()
        return _replay(found, body_hash)

    tz = spec.timezone
    event_id = uuid7()
    at = now()
    values: dict[str, Any] = {
        "id": event_id,
        "type": body.type,
        "external_id": body.external_id,
        "member_id": member.id,
        "occurred_at": body.occurred_at,
        "properties": body.properties,
        "answer": {},
        "request_hash": body_hash,
        "program_version": program.version,
        "created_at": at,
        "created_by": principal.actor,
    }
    # The first write: an event already recorded (a twin of another member's request
    # that committed a moment ago) is found by the unique index.
    if session.execute(_insert_statement(session), values).first() is None:
        session.rollback()
        found = _existing(session, body.external_id)
        if found is None:  # pragma: no cover - the conflicting row cannot vanish
            raise Problem(409, "duplicate_external_id", "the event is being recorded")
        session.rollback()
        return _replay(found, body_hash)

    held_out = in_control_group(member.id, spec.control_group_share)
    rewards = _apply_rules(
        session, rules, body, member, event_id, principal.actor, tz, held_out=held_out
    )
    answer = {
        "id": str(event_id),
        "type": body.type,
        "external_id": body.external_id,
        "member_id": str(member.id),
        "occurred_at": body.occurred_at.isoformat(),
        "rewards": rewards,
        "created_at": at.isoformat(),
    }
    session.execute(update(Activity).where(Activity.id == event_id).values(answer=answer))
    _emit(session, answer, member.id)
    recorded = Recorded(event_id, body.type, member.id, body.occurred_at, tuple(rewards), held_out)
    for listener in _listeners:
        listener(session, recorded)
    return 201, {**answer, "properties": body.properties}


def _apply_rules(
    session: Session,
    rules: list[EventRuleSpec],
    body: EventIn,
    member: Member,
    event_id: uuid.UUID,
    actor: str,
    tz: str,
    *,
    held_out: bool = False,
) -> list[dict[str, Any]]:
    """Evaluate the rules of the event's type in the programme's order; each rule that
    matches gives all of its reward or nothing, and is answered with what it did.
    ``held_out``: the member is in the programme's control group (earns nothing)."""
    day = evaluate.local_day(body.occurred_at, tz)
    out: list[dict[str, Any]] = []
    for index, rule in enumerate(rules):
        if not evaluate.matches(rule, body.properties, member.tier, day):
            continue
        item: dict[str, Any] = {"rule": rule.name}
        row: dict[str, Any] = {
            "activity_id": event_id,
            "member_id": member.id,
            "rule": rule.name,
            "occurred_at": body.occurred_at,
        }
        reason = (
            "control_group"
            if held_out
            else _limit_reached(session, member.id, rule, body.occurred_at, tz)
        )
        points = rule.reward.points
        due = None
        if reason is None and points is not None:
            cur = ledger.currency_row(session, points.currency)
            due = evaluate.points_due(points, body.properties, cur.precision)
            if due.amount <= 0:
                reason = due.reason
        code = None
        coupon_tried = False
        if reason is None and rule.reward.coupon is not None:
            # The coupon first: it is the part that can fail, and a rule gives all or nothing.
            coupon_tried = True
            code, reason = coupons.issue_to_member(
                session, rule.reward.coupon.pool, member.id, actor
            )
        if reason is not None:
            status = "limited" if reason.startswith("limit_") else "rejected"
            item.update(status=status, reason=reason)
            row.update(status=status, reason=reason)
        else:
            item["status"] = row["status"] = "granted"
        if points is not None and due is not None and due.amount > 0 and reason is None:
            cur = ledger.currency_row(session, points.currency)
            available_at = ledger.lot_times(cur, body.occurred_at, tz)[0]
            ledger.credit(
                session,
                key=f"activity:{event_id}:{index}:{points.currency}",
                kind="reward",
                member_id=member.id,
                currency=points.currency,
                amount=due.amount,
                actor=actor,
                description=f"{rule.name} ({body.type} {body.external_id})",
                occurred_at=body.occurred_at,
                tz=tz,
                fresh=True,
            )
            item["points"] = {
                "currency": points.currency,
                "amount": fmt(due.amount, cur.precision),
                "available_at": available_at.isoformat(),
            }
            row.update(currency=points.currency, amount=due.amount)
        if rule.reward.coupon is not None and coupon_tried:
            item["coupon"] = {"code": code, "pool": rule.reward.coupon.pool}
            row.update(coupon_pool=rule.reward.coupon.pool, coupon_code=code)
        session.add(ActivityReward(**row))
        out.append(item)
    session.flush()
    return out


def _emit(session: Session, answer: dict[str, Any], member_id: uuid.UUID) -> None:
    """``activity.recorded``, and ``points.earned`` per points granted (the payload of a
    purchase's, with ``purchase_id`` null and the event and rule named)."""
    emit(
        session,
        "activity.recorded",
        {
            "custom_event_id": answer["id"],
            "type": answer["type"],
            "external_id": answer["external_id"],
            "member_id": answer["member_id"],
            "occurred_at": answer["occurred_at"],
            "rewards": answer["rewards"],
        },
        member_id=member_id,
    )
    for item in answer["rewards"]:
        if item["status"] == "granted" and "points" in item:
            emit(
                session,
                "points.earned",
                {
                    "member_id": answer["member_id"],
                    "purchase_id": None,
                    **item["points"],
                    "custom_event_id": answer["id"],
                    "rule": item["rule"],
                },
                member_id=member_id,
            )


# ---------------------------------------------------------------------------- privacy


def export_events(session: Session, member_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every custom event of the member, for the member's data export."""
    rows = session.execute(
        select(Activity).where(Activity.member_id == member_id).order_by(Activity.id)
    ).scalars()
    return [event_json(r) for r in rows]


def erase_events(session: Session, member_id: uuid.UUID) -> None:
    """Erasure: the properties of the member's events may hold anything the caller sent;
    they are blanked. The rewards stay (the ledger refers to them)."""
    session.execute(update(Activity).where(Activity.member_id == member_id).values(properties={}))


# ---------------------------------------------------------------------------- listeners
# --- challenges ---
# What other parts do when an event is recorded (challenge progress of ``count: events``
# goals, badges given by event rules): filled from ``kopilka.wiring``, called in the
# event's transaction, under the member's lock, after its rewards.


@dataclass(frozen=True)
class Recorded:
    """A custom event just recorded, with what each rule did (``rewards``: the answer's
    items, ``{"rule", "status", …}``); ``held_out``: the member is in the control group."""

    id: uuid.UUID
    type: str
    member_id: uuid.UUID
    occurred_at: dt.datetime
    rewards: tuple[dict[str, Any], ...]
    held_out: bool


Listener = Callable[[Session, Recorded], None]
_listeners: list[Listener] = []


def on_recorded(listener: Listener) -> None:
    """Call ``listener`` for every event recorded (once per listener)."""
    if listener not in _listeners:
        _listeners.append(listener)
