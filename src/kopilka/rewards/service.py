"""The rewards catalogue: what it offers and how much is left, claims in the app (a coupon)
and at the till (a receipt line sold as a reward), and giving a claim back.

Every claim, wherever made, is the same three writes in the caller's transaction: the
cost debited from the member's wallet (ledger kind ``reward``, its key the claim's), a
stock unit taken by a conditional update (``take_stock``: never oversold, whatever runs
at the same time), the claim's row; then, for a coupon, the code issued and the event
``reward.claimed``. Anything refused raises a ``Problem`` and the transaction rolls back,
so a member who was too late keeps their stickers. Locks: the member's wallets first (the
ledger's, in account order), then the reward's stock row, everywhere.
"""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kopilka.core.db import now
from kopilka.core.errors import Problem, field_error, not_found, validation_problem
from kopilka.core.ids import uuid7
from kopilka.core.money import ZERO, fmt
from kopilka.coupons import issue as coupon_issue
from kopilka.events import service as events
from kopilka.ledger import service as ledger
from kopilka.members import service as members
from kopilka.program.service import current_program
from kopilka.purchases import hooks
from kopilka.rewards.models import RewardClaim, RewardStock
from kopilka.spec.program import ProgramSpec
from kopilka.spec.rewards import RewardSpec

STANDING = ("held", "claimed")


# ---------------------------------------------------------------------------- the catalogue


def today(spec: ProgramSpec, at: dt.datetime | None = None) -> dt.date:
    """The programme's local date at ``at`` (default: now): a reward's dates are days."""
    return (at or now()).astimezone(zoneinfo.ZoneInfo(spec.timezone)).date()


def taken(session: Session, codes: Sequence[str] | None = None) -> dict[str, int]:
    """Units taken per reward (absent: none yet)."""
    q = select(RewardStock.code, RewardStock.taken)
    if codes is not None:
        q = q.where(RewardStock.code.in_(list(codes)))
    return {c: int(t) for c, t in session.execute(q).all()}


def reward_json(
    spec: ProgramSpec, reward: RewardSpec, used: int, day: dt.date, lang: str | None = None
) -> dict[str, Any]:
    """A reward as the API lists it; ``stock_left`` null: unlimited. ``lang``: the name and
    description in that language only (the app), else both."""
    cur = spec.currency(reward.cost.currency)
    p = cur.precision if cur is not None else 0
    left = None if reward.stock is None else max(reward.stock - used, 0)

    def text(t: Any) -> Any:
        if t is None:
            return None
        return t.get(lang) if lang else t.model_dump(mode="json")

    return {
        "code": reward.code,
        "name": text(reward.name),
        "description": text(reward.description),
        "image": reward.image,
        "cost": {"currency": reward.cost.currency, "amount": fmt(reward.cost.amount, p)},
        "gives": (
            {"sku": reward.gives.sku, "price": fmt(reward.gives.price or ZERO, 2)}
            if reward.gives.at_till
            else {"coupon_pool": reward.gives.coupon_pool}
        ),
        "kind": "till" if reward.gives.at_till else "coupon",
        "stock": reward.stock,
        "stock_left": left,
        "taken": used,
        "available": {
            "from": reward.available.from_.isoformat() if reward.available.from_ else None,
            "to": reward.available.to.isoformat() if reward.available.to else None,
        },
        "available_now": reward.available.holds_on(day) and (left is None or left > 0),
        "per_member": reward.per_member,
    }


def catalogue(session: Session, lang: str | None = None) -> list[dict[str, Any]]:
    """Every reward of the programme in force, in the file's order, with the stock left."""
    spec = current_program(session).spec
    used = taken(session)
    day = today(spec)
    return [reward_json(spec, r, used.get(r.code, 0), day, lang) for r in spec.rewards]


def stock_left(session: Session, code: str) -> int | None:
    """Units of the reward left (None: unlimited, or no such reward)."""
    reward = current_program(session).spec.reward(code)
    if reward is None or reward.stock is None:
        return None
    return max(reward.stock - taken(session, [code]).get(code, 0), 0)


