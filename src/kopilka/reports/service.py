"""Dashboard figures, read from the rollup tables (``reports.rollup`` keeps them fresh).

Every report answers a ``Report``: named columns and rows (the CSV and the chart data) and
a summary of headline figures. Amounts are ``Decimal``; rates are ``Decimal`` fractions
(0.25 = 25 %), rounded half-up to 4 places; ``None`` where a rate has no denominator.
Definitions (also in docs/reports.md):

* issued = earned + adjusted in − revoked (points taken back by returns and cancellations);
* redeemed (net) = redeemed − restored (points given back by returns and cancellations);
* breakage rate = expired ÷ issued; redemption rate = redeemed (net) ÷ issued, in the period;
* liability = (available + pending) × the currency's money value;
* ROI = (incremental revenue − cost) ÷ cost, where incremental revenue = (revenue per
  member outside the control group − revenue per member in it) × members outside it, and
  cost = the money value of the points issued + the discounts given to members;
* tier movement: changes of ``tier_changes`` by the local day of their ``at``; downgrades
  include the ends of grace periods (``grace_expired``);
* campaign cost = the money value of the points a campaign's rules gave + the discounts
  they gave, on confirmed receipts of the period; campaign lift = revenue per member
  reached ÷ revenue per other active member outside the control group − 1 (observational,
  not a randomised comparison: see docs/reports.md).
"""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kopilka.core import db as core_db
from kopilka.core.dates import day_error
from kopilka.core.db import now
from kopilka.core.errors import Problem, field_error, validation_problem
from kopilka.core.money import ZERO, from_units, round_half_up
from kopilka.ledger import queries as ledger
from kopilka.members import queries as members
from kopilka.program.service import current_program
from kopilka.purchases import queries as purchases
from kopilka.reports import membersets
from kopilka.reports.models import (
    CohortCell,
    PointsDaily,
    ReportMember,
    SalesDaily,
)
from kopilka.reports.rollup import local_day, prepare
from kopilka.reports.shared import (
    add_months,
    as_date,
    bucket_day,
    first_of_month,
    local_day_bounds,
)
from kopilka.rules import queries as rules
from kopilka.spec.control_group import control_cut, in_control_group
from kopilka.spec.program import ProgramSpec
from kopilka.tiers import queries as tier_queries

GRAINS = ("day", "week", "month")
CHANNELS = ("pos", "online", "app")
MAX_DAYS = 3 * 366
MONEY = 2  # the base currency's precision
Z95 = Decimal("1.96")
RATE_PLACES = Decimal("0.0001")

__all__ = [
    "HONOURS",
    "REPORTS",
    "Filters",
    "Report",
    "in_control_group",
    "parse_filters",
    "run",
]

# Which filters each report honours (the others are ignored, and said so in the answer's
# ``ignored_filters``; docs/reports.md has the same table). ``period`` is from/to/grain.
HONOURS: dict[str, frozenset[str]] = {
    "acquisition": frozenset({"period", "tier"}),
    "active": frozenset({"period", "store", "channel", "tier"}),
    "receipts": frozenset({"period", "store", "channel", "tier"}),
    "points": frozenset({"period", "store", "channel", "tier"}),
    "liability": frozenset({"period"}),
    "cohorts": frozenset({"period"}),
    "tiers": frozenset(),
    "roi": frozenset({"period"}),
    "tier_movement": frozenset({"period", "tier"}),
    "campaigns": frozenset({"period", "store", "channel"}),
}


@dataclass(frozen=True)
class Filters:
    start: dt.date
    end: dt.date  # inclusive
    store: str | None = None
    channel: str | None = None
    tier: str | None = None
    grain: str = "day"

    def as_json(self) -> dict[str, Any]:
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "store": self.store,
            "channel": self.channel,
            "tier": self.tier,
            "grain": self.grain,
        }

    def given(self) -> list[str]:
        """The filters other than the period that were given."""
        return [name for name in ("store", "channel", "tier") if getattr(self, name)]

    def buckets(self) -> list[dt.date]:
        out: list[dt.date] = []
        d = self.start
        while d <= self.end:
            b = bucket_day(d, self.grain)
            if not out or out[-1] != b:
                out.append(b)
            d += dt.timedelta(days=1)
        return out


@dataclass
class Report:
    name: str
    filters: Filters
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def items(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, (_plain(v) for v in r), strict=True)) for r in self.rows]

    def ignored_filters(self) -> list[str]:
        """The filters given that this report does not apply (store, channel, tier)."""
        honours = HONOURS.get(self.name, frozenset())
        return [name for name in self.filters.given() if name not in honours]

    def as_json(self) -> dict[str, Any]:
        return {
            "report": self.name,
            "filters": self.filters.as_json(),
            "ignored_filters": self.ignored_filters(),
            "summary": _plain(self.summary),
            "columns": self.columns,
            "items": self.items(),
        }


