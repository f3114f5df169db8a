"""The referrals' report (``GET /api/v1/reports/referrals``, the console's Referrals
screen): for a period of local days of the programme's time zone, by ISO week,

* the funnel: invite links opened (``referral_visits.at``) → friends joined (referrals
  made, ``created_at``, rejected ones included) → qualified (``qualified_at``: the last
  time, when a reversal made a referral qualify again) → rewarded (``rewarded_at``);
* the referrals rejected or reversed, by reason (as they are now, by their last change);
* the cost of the rewards posted in the period and not revoked: points of each currency
  (pending and standing) times the currency's ``value`` in the programme, exact; coupon
  rewards counted apart, by pool;
* the revenue of the period (money paid on confirmed receipts, less what their returns
  refunded) of the referred members (friends of a referral that was not rejected)
  against the other members, per member who bought, on average (rounded half-up to the
  cent).

docs/reports.md describes the figures and the CSV.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from kopilka.core import dates
from kopilka.core.csvfile import Cell, excel_csv
from kopilka.core.db import Amount
from kopilka.core.money import ZERO, fmt, plain
from kopilka.program.service import current_program
from kopilka.purchases import queries as purchases
from kopilka.referrals.models import Referral, ReferralReward, ReferralVisit
from kopilka.reports.service import local_dates
from kopilka.spec.program import ProgramSpec

FUNNEL = ("links_opened", "joined", "qualified", "rewarded")
CENT = Decimal("0.01")
RATE_PLACES = Decimal("0.0001")


@dataclass(frozen=True)
class Period:
    start: dt.date
    end: dt.date  # inclusive
    timezone: str

    def bounds(self) -> tuple[dt.datetime, dt.datetime]:
        """The UTC instants where the period starts and ends (the end excluded)."""
        zone = zoneinfo.ZoneInfo(self.timezone)
        lo = dt.datetime.combine(self.start, dt.time(), tzinfo=zone)
        hi = dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time(), tzinfo=zone)
        return lo.astimezone(dt.UTC), hi.astimezone(dt.UTC)

    def weeks(self) -> list[dt.date]:
        """The Mondays of the ISO weeks the period touches."""
        first = self.start - dt.timedelta(days=self.start.weekday())
        return [first + dt.timedelta(weeks=i) for i in range((self.end - first).days // 7 + 1)]

    def week_of(self, at: dt.datetime) -> dt.date:
        day = dates.local_day(at, zoneinfo.ZoneInfo(self.timezone))
        return day - dt.timedelta(days=day.weekday())


def week_label(monday: dt.date) -> str:
    """``2026-W49``: the ISO week of a Monday."""
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def rate(part: int, whole: int) -> Decimal | None:
    """``part`` ÷ ``whole`` to 4 places, half-up (0.25 = 25 %); None without a whole."""
    if not whole:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(RATE_PLACES, rounding=ROUND_HALF_UP)


def money_text(value: Decimal) -> str:
    """Money exactly, with at least two places (``500.00``, ``0.0003``)."""
    return f"{value.quantize(CENT):f}" if value == value.quantize(CENT) else f"{value:f}"


@dataclass
class ReferralReport:
    period: Period
    base_currency: str
    weeks: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    cost: list[dict[str, Any]] = field(default_factory=list)
    cost_total: Decimal = ZERO
    coupons: list[dict[str, Any]] = field(default_factory=list)
    revenue: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "report": "referrals",
            "period": {
                "from": self.period.start.isoformat(),
                "to": self.period.end.isoformat(),
                "timezone": self.period.timezone,
            },
            "base_currency": self.base_currency,
            "weeks": [{**w, "week_start": w["week_start"].isoformat()} for w in self.weeks],
            "totals": self.totals,
            "outcomes": self.outcomes,
            "cost": self.cost,
            "cost_total": money_text(self.cost_total),
            "coupons": self.coupons,
            "revenue": self.revenue,
        }

    def csv_name(self) -> str:
        return f"kopilka-referrals-{self.period.start}-{self.period.end}.csv"

    def csv_blocks(self) -> list[list[list[Cell]]]:
        """The report as tables for the CSV: the funnel by week with its total, the
        rejections and reversals by reason, the cost by currency with its total, the
        coupon rewards by pool, the revenue of the referred members and of the others."""
        funnel: list[list[Cell]] = [["week", "week_start", *FUNNEL]]
        funnel += [[w["week"], w["week_start"], *(w[k] for k in FUNNEL)] for w in self.weeks]
        funnel.append(["total", None, *(self.totals[k] for k in FUNNEL)])
        outcomes: list[list[Cell]] = [["status", "reason", "referrals"]]
        outcomes += [[o["status"], o["reason"], o["referrals"]] for o in self.outcomes]
        cost: list[list[Cell]] = [
            ["currency", "points_pending", "points_standing", "value", "money"]
        ]
        cost += [
            [c["currency"], c["points_pending"], c["points_standing"], c["value"], c["money"]]
            for c in self.cost
        ]
        cost.append(["total", None, None, None, money_text(self.cost_total)])
        coupons: list[list[Cell]] = [["coupon_pool", "rewards"]]
        coupons += [[c["coupon_pool"], c["rewards"]] for c in self.coupons]
        revenue: list[list[Cell]] = [["group", "members", "revenue", "revenue_per_member"]]
        revenue += [
            [group, g["members"], g["revenue"], g["revenue_per_member"]]
            for group, g in self.revenue.items()
        ]
        return [funnel, outcomes, cost, coupons, revenue]

    def to_csv(self) -> bytes:
        """UTF-8 with a BOM, ``;``, CRLF (``core.csvfile``)."""
        return excel_csv(self.csv_blocks())


def period_of(session: Session, start: str | None, end: str | None) -> Period:
    """``from``/``to`` query parameters (local dates, inclusive; the 90 days up to today
    by default) as a period, or 422 naming the parameter, as the other reports."""
    return Period(*local_dates(session, start, end))


def build(session: Session, period: Period) -> ReferralReport:
    """The report of ``period`` (reads only)."""
    spec = current_program(session).spec
    report = ReferralReport(period, spec.base_currency)
    lo, hi = period.bounds()
    per: dict[str, dict[dt.date, int]] = {k: defaultdict(int) for k in FUNNEL}
    moments: dict[str, Any] = {
        "links_opened": ReferralVisit.at,
        "joined": Referral.created_at,
        "qualified": Referral.qualified_at,
        "rewarded": Referral.rewarded_at,
    }
    for key, column in moments.items():
        for at in session.execute(select(column).where(column >= lo, column < hi)).scalars():
            per[key][period.week_of(at)] += 1
    for monday in period.weeks():
        row: dict[str, Any] = {"week": week_label(monday), "week_start": monday}
        row.update({k: per[k].get(monday, 0) for k in FUNNEL})
        report.weeks.append(row)
    report.totals = {k: sum(w[k] for w in report.weeks) for k in FUNNEL}
    report.outcomes = _outcomes(session, lo, hi)
    report.cost, report.cost_total = _cost(session, spec, lo, hi)
    report.coupons = _coupons(session, lo, hi)
    report.revenue = _revenue(session, lo, hi)
    return report


def _outcomes(session: Session, lo: dt.datetime, hi: dt.datetime) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Referral.status, Referral.reason, func.count())
        .where(
            Referral.status.in_(("rejected", "reversed")),
            Referral.updated_at >= lo,
            Referral.updated_at < hi,
        )
        .group_by(Referral.status, Referral.reason)
    ).all()
    return [
        {"status": status, "reason": reason, "referrals": int(n)}
        for status, reason, n in sorted(rows, key=lambda r: (r[0], r[1] or ""))
    ]


def _cost(
    session: Session, spec: ProgramSpec, lo: dt.datetime, hi: dt.datetime
) -> tuple[list[dict[str, Any]], Decimal]:
    """Points rewards posted in the period and not revoked, by currency: pending and
    standing points, and their money value (points × the currency's ``value``)."""
    rows = session.execute(
        select(
            ReferralReward.currency,
            ReferralReward.status,
            func.sum(ReferralReward.amount, type_=Amount()),
        )
        .where(
            ReferralReward.entry_id.is_not(None),
            ReferralReward.status != "revoked",
            ReferralReward.created_at >= lo,
            ReferralReward.created_at < hi,
        )
        .group_by(ReferralReward.currency, ReferralReward.status)
    ).all()
    points: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    for currency, status, amount in rows:
        points[str(currency)][str(status)] += Decimal(amount or 0)
    out: list[dict[str, Any]] = []
    total = ZERO
    for code in sorted(points):
        cur = spec.currency(code)
        precision = cur.precision if cur is not None else 2
        value = cur.value if cur is not None else ZERO
        pending, standing = points[code]["pending"], points[code]["standing"]
        money = (pending + standing) * value
        total += money
        out.append(
            {
                "currency": code,
                "points_pending": fmt(pending, precision),
                "points_standing": fmt(standing, precision),
                "value": plain(value),
                "money": money_text(money),
            }
        )
    return out, total


def _coupons(session: Session, lo: dt.datetime, hi: dt.datetime) -> list[dict[str, Any]]:
    rows = session.execute(
        select(ReferralReward.coupon_pool, func.count())
        .where(
            ReferralReward.coupon_pool.is_not(None),
            ReferralReward.status != "revoked",
            ReferralReward.created_at >= lo,
            ReferralReward.created_at < hi,
        )
        .group_by(ReferralReward.coupon_pool)
        .order_by(ReferralReward.coupon_pool)
    ).all()
    return [{"coupon_pool": str(pool), "rewards": int(n)} for pool, n in rows]


def _revenue(session: Session, lo: dt.datetime, hi: dt.datetime) -> dict[str, dict[str, Any]]:
    """Revenue of the period of the referred members and of the others, each with the
    members who bought and the average per such member."""
    paid = purchases.paid_by_member_between(lo, hi).subquery()
    group = case((Referral.id.is_(None), "others"), else_="referred").label("grp")
    rows = session.execute(
        select(group, func.count(), func.sum(paid.c.paid, type_=Amount()))
        .select_from(paid)
        .outerjoin(
            Referral,
            (Referral.friend_id == paid.c.member_id) & (Referral.status != "rejected"),
        )
        .group_by(group)
    ).all()
    found = {str(g): (int(n), Decimal(total or 0)) for g, n, total in rows}
    return {name: _group(*found.get(name, (0, ZERO))) for name in ("referred", "others")}


def _group(members: int, revenue: Decimal) -> dict[str, Any]:
    average = (revenue / members).quantize(CENT, rounding=ROUND_HALF_UP) if members else None
    return {
        "members": members,
        "revenue": money_text(revenue),
        "revenue_per_member": money_text(average) if average is not None else None,
    }
