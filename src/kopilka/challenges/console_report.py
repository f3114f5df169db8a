"""The challenges' report (``GET /api/v1/reports/challenges``, the console's Challenges
screen): for a period of local days of the programme's time zone, per challenge of the
programme in force, the figures of ``challenges.report.figures`` over the period (the
challenges' own definitions, not a second copy), and

* ``joined``: opt-ins in the period (an automatic challenge: the members who took part);
  ``took_part``: members with progress made in the period; ``completed``: those of them
  who completed it (``completions``: periods completed); ``completion_rate`` = completed
  ÷ joined;
* ``cost``: the rewards given in the period and not revoked (pending or standing; none
  for the control group): points times their currency's value (``figures``), coupons at
  their pool's face when known, badges counted (``challenges.cost``);
* ``spend``: the money paid (after returns) in the period by the participants against
  *comparable* non-participants. Comparable means: in the same band of spend in the equal
  window just before the period — band 0 for those who paid nothing then, bands 1 to 10
  the deciles of those who paid something. The population is every member who paid in
  either window, and the participants. Per band with both groups present, the
  non-participants' mean is weighted by the band's participants (so the comparison is of
  like with like); participants in a band with no non-participant are left out of it
  (``unmatched``). ``difference`` = spend per matched participant − the weighted spend
  per comparable non-participant, half-up to the cent. It is an association, not proof
  that the challenge caused it (members who join may be keener anyway).

docs/challenges.md ("Console") describes the figures and the CSV.
"""

from __future__ import annotations

import bisect
import datetime as dt
import uuid
import zoneinfo
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from kopilka.challenges import report as challenge_figures
from kopilka.challenges.cost import Cost, coupon_faces, money_text
from kopilka.challenges.models import ChallengeEntry, ChallengeJoin, ChallengeReward
from kopilka.core.csvfile import Cell, excel_csv
from kopilka.core.money import ZERO
from kopilka.program.service import current_program
from kopilka.purchases import queries as purchases
from kopilka.reports.service import local_dates
from kopilka.spec.program import ProgramSpec

CENT = Decimal("0.01")
RATE_PLACES = Decimal("0.0001")
BANDS = 10


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

    def before(self) -> Period:
        """The window of equal length just before."""
        days = (self.end - self.start).days + 1
        return Period(
            self.start - dt.timedelta(days=days), self.start - dt.timedelta(days=1), self.timezone
        )


def period_of(session: Session, start: str | None, end: str | None) -> Period:
    """``from``/``to`` query parameters (local dates, inclusive; the 90 days up to today
    by default) as a period, or 422 naming the parameter, as the other reports."""
    return Period(*local_dates(session, start, end))


def rate(part: int, whole: int) -> Decimal | None:
    """``part`` ÷ ``whole`` to 4 places, half-up; None without a whole."""
    if not whole:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(RATE_PLACES, rounding=ROUND_HALF_UP)


def _cents(value: Decimal | None) -> str | None:
    return None if value is None else money_text(value.quantize(CENT, rounding=ROUND_HALF_UP))


# ---------------------------------------------------------------------------- comparison


