"""Pure logic of event rules: which rules match an event, what they give, and the periods
their limits count in. Nothing here does I/O."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from kopilka.core import dates
from kopilka.core.money import MAX_AMOUNT, ZERO, round_down
from kopilka.spec.custom_events import EventRuleSpec, PointsReward

# The order limits are checked in; the first one reached is the reason given.
LIMIT_PERIODS = ("per_day", "per_week", "per_month", "total")


def number(value: Any) -> Decimal | None:
    """A property as a decimal: JSON numbers and decimal strings; None for anything else
    (booleans are not numbers)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float):
        value = repr(value)  # the shortest text of the number the caller sent
    if not isinstance(value, int | str):
        return None
    try:
        d = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def equal(expected: bool | int | str, actual: Any) -> bool:
    """``equals``: booleans match booleans; numbers (and decimal strings) by value;
    other strings exactly."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected == actual
    a, b = number(expected), number(actual)
    if a is not None and b is not None:
        return a == b
    return isinstance(actual, str) and str(expected) == actual


def numeric_properties(rule: EventRuleSpec) -> set[str]:
    """The properties a rule reads as numbers (``min``/``max`` and ``per_property``)."""
    names = {
        name for name, c in rule.when.properties.items() if c.min is not None or c.max is not None
    }
    points = rule.reward.points
    if points is not None and points.per_property is not None:
        names.add(points.per_property)
    return names


def property_errors(
    rules: Sequence[EventRuleSpec], properties: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Properties present but unusable by the rules of this type: not a number where a
    rule reads one, or negative where points are counted per unit."""
    errors: list[dict[str, Any]] = []
    per_unit = {
        r.reward.points.per_property
        for r in rules
        if r.reward.points is not None and r.reward.points.per_property is not None
    }
    wanted: set[str] = set()
    for rule in rules:
        wanted |= numeric_properties(rule)
    for name in sorted(wanted):
        if name not in properties or properties[name] is None:
            continue
        value = number(properties[name])
        if value is None:
            errors.append(
                {
                    "field": f"properties.{name}",
                    "code": "not_a_number",
                    "message": "a number (or a decimal string) is expected",
                }
            )
        elif abs(value) >= MAX_AMOUNT:
            errors.append(
                {
                    "field": f"properties.{name}",
                    "code": "range",
                    "message": "out of range (at most 13 digits before the point)",
                }
            )
        elif name in per_unit and value < 0:
            errors.append(
                {
                    "field": f"properties.{name}",
                    "code": "range",
                    "message": "must not be negative",
                }
            )
    return errors


def matches(
    rule: EventRuleSpec,
    properties: Mapping[str, Any],
    tier: str | None,
    local_day: dt.date,
) -> bool:
    """Do the rule's conditions hold for this event (its type already matched)?"""
    when = rule.when
    for name, cond in when.properties.items():
        value = properties.get(name)
        if value is None:
            return False
        if cond.equals is not None and not equal(cond.equals, value):
            return False
        if cond.min is not None or cond.max is not None:
            n = number(value)
            if n is None:
                return False
            if cond.min is not None and n < cond.min:
                return False
            if cond.max is not None and n > cond.max:
                return False
    if when.member is not None and tier not in when.member.tiers:
        return False
    period = when.period
    if period is not None:
        if period.from_ is not None and local_day < period.from_:
            return False
        if period.to is not None and local_day > period.to:
            return False
    return True


@dataclass(frozen=True)
class PointsDue:
    amount: Decimal  # 0: nothing to grant
    reason: str | None = None  # why nothing, when amount is 0


def points_due(reward: PointsReward, properties: Mapping[str, Any], precision: int) -> PointsDue:
    """The points a reward gives: fixed, or ``amount`` × the property rounded down to the
    currency's precision and capped at ``max``."""
    if reward.per_property is None:
        return PointsDue(reward.amount)
    units = number(properties.get(reward.per_property))
    if units is None:
        return PointsDue(ZERO, "property_missing")
    raw = reward.amount * units
    if reward.max is not None:  # ``max`` fits the precision: capping first rounds the same
        raw = min(raw, reward.max)
    if raw >= MAX_AMOUNT:
        return PointsDue(ZERO, "amount_out_of_range")
    due = round_down(raw, precision)
    if due <= 0:
        return PointsDue(ZERO, "nothing_to_grant")
    return PointsDue(due)


def periods(occurred_at: dt.datetime, tz: str) -> dict[str, tuple[dt.datetime, dt.datetime]]:
    """The calendar day, ISO week (from Monday) and month holding ``occurred_at`` in the
    time zone ``tz``, each as ``[start, end)`` in UTC."""
    zone = zoneinfo.ZoneInfo(tz)
    day = occurred_at.astimezone(zone).date()
    week = day - dt.timedelta(days=day.weekday())
    month = day.replace(day=1)
    next_month = (month + dt.timedelta(days=32)).replace(day=1)

    def at(d: dt.date) -> dt.datetime:
        return dt.datetime.combine(d, dt.time(), tzinfo=zone).astimezone(dt.UTC)

    return {
        "per_day": (at(day), at(day + dt.timedelta(days=1))),
        "per_week": (at(week), at(week + dt.timedelta(days=7))),
        "per_month": (at(month), at(next_month)),
    }


def local_day(occurred_at: dt.datetime, tz: str) -> dt.date:
    return dates.local_day(occurred_at, zoneinfo.ZoneInfo(tz))
