"""Referrals: from the friend's enrolment to the rewards standing (docs/referrals.md).

A referral is made when a member enrols with another's referral code (``on_enrolled``, run
by ``members.service.create_member``): ``joined``, ``rejected`` at once for what a till can
tell (the referrer themself, someone who was a member before, a circle, outside the
programme's dates), or waiting for a person's review when it looks suspicious (velocity,
a throwaway mailbox). The friend's first qualifying receipt makes it ``qualified``
(``qualify``, through the receipt seam ``purchases.hooks``, in the receipt's transaction,
under the friend's lock and then the referrer's): both rewards are posted as ledger lots
pending until the hold ends. A cancel or a return of that receipt before then, leaving
less than the minimum paid, revokes them exactly (``reverse``): the referral is
``reversed`` and waits for the next qualifying receipt within the window. The job
``referrals.release`` makes the rewards stand when the hold is over (``rewarded``) and
gives the referrer's bonus every N friends.

Time is the ledger's clock (``ledger.service.clock``): the hold ends when the pending lots
it made become available.

Exactly once per friend: one row per friend (unique), its status changed only under the
friend's lock (every receipt of the friend holds it) and checked again after taking it.
"""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kopilka.audit.service import record as audit
from kopilka.core import dates, pagination
from kopilka.core.errors import Problem, field_error, validation_problem
from kopilka.core.money import fmt
from kopilka.coupons.issue import issue_to_member
from kopilka.events.service import emit
from kopilka.ledger import service as ledger
from kopilka.members import queries as member_queries
from kopilka.members import service as members
from kopilka.members.queries import Member
from kopilka.program.service import current_program
from kopilka.purchases import queries as purchases
from kopilka.purchases.hooks import Reversed, Settled
from kopilka.referrals import fraud
from kopilka.referrals.models import Referral, ReferralIdentity, ReferralReward, ReferralVisit
from kopilka.security.crypto import blind_index
from kopilka.spec.referrals import ReferralReward as RewardSpec
from kopilka.spec.referrals import ReferralsSpec

SYSTEM_ACTOR = "system:referrals"
# How far up the chain of referrers a circle is looked for.
UPLINE_DEPTH = 20
# The statuses a receipt may still change.
OPEN = ("joined", "reversed")


def setup(session: Session) -> tuple[ReferralsSpec, str] | None:
    """The programme's ``referrals:`` section and time zone, or None without one."""
    spec = current_program(session).spec
    if spec.referrals is None:
        return None
    return spec.referrals, spec.timezone


# ---------------------------------------------------------------------------- identities


def _identities(member: Member) -> list[tuple[str, str]]:
    """``(kind, digest)`` of what identifies a member: phone, email as written and as the
    mailbox it delivers to, card number."""
    out: list[tuple[str, str]] = []
    if member.phone_index:
        out.append(("phone", member.phone_index))
    if member.email_index:
        out.append(("email", member.email_index))
    if member.email:
        out.append(("mailbox", blind_index("email", fraud.mailbox_of(member.email))))
    if member.card_number_index:
        out.append(("card", member.card_number_index))
    return out


def _seen(session: Session, identities: Sequence[tuple[str, str]]) -> dict[uuid.UUID, str]:
    """The members (other than whoever has them now) who enrolled with any of these
    identities before, and with which kind."""
    if not identities:
        return {}
    order = {kind: i for i, (kind, _) in enumerate(identities)}
    rows = session.execute(
        select(ReferralIdentity.member_id, ReferralIdentity.kind).where(
            tuple_(ReferralIdentity.kind, ReferralIdentity.digest).in_(list(identities))
        )
    ).all()
    found: dict[uuid.UUID, str] = {}
    for owner, kind in sorted(rows, key=lambda r: order[r.kind]):
        found.setdefault(owner, kind)
    return found


def remember(session: Session, member: Member) -> None:
    """Keep the digests of a member's identities (a first owner is never replaced)."""
    rows = [
        {"kind": k, "digest": d, "member_id": member.id, "created_at": ledger.clock()}
        for k, d in _identities(member)
    ]
    if not rows:
        return
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(insert(ReferralIdentity).values(rows).on_conflict_do_nothing())


