"""A challenge tried on the past before it is published: the confirmed receipts of a range of
local days (what is left of each after its returns) replayed through the challenges' own
evaluator (``challenges.progress``, the one place that decides what a receipt gives a
goal), to say how many members would have progressed, completed it (and each step of a
ladder), and what their rewards would have cost.

What a replay assumes (docs/challenges.md, "Console"): a ``join: opt_in`` challenge as if
every member of its audience had joined at the start of the range (an upper bound); its
audience by the members' tier and tags as they are now; members of the control group
progress but get no reward, as in the real thing. Only goals over receipts replay:
``count: events`` and ``referrals`` are refused (422 naming ``goal.count``).
"""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from kopilka.challenges import progress as ev
from kopilka.challenges.cost import Cost, coupon_faces
from kopilka.core import db as core_db
from kopilka.core.dates import day_error
from kopilka.core.errors import Problem
from kopilka.members import queries as members
from kopilka.purchases import queries as purchases
from kopilka.spec.challenges import FROM_RECEIPTS, ChallengeSpec
from kopilka.spec.control_group import in_control_group
from kopilka.spec.program import ProgramSpec

# The longest range a simulation replays (local days).
MAX_DAYS = 366
DEFAULT_DAYS = 30


@dataclass(frozen=True)
class Replayed:
    """A receipt to replay: its member, moment and what the goal looks at."""

    member_id: uuid.UUID
    at: dt.datetime
    receipt: ev.Receipt


@dataclass
class Simulation:
    start: dt.date
    end: dt.date  # inclusive
    receipts: int = 0
    members_buying: int = 0
    eligible: int = 0  # members of the audience who bought in the range
    progressed: int = 0
    completed: int = 0  # members who completed it at least once
    completions: int = 0  # (member, period) completed
    periods: int = 0  # (member, period) with progress
    steps: list[dict[str, Any]] = field(default_factory=list)
    cost: Cost = field(default_factory=Cost)
    control_group: int = 0  # completions of members of the control group (no reward)


def replay(
    challenge: ChallengeSpec,
    spec: ProgramSpec,
    receipts: Iterable[Replayed],
    audience: Mapping[uuid.UUID, ev.Audience],
    start: dt.date,
    end: dt.date,
) -> Simulation:
    """The figures of ``challenge`` over ``receipts`` (of the local days ``start`` to
    ``end``), by the evaluator's rules. Pure."""
    tz = spec.timezone
    joined_at = ev.day_start(start, tz)  # opt-in: as if everyone joined at the start
    sim = Simulation(start, end)
    buying: set[uuid.UUID] = set()
    eligible: set[uuid.UUID] = set()
    per: dict[tuple[uuid.UUID, str], list[ev.Contribution]] = defaultdict(list)
    for r in receipts:
        sim.receipts += 1
        buying.add(r.member_id)
        who = audience.get(r.member_id)
        if who is None or not ev.in_audience(challenge, who):
            continue
        eligible.add(r.member_id)
        w = ev.window(challenge.period, r.at, tz, joined_at)
        if w is None:
            continue
        c = ev.receipt_contribution(challenge, r.receipt, tz)
        if c.value > 0:
            per[(r.member_id, w.key)].append(c)
    ladder = challenge.ladder()
    targets = [t for t, _ in ladder]
    reached = [0] * len(ladder)
    progressed: set[uuid.UUID] = set()
    completed: set[uuid.UUID] = set()
    for (member_id, _key), contributions in sorted(per.items(), key=lambda kv: str(kv[0])):
        value = ev.progress(challenge, contributions)
        if value <= 0:
            continue
        progressed.add(member_id)
        sim.periods += 1
        n = ev.steps_reached(targets, value)
        control = in_control_group(member_id, spec.control_group_share)
        for i in range(n):
            reached[i] += 1
            if not control:
                sim.cost.add(ladder[i][1])
        if n == len(targets):
            sim.completions += 1
            completed.add(member_id)
            sim.control_group += int(control)
    sim.members_buying = len(buying)
    sim.eligible = len(eligible)
    sim.progressed = len(progressed)
    sim.completed = len(completed)
    sim.steps = [{"target": t, "reached": reached[i]} for i, t in enumerate(targets)]
    return sim