def band_of(spend: Decimal, positive: list[Decimal]) -> int:
    """0 for no spend before; else the decile (1 … 10) of ``spend`` among ``positive``
    (sorted), equal spends in the same band."""
    if spend <= 0 or not positive:
        return 0
    below = bisect.bisect_left(positive, spend)
    return 1 + min(BANDS - 1, below * BANDS // len(positive))


@dataclass(frozen=True)
class Spend:
    """The period's spend of every member of the population, and their band."""

    during: Mapping[uuid.UUID, Decimal]
    band: Mapping[uuid.UUID, int]


def spend_of(session: Session, period: Period) -> Spend:
    lo, hi = period.bounds()
    blo, bhi = period.before().bounds()
    during = {
        r.member_id: Decimal(r.paid or 0)
        for r in session.execute(purchases.paid_by_member_between(lo, hi))
    }
    before = {
        r.member_id: Decimal(r.paid or 0)
        for r in session.execute(purchases.paid_by_member_between(blo, bhi))
    }
    positive = sorted(v for v in before.values() if v > 0)
    band = {m: band_of(v, positive) for m, v in before.items()}
    return Spend(during, band)


def compare(spend: Spend, participants: set[uuid.UUID]) -> dict[str, Any]:
    """Participants against comparable non-participants (see the module's docstring)."""
    population = set(spend.during) | set(spend.band) | participants
    groups: dict[int, tuple[list[Decimal], list[Decimal]]] = defaultdict(lambda: ([], []))
    for m in population:
        paid = spend.during.get(m, ZERO)
        groups[spend.band.get(m, 0)][0 if m in participants else 1].append(paid)
    matched = comparable = 0
    paid_p = weighted = ZERO
    for mine, others in groups.values():
        if not mine or not others:
            continue
        matched += len(mine)
        comparable += len(others)
        paid_p += sum(mine, ZERO)
        weighted += len(mine) * sum(others, ZERO) / len(others)
    per_p = paid_p / matched if matched else None
    per_np = weighted / matched if matched else None
    diff = per_p - per_np if per_p is not None and per_np is not None else None
    return {
        "participants": len(participants),
        "matched": matched,
        "unmatched": len(participants) - matched,
        "comparable": comparable,
        "per_participant": _cents(per_p),
        "per_comparable": _cents(per_np),
        "difference": _cents(diff),
    }


# ---------------------------------------------------------------------------- the report


@dataclass
class ChallengeReport:
    period: Period
    base_currency: str
    items: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        before = self.period.before()
        return {
            "report": "challenges",
            "period": {
                "from": self.period.start.isoformat(),
                "to": self.period.end.isoformat(),
                "timezone": self.period.timezone,
            },
            "base_currency": self.base_currency,
            "comparison": {
                "method": "spend_deciles_before",
                "before": {"from": before.start.isoformat(), "to": before.end.isoformat()},
            },
            "items": self.items,
        }

    def csv_name(self) -> str:
        return f"kopilka-challenges-{self.period.start}-{self.period.end}.csv"

    def csv_blocks(self) -> list[list[list[Cell]]]:
        """One row per challenge; then the cost's points by challenge and currency."""
        head: list[Cell] = [
            "challenge",
            "joined",
            "took_part",
            "completed",
            "completions",
            "completion_rate",
            "cost",
            "participants_matched",
            "comparable",
            "spend_per_participant",
            "spend_per_comparable",
            "difference",
        ]

        def dec(v: str | None) -> Decimal | None:
            return None if v is None else Decimal(v)

        rows: list[list[Cell]] = [head]
        points: list[list[Cell]] = [["challenge", "currency", "points", "value", "money"]]
        for it in self.items:
            s = it["spend"]
            rows.append(
                [
                    it["code"],
                    it["joined"],
                    it["took_part"],
                    it["completed"],
                    it["completions"],
                    dec(it["completion_rate"]),
                    Decimal(it["cost"]["money"]),
                    s["matched"],
                    s["comparable"],
                    dec(s["per_participant"]),
                    dec(s["per_comparable"]),
                    dec(s["difference"]),
                ]
            )
            points += [
                [
                    it["code"],
                    p["currency"],
                    Decimal(p["points"]),
                    Decimal(p["value"]),
                    Decimal(p["money"]),
                ]
                for p in it["cost"]["points"]
            ]
        return [rows, points]

    def to_csv(self) -> bytes:
        return excel_csv(self.csv_blocks())


def _participants(session: Session, period: Period) -> dict[str, set[uuid.UUID]]:
    """Per challenge, the members who took part in the period as ``report.figures``
    counts them: progress made in it (an entry created in it, with progress), or an
    opt-in in it."""
    lo, hi = period.bounds()
    out: dict[str, set[uuid.UUID]] = defaultdict(set)
    for code, member_id in session.execute(
        select(ChallengeEntry.challenge, ChallengeEntry.member_id)
        .where(
            ChallengeEntry.value > 0,
            ChallengeEntry.created_at >= lo,
            ChallengeEntry.created_at < hi,
        )
        .distinct()
    ):
        out[code].add(member_id)
    for code, member_id in session.execute(
        select(ChallengeJoin.challenge, ChallengeJoin.member_id).where(
            ChallengeJoin.joined_at >= lo, ChallengeJoin.joined_at < hi
        )
    ):
        out[code].add(member_id)
    return out


def _coupons_and_badges(session: Session, period: Period) -> dict[str, Cost]:
    """The coupons and badges of the rewards given in the period and not revoked (their
    points are in ``report.figures``)."""
    lo, hi = period.bounds()
    out: dict[str, Cost] = defaultdict(Cost)
    for r in session.execute(
        select(ChallengeReward.challenge, ChallengeReward.coupon_pool, ChallengeReward.badge).where(
            ChallengeReward.status.in_(("pending", "standing")),
            ChallengeReward.created_at >= lo,
            ChallengeReward.created_at < hi,
            or_(ChallengeReward.coupon_pool.is_not(None), ChallengeReward.badge.is_not(None)),
        )
    ):
        out[r.challenge].add_row(None, None, r.coupon_pool, r.badge)
    return out


def build(session: Session, period: Period) -> ChallengeReport:
    """The report of ``period`` (reads only): ``report.figures`` of each challenge of the
    programme, with the coupons' face and the badges added to the cost, and the spend
    comparison."""
    spec: ProgramSpec = current_program(session).spec
    report = ChallengeReport(period, spec.base_currency)
    lo, hi = period.bounds()
    participants = _participants(session, period)
    extras = _coupons_and_badges(session, period)
    spend = spend_of(session, period)
    pools = {p for c in extras.values() for p in c.pools()}
    faces = coupon_faces(session, spec, sorted(pools))
    by_code = {c.code: c for c in spec.challenges}
    for f in challenge_figures.figures(session, lo, hi):
        cost = extras.get(f.code) or Cost()
        for currency, amount in f.rewards.items():
            cost.points[currency] += amount
        cost_doc, _ = cost.as_json(spec, faces)
        c = by_code.get(f.code)
        base = f.joined or f.took_part
        report.items.append(
            {
                "code": f.code,
                "name": f.name,
                "join": c.join if c is not None else None,
                "joined": f.joined,
                "took_part": f.took_part,
                "completed": f.completed,
                "completions": f.completions,
                "completion_rate": str(f.completion_rate) if base else None,
                "cost": cost_doc,
                "spend": compare(spend, participants.get(f.code, set())),
            }
        )
    return report
