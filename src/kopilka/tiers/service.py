"""Member tiers: the qualifying value, upgrades at once, re-evaluation with grace, floors.

A member's *qualifying value* at a moment is the programme's metric over its window
ending at that moment:

- ``spend``: money paid (``total_due``) on confirmed purchases whose ``occurred_at`` is in
  the window, less the ``refund_due`` of their returns (whenever the return was made);
  cancelled purchases do not count, held ones not yet;
- ``points``: points of ``currency`` earned (ledger ``earn`` entries in the window), less
  what returns and cancellations took back of those entries;
- ``purchases``: confirmed purchases in the window, less those returned in full.

The *entitled* level is the highest of the level that value reaches and a live floor
(a manual assignment). A purchase moves the member up at once (``plan_move``, in the
purchase's own write), never down. The re-evaluation job (``reevaluate``) moves up too,
and handles the way down: a member below their tier gets ``grace_days``; still below when
the grace is over, they go down to the level they are entitled to; back above meanwhile,
the grace is cleared.

Every change locks the member's row (``members``, then ``member_tiers``: always in that
order), writes ``members.tier``, a ``tier_changes`` row and the ``tier.changed`` event in
the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import Select, bindparam, literal, select, type_coerce
from sqlalchemy.orm import Session

from kopilka.audit.service import record
from kopilka.core import pagination
from kopilka.core.db import Amount, now
from kopilka.core.errors import Problem, field_error, validation_problem
from kopilka.core.ids import uuid7
from kopilka.core.money import SCALE, ZERO, fmt
from kopilka.core.plan import Plan, table
from kopilka.events.service import emit
from kopilka.ledger import queries as ledger
from kopilka.members import service as members
from kopilka.members.queries import Member, tier_of, tier_with, tiers_after
from kopilka.program.service import current_program
from kopilka.spec.tiers import TierSpec, TiersSpec
from kopilka.tiers.models import MemberTier, TierChange

SYSTEM_ACTOR = "system:tiers"
BATCH = 500
MONEY_PRECISION = 2


# ---------------------------------------------------------------------------- the programme


@dataclass(frozen=True)
class Setup:
    """The programme's tiers and what is needed to read them."""

    tiers: TiersSpec
    timezone: str
    precision: int  # of the qualifying value: money 2, points their currency's, count 0


def setup(session: Session) -> Setup | None:
    """The tiers of the programme in force, or None when it has none."""
    spec = current_program(session).spec
    tiers: TiersSpec | None = getattr(spec, "tiers", None)
    if tiers is None:
        return None
    if tiers.metric == "spend":
        precision = MONEY_PRECISION
    elif tiers.metric == "points":
        cur = spec.currency(tiers.currency or "")
        precision = cur.precision if cur is not None else MONEY_PRECISION
    else:
        precision = 0
    return Setup(tiers, spec.timezone, precision)