def default_range(challenge: ChallengeSpec, today: dt.date) -> tuple[dt.date, dt.date]:
    """The range a simulation replays unless told: an ``every`` challenge's last full
    day, week or month before today; a streak's last ``length + grace`` full units; a
    fixed period's length (at most a year) up to yesterday; otherwise the last 30 days."""
    yesterday = today - dt.timedelta(days=1)
    period = challenge.period
    if challenge.streak is not None:
        every = challenge.streak.every
        _, first, _after = ev.unit_bounds(every, today)
        last = first - dt.timedelta(days=1)
        for _ in range(challenge.streak.length + challenge.streak.grace):
            _, first, _after = ev.unit_bounds(every, first - dt.timedelta(days=1))
        return max(first, last - dt.timedelta(days=MAX_DAYS - 1)), last
    if period is not None and period.every is not None:
        _, first, after = ev.unit_bounds(period.every, today)
        _, first, after = ev.unit_bounds(period.every, first - dt.timedelta(days=1))
        return first, after - dt.timedelta(days=1)
    if period is not None and period.from_ is not None and period.to is not None:
        days = min((period.to - period.from_).days + 1, MAX_DAYS)
        return yesterday - dt.timedelta(days=days - 1), yesterday
    if period is not None and period.days is not None:
        days = min(period.days, MAX_DAYS)
        return yesterday - dt.timedelta(days=days - 1), yesterday
    return yesterday - dt.timedelta(days=DEFAULT_DAYS - 1), yesterday


def check_range(start: dt.date, end: dt.date) -> None:
    """422 naming ``from``/``to`` when the range is backwards or too long."""
    if end < start:
        raise Problem(
            422,
            "validation_failed",
            errors=[{"field": "to", "code": "before_from", "message": "is before from"}],
        )
    if (end - start).days + 1 > MAX_DAYS:
        raise Problem(
            422,
            "validation_failed",
            errors=[{"field": "to", "code": "too_long", "message": f"at most {MAX_DAYS} days"}],
        )


def simulatable(challenge: ChallengeSpec, at: str = "goal.count") -> None:
    """422 naming ``at`` for a goal that receipts do not make."""
    if challenge.goal.count not in FROM_RECEIPTS:
        raise Problem(
            422,
            "challenge_not_simulated",
            f"a simulation replays receipts; count: {challenge.goal.count} is not counted "
            "from receipts",
            errors=[
                {
                    "field": at,
                    "code": "not_simulated",
                    "message": f"count: {challenge.goal.count} is not counted from receipts",
                }
            ],
        )


# Rows read at a time: a simulation streams the range's receipts, never all at once.
BATCH = 2000