def _upline(session: Session, referrer_id: uuid.UUID) -> set[uuid.UUID]:
    """The referrer and whoever referred them, and so on up (at most ``UPLINE_DEPTH``)."""
    chain = {referrer_id}
    at: uuid.UUID | None = referrer_id
    for _ in range(UPLINE_DEPTH):
        assert at is not None
        at = member_queries.referrer_of(session, at)
        if at is None or at in chain:
            break
        chain.add(at)
    return chain


# ---------------------------------------------------------------------------- enrolment


def on_enrolled(
    session: Session, member: Member, referrer_id: uuid.UUID | None, via: members.Enrolment
) -> None:
    """A member enrolled (``members.service.on_enrolled``): their identities are kept, and
    when they came with a referral code of a programme that runs referrals, the referral
    is made — joined, rejected with its reason, or flagged for review."""
    identities = _identities(member)
    earlier = _seen(session, identities)
    remember(session, member)
    found = setup(session)
    if referrer_id is None or found is None:
        return
    spec, tz = found
    at = ledger.clock()
    device = blind_index("device", via.device) if via.device else None
    reason = _rejection(session, spec, tz, member, referrer_id, earlier, device, at)
    flags = [] if reason else _flags(session, spec, member, referrer_id, via, device, at)
    ref = Referral(
        referrer_id=referrer_id,
        friend_id=member.id,
        status="rejected" if reason else "joined",
        reason=reason,
        review="pending" if flags else "none",
        flags=flags,
        channel=via.channel,
        store=via.store,
        cashier=via.cashier,
        device=device,
        rounds=0,
        created_at=at,
        updated_at=at,
    )
    session.add(ref)
    session.flush()
    _emit(session, ref, "referral.rejected" if reason else "referral.joined")


def _rejection(
    session: Session,
    spec: ReferralsSpec,
    tz: str,
    member: Member,
    referrer_id: uuid.UUID,
    earlier: dict[uuid.UUID, str],
    device: str | None,
    at: dt.datetime,
) -> str | None:
    """Why a referral cannot stand from the start, if it cannot."""
    day = dates.local_day(at, zoneinfo.ZoneInfo(tz))
    if (spec.from_ is not None and day < spec.from_) or (spec.to is not None and day > spec.to):
        return "outside_dates"
    if referrer_id in earlier:
        return "self_referral"  # the referrer's own phone, mailbox or card
    if device is not None and device in _devices_of(session, referrer_id):
        return "self_referral"  # enrolled on the referrer's own phone
    if earlier:
        upline = _upline(session, referrer_id)
        return "circular" if upline & set(earlier) else "already_member"
    return None


def _devices_of(session: Session, member_id: uuid.UUID) -> set[str]:
    """The devices a member enrolled friends on or was enrolled on (digests)."""
    rows = session.execute(
        select(Referral.device).where(
            (Referral.friend_id == member_id) & Referral.device.is_not(None)
        )
    ).scalars()
    return {d for d in rows if d is not None}


def _flags(
    session: Session,
    spec: ReferralsSpec,
    member: Member,
    referrer_id: uuid.UUID,
    via: members.Enrolment,
    device: str | None,
    at: dt.datetime,
) -> list[str]:
    """What makes a referral worth a person's look before it is rewarded."""
    f = spec.fraud
    flags: list[str] = []

    def count(*where: Any) -> int:
        return int(session.execute(select(func.count()).where(*where)).scalar_one())

    day_ago = at - dt.timedelta(days=1)
    if (
        count(Referral.referrer_id == referrer_id, Referral.created_at >= day_ago)
        >= f.max_friends_per_referrer_per_day
    ):
        flags.append("referrer_velocity")
    if device is not None:
        since = at - dt.timedelta(hours=f.device_window_hours)
        if (
            count(Referral.device == device, Referral.created_at >= since)
            >= f.max_enrolments_per_device
        ):
            flags.append("device_velocity")
    if via.cashier is not None:
        hour_ago = at - dt.timedelta(hours=1)
        if (
            count(Referral.cashier == via.cashier, Referral.created_at >= hour_ago)
            >= f.max_enrolments_per_cashier_per_hour
        ):
            flags.append("cashier_velocity")
    if member.email and fraud.is_disposable(member.email, f.disposable_email_domains):
        flags.append("disposable_email")
    return flags