def reward_of(spec: ProgramSpec, code: str) -> RewardSpec:
    reward = spec.reward(code)
    if reward is None:
        raise not_found("reward_not_found", f"no reward {code!r} in the programme")
    return reward


# ---------------------------------------------------------------------------- stock


def _insert(session: Session) -> type[postgresql.Insert] | type[sqlite.Insert]:
    return postgresql.Insert if session.get_bind().dialect.name == "postgresql" else sqlite.Insert


def unavailable(reward: RewardSpec, why: str, field: str) -> Problem:
    return Problem(
        422,
        "reward_unavailable",
        f"reward {reward.code!r} {why}",
        errors=[field_error(field, why, "reward_unavailable")],
    )


def take_stock(session: Session, reward: RewardSpec, units: int, field: str) -> None:
    """Take ``units`` of the reward's stock, or 422 ``reward_unavailable`` when fewer are
    left. One conditional update (``taken + units <= stock``): on PostgreSQL a concurrent
    taker waits for the row and the condition is checked again on what it committed."""
    session.execute(
        _insert(session)(RewardStock)
        .values(code=reward.code, taken=0, updated_at=now())
        .on_conflict_do_nothing(index_elements=["code"])
    )
    q = update(RewardStock).where(RewardStock.code == reward.code)
    if reward.stock is not None:
        q = q.where(RewardStock.taken + units <= reward.stock)
    done = session.execute(
        q.values(taken=RewardStock.taken + units, updated_at=now()),
        execution_options={"synchronize_session": False},
    ).rowcount  # type: ignore[attr-defined]
    if done != 1:
        raise unavailable(reward, "is out of stock", field)


def give_back_stock(session: Session, code: str, units: int) -> None:
    session.execute(
        update(RewardStock)
        .where(RewardStock.code == code)
        .values(taken=RewardStock.taken - units, updated_at=now()),
        execution_options={"synchronize_session": False},
    )


# ---------------------------------------------------------------------------- claims


def _check_limit(
    session: Session, reward: RewardSpec, member_id: uuid.UUID, units: int, field: str
) -> None:
    """The reward's ``per_member`` (read under the member's wallet lock: their claims take
    turns)."""
    if reward.per_member is None:
        return
    had = session.execute(
        select(func.coalesce(func.sum(RewardClaim.units - RewardClaim.returned_units), 0)).where(
            RewardClaim.member_id == member_id,
            RewardClaim.reward == reward.code,
            RewardClaim.status.in_(STANDING),
        )
    ).scalar_one()
    if int(had) + units > reward.per_member:
        raise Problem(
            422,
            "reward_limit_reached",
            f"reward {reward.code!r}: at most {reward.per_member} per member",
            errors=[field_error(field, "the member has had as many as allowed", "limit")],
        )


def _debit(
    session: Session,
    spec: ProgramSpec,
    reward: RewardSpec,
    member_id: uuid.UUID,
    units: int,
    key: str,
    actor: str,
    field: str,
    counter: str,
    purchase_id: uuid.UUID | None = None,
) -> Any:
    """The cost of ``units`` debited (the member's wallet locked), or 422
    ``insufficient_balance`` naming ``field``."""
    cost = reward.cost.amount * units
    code = reward.cost.currency
    ledger.lock_member(session, member_id, spec, [code])
    have = ledger.redeemable(session, member_id, code)
    if have < cost:
        cur = spec.currency(code)
        p = cur.precision if cur is not None else 0
        message = f"the reward costs {fmt(cost, p)} {code}; the member has {fmt(have, p)}"
        raise Problem(
            422,
            "insufficient_balance",
            message,
            errors=[field_error(field, message, "insufficient_balance")],
            extra={"available": fmt(have, p)},
        )
    return ledger.debit(
        session,
        key=key,
        kind="reward",
        member_id=member_id,
        currency=code,
        amount=cost,
        actor=actor,
        description=f"reward {reward.code}",
        counter=counter,
        purchase_id=purchase_id,
    )


