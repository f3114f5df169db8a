"""The challenges' arithmetic, without I/O: the period a moment falls in (in the programme's
time zone), what a settled receipt (or what is left of it after a return) contributes to a
goal, a progress value out of contributions, the steps of a ladder reached, a streak's run.

``challenges.service`` and the receipt hook read and write; the console's simulation runs
receipts through the same functions, so that both count the same way.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import lru_cache

from kopilka.spec.challenges import DISTINCT, ChallengeSpec, Every, GoalSpec, PeriodSpec

ZERO = Decimal(0)


@lru_cache(maxsize=64)
def _zone(tz: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(tz)


def local_day(at: dt.datetime, tz: str) -> dt.date:
    """The calendar day of ``at`` (aware) in the time zone ``tz``."""
    return at.astimezone(_zone(tz)).date()


def day_start(day: dt.date, tz: str) -> dt.datetime:
    """The first moment of ``day`` in ``tz``, in UTC."""
    return dt.datetime.combine(day, dt.time(), _zone(tz)).astimezone(dt.UTC)


# ---------------------------------------------------------------------------- periods


@dataclass(frozen=True)
class Window:
    """A challenge's period: ``key`` names it among the member's (``2026-W49``,
    ``2026-12-07``, ``2026-12``, ``fixed``, ``join``, ``all``); ``start`` inclusive and
    ``end`` exclusive, UTC; None: open."""

    key: str
    start: dt.datetime | None
    end: dt.datetime | None

    def holds(self, at: dt.datetime) -> bool:
        return (self.start is None or at >= self.start) and (self.end is None or at < self.end)


def unit_bounds(every: Every, day: dt.date) -> tuple[str, dt.date, dt.date]:
    """The day, ISO week (Monday to Sunday) or month of ``day``: its key, first day, and
    the day after its last."""
    if every == "day":
        return day.isoformat(), day, day + dt.timedelta(days=1)
    if every == "week":
        year, week, _ = day.isocalendar()
        monday = day - dt.timedelta(days=day.weekday())
        return f"{year}-W{week:02d}", monday, monday + dt.timedelta(days=7)
    first = day.replace(day=1)
    after = (first + dt.timedelta(days=32)).replace(day=1)
    return f"{day.year}-{day.month:02d}", first, after


def unit_index(every: Every, day: dt.date) -> int:
    """Consecutive units have consecutive indexes (a streak's arithmetic)."""
    if every == "day":
        return day.toordinal()
    if every == "week":
        return (day.toordinal() - day.weekday()) // 7
    return day.year * 12 + day.month - 1


def window(
    period: PeriodSpec | None, at: dt.datetime, tz: str, joined_at: dt.datetime | None = None
) -> Window | None:
    """The period of a challenge that ``at`` falls in, or None when it falls in none
    (before or after fixed dates; outside the days after the opt-in, or no opt-in)."""
    if period is None:
        return Window("all", None, None)
    if period.every is not None:
        key, first, after = unit_bounds(period.every, local_day(at, tz))
        return Window(key, day_start(first, tz), day_start(after, tz))
    if period.days is not None:
        if joined_at is None:
            return None
        w = Window("join", joined_at, joined_at + dt.timedelta(days=period.days))
        return w if w.holds(at) else None
    start = day_start(period.from_, tz) if period.from_ is not None else None
    end = day_start(period.to + dt.timedelta(days=1), tz) if period.to is not None else None
    w = Window("fixed", start, end)
    return w if w.holds(at) else None


# ---------------------------------------------------------------------------- contributions


@dataclass(frozen=True)
class Line:
    line_no: int
    sku: str
    category: str | None
    quantity: Decimal
    paid: Decimal  # money paid on the line: after discounts and points


@dataclass(frozen=True)
class Receipt:
    """What a goal looks at of a receipt."""

    store: str
    channel: str
    paid: Decimal
    day: dt.date  # its local day
    lines: tuple[Line, ...]


@dataclass(frozen=True)
class Contribution:
    """What one receipt (or event, or friend) adds: ``value``, and for goals counting
    distinct things the ``tokens`` it brings (days, categories); for a streak, ``tokens``
    is the unit's index."""

    value: Decimal
    tokens: tuple[str, ...] = ()


NOTHING = Contribution(ZERO)


def counted_lines(goal: GoalSpec, lines: Iterable[Line]) -> list[Line]:
    """The lines the goal's ``where.lines`` picks (every line when it picks none)."""
    pick = goal.where.lines
    if pick is None:
        return [ln for ln in lines if ln.quantity > 0]
    skus = set(pick.skus or ())
    cats = set(pick.categories or ())
    return [
        ln
        for ln in lines
        if ln.quantity > 0 and (ln.sku in skus or (ln.category is not None and ln.category in cats))
    ]


def contribution(goal: GoalSpec, receipt: Receipt) -> Contribution:
    """What a settled receipt adds to a goal counted from receipts (``NOTHING`` for the
    others or when the receipt does not count)."""
    w = goal.where
    if goal.count not in ("purchases", "paid", "days", "categories", "units"):
        return NOTHING
    if w.stores is not None and receipt.store not in w.stores:
        return NOTHING
    if w.channels is not None and receipt.channel not in w.channels:
        return NOTHING
    if w.min_receipt is not None and receipt.paid < w.min_receipt:
        return NOTHING
    lines = counted_lines(goal, receipt.lines)
    if w.lines is not None and not lines:
        return NOTHING
    if goal.count == "purchases":
        return Contribution(Decimal(1))
    if goal.count == "paid":
        value = sum((ln.paid for ln in lines), ZERO) if w.lines is not None else receipt.paid
        return Contribution(value) if value > 0 else NOTHING
    if goal.count == "units":
        value = sum((ln.quantity for ln in lines), ZERO)
        return Contribution(value) if value > 0 else NOTHING
    if goal.count == "days":
        return Contribution(Decimal(1), (receipt.day.isoformat(),))
    cats = sorted({ln.category for ln in lines if ln.category is not None})
    return Contribution(Decimal(len(cats)), tuple(cats)) if cats else NOTHING


def after_return(receipt: Receipt, returned: Mapping[int, tuple[Decimal, Decimal]]) -> Receipt:
    """What is left of ``receipt`` after ``returned`` (line number → quantity and refund
    taken back). Lines left with nothing are dropped."""
    lines: list[Line] = []
    refund = ZERO
    for ln in receipt.lines:
        qty, money = returned.get(ln.line_no, (ZERO, ZERO))
        refund += money
        left = replace(ln, quantity=ln.quantity - qty, paid=max(ln.paid - money, ZERO))
        if left.quantity > 0:
            lines.append(left)
    return replace(receipt, paid=max(receipt.paid - refund, ZERO), lines=tuple(lines))


# ---------------------------------------------------------------------------- progress


def value_of(goal: GoalSpec, contributions: Iterable[Contribution]) -> Decimal:
    """A period's progress out of its contributions: their sum, or the number of distinct
    tokens (days, categories) of those that still count."""
    if goal.count in DISTINCT:
        return Decimal(len({t for c in contributions if c.value > 0 for t in c.tokens}))
    return sum((c.value for c in contributions), ZERO)


def steps_reached(targets: Sequence[Decimal], value: Decimal) -> int:
    """How many of a ladder's (increasing) targets ``value`` reaches."""
    return sum(1 for t in targets if value >= t)


def best_run(units: Iterable[int], grace: int) -> int:
    """The most units of a run of consecutive units with at most ``grace`` missing in it
    (a missed unit does not count; a run never starts or ends with one)."""
    met = sorted(set(units))
    best = 0
    i = 0
    for j in range(len(met)):
        while (met[j] - met[i] + 1) - (j - i + 1) > grace:
            i += 1
        best = max(best, j - i + 1)
    return best


def streak_units(challenge: ChallengeSpec, contributions: Iterable[Contribution]) -> set[int]:
    """The units (indexes) in which a streak's goal was met: their contributions' sum
    reaches the goal's target (1 by default)."""
    per: dict[int, Decimal] = {}
    for c in contributions:
        for t in c.tokens:
            per[int(t)] = per.get(int(t), ZERO) + c.value
    need = challenge.unit_target()
    return {u for u, v in per.items() if v >= need}


def progress(challenge: ChallengeSpec, contributions: Sequence[Contribution]) -> Decimal:
    """A challenge's progress value in one period: the goal's value, or a streak's best
    run (capped at its length)."""
    if challenge.streak is not None:
        run = best_run(streak_units(challenge, contributions), challenge.streak.grace)
        return Decimal(min(run, challenge.streak.length))
    return value_of(challenge.goal, contributions)


def receipt_contribution(challenge: ChallengeSpec, receipt: Receipt, tz: str) -> Contribution:
    """What a receipt adds to a challenge: its goal's contribution, and for a streak the
    unit it falls in as its token."""
    c = contribution(challenge.goal, receipt)
    if challenge.streak is None or c.value <= 0:
        return c
    return Contribution(c.value, (str(unit_index(challenge.streak.every, receipt.day)),))


def event_contribution(challenge: ChallengeSpec, event_type: str, day: dt.date) -> Contribution:
    """What a custom event adds (a goal ``count: events`` of its type)."""
    goal = challenge.goal
    if goal.count != "events" or goal.where.event_type != event_type:
        return NOTHING
    tokens = (str(unit_index(challenge.streak.every, day)),) if challenge.streak else ()
    return Contribution(Decimal(1), tokens)


def referral_contribution(challenge: ChallengeSpec, day: dt.date) -> Contribution:
    """What a friend who qualified adds (a goal ``count: referrals``)."""
    if challenge.goal.count != "referrals":
        return NOTHING
    tokens = (str(unit_index(challenge.streak.every, day)),) if challenge.streak else ()
    return Contribution(Decimal(1), tokens)


def additive(challenge: ChallengeSpec) -> bool:
    """Whether progress is the plain sum of contributions (then a receipt's hook adds to
    it in the receipt's statement; distinct goals and streaks are counted again)."""
    return challenge.streak is None and challenge.goal.count not in DISTINCT


@dataclass(frozen=True)
class Audience:
    tier: str | None
    tags: frozenset[str]


def in_audience(challenge: ChallengeSpec, who: Audience) -> bool:
    a = challenge.audience
    if a is None:
        return True
    if a.tiers is not None and who.tier not in a.tiers:
        return False
    return a.tags is None or bool(who.tags & set(a.tags))


def status(challenge: ChallengeSpec, value: Decimal, w: Window, at: dt.datetime) -> str:
    """``completed`` (the last target reached), ``expired`` (its period over without), or
    ``active``."""
    if value >= challenge.final_target():
        return "completed"
    if w.end is not None and at >= w.end:
        return "expired"
    return "active"