def window(s: Setup, at: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """``(start, end)`` of the window ending at ``at``, both included: the last
    ``rolling_days`` days, or since the start of the calendar period (programme's time
    zone) that ``at`` falls in."""
    w = s.tiers.window
    if w.rolling_days is not None:
        return at - dt.timedelta(days=w.rolling_days), at
    tz = zoneinfo.ZoneInfo(s.timezone)
    local = at.astimezone(tz)
    if w.calendar == "year":
        first = dt.date(local.year, 1, 1)
    elif w.calendar == "quarter":
        first = dt.date(local.year, (local.month - 1) // 3 * 3 + 1, 1)
    else:
        first = dt.date(local.year, local.month, 1)
    # local midnight of the period's first day, with the offset in force that day
    return dt.datetime.combine(first, dt.time(), tz).astimezone(dt.UTC), at


# ---------------------------------------------------------------------------- the value


class PurchaseHistory(Protocol):
    """What the tiers read of purchases: ``kopilka.purchases.queries`` supplies it through
    ``kopilka.wiring`` (the purchases package moves a member's tier on a receipt, so this
    one cannot import it)."""

    def kept_counts(
        self, member_ids: Sequence[uuid.UUID], start: dt.datetime, end: dt.datetime
    ) -> Select[uuid.UUID | None, int]: ...

    def paid_totals(
        self, member_ids: Sequence[uuid.UUID], start: dt.datetime, end: dt.datetime
    ) -> Select[Any]: ...

    def kept_count_of_one(self, member: Any, start: Any, end: Any) -> Any: ...

    def paid_of_one(self, member: Any, start: Any, end: Any) -> Any: ...


_history: list[PurchaseHistory] = []


def use_purchase_history(history: PurchaseHistory) -> None:
    """Say where the purchases' history is read (``wiring.wire``, before any statement
    that reads it is built: those are built once and kept)."""
    _history[:] = [history]


def _purchases() -> PurchaseHistory:
    if not _history:
        raise RuntimeError("no purchase history: kopilka.wiring.wire() was not called")
    return _history[0]


def qualifying_values(
    session: Session, s: Setup, member_ids: Iterable[uuid.UUID], at: dt.datetime
) -> dict[uuid.UUID, Decimal]:
    """The qualifying value of each member at ``at`` (read-only queries, a few per batch;
    ``ix_purchases_member`` / ``ix_ledger_entries_member`` serve them)."""
    ids = list(member_ids)
    out: dict[uuid.UUID, Decimal] = dict.fromkeys(ids, ZERO)
    if not ids:
        return out
    start, end = window(s, at)
    if s.tiers.metric == "points":
        cur = s.tiers.currency
        _add(out, session.execute(ledger.points_earned(ids, cur, start, end)))
        _add(out, session.execute(ledger.points_taken_back(ids, cur, start, end)), -1)
        return out

    if s.tiers.metric == "purchases":
        _add(out, session.execute(_purchases().kept_counts(ids, start, end)))
        return out
    # money paid less what its returns refunded, in one statement (this runs on every
    # purchase of a member below the top level)
    _add(out, session.execute(_purchases().paid_totals(ids, start, end)))
    return out


def _value_of_one(metric: str) -> Any:
    """The qualifying value of one member (bound as ``member_id``, with the window's
    ``start`` and ``end`` and, for points, the ``currency``) as a SQL expression in the
    units of ``Amount``: the same figure as ``qualifying_values``, so that a receipt
    reads the value and the member's tier state with the rest of its context."""
    m: Any = bindparam("member_id")
    start: Any = bindparam("start")
    end: Any = bindparam("end")
    if metric == "points":
        return ledger.points_kept_of_one(m, start, end, bindparam("currency"))

    if metric == "purchases":
        # a count, scaled to the units of ``Amount`` like the money figures
        return _purchases().kept_count_of_one(m, start, end) * literal(SCALE)
    return _purchases().paid_of_one(m, start, end)


@dataclass(frozen=True)
class Standing:
    """A member's tier, tier state and qualifying value, read together."""

    tier: str | None
    floor_tier: str | None
    floor_until: dt.datetime | None
    grace_until: dt.datetime | None
    value: Decimal


@functools.cache
def _standing_statement(metric: str) -> Any:
    """Built once per metric: building it costs more than running it."""
    columns = (
        MemberTier.floor_tier,
        MemberTier.floor_until,
        MemberTier.grace_until,
        type_coerce(_value_of_one(metric), Amount()),
    )
    return tier_with(columns, MemberTier, MemberTier.member_id)


def standing(session: Session, s: Setup, member_id: uuid.UUID, at: dt.datetime) -> Standing | None:
    """The member's tier as committed, floor, grace and qualifying value at ``at``, in one
    statement (None for an unknown member)."""
    start, end = window(s, at)
    params: dict[str, Any] = {"member_id": member_id, "start": start, "end": end}
    if s.tiers.metric == "points":
        params["currency"] = s.tiers.currency
    row = session.execute(_standing_statement(s.tiers.metric), params).one_or_none()
    if row is None:
        return None
    return Standing(row[0], row[1], row[2], row[3], Decimal(row[4]))


def _add(out: dict[uuid.UUID, Decimal], rows: Iterable[Any], sign: int = 1) -> None:
    for mid, total in rows:
        if mid is not None and total is not None:
            out[mid] += sign * Decimal(total)


def qualifying_value(
    session: Session, member_id: uuid.UUID, at: dt.datetime | None = None
) -> Decimal:
    """The member's qualifying value at ``at`` (now by default); 0 without tiers."""
    s = setup(session)
    if s is None:
        return ZERO
    return qualifying_values(session, s, [member_id], at or now())[member_id]


# ---------------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class Decision:
    """What to do with one member: move to ``to`` when ``reason`` is set; ``grace`` is
    the member's ``grace_until`` afterwards (None: no grace period)."""

    to: str | None
    reason: str | None
    grace: dt.datetime | None


def _floor_rank(tiers: TiersSpec, state: MemberTier | Standing | None, at: dt.datetime) -> int:
    if state is None or state.floor_tier is None:
        return -1
    if state.floor_until is not None and state.floor_until <= at:
        return -1
    return tiers.rank(state.floor_tier)


def decide(
    tiers: TiersSpec,
    current: str | None,
    value: Decimal,
    state: MemberTier | Standing | None,
    at: dt.datetime,
    *,
    may_lower: bool,
) -> Decision | None:
    """Pure: the change due for a member at ``at``, or None. ``may_lower`` is False on a
    purchase (only the way up) and True at re-evaluation."""
    q = tiers.qualifying_level(value)
    q_rank = tiers.rank(q.code) if q is not None else -1
    f_rank = _floor_rank(tiers, state, at)
    entitled = max(q_rank, f_rank)
    target = tiers.levels[entitled].code if entitled >= 0 else None
    grace = state.grace_until if state is not None else None
    c_rank = tiers.rank(current)
    if current is not None and c_rank < 0:
        # the member's level is no longer in the programme
        if not may_lower:
            return None
        return Decision(target, "program_changed", None)
    if entitled > c_rank:
        return Decision(target, "manual" if f_rank > q_rank else "upgrade", None)
    if entitled == c_rank:
        return Decision(current, None, None) if grace is not None else None
    if not may_lower:
        return None
    if tiers.grace_days == 0:
        return Decision(target, "downgrade", None)
    if grace is None:
        return Decision(current, None, at + dt.timedelta(days=tiers.grace_days))
    if at >= grace:
        return Decision(target, "grace_expired", None)
    return None


# ---------------------------------------------------------------------------- changes


def _state(session: Session, member_id: uuid.UUID, *, lock: bool = False) -> MemberTier | None:
    q = select(MemberTier).where(MemberTier.member_id == member_id)
    if lock:
        # read again what another worker may have written while we waited for the lock
        # (sessions keep their objects across commits)
        q = q.with_for_update().execution_options(populate_existing=True)
    return session.execute(q).scalar_one_or_none()


def _lock_member(session: Session, member_id: uuid.UUID) -> Member:
    """The member's row, locked, with the tier as committed now (404 if unknown)."""
    member = members.get_member(session, member_id, lock=True)
    session.refresh(member, ["tier", "status"])
    return member


def lock_standing(session: Session, member_id: uuid.UUID) -> None:
    """Lock the member's row and tier state (what a manual assignment and the
    re-evaluation lock before they move a tier): a purchase's tier move decided after it
    cannot be overtaken (a receipt's retry after ``Contended("tier")``)."""
    _lock_member(session, member_id)
    _state(session, member_id, lock=True)


def _state_for_write(session: Session, member_id: uuid.UUID) -> MemberTier:
    state = _state(session, member_id, lock=True)
    if state is None:
        # made under the member's row lock, so never twice
        state = MemberTier(member_id=member_id, updated_at=now())
        session.add(state)
    return state


def _apply(
    session: Session,
    s: Setup,
    member: Member,
    state: MemberTier | None,
    d: Decision,
    at: dt.datetime,
    actor: str,
    value: Decimal | None,
    note: str | None = None,
) -> bool:
    """Carry out a decision (the member's row is locked). True when the member's tier or
    grace period changed."""
    changed = d.reason is not None and d.to != member.tier
    grace_changed = d.grace != (state.grace_until if state is not None else None)
    if not changed and not grace_changed:
        return False
    if state is None:
        state = _state_for_write(session, member.id)
    state.grace_until = d.grace
    state.evaluated_at = at
    state.updated_at = now()
    if not changed:
        return True
    before = member.tier
    member.tier = d.to
    valid_until = state.floor_until if d.reason == "manual" else None
    session.add(
        TierChange(
            member_id=member.id,
            from_tier=before,
            to_tier=d.to,
            reason=d.reason,
            at=at,
            actor=actor,
            qualifying_value=value,
            note=note,
            created_at=now(),
        )
    )

    names = {lv.code: lv.name for lv in s.tiers.levels}
    emit(
        session,
        "tier.changed",
        {
            "member_id": str(member.id),
            "from": before,
            "to": d.to,
            "reason": d.reason,
            "at": at.isoformat(),
            "from_name": names.get(before or ""),
            "to_name": names.get(d.to or ""),
            "valid_until": valid_until.isoformat() if valid_until else None,
        },
        member_id=member.id,
    )
    return True


def standing_before(
    session: Session, s: Setup, member_id: uuid.UUID, at: dt.datetime
) -> tuple[Standing, bool]:
    """The member's standing at ``at`` and whether they have a state row, read with the
    member's row and state locked (a manual assignment or the re-evaluation waits): what
    ``plan_move`` decides a held purchase's commit on, before its status changes."""
    lock_standing(session, member_id)
    got = standing(session, s, member_id, at.astimezone(dt.UTC))
    if got is None:  # pragma: no cover - the purchase names a member that exists
        raise Problem(404, "member_not_found", f"no member {member_id}")
    return got, _state(session, member_id) is not None


# ---------------------------------------------------------------------------- a receipt's move


@functools.cache
def standing_columns(metric: str) -> tuple[Any, ...]:
    """For a statement that reads a receipt's whole context at once (PostgreSQL): the
    member's tier, tier state and qualifying value (``standing``'s figures, and whether
    the state row exists) as labelled scalar subqueries, bound as ``member_id``,
    ``start``, ``end`` (and ``currency`` for points). Built once per metric."""
    m: Any = bindparam("member_id")
    state = (MemberTier.member_id == m,)
    return (
        tier_of(m).label("t_tier"),
        select(MemberTier.member_id).where(*state).scalar_subquery().label("t_state"),
        select(MemberTier.floor_tier).where(*state).scalar_subquery().label("t_floor"),
        select(MemberTier.floor_until).where(*state).scalar_subquery().label("t_floor_until"),
        select(MemberTier.grace_until).where(*state).scalar_subquery().label("t_grace"),
        type_coerce(_value_of_one(metric), Amount()).label("t_value"),
    )


def standing_params(s: Setup, at: dt.datetime) -> dict[str, Any]:
    """The parameters of ``standing_columns`` for a purchase at ``at``."""
    start, end = window(s, at.astimezone(dt.UTC))
    params: dict[str, Any] = {"start": start, "end": end}
    if s.tiers.metric == "points":
        params["currency"] = s.tiers.currency
    return params


def read_standing(row: Any) -> tuple[Standing, bool]:
    """``standing_columns`` read back, and whether the member has a state row."""
    m = row._mapping
    return (
        Standing(m["t_tier"], m["t_floor"], m["t_floor_until"], m["t_grace"], m["t_value"]),
        m["t_state"] is not None,
    )


def contribution(s: Setup, total_due: Decimal, earned: dict[str, Decimal]) -> Decimal:
    """What a confirmed purchase adds to its member's qualifying value at its own moment
    (the window ends there, so it is inside): its money paid, its points of the metric's
    currency, or one purchase. ``standing`` read before it, plus this, is ``standing``
    read after it."""
    if s.tiers.metric == "spend":
        return total_due
    if s.tiers.metric == "points":
        return earned.get(s.tiers.currency or "", ZERO)
    return Decimal(1)


def plan_move(
    plan: Plan,
    s: Setup,
    member_id: uuid.UUID,
    before: Standing,
    has_state: bool,
    value: Decimal,
    at: dt.datetime,
) -> tuple[str, dict[str, Any], uuid.UUID] | None:
    """A purchase's tier move (up at once if ``value`` reaches a higher level, a grace
    period cleared once climbed out of; never down) as parts of ``plan``, decided on
    ``before`` (the standing read under the member's wallet locks, before the purchase;
    ``standing_before`` at a hold's commit) and ``value`` (with the purchase): the
    member's new tier, the tier state, the change row. Returns the
    ``tier.changed`` event for the caller's outbox rows, or None.

    Optimistic: each write is conditional on the tier and state being what was read. A
    tier changed meanwhile (a manual assignment, the re-evaluation job, which lock the
    member's row) is ``Contended("tier")``, and the caller's one retry reads it again."""
    at = at.astimezone(dt.UTC)
    d = decide(s.tiers, before.tier, value, before, at, may_lower=False)
    if d is None:
        return None
    changed = d.reason is not None and d.to != before.tier
    if not changed and d.grace == before.grace_until:
        return None
    moment = now()
    state = {"grace_until": d.grace, "evaluated_at": at, "updated_at": moment}
    if has_state:
        plan.update_if_unchanged(
            table(MemberTier),
            "member_id",
            [
                (
                    member_id,
                    {
                        "floor_tier": before.floor_tier,
                        "floor_until": before.floor_until,
                        "grace_until": before.grace_until,
                    },
                    state,
                )
            ],
            "tier",
        )
    else:
        plan.insert_new(
            table(MemberTier), ("member_id",), [{"member_id": member_id, **state}], "tier"
        )
    if not changed:
        return None
    members.plan_tier_move(plan, member_id, before.tier, d.to, moment)
    plan.insert(
        table(TierChange),
        [
            {
                "id": uuid7(),
                "member_id": member_id,
                "from_tier": before.tier,
                "to_tier": d.to,
                "reason": d.reason,
                "at": at,
                "actor": SYSTEM_ACTOR,
                "qualifying_value": value,
                "note": None,
                "created_at": moment,
            }
        ],
    )
    names = {lv.code: lv.name for lv in s.tiers.levels}
    valid_until = before.floor_until if d.reason == "manual" else None
    return (
        "tier.changed",
        {
            "member_id": str(member_id),
            "from": before.tier,
            "to": d.to,
            "reason": d.reason,
            "at": at.isoformat(),
            "from_name": names.get(before.tier or ""),
            "to_name": names.get(d.to or ""),
            "valid_until": valid_until.isoformat() if valid_until else None,
        },
        member_id,
    )


def reevaluate(session: Session, at: dt.datetime | None = None, batch: int = BATCH) -> int:
    """Re-evaluate every member at ``at`` (now by default), a batch at a time, each batch
    committed: up to the level they are entitled to, into grace when below their tier,
    down when the grace is over, grace cleared when back above. Idempotent (running it
    again at the same moment changes nothing) and safe beside other workers (each change
    is decided again under the member's row lock). Returns how many members changed
    (tier or grace period)."""
    at = (at or now()).astimezone(dt.UTC)
    s = setup(session)
    if s is None:
        return 0
    done = 0
    after: uuid.UUID | None = None
    while True:
        rows = session.execute(tiers_after(after, batch)).all()
        if not rows:
            break
        after = rows[-1][0]
        ids = [r[0] for r in rows]
        states = {
            st.member_id: st
            for st in session.execute(
                select(MemberTier).where(MemberTier.member_id.in_(ids))
            ).scalars()
        }
        values = qualifying_values(session, s, ids, at)
        for mid, tier in rows:
            if decide(s.tiers, tier, values[mid], states.get(mid), at, may_lower=True) is None:
                continue
            member = _lock_member(session, mid)
            state = _state(session, mid, lock=True)
            # decided again under the lock, with the value as it is now
            value = qualifying_values(session, s, [mid], at)[mid]
            d = decide(s.tiers, member.tier, value, state, at, may_lower=True)
            if d is not None and _apply(session, s, member, state, d, at, SYSTEM_ACTOR, value):
                done += 1
        session.commit()
        if len(rows) < batch:
            break
    return done


def set_floor(
    session: Session,
    member_id: uuid.UUID,
    tier: str | None,
    until: dt.datetime | None,
    reason: str,
    actor: str,
    at: dt.datetime | None = None,
) -> None:
    """Manual assignment: the member is at least ``tier`` until ``until`` (or for good);
    ``tier=None`` clears the floor (normal rules apply from the next re-evaluation).
    Raises the tier at once when the floor is above it. Audited. 404 for an unknown
    member, 422 naming the field for an unknown tier or an ``until`` in the past."""
    at = (at or now()).astimezone(dt.UTC)
    s = setup(session)
    member = _lock_member(session, member_id)
    if member.status == "erased":
        raise Problem(409, "member_erased", f"member {member_id} is erased")
    errors = []
    if tier is not None:
        if s is None:
            errors.append(field_error("tier", "the programme has no tiers", "unknown_tier"))
        elif s.tiers.level(tier) is None:
            known = ", ".join(lv.code for lv in s.tiers.levels)
            errors.append(field_error("tier", f"no tier {tier!r}; known: {known}", "unknown_tier"))
    if until is not None and until.tzinfo is None:
        errors.append(field_error("until", "give a time zone offset (RFC 3339)", "naive_datetime"))
    elif until is not None and until <= at:
        errors.append(field_error("until", "must be in the future", "past"))
    if errors:
        raise validation_problem(errors)
    state = _state(session, member_id, lock=True)
    before = _floor_json(state)
    if tier is None and (state is None or state.floor_tier is None):
        after_floor: dict[str, Any] | None = None
    else:
        state = state or _state_for_write(session, member_id)
        state.floor_tier = tier
        state.floor_until = until if tier is not None else None
        state.floor_reason = reason if tier is not None else None
        state.floor_set_by = actor if tier is not None else None
        state.floor_set_at = at if tier is not None else None
        state.updated_at = now()
        after_floor = _floor_json(state)

    record(
        session,
        actor,
        "member.tier",
        "member",
        str(member_id),
        before={"tier": member.tier, "floor": before},
        after={"floor": after_floor},
        details={"reason": reason},
    )
    if s is not None and tier is not None:
        assert state is not None
        value = qualifying_values(session, s, [member_id], at)[member_id]
        d = decide(s.tiers, member.tier, value, state, at, may_lower=False)
        if d is not None:
            _apply(session, s, member, state, d, at, actor, value, note=reason)
    session.flush()


def _floor_json(state: MemberTier | None) -> dict[str, Any] | None:
    if state is None or state.floor_tier is None:
        return None
    return {
        "tier": state.floor_tier,
        "until": state.floor_until.isoformat() if state.floor_until else None,
        "reason": state.floor_reason,
        "set_by": state.floor_set_by,
        "set_at": state.floor_set_at.isoformat() if state.floor_set_at else None,
    }


# ---------------------------------------------------------------------------- reading


def change_json(c: TierChange, precision: int = MONEY_PRECISION) -> dict[str, Any]:
    return {
        "id": str(c.id),
        "from": c.from_tier,
        "to": c.to_tier,
        "reason": c.reason,
        "at": c.at.isoformat(),
        "actor": c.actor,
        "qualifying_value": fmt(c.qualifying_value, precision)
        if c.qualifying_value is not None
        else None,
        "note": c.note,
    }


def history(
    session: Session,
    member_id: uuid.UUID,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[dict[str, Any]], str | None]:
    """The member's tier changes, newest first (by id, which is time-ordered)."""
    q = (
        select(TierChange)
        .where(TierChange.member_id == member_id)
        .order_by(TierChange.id.desc())
        .limit(limit + 1)
    )
    if (last := pagination.after(cursor)) is not None:
        q = q.where(TierChange.id < last)
    s = setup(session)
    precision = s.precision if s is not None else MONEY_PRECISION
    shown, nxt = pagination.page(list(session.execute(q).scalars()), limit)
    return [change_json(c, precision) for c in shown], nxt


def _level_json(lv: TierSpec | None, precision: int) -> dict[str, Any] | None:
    if lv is None:
        return None
    return {
        "code": lv.code,
        "name": lv.name,
        "threshold": fmt(lv.threshold, precision),
        "benefits": {
            "earn_multiplier": str(lv.benefits.earn_multiplier),
            "discount_percent": str(lv.benefits.discount_percent),
        },
    }


def status(
    session: Session,
    member_id: uuid.UUID,
    at: dt.datetime | None = None,
    history_limit: int = 10,
) -> dict[str, Any]:
    """The member's tier as the API answers it: current level, floor, grace, qualifying
    value over the window, the next level and what is left to reach it, recent history."""
    at = (at or now()).astimezone(dt.UTC)
    member = members.get_member(session, member_id)
    s = setup(session)
    state = _state(session, member_id)
    recent, _ = history(session, member_id, None, history_limit) if history_limit else ([], None)
    grace = state.grace_until if state is not None else None
    floor = _floor_json(state)
    if floor is not None and state is not None:
        floor["live"] = _floor_rank(s.tiers, state, at) >= 0 if s is not None else False
    if s is None:
        return {
            "member_id": str(member_id),
            "tier": member.tier,
            "level": None,
            "metric": None,
            "currency": None,
            "qualifying_value": None,
            "window": None,
            "floor": floor,
            "grace_until": grace.isoformat() if grace else None,
            "next": None,
            "history": recent,
            "as_of": at.isoformat(),
        }
    value = qualifying_values(session, s, [member_id], at)[member_id]
    start, end = window(s, at)
    rank = s.tiers.rank(member.tier)
    nxt = s.tiers.levels[rank + 1] if rank + 1 < len(s.tiers.levels) else None
    # the next level is the first above both the tier and the value (a member may
    # already qualify for more than their tier shows until the next purchase)
    while nxt is not None and value >= nxt.threshold:
        i = s.tiers.rank(nxt.code) + 1
        nxt = s.tiers.levels[i] if i < len(s.tiers.levels) else None
    w = s.tiers.window
    return {
        "member_id": str(member_id),
        "tier": member.tier,
        "level": _level_json(s.tiers.level(member.tier), s.precision),
        "metric": s.tiers.metric,
        "currency": s.tiers.currency,
        "qualifying_value": fmt(value, s.precision),
        "window": {
            "rolling_days": w.rolling_days,
            "calendar": w.calendar,
            "from": start.isoformat(),
            "to": end.isoformat(),
        },
        "floor": floor,
        "grace_until": grace.isoformat() if grace else None,
        "next": None
        if nxt is None
        else {
            **(_level_json(nxt, s.precision) or {}),
            "remaining": fmt(max(nxt.threshold - value, ZERO), s.precision),
        },
        "history": recent,
        "as_of": at.isoformat(),
    }


def level_name(session: Session, code: str | None) -> str | None:
    """The display name of a level code in the programme in force (the code itself when
    the programme no longer has it)."""
    if code is None:
        return None
    s = setup(session)
    lv = s.tiers.level(code) if s is not None else None
    return lv.name if lv is not None else code


def progress(
    session: Session, member_id: uuid.UUID, at: dt.datetime | None = None
) -> dict[str, Any] | None:
    """What the member app shows: the member's level and what is left to the next one
    (``None`` when the programme has no tiers)."""
    s = setup(session)
    if s is None:
        return None
    full = status(session, member_id, at, history_limit=0)
    nxt = full["next"]
    return {
        "tier": full["tier"],
        "name": full["level"]["name"] if full["level"] else level_name(session, full["tier"]),
        "metric": full["metric"],
        "currency": full["currency"],
        "precision": s.precision,
        "qualifying_value": full["qualifying_value"],
        "next": None
        if nxt is None
        else {"tier": nxt["code"], "name": nxt["name"], "remaining": nxt["remaining"]},
    }