def claim_json(spec: ProgramSpec, c: RewardClaim) -> dict[str, Any]:
    cur = spec.currency(c.currency)
    p = cur.precision if cur is not None else 0
    return {
        "id": str(c.id),
        "reward": c.reward,
        "member_id": str(c.member_id),
        "channel": c.channel,
        "status": c.status,
        "units": c.units,
        "returned_units": c.returned_units,
        "cost": {"currency": c.currency, "amount": fmt(c.cost, p)},
        "coupon_code": c.coupon_code,
        "purchase_id": str(c.purchase_id) if c.purchase_id else None,
        "line_no": c.line_no,
        "created_at": c.created_at.isoformat(),
    }


def _emit_claimed(session: Session, spec: ProgramSpec, c: RewardClaim) -> None:
    data = claim_json(spec, c)
    data.pop("returned_units")
    events.emit(session, "reward.claimed", data, member_id=c.member_id, key=f"{c.key}:claimed")


def claim(
    session: Session, member_id: uuid.UUID, code: str, actor: str, key: str | None = None
) -> dict[str, Any]:
    """A member claims a reward that is a coupon (in the app, or staff for them): its cost
    debited, a stock unit taken, a personal code of its pool issued, ``reward.claimed``;
    one transaction (the caller commits). ``key``: the request's Idempotency-Key (the same
    key again answers the same claim). 404 ``member_not_found`` first, for an unknown
    member, whatever the code."""
    member = members.get_member(session, member_id)
    spec = current_program(session).spec
    reward = reward_of(spec, code)
    claim_key = f"reward:app:{member_id}:{key}" if key else f"reward:app:{uuid7()}"
    found = session.execute(
        select(RewardClaim).where(RewardClaim.key == claim_key)
    ).scalar_one_or_none()
    if found is not None:
        return claim_json(spec, found)
    if reward.gives.at_till:
        raise validation_problem(
            [field_error("code", f"reward {code!r} is sold at the till (show it there)", "at_till")]
        )
    if member.status != "active":
        raise Problem(422, "member_blocked", f"member {member_id} is {member.status}")
    if not reward.available.holds_on(today(spec)):
        raise unavailable(reward, "cannot be had today", "code")
    entry = _debit(session, spec, reward, member_id, 1, claim_key, actor, "code", "redemption")
    _check_limit(session, reward, member_id, 1, "code")
    take_stock(session, reward, 1, "code")
    assert reward.gives.coupon_pool is not None
    coupon, why = coupon_issue.issue_to_member(session, reward.gives.coupon_pool, member_id, actor)
    if coupon is None:
        raise unavailable(reward, f"cannot be issued now ({why})", "code")
    row = RewardClaim(
        id=uuid7(),
        key=claim_key,
        reward=reward.code,
        member_id=member_id,
        channel="app",
        status="claimed",
        units=1,
        returned_units=0,
        currency=reward.cost.currency,
        cost=reward.cost.amount,
        entry_id=entry.id,
        coupon_code=coupon,
        created_at=now(),
        updated_at=now(),
    )
    session.add(row)
    session.flush()
    _emit_claimed(session, spec, row)
    return claim_json(spec, row)


def claims_of(session: Session, member_id: uuid.UUID, limit: int = 100) -> list[RewardClaim]:
    return list(
        session.execute(
            select(RewardClaim)
            .where(RewardClaim.member_id == member_id)
            .order_by(RewardClaim.created_at.desc(), RewardClaim.id.desc())
            .limit(limit)
        ).scalars()
    )


