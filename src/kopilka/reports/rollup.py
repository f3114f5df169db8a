"""The rollup job: keeps the ``report_*`` tables in step with purchases, the ledger and
members, so that dashboards read a few thousand rows instead of millions.

Three ways of keeping up, each suited to what it reads:

* **Receipts** (``report_sales_daily``, ``report_member_days``) are recomputed per local day
  from ``purchases`` (indexed by ``occurred_at``). The days to redo are those of receipts
  recorded since the last run and of purchase events (a cancellation, a return) since then,
  plus today and yesterday. Recomputing a day is idempotent, so the scan overlaps the last
  run by a margin.
* **Points** (``report_points_daily``) are added up from ledger entries, which are never
  changed once written: each entry is counted once, in the order of its time-ordered id.
  Entries younger than ``settle_seconds`` wait for the next run, so that a transaction that
  committed late (an id below the mark) is not skipped.
* **Members** (``report_members``) get one row each, with the day they joined, their
  control-group bucket and the next dense number; cohort cells are recomputed for every
  month with a day redone.
* **Member sets** (``report_member_sets``, ``report_member_index``): every day of member
  days redone is written again in columns, and the index chunks of new numbers with it
  (``kopilka.reports.membersets``).

``rollup(session, full=True)`` rebuilds everything from scratch.
"""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Date,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from kopilka.core.db import now
from kopilka.core.money import from_units
from kopilka.events import queries as events_queries
from kopilka.ledger import queries as ledger_queries
from kopilka.members import queries as members_queries
from kopilka.purchases import queries as purchases_queries
from kopilka.reports import membersets
from kopilka.reports.models import (
    CohortCell,
    MemberDay,
    MemberIndex,
    MemberSet,
    PointsDaily,
    ReportMember,
    RollupState,
    SalesDaily,
)
from kopilka.reports.shared import first_of_month, local_day_bounds
from kopilka.spec.control_group import bucket_of

# How far a run looks back past the previous one for receipts and events (recomputing a
# day twice is harmless; missing one is not).
OVERLAP = dt.timedelta(minutes=10)
DEFAULT_SETTLE_SECONDS = 120
_MEMBER_BATCH = 5000


@dataclass
class RollupResult:
    full: bool
    days: int = 0
    entries_to: str | None = None
    members: int = 0
    months: list[dt.date] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "full": self.full,
            "days": self.days,
            "members_added": self.members,
            "months": [m.isoformat() for m in self.months],
        }


def uuid7_floor(moment: dt.datetime) -> uuid.UUID:
    """The smallest UUIDv7 of ``moment``'s millisecond: ids below it were made before."""
    ms = int(moment.timestamp() * 1000)
    return uuid.UUID(int=(ms << 80) | (0x7 << 76) | (0b10 << 62))


# ---------------------------------------------------------------------------- SQL helpers


def _sqlite_local_day(value: str | None, tz: str) -> str | None:
    if value is None:
        return None
    moment = dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
    return moment.astimezone(zoneinfo.ZoneInfo(tz)).date().isoformat()


def _sqlite_month(value: str | None) -> str | None:
    return None if value is None else value[:7] + "-01"


def prepare(session: Session) -> None:
    """Give SQLite the functions the report queries use (PostgreSQL has its own)."""
    if session.get_bind().dialect.name != "sqlite":
        return
    raw: Any = session.connection().connection.driver_connection
    raw.create_function("kopilka_local_day", 2, _sqlite_local_day, deterministic=True)
    raw.create_function("kopilka_month", 1, _sqlite_month, deterministic=True)


def local_day(session: Session, column: Any, tz: str) -> ColumnElement[Any]:
    """The local calendar day of a UTC timestamp column, in SQL."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone(tz, column), Date)
    return func.kopilka_local_day(column, tz, type_=Date)


def month_of(session: Session, column: Any) -> ColumnElement[Any]:
    """The first day of the month of a date column, in SQL."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.date_trunc("month", column), Date)
    return func.kopilka_month(column, type_=Date)


