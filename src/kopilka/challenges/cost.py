"""What the rewards of a challenge cost, in the programme's money: points of each currency
times the currency's ``value`` (exact), coupons at their pool's face when it is known (a
``fixed`` discount: its money; a ``points`` coupon: its points' value; a percentage or a
free product: unknown, counted apart), badges counted. The console's report and its
simulation add up the same way."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from kopilka.core.money import ZERO, fmt, plain
from kopilka.coupons.queries import pools_by_ref
from kopilka.spec.challenges import RewardSpec
from kopilka.spec.program import ProgramSpec

CENT = Decimal("0.01")


def money_text(value: Decimal) -> str:
    """Money exactly, with at least two places (``500.00``, ``0.0003``)."""
    return f"{value.quantize(CENT):f}" if value == value.quantize(CENT) else f"{value:f}"


@dataclass
class Cost:
    """Rewards added up: points by currency, coupons by pool, badges by code."""

    points: dict[str, Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))
    coupons: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    badges: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, reward: RewardSpec | None) -> None:
        """One reward given (a step reached by one member)."""
        if reward is None:
            return
        if reward.currency is not None and reward.amount is not None:
            self.points[reward.currency] += reward.amount
        if reward.coupon_pool is not None:
            self.coupons[reward.coupon_pool] += 1
        if reward.badge is not None:
            self.badges[reward.badge] += 1

    def add_row(
        self, currency: str | None, amount: Decimal | None, pool: str | None, badge: str | None
    ) -> None:
        """One reward as the challenges' tables hold it."""
        if currency is not None and amount is not None:
            self.points[currency] += Decimal(amount)
        if pool is not None:
            self.coupons[pool] += 1
        if badge is not None:
            self.badges[badge] += 1

    def pools(self) -> Iterable[str]:
        return self.coupons.keys()

    def as_json(
        self, spec: ProgramSpec, faces: Mapping[str, Decimal | None]
    ) -> tuple[dict[str, Any], Decimal]:
        """The cost's JSON and its money (what is known of it)."""
        points: list[dict[str, Any]] = []
        total = ZERO
        for code in sorted(self.points):
            cur = spec.currency(code)
            precision = cur.precision if cur is not None else 2
            value = cur.value if cur is not None else ZERO
            money = self.points[code] * value
            total += money
            points.append(
                {
                    "currency": code,
                    "points": fmt(self.points[code], precision),
                    "value": plain(value),
                    "money": money_text(money),
                }
            )
        coupons: list[dict[str, Any]] = []
        for pool in sorted(self.coupons):
            face = faces.get(pool)
            worth = face * self.coupons[pool] if face is not None else None
            if worth is not None:
                total += worth
            coupons.append(
                {
                    "coupon_pool": pool,
                    "coupons": self.coupons[pool],
                    "face": money_text(face) if face is not None else None,
                    "money": money_text(worth) if worth is not None else None,
                }
            )
        badges = [{"badge": b, "awarded": self.badges[b]} for b in sorted(self.badges)]
        doc = {"points": points, "coupons": coupons, "badges": badges, "money": money_text(total)}
        return doc, total


def coupon_faces(session: Session, spec: ProgramSpec, pools: Iterable[str]) -> dict[str, Any]:
    """Each pool's face in money, when known: a ``fixed`` discount's amount, a ``points``
    coupon's points times their currency's value; None otherwise (or no such pool)."""
    faces: dict[str, Decimal | None] = {}
    for ref in pools:
        found = pools_by_ref(session, ref)
        face: Decimal | None = None
        worth = found[0].reward_value if len(found) == 1 else None
        if worth is not None:
            pool = found[0]
            if pool.reward_kind == "fixed":
                face = Decimal(worth)
            elif pool.reward_kind == "points" and pool.reward_currency is not None:
                cur = spec.currency(pool.reward_currency)
                face = Decimal(worth) * cur.value if cur is not None else None
        faces[ref] = face
    return faces