def list_claims(
    session: Session, reward: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The newest claims (of one reward, or all), for the console."""
    spec = current_program(session).spec
    q = select(RewardClaim).order_by(RewardClaim.created_at.desc(), RewardClaim.id.desc())
    if reward is not None:
        q = q.where(RewardClaim.reward == reward)
    return [claim_json(spec, c) for c in session.execute(q.limit(limit)).scalars()]


# ---------------------------------------------------------------------------- at the till


def _till_key(purchase_id: uuid.UUID, line_no: int) -> str:
    return f"reward:till:{purchase_id}:{line_no}"


def _claims_of_purchase(session: Session, purchase_id: uuid.UUID) -> list[RewardClaim]:
    return list(
        session.execute(
            select(RewardClaim)
            .where(RewardClaim.purchase_id == purchase_id)
            .order_by(RewardClaim.line_no)
            .with_for_update()
        ).scalars()
    )


def sell_at_till(session: Session, receipt: hooks.Settled, held: bool) -> None:
    """The receipt's lines sold as rewards: each one's cost debited (to the ``held``
    account for a hold, committed later), its stock taken, its claim recorded; a hold's
    claims, when it is committed, settled. The figures checked the reward, its dates and
    the balance; this is where a stock unit is taken (422 ``reward_unavailable``)."""
    lines = [ln for ln in receipt.lines if ln.reward is not None]
    if not lines or receipt.member_id is None:
        return
    spec = current_program(session).spec
    before = {c.line_no: c for c in _claims_of_purchase(session, receipt.purchase_id)}
    for ln in lines:
        assert ln.reward is not None
        i = ln.line_no - 1
        old = before.get(ln.line_no)
        if old is not None:  # a hold committed: its reservation becomes the sale
            if old.status == "held" and not held:
                ledger.move_system(
                    session,
                    key=f"{old.key}:settle",
                    currency=old.currency,
                    amount=old.cost,
                    from_kind="held",
                    to_kind="redemption",
                    actor="system:rewards",
                    member_id=old.member_id,
                    purchase_id=receipt.purchase_id,
                    description=f"reward {old.reward}: hold settled",
                )
                old.status = "claimed"
                old.updated_at = now()
                _emit_claimed(session, spec, old)
            continue
        reward = reward_of(spec, ln.reward)
        units = int(ln.quantity)
        field = f"lines[{i}].reward"
        key = _till_key(receipt.purchase_id, ln.line_no)
        entry = _debit(
            session,
            spec,
            reward,
            receipt.member_id,
            units,
            key,
            "system:rewards",
            field,
            "held" if held else "redemption",
            receipt.purchase_id,
        )
        _check_limit(session, reward, receipt.member_id, units, field)
        take_stock(session, reward, units, field)
        row = RewardClaim(
            id=uuid7(),
            key=key,
            reward=reward.code,
            member_id=receipt.member_id,
            channel="till",
            status="held" if held else "claimed",
            units=units,
            returned_units=0,
            currency=reward.cost.currency,
            cost=reward.cost.amount * units,
            entry_id=entry.id,
            purchase_id=receipt.purchase_id,
            line_no=ln.line_no,
            created_at=now(),
            updated_at=now(),
        )
        session.add(row)
        session.flush()
        if not held:
            _emit_claimed(session, spec, row)


def release_hold(session: Session, purchase_id: uuid.UUID) -> None:
    """A hold released: its reserved rewards given back (the stickers to the same lots,
    the stock units)."""
    for c in _claims_of_purchase(session, purchase_id):
        if c.status != "held":
            continue
        ledger.reverse(
            session,
            c.entry_id,
            key=f"{c.key}:release",
            actor="system:rewards",
            kind="release",
            description=f"reward {c.reward}: hold released",
        )
        give_back_stock(session, c.reward, c.units)
        c.status = "released"
        c.updated_at = now()


def give_back(session: Session, receipt: hooks.Reversed) -> None:
    """A cancel or a return of reward lines: per unit returned, its cost back to the
    member's wallet (the lots it came from) and its stock unit back."""
    claims = {c.line_no: c for c in _claims_of_purchase(session, receipt.purchase_id)}
    if not claims:
        return
    for ln in receipt.lines:
        c = claims.get(ln.line_no)
        if c is None or c.status != "claimed":
            continue
        units = min(int(ln.quantity), c.units - c.returned_units)
        if units <= 0:
            continue
        ledger.reverse(
            session,
            c.entry_id,
            key=f"{receipt.key}:reward:{ln.line_no}",
            actor="system:rewards",
            kind="return",
            amount=c.cost * units / c.units,
            counter="redemption",
            description=f"reward {c.reward}: returned",
        )
        give_back_stock(session, c.reward, units)
        c.returned_units += units
        if c.returned_units == c.units:
            c.status = "returned"
        c.updated_at = now()


# ---------------------------------------------------------------------------- the card


@dataclass(frozen=True)
class CardLine:
    """One reward on a member's sticker card: how far their balance gets toward it."""

    reward: dict[str, Any]
    have: Decimal
    need: Decimal

    @property
    def enough(self) -> bool:
        return self.have >= self.need


def card(session: Session, member_id: uuid.UUID, lang: str) -> dict[str, Any]:
    """The member's sticker card: per currency the rewards cost in, the balance (negative:
    a debt, e.g. stickers of a returned receipt already spent) and each reward with how
    far the balance gets toward it ("17 of 30"). 404 ``member_not_found`` for an unknown
    member."""
    members.get_member(session, member_id)
    spec = current_program(session).spec
    balances = {b.currency: b for b in ledger.balances(session, member_id)}
    used = taken(session)
    day = today(spec)
    out: list[dict[str, Any]] = []
    for code in dict.fromkeys(r.cost.currency for r in spec.rewards):
        cur = spec.currency(code)
        if cur is None:
            continue
        b = balances.get(code)
        have = b.available if b is not None else ZERO
        items = []
        for r in spec.rewards:
            if r.cost.currency != code:
                continue
            item = reward_json(spec, r, used.get(r.code, 0), day, lang)
            item["progress"] = {
                # toward the reward: the card says "10 of 10" once the balance is enough
                "have": fmt(min(max(have, ZERO), r.cost.amount), cur.precision),
                "need": fmt(r.cost.amount, cur.precision),
                "enough": have >= r.cost.amount,
            }
            items.append(item)
        out.append(
            {
                "currency": code,
                "name": cur.name,
                "balance": fmt(have, cur.precision),
                "debt": fmt(-have, cur.precision) if have < 0 else None,
                "expires_on": cur.expires_on.isoformat() if cur.expires_on else None,
                "rewards": items,
            }
        )
    return {"cards": out}


# ---------------------------------------------------------------------------- the hooks


class TillHook:
    """The rewards' part in a receipt (``purchases.hooks``): no reads with the receipt's
    context (a receipt without reward lines costs nothing); a line sold as a reward is
    sold once the receipt's rows are written."""

    name = "rewards"

    def columns(self) -> list[Any]:
        return []

    def settled(self, receipt: hooks.Settled, read: Any, plan: Any) -> None:
        return None

    def reversed(self, receipt: hooks.Reversed, read: Any, plan: Any) -> None:
        return None

    def after_settled(self, session: Session, receipt: hooks.Settled, read: Any) -> None:
        if any(ln.reward is not None for ln in receipt.lines):
            sell_at_till(session, receipt, held=False)

    def after_reversed(self, session: Session, receipt: hooks.Reversed, read: Any) -> None:
        if receipt.member_id is not None:
            give_back(session, receipt)

    def held(self, session: Session, receipt: hooks.Settled) -> None:
        if any(ln.reward is not None for ln in receipt.lines):
            sell_at_till(session, receipt, held=True)

    def released(
        self, session: Session, purchase_id: uuid.UUID, member_id: uuid.UUID | None
    ) -> None:
        if member_id is not None:
            release_hold(session, purchase_id)


HOOK = TillHook()


# ---------------------------------------------------------------------------- privacy


def export_claims(session: Session, member_id: uuid.UUID) -> list[dict[str, Any]]:
    """The member's claims, for their data export."""
    spec = current_program(session).spec
    return [claim_json(spec, c) for c in claims_of(session, member_id, limit=10_000)]


def erase_claims(session: Session, member_id: uuid.UUID) -> None:
    """Nothing personal is kept in a claim beyond the member's id (kept, as the ledger's
    entries are): the coupon code is the coupons' to erase."""
    return None