def _insert(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def _state(session: Session, name: str) -> str | None:
    row = session.get(RollupState, name, with_for_update=True)
    return row.value if row else None


def _set_state(session: Session, name: str, value: str) -> None:
    ins = _insert(session)(RollupState).values(name=name, value=value, updated_at=now())
    session.execute(
        ins.on_conflict_do_update(
            index_elements=["name"], set_={"value": value, "updated_at": now()}
        )
    )


def _lock(session: Session) -> None:
    """One rollup at a time (the worker's job and a `kopilka reports rollup` may meet)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(60160601)"))
    # SQLite: every transaction starts with BEGIN IMMEDIATE, so writers are serialised.


# ---------------------------------------------------------------------------- members


def _sync_members(
    session: Session,
    tz: str,
    since: uuid.UUID | None,
    only: list[uuid.UUID] | None = None,
    *,
    fresh: bool = False,
) -> list[int]:
    """Add a ``report_members`` row for every member with an id from ``since`` on (all
    when None; or the members ``only``) that has none yet, a batch at a time in id order,
    numbered on from the highest number. Returns the numbers given. ``fresh``: the table
    was emptied in this transaction (a full rollup), so none has one."""
    zone = zoneinfo.ZoneInfo(tz)
    conn = session.connection()
    ins = _insert(session)(ReportMember).on_conflict_do_nothing(index_elements=["member_id"])
    top = session.execute(select(func.max(ReportMember.number))).scalar()
    number = int(top) + 1 if top is not None else 0
    given: list[int] = []
    after: uuid.UUID | None = None
    while True:
        q = members_queries.joined_by_id(_MEMBER_BATCH, since=since, only=only, after=after)
        rows = session.execute(q).all()
        if not rows:
            return given
        after = rows[-1][0]
        known = (
            set()
            if fresh
            else set(
                session.scalars(
                    select(ReportMember.member_id).where(
                        ReportMember.member_id.in_([member_id for member_id, _ in rows])
                    )
                )
            )
        )
        batch = [
            {
                "member_id": member_id,
                "joined_day": created_at.astimezone(zone).date(),
                "bucket": bucket_of(member_id),
                "number": number + i,
            }
            for i, (member_id, created_at) in enumerate((m, c) for m, c in rows if m not in known)
        ]
        if batch:
            conn.execute(ins, batch)
        given.extend(range(number, number + len(batch)))
        number += len(batch)


def _unknown_buyers(session: Session, first: dt.date, last: dt.date) -> list[uuid.UUID]:
    """Members with member days in ``first`` … ``last`` but no ``report_members`` row."""
    return list(
        session.scalars(
            select(MemberDay.member_id)
            .outerjoin(ReportMember, ReportMember.member_id == MemberDay.member_id)
            .where(MemberDay.day.between(first, last), ReportMember.member_id.is_(None))
            .distinct()
        )
    )


# ---------------------------------------------------------------------------- receipts


def _ranges(days: Iterable[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Sorted days → inclusive runs of consecutive days."""
    out: list[tuple[dt.date, dt.date]] = []
    for d in sorted(set(days)):
        if out and out[-1][1] + dt.timedelta(days=1) == d:
            out[-1] = (out[-1][0], d)
        else:
            out.append((d, d))
    return out


def _redo_receipts(session: Session, tz: str, first: dt.date, last: dt.date) -> None:
    """Recompute sales and member days for the local days ``first`` … ``last``."""
    start, _ = local_day_bounds(first, tz)
    _, end = local_day_bounds(last, tz)
    session.execute(delete(SalesDaily).where(SalesDaily.day.between(first, last)))
    session.execute(delete(MemberDay).where(MemberDay.day.between(first, last)))
    # The receipts and their members' tiers are read as their domains build them; only the
    # figures are picked here (``with_only_columns`` keeps the join and the conditions, so
    # each statement stays one pass over ``purchases`` by ``occurred_at``).
    receipts = purchases_queries.confirmed_between(start, end)
    base = members_queries.with_tier(receipts, receipts.selected_columns.member_id)
    r = base.selected_columns
    day = local_day(session, r.occurred_at, tz).label("day")
    tier = func.coalesce(r.tier, "").label("tier")
    carded = (r.member_id.is_not(None)).label("carded")
    sales = base.with_only_columns(
        day,
        r.store,
        r.channel,
        tier,
        carded,
        func.count().label("receipts"),
        func.sum(r.total_due).label("revenue"),
        func.sum(r.subtotal).label("subtotal"),
        func.sum(r.discount).label("discount"),
        func.sum(r.redeemed_value).label("redeemed_value"),
    ).group_by(day, r.store, r.channel, tier, carded)
    session.execute(
        insert(SalesDaily).from_select(
            [
                "day",
                "store",
                "channel",
                "tier",
                "carded",
                "receipts",
                "revenue",
                "subtotal",
                "discount",
                "redeemed_value",
            ],
            sales,
        )
    )
    member_days = (
        base.with_only_columns(
            day,
            r.member_id,
            r.store,
            r.channel,
            func.max(func.coalesce(r.tier, "")).label("tier"),
            func.count().label("receipts"),
            func.sum(r.total_due).label("revenue"),
        )
        .where(r.member_id.is_not(None))
        .group_by(day, r.member_id, r.store, r.channel)
    )
    session.execute(
        insert(MemberDay).from_select(
            ["day", "member_id", "store", "channel", "tier", "receipts", "revenue"], member_days
        )
    )


def _dirty_days(session: Session, tz: str, since: dt.datetime, today: dt.date) -> set[dt.date]:
    """Local days with receipts recorded, or purchase events written, since ``since``."""
    zone = zoneinfo.ZoneInfo(tz)
    days = {today, today - dt.timedelta(days=1)}
    floor = uuid7_floor(since)
    for (occurred,) in session.execute(purchases_queries.occurred_at_from(floor)):
        days.add(occurred.astimezone(zone).date())

    for (data,) in session.execute(events_queries.purchase_event_data(floor)):
        raw = data.get("occurred_at") if isinstance(data, dict) else None
        if isinstance(raw, str):
            try:
                days.add(dt.datetime.fromisoformat(raw).astimezone(zone).date())
            except ValueError:
                continue
    return {d for d in days if d <= today}


# ---------------------------------------------------------------------------- points

# Entry kinds whose effect on the member's wallet follows from the kind alone.
_PLUS = ("earn", "reward")
_MINUS = ("redeem", "expire")
_NEUTRAL = ("transfer", "settle", "hold")


def _points_rows(
    session: Session, tz: str, lo: uuid.UUID | None, hi: uuid.UUID | None
) -> list[tuple[Any, ...]]:
    """Per day, currency, store, channel, tier, kind class and sign: the member-side sum
    of the entries with ids in [lo, hi)."""
    # Raw integer units of 1/10 000 throughout (``Amount`` would turn them into Decimal).
    entries = ledger_queries.member_entries(lo, hi, leaving_out=_NEUTRAL)
    entries = purchases_queries.with_store_and_channel(
        entries, entries.selected_columns.purchase_id
    )
    entries = members_queries.with_tier(entries, entries.selected_columns.member_id)
    e = entries.selected_columns
    signed = case(
        (e.kind.in_(_PLUS), e.amount),
        (e.kind.in_(_MINUS), -e.amount),
        else_=e.member_net,
    )
    klass = case(
        (e.kind.in_(_PLUS), literal("earned")),
        (e.kind == "redeem", literal("redeemed")),
        (e.kind == "expire", literal("expired")),
        (e.kind == "adjust", literal("adjusted")),
        else_=literal("reversed"),
    )
    per_entry = entries.with_only_columns(
        local_day(session, e.occurred_at, tz).label("day"),
        e.currency,
        func.coalesce(e.store, "").label("store"),
        func.coalesce(e.channel, "").label("channel"),
        func.coalesce(e.tier, "").label("tier"),
        klass.label("klass"),
        signed.label("signed"),
    )
    sub = per_entry.subquery()
    sign = case((sub.c.signed > 0, 1), else_=-1)
    q = select(
        sub.c.day,
        sub.c.currency,
        sub.c.store,
        sub.c.channel,
        sub.c.tier,
        sub.c.klass,
        sign.label("sign"),
        func.sum(sub.c.signed),
    ).group_by(sub.c.day, sub.c.currency, sub.c.store, sub.c.channel, sub.c.tier, sub.c.klass, sign)
    return list(session.execute(q).all())


_FLOW = {
    ("earned", 1): "earned",
    ("earned", -1): "earned",
    ("redeemed", -1): "redeemed",
    ("redeemed", 1): "redeemed",
    ("expired", -1): "expired",
    ("expired", 1): "expired",
    ("adjusted", 1): "adjusted_in",
    ("adjusted", -1): "adjusted_out",
    ("reversed", 1): "restored",
    ("reversed", -1): "revoked",
}
# Flows that take points out of wallets are stored as positive amounts.
OUTFLOWS = frozenset({"redeemed", "expired", "adjusted_out", "revoked"})


def _add_points(session: Session, rows: list[tuple[Any, ...]]) -> None:
    merged: dict[tuple[Any, ...], Decimal] = {}
    for day, currency, store, channel, tier, klass, sign, total in rows:
        if day is None or total is None:
            continue
        day = day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day))
        flow = _FLOW[(klass, int(sign))]
        amount = _decimal_units(total)
        if flow in OUTFLOWS:
            amount = -amount
        if amount == 0:
            continue
        key = (day, currency, flow, store, channel, tier)
        merged[key] = merged.get(key, Decimal(0)) + amount
    if not merged:
        return
    ins = _insert(session)(PointsDaily)
    stmt = ins.on_conflict_do_update(
        index_elements=["day", "currency", "flow", "store", "channel", "tier"],
        set_={"amount": PointsDaily.__table__.c.amount + ins.excluded.amount},
    )
    session.execute(
        stmt,
        [
            {
                "day": k[0],
                "currency": k[1],
                "flow": k[2],
                "store": k[3],
                "channel": k[4],
                "tier": k[5],
                "amount": v,
            }
            for k, v in merged.items()
        ],
    )