def _plain(value: Any) -> Any:
    """JSON-ready: decimals as strings, dates as ISO text, containers recursively."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def rate(part: Decimal | int, whole: Decimal | int) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(RATE_PLACES, rounding=ROUND_HALF_UP)


def money(value: Decimal) -> Decimal:
    return round_half_up(value, MONEY)


def _points_of(precision: int) -> Any:
    """Points are exact to their currency's precision already; this only fixes the places
    shown (``5.0000`` → ``5.00``)."""

    def q(value: Decimal) -> Decimal:
        return round_half_up(value, precision)

    return q


# ---------------------------------------------------------------------------- filters


def local_dates(
    session: Session, start: str | None, end: str | None
) -> tuple[dt.date, dt.date, str]:
    """A report's ``from``/``to`` query parameters (local dates, inclusive; the 90 days up
    to today by default), checked as every report's (422 naming the parameter): the first
    and last day and the programme's time zone. Today by ``core.db``'s clock, read where it
    is (tests move it)."""
    spec = current_program(session).spec
    today = core_db.now().astimezone(zoneinfo.ZoneInfo(spec.timezone)).date()
    f = parse_filters(spec, today, start=start, end=end)
    return f.start, f.end, spec.timezone


def parse_filters(
    program: ProgramSpec,
    today: dt.date,
    *,
    start: str | None = None,
    end: str | None = None,
    store: str | None = None,
    channel: str | None = None,
    tier: str | None = None,
    grain: str | None = None,
) -> Filters:
    """Query parameters → ``Filters``, or a 422 naming each bad parameter. The default
    period is the 90 days up to today."""
    errors = []

    def day(raw: str | None, name: str, default: dt.date) -> dt.date:
        if not raw:
            return default
        try:
            value = dt.date.fromisoformat(raw)
        except ValueError:
            errors.append({**field_error(name, "a date as YYYY-MM-DD", "date"), "in": "query"})
            return default
        if (error := day_error(value)) is not None:
            errors.append({**field_error(name, error[1], error[0]), "in": "query"})
            return default
        return value

    last = day(end, "to", today)
    first = day(start, "from", last - dt.timedelta(days=89))
    if first > last:
        errors.append({**field_error("from", "must not be after 'to'", "range"), "in": "query"})
    elif (last - first).days >= MAX_DAYS:
        errors.append(
            {**field_error("from", f"at most {MAX_DAYS} days per report", "range"), "in": "query"}
        )
    store = store or None
    if store is not None and store not in {s.code for s in program.stores}:
        errors.append(
            {**field_error("store", f"unknown store {store!r}", "unknown"), "in": "query"}
        )
    channel = channel or None
    if channel is not None and channel not in CHANNELS:
        errors.append(
            {**field_error("channel", f"one of {', '.join(CHANNELS)}", "unknown"), "in": "query"}
        )
    grain = grain or "day"
    if grain not in GRAINS:
        errors.append(
            {**field_error("grain", f"one of {', '.join(GRAINS)}", "unknown"), "in": "query"}
        )
    tier = tier or None
    if tier is not None and len(tier) > 32:
        errors.append({**field_error("tier", "at most 32 characters", "length"), "in": "query"})
    if errors:
        raise validation_problem(errors)
    return Filters(first, last, store, channel, tier, grain)


def _sales_where(f: Filters) -> list[Any]:
    cond: list[Any] = [SalesDaily.day.between(f.start, f.end)]
    if f.store:
        cond.append(SalesDaily.store == f.store)
    if f.channel:
        cond.append(SalesDaily.channel == f.channel)
    if f.tier:
        cond.append(SalesDaily.tier == f.tier)
    return cond


def _points_where(f: Filters, *, period: bool = True) -> list[Any]:
    cond: list[Any] = [PointsDaily.day.between(f.start, f.end)] if period else []
    if f.store:
        cond.append(PointsDaily.store == f.store)
    if f.channel:
        cond.append(PointsDaily.channel == f.channel)
    if f.tier:
        cond.append(PointsDaily.tier == f.tier)
    return cond


# ---------------------------------------------------------------------------- members


def acquisition(session: Session, program: ProgramSpec, f: Filters) -> Report:
    """New members per day, week or month (``tier``: their tier now)."""
    q = (
        select(ReportMember.joined_day, func.count())
        .where(ReportMember.joined_day.between(f.start, f.end))
        .group_by(ReportMember.joined_day)
    )
    if f.tier:
        of_tier = members.of_tier(f.tier)
        q = q.join(of_tier, of_tier.c.member_id == ReportMember.member_id)
    per: dict[dt.date, int] = defaultdict(int)
    for day, n in session.execute(q):
        per[bucket_day(as_date(day), f.grain)] += int(n)
    rows = [[b, per.get(b, 0)] for b in f.buckets()]
    return Report(
        "acquisition",
        f,
        ["period", "members_joined"],
        rows,
        {"members_joined": sum(r[1] for r in rows)},
    )


def active(session: Session, program: ProgramSpec, f: Filters) -> Report:
    """Members who bought in the 30 and the 90 days up to the end of the period."""
    total, counts = _active_counts(session, f)
    rows = []
    summary: dict[str, Any] = {"as_of": f.end, "members": total}
    for window, n in counts.items():
        rows.append([window, n, rate(n, total)])
        summary[f"active_{window}"] = n
        summary[f"active_{window}_share"] = rate(n, total)
    return Report("active", f, ["window_days", "members", "share_of_members"], rows, summary)


ACTIVE_WINDOWS = (30, 90)


def _active_counts(session: Session, f: Filters) -> tuple[int, dict[int, int]]:
    """Members who had joined by the end of the period, and per window the distinct
    members *of them* with member days in it (``store``, ``channel``, ``tier`` applied):
    a receipt dated before its member joined (a till's replay) must not count a member
    the share's denominator leaves out."""
    everyone = membersets.members(session)
    joined_by = everyone.joined_by(f.end)
    total = int(np.count_nonzero(joined_by))
    longest = max(ACTIVE_WINDOWS)
    days = membersets.days(session, f.end - dt.timedelta(days=longest - 1), f.end)
    counts: dict[int, int] = {}
    for window in ACTIVE_WINDOWS:
        first = (f.end - dt.timedelta(days=window - 1)).toordinal()
        chosen = [d for d in days if d.ordinal >= first]
        sel = membersets.Selection.of(chosen, f.store, f.channel, f.tier)
        size = sel.size(len(everyone))
        counts[window] = int(np.count_nonzero(sel.present(size) & _padded(joined_by, size)))
    return total, counts


def tiers(session: Session, program: ProgramSpec, f: Filters) -> Report:
    """Members per tier **now**: a snapshot of ``members.tier`` (erased members left out,
    members without a tier under the empty name), whatever the filters. Levels in the
    programme's order, then tiers the programme no longer has. How members moved between
    tiers in a period is ``tier_movement``."""
    counts = dict(session.execute(members.count_by_tier()).all())
    total = sum(counts.values())
    rank = _tier_rank(program)
    rows = [
        [t, int(n), rate(int(n), total)]
        for t, n in sorted(counts.items(), key=lambda kv: rank(kv[0] or None))
    ]
    summary = {"members": total, "snapshot": True, "as_of": now()}
    return Report("tiers", f, ["tier", "members", "share"], rows, summary)


def _tier_rank(program: ProgramSpec) -> Any:
    """A sort key for tier codes: none first, the programme's levels in order, then the
    codes it no longer has, alphabetically."""
    levels = [lv.code for lv in program.tiers.levels] if program.tiers else []

    def key(code: str | None) -> tuple[int, int, str]:
        if code is None:
            return (0, 0, "")
        if code in levels:
            return (1, levels.index(code), code)
        return (2, 0, code)

    return key


# Reasons of ``tier_changes`` → the column they count in.
TIER_MOVES = {
    "upgrade": "upgrades",
    "downgrade": "downgrades",
    "grace_expired": "downgrades",
    "manual": "manual",
    "program_changed": "program_changed",
}
TIER_MOVE_COLUMNS = ["upgrades", "downgrades", "manual", "program_changed"]


def tier_movement(session: Session, program: ProgramSpec, f: Filters) -> Report:
    """Tier changes per day, week or month: upgrades, downgrades (the end of a grace
    period included), manual assignments and changes forced by a new programme; and the
    from → to matrix of the whole period. ``tier``: only changes from or to that tier.
    Read from ``tier_changes`` by the local day of the change's moment (``at``); store and
    channel do not apply (a change belongs to no store)."""
    tz = program.timezone
    start, _ = local_day_bounds(f.start, tz)
    _, end = local_day_bounds(f.end, tz)
    changes = tier_queries.changes_between(start, end, f.tier)
    day = local_day(session, changes.c.at, tz).label("day")
    moves = (changes.c.reason, changes.c.from_tier, changes.c.to_tier)
    q = select(day, *moves, func.count()).group_by(day, *moves)
    per: dict[tuple[dt.date, str], int] = defaultdict(int)
    by_reason: dict[str, int] = dict.fromkeys(TIER_MOVES, 0)
    matrix: dict[tuple[str | None, str | None], dict[str, int]] = {}
    for d, reason, from_tier, to_tier, n in session.execute(q):
        column = TIER_MOVES.get(str(reason), "program_changed")
        per[(bucket_day(as_date(d), f.grain), column)] += int(n)
        by_reason[str(reason)] = by_reason.get(str(reason), 0) + int(n)
        cell = matrix.setdefault((from_tier, to_tier), dict.fromkeys(TIER_MOVE_COLUMNS, 0))
        cell[column] += int(n)
    rows: list[list[Any]] = []
    for b in f.buckets():
        counts = [per.get((b, c), 0) for c in TIER_MOVE_COLUMNS]
        rows.append([b, sum(counts), *counts])
    moved = session.execute(select(func.count(func.distinct(changes.c.member_id)))).scalar_one()
    rank = _tier_rank(program)
    summary: dict[str, Any] = {
        "changes": sum(r[1] for r in rows),
        **{c: sum(r[2 + i] for r in rows) for i, c in enumerate(TIER_MOVE_COLUMNS)},
        "by_reason": by_reason,
        "members": int(moved),
        "matrix": [
            {"from": a, "to": b, "changes": sum(cell.values()), **cell}
            for (a, b), cell in sorted(
                matrix.items(), key=lambda kv: (rank(kv[0][0]), rank(kv[0][1]))
            )
        ],
    }
    return Report("tier_movement", f, ["period", "changes", *TIER_MOVE_COLUMNS], rows, summary)


# ---------------------------------------------------------------------------- receipts


def receipts(session: Session, program: ProgramSpec, f: Filters) -> Report:
    """Receipts, the share with a card, and the average receipt of members vs others."""
    q = (
        select(
            SalesDaily.day,
            SalesDaily.carded,
            func.sum(SalesDaily.receipts),
            func.sum(SalesDaily.revenue),
            func.sum(SalesDaily.discount),
            func.sum(SalesDaily.redeemed_value),
        )
        .where(*_sales_where(f))
        .group_by(SalesDaily.day, SalesDaily.carded)
    )
    n: dict[tuple[dt.date, bool], int] = defaultdict(int)
    rev: dict[tuple[dt.date, bool], Decimal] = defaultdict(Decimal)
    disc = redeemed = ZERO
    for day, carded, cnt, revenue, discount, red in session.execute(q):
        key = (bucket_day(as_date(day), f.grain), bool(carded))
        n[key] += int(cnt)
        rev[key] += Decimal(revenue)
        if carded:
            disc += Decimal(discount)
            redeemed += Decimal(red)
    rows = []
    for b in f.buckets():
        nm, na = n[(b, True)], n[(b, False)]
        rm, ra = rev[(b, True)], rev[(b, False)]
        rows.append(
            [
                b,
                nm + na,
                nm,
                rate(nm, nm + na),
                money(rm),
                money(ra),
                money(rm / nm) if nm else None,
                money(ra / na) if na else None,
            ]
        )
    nm = sum(v for (_, c), v in n.items() if c)
    na = sum(v for (_, c), v in n.items() if not c)
    rm = sum((v for (_, c), v in rev.items() if c), ZERO)
    ra = sum((v for (_, c), v in rev.items() if not c), ZERO)
    summary = {
        "receipts": nm + na,
        "receipts_with_card": nm,
        "card_share": rate(nm, nm + na),
        "revenue_members": money(rm),
        "revenue_anonymous": money(ra),
        "avg_receipt_members": money(rm / nm) if nm else None,
        "avg_receipt_anonymous": money(ra / na) if na else None,
        "discounts_members": money(disc),
        "points_spent_value": money(redeemed),
    }
    return Report(
        "receipts",
        f,
        [
            "period",
            "receipts",
            "receipts_with_card",
            "card_share",
            "revenue_members",
            "revenue_anonymous",
            "avg_receipt_members",
            "avg_receipt_anonymous",
        ],
        rows,
        summary,
    )


# ---------------------------------------------------------------------------- points


@dataclass
class Flows:
    earned: Decimal = ZERO
    adjusted_in: Decimal = ZERO
    adjusted_out: Decimal = ZERO
    redeemed: Decimal = ZERO
    restored: Decimal = ZERO
    revoked: Decimal = ZERO
    expired: Decimal = ZERO

    def add(self, flow: str, amount: Decimal) -> None:
        setattr(self, flow, getattr(self, flow) + amount)

    @property
    def issued(self) -> Decimal:
        return self.earned + self.adjusted_in - self.revoked

    @property
    def redeemed_net(self) -> Decimal:
        return self.redeemed - self.restored

    @property
    def net(self) -> Decimal:
        """What the flows did to the members' wallets together."""
        return self.issued - self.redeemed_net - self.expired - self.adjusted_out


def _flows(session: Session, cond: list[Any], grain: str | None) -> dict[Any, Flows]:
    q = (
        select(
            PointsDaily.day, PointsDaily.currency, PointsDaily.flow, func.sum(PointsDaily.amount)
        )
        .where(*cond)
        .group_by(PointsDaily.day, PointsDaily.currency, PointsDaily.flow)
    )
    out: dict[Any, Flows] = defaultdict(Flows)
    for day, currency, flow, amount in session.execute(q):
        key = (bucket_day(as_date(day), grain), currency) if grain else currency
        out[key].add(flow, Decimal(amount))
    return out


def points(session: Session, program: ProgramSpec, f: Filters) -> Report:
    """Points issued, redeemed and expired per period and currency; breakage and
    redemption rates over the whole period."""
    per = _flows(session, _points_where(f), f.grain)
    rows = []
    totals: dict[str, Flows] = defaultdict(Flows)
    for b in f.buckets():
        for cur in program.currencies:
            fl = per.get((b, cur.code), Flows())
            q = _points_of(cur.precision)
            rows.append(
                [b, cur.code, q(fl.issued), q(fl.redeemed_net), q(fl.expired), q(fl.adjusted_out)]
            )
            t = totals[cur.code]
            for name in ("earned", "adjusted_in", "adjusted_out", "redeemed", "restored"):
                t.add(name, getattr(fl, name))
            t.add("revoked", fl.revoked)
            t.add("expired", fl.expired)
    summary = {
        cur.code: {
            "issued": _points_of(cur.precision)(totals[cur.code].issued),
            "redeemed": _points_of(cur.precision)(totals[cur.code].redeemed_net),
            "expired": _points_of(cur.precision)(totals[cur.code].expired),
            "adjusted_out": _points_of(cur.precision)(totals[cur.code].adjusted_out),
            "issued_value": money(totals[cur.code].issued * cur.value),
            "breakage_rate": rate(totals[cur.code].expired, totals[cur.code].issued),
            "redemption_rate": rate(totals[cur.code].redeemed_net, totals[cur.code].issued),
        }
        for cur in program.currencies
    }
    return Report(
        "points",
        f,
        ["period", "currency", "issued", "redeemed", "expired", "adjusted_out"],
        rows,
        summary,
    )


def outstanding_now(session: Session, at: dt.datetime | None = None) -> dict[str, Decimal]:
    """Per currency, exactly: the available and pending points of all member wallets
    (their cached balances less the lots that have expired but whose expiry entry the
    job has not written yet)."""
    at = at or now()
    held = dict(session.execute(ledger.member_balances()).all())
    lapsed = dict(session.execute(ledger.lapsed_lots(at)).all())
    return {c: Decimal(v) - Decimal(lapsed.get(c) or 0) for c, v in held.items()}


def liability(session: Session, program: ProgramSpec, f: Filters) -> Report:
    """Outstanding points and their money value: now (exact), and at the end of each
    period (from the rollup's flows, whole programme)."""
    before = _flows(session, [PointsDaily.day < f.start], None)  # everything up to the period
    per = _flows(session, [PointsDaily.day.between(f.start, f.end)], f.grain)
    rows = []
    running = {c.code: before.get(c.code, Flows()).net for c in program.currencies}
    for b in f.buckets():
        for cur in program.currencies:
            running[cur.code] += per.get((b, cur.code), Flows()).net
            pts_ = _points_of(cur.precision)(running[cur.code])
            rows.append([b, cur.code, pts_, money(running[cur.code] * cur.value)])
    outstanding = outstanding_now(session)
    summary: dict[str, Any] = {}
    total = ZERO
    for cur in program.currencies:
        pts = outstanding.get(cur.code, ZERO)
        value = money(pts * cur.value)
        total += value
        summary[cur.code] = {
            "outstanding": _points_of(cur.precision)(pts),
            "value": cur.value,
            "liability": value,
        }
    summary["liability_total"] = money(total)
    return Report("liability", f, ["period", "currency", "outstanding", "liability"], rows, summary)


# ---------------------------------------------------------------------------- cohorts


def cohorts(session: Session, program: ProgramSpec, f: Filters, horizon: int = 12) -> Report:
    """For each month's new members *in the period* (joined from ``f.start`` to ``f.end``:
    the first and last months are cut by the period), the share who bought in each later
    month (month 0 is the month they joined). The size and the cells count the same
    members (``report_cohorts`` is kept by joining day), so a share never exceeds 1."""
    sizes: dict[dt.date, int] = defaultdict(int)
    for day, n in session.execute(
        select(ReportMember.joined_day, func.count())
        .where(ReportMember.joined_day.between(f.start, f.end))
        .group_by(ReportMember.joined_day)
    ):
        sizes[first_of_month(as_date(day))] += int(n)
    first, last = first_of_month(f.start), first_of_month(f.end)
    cells: dict[tuple[dt.date, dt.date], int] = defaultdict(int)
    for day, m, n in session.execute(
        select(CohortCell.joined_day, CohortCell.month, CohortCell.members).where(
            CohortCell.joined_day.between(f.start, f.end),
            CohortCell.month < add_months(last, horizon),
        )
    ):
        cells[(first_of_month(as_date(day)), as_date(m))] += int(n)
    this_month = first_of_month(now().date())
    rows: list[list[Any]] = []
    cohort = first
    while cohort <= last:
        size = sizes.get(cohort, 0)
        for k in range(horizon):
            m = add_months(cohort, k)
            if m > this_month:
                break
            active_n = cells.get((cohort, m), 0)
            rows.append([cohort, size, k, active_n, rate(active_n, size)])
        cohort = add_months(cohort, 1)
    summary: dict[str, Any] = {}
    for k in (1, 2, 3):
        pairs = [(int(r[3]), int(r[1])) for r in rows if r[2] == k]
        summary[f"retention_month_{k}"] = rate(sum(a for a, _ in pairs), sum(n for _, n in pairs))
    return Report(
        "cohorts", f, ["cohort", "members", "months_after", "active", "retention"], rows, summary
    )


# ---------------------------------------------------------------------------- ROI


@dataclass(frozen=True)
class GroupStats:
    members: int
    total: Decimal  # revenue of the group in the period
    squares: Decimal  # sum of squared revenue per member

    @property
    def mean(self) -> Decimal:
        return self.total / self.members if self.members else ZERO

    @property
    def variance(self) -> Decimal:
        n = self.members
        if n < 2:
            return ZERO
        return max(ZERO, (self.squares - self.total * self.total / n) / (n - 1))


def _group_stats(session: Session, f: Filters, cut: int) -> tuple[GroupStats, GroupStats]:
    """(outside, inside) the control group: members who had joined by the end of the
    period, their revenue in it and its sum of squares, in exact integers."""
    everyone = membersets.members(session)
    sel = membersets.Selection.of(membersets.days(session, f.start, f.end))
    size = sel.size(len(everyone))
    joined = _padded(everyone.joined_by(f.end), size)
    outside = _padded(everyone.outside(cut), size)
    revenue = sel.per_member(size)
    bought = sel.present(size) & joined
    scale = Decimal(10_000)

    def stats(group: npt.NDArray[np.bool_]) -> GroupStats:
        x = revenue[bought & group]
        return GroupStats(
            int(np.count_nonzero(joined & group)),
            Decimal(membersets.exact_sum(x)) / scale,
            Decimal(membersets.exact_dot(x, x)) / scale / scale,
        )

    return stats(outside), stats(~outside)


def _padded(mask: npt.NDArray[np.bool_], size: int) -> npt.NDArray[np.bool_]:
    """A per-member mask as long as ``size`` (numbers past the index: False)."""
    if len(mask) >= size:
        return mask[:size]
    return np.concatenate([mask, np.zeros(size - len(mask), dtype=np.bool_)])


def roi(session: Session, program: ProgramSpec, f: Filters) -> Report:
    """The programme's return against its control group, with a 95 % confidence interval
    (normal approximation of the difference of two means, Welch's standard error)."""
    share = _control_share(program)
    cut = control_cut(share)
    treated, control = _group_stats(session, f, cut)
    pts = points(session, program, Filters(f.start, f.end))
    cost_points = sum(
        (Decimal(pts.summary[c.code]["issued_value"]) for c in program.currencies), ZERO
    )
    rec = receipts(session, program, Filters(f.start, f.end))
    cost_discounts = Decimal(rec.summary["discounts_members"])
    cost = money(cost_points + cost_discounts)
    rows = [
        ["members", treated.members, treated.total, money(treated.mean), _sd(treated)],
        ["control", control.members, control.total, money(control.mean), _sd(control)],
    ]
    summary: dict[str, Any] = {
        "control_group_share": share,
        "configured": share > 0,
        "members_outside": treated.members,
        "members_control": control.members,
        "revenue_per_member": money(treated.mean),
        "revenue_per_control_member": money(control.mean),
        "cost_points": money(cost_points),
        "cost_discounts": money(cost_discounts),
        "cost": cost,
        "incremental_revenue": None,
        "incremental_revenue_low": None,
        "incremental_revenue_high": None,
        "roi": None,
        "roi_low": None,
        "roi_high": None,
        "lift": None,
    }
    if treated.members and control.members:
        diff = treated.mean - control.mean
        inc = diff * treated.members
        summary["incremental_revenue"] = money(inc)
        summary["lift"] = rate(diff, control.mean) if control.mean else None
        if treated.members >= 2 and control.members >= 2:
            se = (treated.variance / treated.members + control.variance / control.members).sqrt()
            half = Z95 * se * treated.members
            summary["incremental_revenue_low"] = money(inc - half)
            summary["incremental_revenue_high"] = money(inc + half)
            if cost > 0:
                summary["roi_low"] = rate(inc - half - cost, cost)
                summary["roi_high"] = rate(inc + half - cost, cost)
        if cost > 0:
            summary["roi"] = rate(inc - cost, cost)
    return Report(
        "roi",
        f,
        ["group", "members", "revenue", "revenue_per_member", "revenue_sd"],
        rows,
        summary,
    )


def _sd(g: GroupStats) -> Decimal:
    return money(g.variance.sqrt()) if g.variance > 0 else ZERO


def _control_share(program: ProgramSpec) -> Decimal:
    share = getattr(program, "control_group_share", None)
    return Decimal(share) if share else ZERO


def is_control_member(session: Session, member_id: uuid.UUID) -> bool:
    """Whether a member is in the control group of the programme in force."""
    return in_control_group(member_id, _control_share(current_program(session).spec))


# ---------------------------------------------------------------------------- campaigns


@dataclass
class _Campaign:
    code: str
    name: str | None
    purchases: int = 0
    members: int = 0
    points: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    discounts: Decimal = ZERO
    revenue: Decimal = ZERO  # of the members reached, in the period
    active_outside: int = 0  # members reached who bought and are outside the control group
    revenue_outside: Decimal = ZERO


def campaigns(session: Session, program: ProgramSpec, f: Filters) -> Report:
    """Per campaign, on the confirmed receipts of the period (``store``, ``channel``: of
    those receipts): receipts touched, members reached, points given per currency and
    their money value, discounts given, the cost (points' value + discounts); and lift:
    revenue per member reached ÷ revenue per other active member outside the control
    group − 1 (an observational comparison, not a randomised one).

    What the rules gave is read from ``purchase_rules`` (rows released by a cancellation or
    a full return left out); revenue per member is the rollup's, as for the ROI."""
    tz = program.timezone
    start, _ = local_day_bounds(f.start, tz)
    _, end = local_day_bounds(f.end, tz)
    gifts = rules.campaign_gifts()
    confirmed = purchases.confirmed_ids_between(start, end, f.store, f.channel)

    def touched(*columns: Any) -> Any:
        return (
            select(*columns)
            .select_from(gifts)
            .join(confirmed, confirmed.c.id == gifts.c.purchase_id)
        )

    found: dict[str, _Campaign] = {}
    for spec in program.campaigns:
        code = str(spec.get("code"))
        found[code] = _Campaign(code, spec.get("name"))

    def of(code: Any) -> _Campaign:
        return found.setdefault(str(code), _Campaign(str(code), None))

    given = touched(
        gifts.c.campaign, gifts.c.effect, gifts.c.unit, func.sum(gifts.c.amount)
    ).group_by(gifts.c.campaign, gifts.c.effect, gifts.c.unit)
    for code, effect, unit, amount in session.execute(given):
        c = of(code)
        if effect == "discount":  # money, in the base currency
            c.discounts += Decimal(amount)
        else:  # earn, reward, multiply: points of ``unit``
            c.points[str(unit)] += Decimal(amount)
    counts = touched(
        gifts.c.campaign,
        func.count(func.distinct(gifts.c.purchase_id)),
        func.count(func.distinct(gifts.c.member_id)),
    ).group_by(gifts.c.campaign)
    for code, n_purchases, n_members in session.execute(counts):
        c = of(code)
        c.purchases, c.members = int(n_purchases), int(n_members)

    # Revenue per member in the period (money paid at the store / through the channel
    # asked), and whether they are outside the control group.
    cut = control_cut(_control_share(program))
    reached = (
        touched(gifts.c.campaign, gifts.c.member_id)
        .where(gifts.c.member_id.is_not(None))
        .distinct()
        .subquery()
    )
    active_n, active_rev, per_campaign = _campaign_revenue(session, f, cut, reached)
    for code, (rev, n_out, rev_out) in per_campaign.items():
        c = of(code)
        c.revenue, c.active_outside, c.revenue_outside = rev, n_out, rev_out

    currencies = list(program.currencies)
    columns = [
        "campaign",
        "name",
        "purchases",
        "members",
        *[f"points_{cur.code}" for cur in currencies],
        *[f"value_{cur.code}" for cur in currencies],
        "points_value",
        "discounts",
        "cost",
        "revenue_per_member",
        "members_others",
        "revenue_per_member_others",
        "lift",
    ]
    rows: list[list[Any]] = []
    totals: dict[str, Decimal] = defaultdict(Decimal)
    total_discounts = ZERO
    for c in found.values():
        pts = [_points_of(cur.precision)(c.points.get(cur.code, ZERO)) for cur in currencies]
        values = [money(c.points.get(cur.code, ZERO) * cur.value) for cur in currencies]
        for cur in currencies:
            totals[cur.code] += c.points.get(cur.code, ZERO)
        points_value = sum(values, ZERO)
        discounts = money(c.discounts)
        total_discounts += c.discounts
        # the others: active members outside the control group whom the campaign missed
        others_n = active_n - c.active_outside
        others_rev = active_rev - c.revenue_outside
        lift = None
        if c.members and others_n and others_rev:
            # (revenue_r / n_r) ÷ (revenue_o / n_o) − 1, in one exact division
            lift = rate(c.revenue * others_n - others_rev * c.members, others_rev * c.members)
        rows.append(
            [
                c.code,
                c.name,
                c.purchases,
                c.members,
                *pts,
                *values,
                points_value,
                discounts,
                points_value + discounts,
                money(c.revenue / c.members) if c.members else None,
                others_n,
                money(others_rev / others_n) if others_n else None,
                lift,
            ]
        )
    n_purchases, n_members = session.execute(
        touched(
            func.count(func.distinct(gifts.c.purchase_id)),
            func.count(func.distinct(gifts.c.member_id)),
        )
    ).one()
    value_total = sum((money(totals[cur.code] * cur.value) for cur in currencies), ZERO)
    summary: dict[str, Any] = {
        "campaigns": len(rows),
        "purchases": int(n_purchases),
        "members_reached": int(n_members),
        "points": {cur.code: _points_of(cur.precision)(totals[cur.code]) for cur in currencies},
        "points_value": value_total,
        "discounts": money(total_discounts),
        "cost": value_total + money(total_discounts),
        "members_active": active_n,
        "revenue_per_active_member": money(active_rev / active_n) if active_n else None,
        "control_group_share": _control_share(program),
    }
    return Report("campaigns", f, columns, rows, summary)


def _campaign_revenue(
    session: Session, f: Filters, cut: int, reached: Any
) -> tuple[int, Decimal, dict[str, tuple[Decimal, int, Decimal]]]:
    """The active members outside the control group (members with member days in the
    period, at the store / through the channel asked) and their revenue; and per campaign,
    of its ``reached`` members (a subquery of campaign, member_id) who were active: their
    revenue, how many are outside the control group and the revenue of those."""
    everyone = membersets.members(session)
    days = membersets.days(session, f.start, f.end)
    sel = membersets.Selection.of(days, f.store, f.channel)
    size = sel.size(len(everyone))
    bought = sel.present(size)
    revenue = sel.per_member(size)
    outside = _padded(everyone.outside(cut), size)
    numbered = _padded(np.ones(len(everyone), dtype=np.bool_), size)
    active = bought & outside & numbered
    active_n = int(np.count_nonzero(active))
    active_rev = from_units(membersets.exact_sum(revenue[active])) if active_n else ZERO
    pairs: dict[str, list[int]] = defaultdict(list)
    for code, number in session.execute(
        select(reached.c.campaign, ReportMember.number).join(
            ReportMember, ReportMember.member_id == reached.c.member_id
        )
    ):
        pairs[str(code)].append(int(number))
    out: dict[str, tuple[Decimal, int, Decimal]] = {}
    for code, numbers in pairs.items():
        idx = np.asarray(numbers, dtype=np.intp)
        idx = idx[idx < size]
        idx = idx[bought[idx]]
        if not len(idx):
            continue  # nobody reached bought in the period
        out_idx = idx[outside[idx]]
        out[code] = (
            from_units(membersets.exact_sum(revenue[idx])),
            len(out_idx),
            from_units(membersets.exact_sum(revenue[out_idx])) if len(out_idx) else ZERO,
        )
    return active_n, active_rev, out


# ---------------------------------------------------------------------------- dispatch


REPORTS = {
    "acquisition": acquisition,
    "active": active,
    "receipts": receipts,
    "points": points,
    "liability": liability,
    "cohorts": cohorts,
    "tiers": tiers,
    "roi": roi,
    "tier_movement": tier_movement,
    "campaigns": campaigns,
}


# Reports another domain serves under ``/reports/{name}`` with a router of its own (the
# referrals' funnel): registered by ``wiring`` so that the index lists them too.
_elsewhere: set[str] = set()


def served_elsewhere(name: str) -> None:
    """Lists ``name`` in the reports' index; its route is its own domain's."""
    _elsewhere.add(name)


def names() -> list[str]:
    """Every report's name: the rollup's and those served elsewhere."""
    return sorted(set(REPORTS) | _elsewhere)


def run(session: Session, name: str, f: Filters) -> Report:
    """The report called ``name`` (404 ``report_not_found`` for another name)."""
    fn = REPORTS.get(name)
    if fn is None:
        raise Problem(
            404, "report_not_found", f"no report {name!r}; known: {', '.join(sorted(REPORTS))}"
        )

    prepare(session)
    return fn(session, current_program(session).spec, f)


def known_tiers(session: Session) -> list[str]:
    """Tier names members carry now (for the filter's choices)."""
    return [t for (t,) in session.execute(members.tiers_in_use()) if t]