def visited(session: Session, code: str) -> bool:
    """An invite link opened: counted for the funnel (nothing about who opened it)."""
    referrer = member_queries.with_referral_code(session, code)
    if referrer is None:
        return False
    session.add(ReferralVisit(referrer_id=referrer, at=ledger.clock()))
    return True


# ---------------------------------------------------------------------------- a receipt


def _locked(session: Session, friend_id: uuid.UUID) -> Referral | None:
    return session.execute(
        select(Referral)
        .where(Referral.friend_id == friend_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def qualifies(spec: ReferralsSpec, ref: Referral, receipt: Settled) -> bool:
    """Whether a settled receipt of the friend is one that counts. Pure."""
    q = spec.qualifying
    if receipt.total_due < q.min_paid:
        return False
    if receipt.occurred_at > ref.created_at + dt.timedelta(days=q.within_days):
        return False
    if q.channels is not None and receipt.channel not in q.channels:
        return False
    return q.stores is None or receipt.store in q.stores


def qualify(session: Session, receipt: Settled) -> None:
    """A settled receipt of a friend whose referral is open: the first that counts makes
    it qualified and posts both rewards, pending until the hold ends (in the receipt's
    transaction; the friend's wallets are locked by the receipt)."""
    found = setup(session)
    if found is None or receipt.member_id is None:
        return
    spec, tz = found
    ref = _locked(session, receipt.member_id)
    if ref is None or ref.status not in OPEN or ref.review == "rejected":
        return
    if not qualifies(spec, ref, receipt):
        return
    if receipt.payment_fingerprint is not None and purchases.paid_with(
        session, ref.referrer_id, receipt.payment_fingerprint, receipt.purchase_id
    ):
        _close(session, ref, "rejected", "self_referral")
        return
    # the referrer's row, after the friend's (a referrer is never their friend's friend:
    # a circle is refused at enrolment), so that two friends of one referrer take turns
    members.get_member(session, ref.referrer_id, lock=True)
    try:
        # a reward the ledger refuses (a wallet at its limit) must not refuse the receipt
        with session.begin_nested():
            _qualified(session, spec, tz, ref, receipt)
    except Problem as exc:
        audit(
            session,
            SYSTEM_ACTOR,
            "referral.not_qualified",
            "referral",
            str(ref.id),
            details={"purchase_id": str(receipt.purchase_id), "problem": exc.code},
        )


def _qualified(
    session: Session, spec: ReferralsSpec, tz: str, ref: Referral, receipt: Settled
) -> None:
    if _limit_reached(session, spec, tz, ref.referrer_id, ledger.clock()):
        _close(session, ref, "rejected", "limit_reached")
        return
    at = ledger.clock()
    ref.status = "qualified"
    ref.reason = None
    ref.rounds += 1
    ref.qualifying_purchase_id = receipt.purchase_id
    ref.qualified_at = at
    ref.hold_until = receipt.occurred_at + dt.timedelta(days=spec.hold_days)
    ref.updated_at = at
    if ref.review in ("none", "approved"):
        _post_points(session, spec, ref)
    session.flush()
    _emit(session, ref, "referral.qualified")
    _tell(session, ref, qualified=True)


def _limit_reached(
    session: Session, spec: ReferralsSpec, tz: str, referrer_id: uuid.UUID, at: dt.datetime
) -> bool:
    """Whether the referrer has as many qualified friends as the limits allow (read under
    the referrer's lock)."""
    lim = spec.limits
    counted = (
        Referral.referrer_id == referrer_id,
        Referral.status.in_(("qualified", "rewarded")),
    )
    if lim.per_referrer_total is not None:
        total = session.execute(select(func.count()).where(*counted)).scalar_one()
        if total >= lim.per_referrer_total:
            return True
    if lim.per_referrer_per_month is not None:
        zone = zoneinfo.ZoneInfo(tz)
        first = dates.local_day(at, zone).replace(day=1)
        start = dt.datetime.combine(first, dt.time(), zone).astimezone(dt.UTC)
        month = session.execute(
            select(func.count()).where(*counted, Referral.qualified_at >= start)
        ).scalar_one()
        if month >= lim.per_referrer_per_month:
            return True
    return False


def reverse(session: Session, receipt: Reversed) -> None:
    """A cancel or a return of a friend's receipt: when it is the qualifying one, the hold
    is not over and what stays paid is below the minimum, every reward is revoked and the
    referral waits for the next qualifying receipt."""
    found = setup(session)
    if found is None or receipt.member_id is None:
        return
    spec, _ = found
    ref = _locked(session, receipt.member_id)
    if (
        ref is None
        or ref.status != "qualified"
        or ref.qualifying_purchase_id != receipt.purchase_id
        or ref.hold_until is None
        or ledger.clock() >= ref.hold_until
    ):
        return
    if receipt.kind == "return":
        kept = purchases.paid_after_returns(session, receipt.purchase_id)
        if kept >= spec.qualifying.min_paid:
            return
    _revoke(session, ref, receipt.key)
    reason = "purchase_cancelled" if receipt.kind == "cancel" else "purchase_returned"
    _close(session, ref, "reversed", reason)
    _tell(session, ref, qualified=False)


# ---------------------------------------------------------------------------- rewards


def _reward_key(ref: Referral, role: str) -> str:
    return f"referral:{ref.id}:{ref.rounds}:{role}"


def _credit(
    session: Session,
    ref: Referral,
    role: str,
    member_id: uuid.UUID,
    reward: RewardSpec,
    available_at: dt.datetime,
) -> None:
    """Points of a reward into the member's wallet, as a lot pending until
    ``available_at``, and the reward's row."""
    assert reward.currency is not None and reward.amount is not None
    entry = ledger.credit(
        session,
        key=_reward_key(ref, role),
        kind="referral",
        member_id=member_id,
        currency=reward.currency,
        amount=reward.amount,
        actor=SYSTEM_ACTOR,
        description=f"referral {ref.id} ({role})",
        available_at=available_at,
        expires_at=_expiry(session, reward.currency, available_at),
    )
    session.add(
        ReferralReward(
            referral_id=ref.id,
            round=ref.rounds,
            role=role,
            member_id=member_id,
            currency=reward.currency,
            amount=reward.amount,
            entry_id=entry.id,
            available_at=available_at,
            status="pending" if available_at > ledger.clock() else "standing",
            created_at=ledger.clock(),
        )
    )


def _expiry(session: Session, currency: str, available_at: dt.datetime) -> dt.datetime | None:
    program = current_program(session).spec
    cur = ledger.currency_row(session, currency)
    _, expires = ledger.lot_times(cur, available_at, program.timezone, pending_days=0)
    return expires


def _post_points(session: Session, spec: ReferralsSpec, ref: Referral) -> None:
    """The points rewards of a qualified referral, pending until the hold ends (coupons
    cannot wait: they are issued when the referral is rewarded)."""
    assert ref.hold_until is not None
    available = max(ref.hold_until, ledger.clock())
    for role, member_id, reward in (
        ("friend", ref.friend_id, spec.friend_reward),
        ("referrer", ref.referrer_id, spec.referrer_reward),
    ):
        if reward is not None and reward.coupon_pool is None:
            _credit(session, ref, role, member_id, reward, available)


def _revoke(session: Session, ref: Referral, key: str) -> None:
    """Take back every pending reward of the referral's round, exactly."""
    for r in session.execute(
        select(ReferralReward).where(
            ReferralReward.referral_id == ref.id,
            ReferralReward.round == ref.rounds,
            ReferralReward.status == "pending",
        )
    ).scalars():
        if r.entry_id is not None:
            ledger.reverse(
                session,
                r.entry_id,
                key=f"{_reward_key(ref, r.role)}:revoked:{key}",
                actor=SYSTEM_ACTOR,
                kind="referral_revoked",
                description=f"referral {ref.id}: reward revoked",
            )
        r.status = "revoked"
        r.revoked_at = ledger.clock()


def _close(session: Session, ref: Referral, status: str, reason: str) -> None:
    ref.status = status
    ref.reason = reason
    ref.updated_at = ledger.clock()
    session.flush()
    _emit(session, ref, f"referral.{status}")


# ---------------------------------------------------------------------------- the hold over


def release_due(session: Session, at: dt.datetime | None = None, limit: int = 500) -> int:
    """Referrals whose hold is over become ``rewarded``: their pending rewards stand, coupon
    rewards are issued, and the referrer's bonus is given every N rewarded friends.
    Flagged referrals wait for their review (or the programme's auto-approval); open ones
    whose window passed are rejected (``window_passed``). Each in a transaction of its own,
    under the friend's lock. Returns how many were rewarded."""
    found = setup(session)
    if found is None:
        return 0
    spec, _ = found
    at = at or ledger.clock()
    if spec.review.auto_approve_after_days is not None:
        _auto_approve(session, spec, at, limit)
    _close_passed(session, spec, at, limit)
    due = list(
        session.execute(
            select(Referral.friend_id)
            .where(
                Referral.status == "qualified",
                Referral.hold_until <= at,
                Referral.review.in_(("none", "approved")),
            )
            .order_by(Referral.hold_until)
            .limit(limit)
        ).scalars()
    )
    done = 0
    for friend_id in due:
        members.get_member(session, friend_id, lock=True)
        ref = _locked(session, friend_id)
        if (
            ref is None
            or ref.status != "qualified"
            or ref.hold_until is None
            or ref.hold_until > at
            or ref.review not in ("none", "approved")
        ):  # changed since it was listed
            session.rollback()
            continue
        _reward(session, spec, ref, at)
        session.commit()
        done += 1
    return done


def _close_passed(session: Session, spec: ReferralsSpec, at: dt.datetime, limit: int) -> None:
    """Referrals still open when the window for a qualifying receipt has passed are
    rejected, ``window_passed`` (each under the friend's lock, committed)."""
    before = at - dt.timedelta(days=spec.qualifying.within_days)
    passed = list(
        session.execute(
            select(Referral.friend_id)
            .where(Referral.status.in_(OPEN), Referral.created_at < before)
            .order_by(Referral.created_at)
            .limit(limit)
        ).scalars()
    )
    for friend_id in passed:
        members.get_member(session, friend_id, lock=True)
        ref = _locked(session, friend_id)
        if ref is not None and ref.status in OPEN and ref.created_at < before:
            _close(session, ref, "rejected", "window_passed")
        session.commit()


def _reward(session: Session, spec: ReferralsSpec, ref: Referral, at: dt.datetime) -> None:
    for r in session.execute(
        select(ReferralReward).where(
            ReferralReward.referral_id == ref.id,
            ReferralReward.round == ref.rounds,
            ReferralReward.status == "pending",
        )
    ).scalars():
        r.status = "standing"
    for role, member_id, reward in (
        ("friend", ref.friend_id, spec.friend_reward),
        ("referrer", ref.referrer_id, spec.referrer_reward),
    ):
        if reward is not None and reward.coupon_pool is not None:
            _coupon(session, ref, role, member_id, reward.coupon_pool, at)
    ref.status = "rewarded"
    ref.reason = None
    ref.rewarded_at = at
    ref.updated_at = at
    session.flush()
    if spec.bonus is not None:
        members.get_member(session, ref.referrer_id, lock=True)
        rewarded = session.execute(
            select(func.count()).where(
                Referral.referrer_id == ref.referrer_id, Referral.status == "rewarded"
            )
        ).scalar_one()
        if rewarded % spec.bonus.every == 0:
            bonus = spec.bonus.reward
            if bonus.coupon_pool is not None:
                _coupon(session, ref, "bonus", ref.referrer_id, bonus.coupon_pool, at)
            else:
                _credit(session, ref, "bonus", ref.referrer_id, bonus, at)
    session.flush()
    _emit(session, ref, "referral.rewarded")


def _coupon(
    session: Session, ref: Referral, role: str, member_id: uuid.UUID, pool: str, at: dt.datetime
) -> None:
    """A personal coupon of ``pool`` as a reward; a pool that cannot issue one leaves the
    reward out, said in the audit log (the referral still stands)."""
    code, reason = issue_to_member(session, pool, member_id, SYSTEM_ACTOR)
    if code is None:
        audit(
            session,
            SYSTEM_ACTOR,
            "referral.coupon_not_issued",
            "referral",
            str(ref.id),
            details={"role": role, "pool": pool, "reason": reason},
        )
        return
    session.add(
        ReferralReward(
            referral_id=ref.id,
            round=ref.rounds,
            role=role,
            member_id=member_id,
            coupon_pool=pool,
            coupon_code=code,
            available_at=at,
            status="standing",
            created_at=at,
        )
    )


def _auto_approve(session: Session, spec: ReferralsSpec, at: dt.datetime, limit: int) -> None:
    assert spec.review.auto_approve_after_days is not None
    before = at - dt.timedelta(days=spec.review.auto_approve_after_days)
    waiting = list(
        session.execute(
            select(Referral.id)
            .where(Referral.review == "pending", Referral.created_at <= before)
            .limit(limit)
        ).scalars()
    )
    for ref_id in waiting:
        approve(
            session, ref_id, "system:referrals (auto-approval)", "auto-approved by the programme"
        )
        session.commit()


# ---------------------------------------------------------------------------- review


def _for_review(session: Session, referral_id: uuid.UUID) -> Referral:
    friend = session.execute(
        select(Referral.friend_id).where(Referral.id == referral_id)
    ).scalar_one_or_none()
    if friend is None:
        raise Problem(404, "referral_not_found", f"no referral {referral_id}")
    members.get_member(session, friend, lock=True)  # the friend's receipts take turns with it
    ref = _locked(session, friend)
    assert ref is not None
    if ref.review != "pending":
        raise Problem(
            409,
            "referral_not_in_review",
            f"the referral is not waiting for a review (review: {ref.review})",
        )
    return ref


def approve(
    session: Session, referral_id: uuid.UUID, actor: str, note: str | None = None
) -> Referral:
    """A flagged referral approved: it goes on as any other (a qualified one gets its
    rewards now, pending until its hold ends). Audited."""
    ref = _for_review(session, referral_id)
    ref.review = "approved"
    ref.reviewed_by = actor
    ref.reviewed_at = ledger.clock()
    ref.review_note = note
    ref.updated_at = ledger.clock()
    found = setup(session)
    if ref.status == "qualified" and found is not None:
        _post_points(session, found[0], ref)
    session.flush()
    audit(session, actor, "referral.approve", "referral", str(ref.id), details={"note": note})
    return ref


def reject(session: Session, referral_id: uuid.UUID, actor: str, note: str) -> Referral:
    """A flagged referral rejected with a reason: nothing is given. Audited."""
    if not note.strip():
        raise validation_problem([field_error("reason", "say why it is rejected", "required")])
    ref = _for_review(session, referral_id)
    ref.review = "rejected"
    ref.reviewed_by = actor
    ref.reviewed_at = ledger.clock()
    ref.review_note = note
    _revoke(session, ref, "review")
    audit(session, actor, "referral.reject", "referral", str(ref.id), details={"reason": note})
    _close(session, ref, "rejected", "review_rejected")
    return ref


# ---------------------------------------------------------------------------- answers


def rewards_of(
    session: Session, referral_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[ReferralReward]]:
    """The rewards of these referrals, oldest first, by referral id."""
    out: dict[uuid.UUID, list[ReferralReward]] = {}
    if referral_ids:
        for r in session.execute(
            select(ReferralReward)
            .where(ReferralReward.referral_id.in_(list(referral_ids)))
            .order_by(ReferralReward.created_at)
        ).scalars():
            out.setdefault(r.referral_id, []).append(r)
    return out


def reward_json(r: ReferralReward, precision: int) -> dict[str, Any]:
    return {
        "role": r.role,
        "currency": r.currency,
        "amount": fmt(r.amount, precision) if r.amount is not None else None,
        "coupon_pool": r.coupon_pool,
        "available_at": r.available_at.isoformat(),
        "status": r.status,
    }


def _event_data(session: Session, ref: Referral) -> dict[str, Any]:
    program = current_program(session).spec
    rewards = rewards_of(session, [ref.id]).get(ref.id, [])
    return {
        "referral_id": str(ref.id),
        "referrer_id": str(ref.referrer_id),
        "friend_id": str(ref.friend_id),
        "status": ref.status,
        "reason": ref.reason,
        "review": ref.review,
        "flags": list(ref.flags or []),
        "purchase_id": str(ref.qualifying_purchase_id) if ref.qualifying_purchase_id else None,
        "hold_until": ref.hold_until.isoformat() if ref.hold_until else None,
        "rewards": [
            reward_json(r, _precision(program, r.currency))
            for r in rewards
            if r.round == ref.rounds
        ],
    }


def _precision(program: Any, currency: str | None) -> int:
    cur = program.currency(currency) if currency else None
    return cur.precision if cur is not None else 2


def _emit(session: Session, ref: Referral, type_: str) -> None:
    data = _event_data(session, ref)
    emit(session, type_, data, member_id=ref.referrer_id)


def display_name(member: Member) -> str:
    """A friend as their referrer may see them: a first name and the initial of the
    second ("Ольга С."), or the last four digits of the card."""
    parts = (member.name or "").split()
    if parts:
        return f"{parts[0]} {parts[1][0]}." if len(parts) > 1 else parts[0]
    return f"•••• {member.card_number[-4:]}"


def referral_json(
    session: Session, refs: Sequence[Referral], only_for: uuid.UUID | None = None
) -> list[dict[str, Any]]:
    """Referrals as the API answers them; ``only_for``: each with the rewards of that
    member only (a referrer's own list)."""
    program = current_program(session).spec
    rewards = rewards_of(session, [r.id for r in refs])
    friends = member_queries.by_ids(session, [r.friend_id for r in refs])
    out = []
    for ref in refs:
        mine = [
            reward_json(x, _precision(program, x.currency))
            for x in rewards.get(ref.id, [])
            if only_for is None or x.member_id == only_for
        ]
        friend = friends[ref.friend_id]
        out.append(
            {
                "id": str(ref.id),
                "referrer_id": str(ref.referrer_id),
                "friend": {"id": str(ref.friend_id), "display_name": display_name(friend)},
                "status": ref.status,
                "reason": ref.reason,
                "review": ref.review,
                "flags": list(ref.flags or []),
                "rewards": mine,
                "qualified_at": ref.qualified_at.isoformat() if ref.qualified_at else None,
                "hold_until": ref.hold_until.isoformat() if ref.hold_until else None,
                "rewarded_at": ref.rewarded_at.isoformat() if ref.rewarded_at else None,
                "created_at": ref.created_at.isoformat(),
            }
        )
    return out


def friends_of(session: Session, member_id: uuid.UUID) -> list[dict[str, Any]]:
    """The friends a member invited, newest first, with the member's own rewards."""
    members.get_member(session, member_id)
    refs = list(
        session.execute(
            select(Referral)
            .where(Referral.referrer_id == member_id)
            .order_by(Referral.created_at.desc(), Referral.id.desc())
        ).scalars()
    )
    return referral_json(session, refs, only_for=member_id)


def get_referral(session: Session, referral_id: uuid.UUID) -> Referral:
    ref = session.get(Referral, referral_id)
    if ref is None:
        raise Problem(404, "referral_not_found", f"no referral {referral_id}")
    return ref


def list_referrals(
    session: Session,
    *,
    status: str | None = None,
    review: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[dict[str, Any]], str | None]:
    """Referrals newest first (by id, time-ordered), by status and review."""
    q = select(Referral).order_by(Referral.id.desc()).limit(limit + 1)
    if status is not None:
        q = q.where(Referral.status == status)
    if review is not None:
        q = q.where(Referral.review == review)
    if (last := pagination.after(cursor)) is not None:
        q = q.where(Referral.id < last)
    shown, nxt = pagination.page(list(session.execute(q).scalars()), limit)
    return referral_json(session, list(shown)), nxt


def review_queue(session: Session, limit: int = 200) -> list[dict[str, Any]]:
    """The referrals waiting for a person's review, oldest first, for the console: each
    with its friend's and referrer's name and card (staff see them in full), its flags,
    status and whether the friend's purchase already qualified it."""
    refs = list(
        session.execute(
            select(Referral)
            .where(Referral.review == "pending")
            .order_by(Referral.created_at, Referral.id)
            .limit(limit)
        ).scalars()
    )
    ids = {r.friend_id for r in refs} | {r.referrer_id for r in refs}
    people = member_queries.by_ids(session, ids)

    def person(member_id: uuid.UUID) -> dict[str, Any]:
        m = people[member_id]
        return {"id": str(m.id), "name": m.name, "card_number": m.card_number}

    return [
        {
            "id": str(r.id),
            "friend": person(r.friend_id),
            "referrer": person(r.referrer_id),
            "status": r.status,
            "reason": r.reason,
            "flags": list(r.flags or []),
            "channel": r.channel,
            "store": r.store,
            "cashier": r.cashier,
            "qualified_at": r.qualified_at,
            "created_at": r.created_at,
        }
        for r in refs
    ]


def count_by_status(session: Session) -> dict[str, int]:
    """How many referrals there are in each status (and waiting for a review)."""
    out = {
        str(status): int(n)
        for status, n in session.execute(
            select(Referral.status, func.count()).group_by(Referral.status)
        )
    }
    waiting = session.execute(select(func.count()).where(Referral.review == "pending")).scalar_one()
    if waiting:
        out["in review"] = int(waiting)
    return out


def backdate(session: Session, friend_id: uuid.UUID, created_at: dt.datetime) -> None:
    """Set when a friend's referral was made (the demo's history, enrolments spread over
    weeks, as ``members.service.backdate`` does for the member)."""
    session.execute(
        update(Referral).where(Referral.friend_id == friend_id).values(created_at=created_at)
    )


# ---------------------------------------------------------------------------- privacy


def export_referrals(session: Session, member_id: uuid.UUID) -> dict[str, Any]:
    """The referrals' part of a member's data export: who referred them, whom they invited
    (friends masked, as the member sees them), and their rewards."""
    as_friend = session.execute(
        select(Referral).where(Referral.friend_id == member_id)
    ).scalar_one_or_none()
    invited = friends_of(session, member_id)
    return {
        "referred_by": (
            {
                "referrer_id": str(as_friend.referrer_id),
                "status": as_friend.status,
                "reason": as_friend.reason,
                "created_at": as_friend.created_at.isoformat(),
                "rewards": referral_json(session, [as_friend], only_for=member_id)[0]["rewards"],
            }
            if as_friend is not None
            else None
        ),
        "invited": invited,
    }


def erase_referrals(session: Session, member_id: uuid.UUID) -> None:
    """Erasure: the device and till a member enrolled on are forgotten. The referral itself
    stays (the ledger's rewards point at it), and so do the keyed digests of what the
    member enrolled with (``referral_identities``: no personal data, docs/referrals.md)."""
    session.execute(
        update(Referral)
        .where(Referral.friend_id == member_id)
        .values(device=None, cashier=None, updated_at=ledger.clock())
    )


# ---------------------------------------------------------------------------- listeners
# --- challenges ---
# Who is told when a friend qualifies or a qualification is reversed (challenge progress of
# ``count: referrals`` goals): filled from ``kopilka.wiring``; called in the transaction,
# under the friend's and the referrer's locks.


@dataclass(frozen=True)
class Qualification:
    """A referral qualified (``qualified``) or reversed; ``key`` names the round."""

    referral_id: uuid.UUID
    referrer_id: uuid.UUID
    key: str
    at: dt.datetime
    qualified: bool


Listener = Callable[[Session, Qualification], None]
_listeners: list[Listener] = []


def on_qualification(listener: Listener) -> None:
    """Call ``listener`` whenever a referral qualifies or is reversed (once per listener)."""
    if listener not in _listeners:
        _listeners.append(listener)


def _tell(session: Session, ref: Referral, *, qualified: bool) -> None:
    at = ref.qualified_at or ledger.clock()
    q = Qualification(ref.id, ref.referrer_id, f"referral:{ref.id}:{ref.rounds}", at, qualified)
    for listener in _listeners:
        listener(session, q)