def _bounds(spec: ProgramSpec, start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    tz = spec.timezone
    return ev.day_start(start, tz), ev.day_start(end + dt.timedelta(days=1), tz)


def read_returns(
    session: Session, spec: ProgramSpec, start: dt.date, end: dt.date
) -> dict[uuid.UUID, dict[int, tuple[Decimal, Decimal]]]:
    """What returns took back of the range's receipts: receipt → line → (quantity,
    refund)."""
    lo, hi = _bounds(spec, start, end)
    returned: dict[uuid.UUID, dict[int, tuple[Decimal, Decimal]]] = defaultdict(dict)
    for row in session.execute(purchases.returned_lines_between(lo, hi)):
        returned[row.purchase_id][int(row.line_no)] = (
            Decimal(row.quantity or 0),
            Decimal(row.refund or 0),
        )
    return returned


def iter_receipts(
    session: Session,
    spec: ProgramSpec,
    start: dt.date,
    end: dt.date,
    returned: Mapping[uuid.UUID, Mapping[int, tuple[Decimal, Decimal]]],
) -> Iterator[Replayed]:
    """The confirmed receipts with a member of the local days ``start`` to ``end``, one
    by one (read ``BATCH`` rows at a time), each as what ``returned`` left of it."""
    tz = spec.timezone
    lo, hi = _bounds(spec, start, end)
    head: Any = None
    lines: list[ev.Line] = []

    def made() -> Replayed:
        at: dt.datetime = head.occurred_at
        if at.tzinfo is None:
            at = at.replace(tzinfo=dt.UTC)
        receipt = ev.Receipt(
            store=head.store,
            channel=head.channel,
            paid=Decimal(head.total_due),
            day=ev.local_day(at, tz),
            lines=tuple(lines),
        )
        if head.id in returned:
            receipt = ev.after_return(receipt, returned[head.id])
        return Replayed(head.member_id, at, receipt)

    rows = session.execute(
        purchases.member_receipt_lines_between(lo, hi), execution_options={"yield_per": BATCH}
    )
    for row in rows:  # ordered by receipt, then line
        if head is not None and row.id != head.id:
            yield made()
            lines = []
        head = row
        lines.append(
            ev.Line(
                int(row.line_no),
                row.sku,
                row.category,
                Decimal(row.quantity),
                Decimal(row.line_paid),
            )
        )
    if head is not None:
        yield made()


def read_audience(
    session: Session, spec: ProgramSpec, start: dt.date, end: dt.date
) -> dict[uuid.UUID, ev.Audience]:
    """The tier and tags now of the active members who bought in the range (members
    blocked or erased left out: they take part in nothing)."""
    lo, hi = _bounds(spec, start, end)
    buying = purchases.members_buying_between(lo, hi)
    return {
        row.id: ev.Audience(row.tier, frozenset(row.tags or ()))
        for row in session.execute(members.audience_among(buying))
    }


def parse_day(raw: str) -> dt.date:
    """A local date as ``YYYY-MM-DD`` in the range clients may send; ``ValueError``
    otherwise."""
    value = dt.date.fromisoformat(raw)
    if day_error(value) is not None:
        raise ValueError(raw)
    return value


def today_in(spec: ProgramSpec) -> dt.date:
    return core_db.now().astimezone(zoneinfo.ZoneInfo(spec.timezone)).date()


def run(
    session: Session,
    spec: ProgramSpec,
    challenge: ChallengeSpec,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> Simulation:
    """Simulate ``challenge`` under ``spec`` (the programme it would be published in)
    over the local days ``start`` to ``end`` (``default_range`` when not given). Reads
    only."""
    simulatable(challenge)
    if start is None or end is None:
        d_start, d_end = default_range(challenge, today_in(spec))
        start, end = start or d_start, end or d_end
    check_range(start, end)
    audience = read_audience(session, spec, start, end)
    returned = read_returns(session, spec, start, end)
    receipts = iter_receipts(session, spec, start, end, returned)
    return replay(challenge, spec, receipts, audience, start, end)


def as_json(session: Session, spec: ProgramSpec, challenge: ChallengeSpec, sim: Simulation) -> Any:
    """The simulation's JSON (``POST /api/v1/challenges/simulate``, the console)."""
    cost, _ = sim.cost.as_json(spec, coupon_faces(session, spec, sim.cost.pools()))
    rate = (
        (Decimal(sim.completed) / Decimal(sim.progressed)).quantize(Decimal("0.0001"))
        if sim.progressed
        else None
    )
    return {
        "challenge": challenge.code,
        "range": {
            "from": sim.start.isoformat(),
            "to": sim.end.isoformat(),
            "timezone": spec.timezone,
        },
        "receipts": sim.receipts,
        "members_buying": sim.members_buying,
        "eligible": sim.eligible,
        "progressed": sim.progressed,
        "completed": sim.completed,
        "completions": sim.completions,
        "completion_rate": None if rate is None else str(rate),
        "steps": [{"target": str(s["target"]), "reached": s["reached"]} for s in sim.steps],
        "control_group_completions": sim.control_group,
        "cost": cost,
    }