def _decimal_units(total: Any) -> Decimal:
    """A sum of raw ``Amount`` units (integers of 1/10 000) → Decimal."""
    return from_units(int(total))


# ---------------------------------------------------------------------------- cohorts


def _redo_cohorts(session: Session, months: Iterable[dt.date]) -> None:
    for month in sorted(set(months)):
        nxt = first_of_month(month + dt.timedelta(days=32))
        session.execute(delete(CohortCell).where(CohortCell.month == month))
        q = (
            select(
                ReportMember.joined_day,
                literal(month, Date).label("month"),
                func.count(func.distinct(MemberDay.member_id)).label("members"),
            )
            .join(ReportMember, ReportMember.member_id == MemberDay.member_id)
            .where(MemberDay.day >= month, MemberDay.day < nxt, ReportMember.joined_day < nxt)
            .group_by(ReportMember.joined_day)
        )
        session.execute(insert(CohortCell).from_select(["joined_day", "month", "members"], q))


# ---------------------------------------------------------------------------- the job


def rollup(
    session: Session,
    tz: str,
    *,
    full: bool = False,
    at: dt.datetime | None = None,
    settle_seconds: int = DEFAULT_SETTLE_SECONDS,
) -> RollupResult:
    """Bring the report tables up to date and commit. ``full`` rebuilds them all."""
    at = at or now()
    prepare(session)
    _lock(session)
    result = RollupResult(full=full)
    run = uuid.uuid4().hex  # names what this run writes, for the readers' caches
    today = at.astimezone(zoneinfo.ZoneInfo(tz)).date()
    hi = uuid7_floor(at - dt.timedelta(seconds=settle_seconds)) if settle_seconds else None
    if hi is None:
        hi = uuid7_floor(at + dt.timedelta(milliseconds=1))
    ranges: list[tuple[dt.date, dt.date]] = []
    if full:
        for table in (
            SalesDaily,
            MemberDay,
            MemberSet,
            MemberIndex,
            PointsDaily,
            CohortCell,
            ReportMember,
        ):
            session.execute(delete(table))
        first = session.execute(purchases_queries.first_occurred_at()).scalar()
        days: set[dt.date] = set()
        if first is not None:
            start = first.astimezone(zoneinfo.ZoneInfo(tz)).date()
            days = {start + dt.timedelta(days=i) for i in range((today - start).days + 1)}
            ranges = [(start, today)]
            _redo_receipts(session, tz, start, today)
        numbers = _sync_members(session, tz, None, fresh=True)
        _add_points(session, _points_rows(session, tz, None, hi))
        months = {first_of_month(d) for d in days}
    else:
        last_run = _state(session, "last_run")
        since = dt.datetime.fromisoformat(last_run) - OVERLAP if last_run else None
        lo_raw = _state(session, "entries_to")
        lo = uuid.UUID(lo_raw) if lo_raw else None
        if since is None:
            # Never run: the whole history is dirty.
            first = session.execute(purchases_queries.first_occurred_at()).scalar()
            start = first.astimezone(zoneinfo.ZoneInfo(tz)).date() if first else today
            days = {start + dt.timedelta(days=i) for i in range((today - start).days + 1)}
        else:
            days = _dirty_days(session, tz, since, today)
        ranges = _ranges(days)
        for a, b in ranges:
            _redo_receipts(session, tz, a, b)
        # After the receipts, so that every member of a member day read has a row (and a
        # number) even if they joined while this run was under way.
        numbers = _sync_members(session, tz, uuid7_floor(since) if since else None)
        if since is not None:  # and anyone older who bought without a row (never, but)
            for a, b in ranges:
                missing = _unknown_buyers(session, a, b)
                for i in range(0, len(missing), _MEMBER_BATCH):
                    numbers += _sync_members(session, tz, None, missing[i : i + _MEMBER_BATCH])
        if lo is None or lo < hi:
            _add_points(session, _points_rows(session, tz, lo, hi))
        elif lo is not None:
            hi = lo  # a longer settle time than last run's: the mark never moves back
        months = {first_of_month(d) for d in days}
    result.members = len(numbers)
    for a, b in ranges:
        membersets.write_days(session, a, b, run)
    membersets.write_index(session, membersets.chunks_to_write(session, numbers), run)
    _redo_cohorts(session, months)
    _set_state(session, "entries_to", str(hi))
    _set_state(session, "last_run", at.isoformat())
    if full:
        _set_state(session, "full_at", at.isoformat())
    session.commit()
    result.days = len(days)
    result.entries_to = str(hi)
    result.months = sorted(months)
    return result


def last_run(session: Session) -> dt.datetime | None:
    row = session.get(RollupState, "last_run")
    return dt.datetime.fromisoformat(row.value) if row else None


__all__ = [
    "OUTFLOWS",
    "RollupResult",
    "last_run",
    "local_day",
    "month_of",
    "prepare",
    "rollup",
    "uuid7_floor",
]
