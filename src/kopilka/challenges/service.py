"""Challenges and badges: progress counted once per receipt, event or friend, steps reached
and rewarded, rewards revoked while pending when a return undoes them, opt-ins, badges
awarded and revoked (docs/challenges.md).

Where progress moves:

* a settled receipt: the hook (``challenges/hook.py``) plans the contribution and adds it to
  the member's progress in the receipt's own statement for goals that are plain sums; this
  module's ``settle_receipt`` (in ``after_settled``) emits ``challenge.progressed``,
  rewards a step reached, and counts what the statement could not (distinct days or
  categories, streaks, an audience, an opt-in's days, a programme not cached yet);
* a cancel or a return: ``reverse_receipt`` recomputes each contribution of the receipt on
  what is left of it and takes back a step no longer reached while its reward is pending;
* a custom event (``on_event``) and a friend who qualified (``on_referral``), through the
  registries of ``custom_events.service`` and ``referrals.service``.

Exactly once: a contribution's unique key ``(member, challenge, period, source)``; a step's
reward is given under the lock of the member's progress row (``FOR UPDATE``), and every
receipt, event or referral holds the member's lock before, so completion happens once.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kopilka.audit.service import record as audit
from kopilka.challenges import progress
from kopilka.challenges.models import (
    ChallengeContribution,
    ChallengeEntry,
    ChallengeJoin,
    ChallengeReward,
    MemberBadge,
)
from kopilka.core.errors import Problem, field_error
from kopilka.core.ids import uuid7
from kopilka.core.money import fmt
from kopilka.coupons.issue import issue_to_member, void_if_unused
from kopilka.custom_events.service import Recorded
from kopilka.events.service import emit, emit_many
from kopilka.leaderboards import service as leaderboards
from kopilka.ledger import service as ledger
from kopilka.members import service as members
from kopilka.program.service import Program, current_program
from kopilka.purchases.hooks import Reversed, Settled
from kopilka.referrals.service import Qualification
from kopilka.spec.challenges import BadgeSpec, ChallengeSpec, RewardSpec
from kopilka.spec.control_group import in_control_group
from kopilka.spec.program import ProgramSpec

SYSTEM_ACTOR = "system:challenges"
ZERO = Decimal(0)


# ---------------------------------------------------------------------------- the programme


@dataclass(frozen=True)
class Setup:
    """What the challenges need of a programme version (cached by its digest)."""

    digest: str
    tz: str
    share: Decimal  # the control group's share
    challenges: tuple[ChallengeSpec, ...]
    badges: Mapping[str, BadgeSpec]
    rule_badges: Mapping[str, str]  # event rule name -> badge
    spec: ProgramSpec  # the whole programme (its challenge leaderboards)

    def challenge(self, code: str) -> ChallengeSpec | None:
        return next((c for c in self.challenges if c.code == code), None)

    @property
    def of_receipts(self) -> tuple[ChallengeSpec, ...]:
        return tuple(
            c
            for c in self.challenges
            if c.goal.count in ("purchases", "paid", "days", "categories", "units")
        )


_lock = threading.Lock()
_setups: dict[str, Setup] = {}


def setup_of(program: Program) -> Setup:
    """The challenges of ``program`` (compiled once per version, kept by its digest)."""
    found = _setups.get(program.digest)
    if found is not None:
        return found
    spec = program.spec
    made = Setup(
        program.digest,
        spec.timezone,
        spec.control_group_share,
        tuple(spec.challenges),
        {b.code: b for b in spec.badges},
        {r.name: r.reward.badge for r in spec.event_rules if r.reward.badge is not None},
        spec,
    )
    with _lock:
        if len(_setups) > 64:
            _setups.clear()
        _setups[program.digest] = made
    return made


def setup(session: Session) -> Setup:
    return setup_of(current_program(session))


# ---------------------------------------------------------------------------- facts


def receipt_of(receipt: Settled, tz: str) -> progress.Receipt:
    """What a goal looks at of a settled receipt."""
    return progress.Receipt(
        receipt.store,
        receipt.channel,
        receipt.total_due,
        progress.local_day(receipt.occurred_at, tz),
        tuple(
            progress.Line(ln.line_no, ln.sku, ln.category, ln.quantity, ln.total_due)
            for ln in receipt.lines
        ),
    )


def lines_json(r: progress.Receipt) -> dict[str, Any]:
    """A receipt's lines as a contribution keeps them (what a return recomputes on)."""
    return {
        str(ln.line_no): [ln.sku, ln.category, str(ln.quantity), str(ln.paid)] for ln in r.lines
    }


def _receipt_from(row: ChallengeContribution) -> progress.Receipt:
    lines = tuple(
        progress.Line(int(no), sku, cat, Decimal(q), Decimal(m))
        for no, (sku, cat, q, m) in sorted((row.lines or {}).items(), key=lambda kv: int(kv[0]))
    )
    return progress.Receipt(row.store or "", row.channel or "pos", row.paid or ZERO, row.day, lines)


def contribution_row(
    member_id: uuid.UUID,
    code: str,
    w: progress.Window,
    source: str,
    c: progress.Contribution,
    day: dt.date,
    receipt: progress.Receipt | None = None,
) -> dict[str, Any]:
    return {
        "id": uuid7(),
        "member_id": member_id,
        "challenge": code,
        "period_key": w.key,
        "source": source,
        "value": c.value,
        "tokens": list(c.tokens),
        "lines": lines_json(receipt) if receipt is not None else None,
        "paid": receipt.paid if receipt is not None else None,
        "store": receipt.store if receipt is not None else None,
        "channel": receipt.channel if receipt is not None else None,
        "day": day,
        "created_at": ledger.clock(),
    }


def entry_row(
    member_id: uuid.UUID, code: str, w: progress.Window, value: Decimal
) -> dict[str, Any]:
    at = ledger.clock()
    return {
        "id": uuid7(),
        "member_id": member_id,
        "challenge": code,
        "period_key": w.key,
        "period_start": w.start,
        "period_end": w.end,
        "value": value,
        "steps_done": 0,
        "created_at": at,
        "updated_at": at,
    }


def _insert(session: Session) -> Any:
    pg = session.get_bind().dialect.name == "postgresql"
    return postgresql.insert if pg else sqlite.insert


# ---------------------------------------------------------------------------- who takes part


def joined_at(session: Session, member_id: uuid.UUID, code: str) -> dt.datetime | None:
    return session.execute(
        select(ChallengeJoin.joined_at).where(
            ChallengeJoin.member_id == member_id, ChallengeJoin.challenge == code
        )
    ).scalar_one_or_none()


def _audience_of(session: Session, member_id: uuid.UUID) -> progress.Audience:
    m = members.get_member(session, member_id)
    return progress.Audience(m.tier, frozenset(m.tags or ()))


def window_for(
    session: Session, st: Setup, c: ChallengeSpec, member_id: uuid.UUID, at: dt.datetime
) -> progress.Window | None:
    """The member's period of ``c`` that ``at`` falls in, when the member takes part:
    in its audience, and joined before ``at`` when it is opt-in."""
    joined = None
    if c.join == "opt_in":
        joined = joined_at(session, member_id, c.code)
        if joined is None or at < joined:
            return None
    if c.audience is not None and not progress.in_audience(c, _audience_of(session, member_id)):
        return None
    return progress.window(c.period, at, st.tz, joined)


def join(
    session: Session,
    member_id: uuid.UUID,
    code: str,
    channel: str = "api",
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    """Opt a member in to a challenge (idempotent: joining again changes nothing). 404
    ``challenge_not_found``; 422 ``member_blocked``, ``not_in_audience``. ``at``: when
    (the clock's now; the demo's history joins members back in time)."""
    member = members.get_member(session, member_id)  # an unknown member first, as every route
    st = setup(session)
    c = _challenge_or_404(st, code)
    if member.status != "active":
        raise Problem(
            422,
            "member_blocked",
            f"member {member_id} is {member.status}",
            errors=[field_error("member_id", f"the member is {member.status}", "blocked")],
        )
    who = progress.Audience(member.tier, frozenset(member.tags or ()))
    if not progress.in_audience(c, who):
        raise Problem(
            422,
            "not_in_audience",
            f"challenge {code} is not for this member (its audience: tiers, tags)",
            errors=[field_error("code", "the member is not in the challenge's audience")],
        )
    if c.join == "opt_in":
        stmt = (
            _insert(session)(ChallengeJoin)
            .values(
                id=uuid7(),
                member_id=member_id,
                challenge=code,
                joined_at=at or ledger.clock(),
                channel=channel,
            )
            .on_conflict_do_nothing()
            .returning(ChallengeJoin.id)
        )
        if session.execute(stmt).first() is not None:
            emit(
                session,
                "challenge.joined",
                {"member_id": str(member_id), "challenge": code, "channel": channel},
                member_id=member_id,
            )
    items = member_challenges(session, member_id, codes={code})
    if items:
        return items[0]
    # joined back in time (the demo's history): its days may be over already
    joined = joined_at(session, member_id, code) or ledger.clock()
    days = c.period.days if c.period is not None else None
    end = joined + dt.timedelta(days=days) if days is not None else None
    return _item(c, progress.Window("join", joined, end), None, joined, True, ledger.clock(), {})


def _challenge_or_404(st: Setup, code: str) -> ChallengeSpec:
    c = st.challenge(code)
    if c is None:
        raise Problem(404, "challenge_not_found", f"no challenge {code!r}")
    return c


# ---------------------------------------------------------------------------- counting


def _locked_entry(
    session: Session, member_id: uuid.UUID, code: str, w: progress.Window
) -> ChallengeEntry:
    """The member's progress row of a period, made when missing, locked."""
    session.execute(
        _insert(session)(ChallengeEntry)
        .values(**entry_row(member_id, code, w, ZERO))
        .on_conflict_do_nothing()
    )
    return session.execute(
        select(ChallengeEntry)
        .where(
            ChallengeEntry.member_id == member_id,
            ChallengeEntry.challenge == code,
            ChallengeEntry.period_key == w.key,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def _contributions(session: Session, entry: ChallengeEntry) -> list[progress.Contribution]:
    rows = session.execute(
        select(ChallengeContribution.value, ChallengeContribution.tokens).where(
            ChallengeContribution.member_id == entry.member_id,
            ChallengeContribution.challenge == entry.challenge,
            ChallengeContribution.period_key == entry.period_key,
        )
    ).all()
    return [progress.Contribution(v, tuple(t or ())) for v, t in rows]


def count(
    session: Session,
    st: Setup,
    c: ChallengeSpec,
    member_id: uuid.UUID,
    w: progress.Window,
    row: dict[str, Any],
    occurred_at: dt.datetime,
    store: str = "",
) -> tuple[str, dict[str, Any]] | None:
    """Add one contribution (a row of ``contribution_row``) once, recount the period, move
    the challenge's leaderboards (``store``: where it happened, "" for an event or a friend)
    and reward the steps it reaches; the ``challenge.progressed`` event to emit, or None
    when the source had counted already."""
    stmt = (
        _insert(session)(ChallengeContribution)
        .values(**row)
        .on_conflict_do_nothing()
        .returning(ChallengeContribution.id)
    )
    if session.execute(stmt).first() is None:
        return None
    entry = _locked_entry(session, member_id, c.code, w)
    before = entry.value
    entry.value = progress.progress(c, _contributions(session, entry))
    entry.updated_at = ledger.clock()
    _move_boards(session, st, c, member_id, occurred_at, store, entry.value - before)
    settle_steps(session, st, c, entry, occurred_at, row["source"])
    return progressed(c, entry)


def _move_boards(
    session: Session,
    st: Setup,
    c: ChallengeSpec,
    member_id: uuid.UUID,
    at: dt.datetime,
    store: str,
    delta: Decimal,
) -> None:
    """The challenge's leaderboards follow its progress (``metric: challenge`` boards)."""
    if delta:
        leaderboards.add_challenge_progress(
            session,
            st.spec,
            challenge=c.code,
            member_id=member_id,
            at=at,
            store=store,
            delta=delta,
        )


def progressed(c: ChallengeSpec, entry: ChallengeEntry) -> tuple[str, dict[str, Any]]:
    return (
        "challenge.progressed",
        {
            "member_id": str(entry.member_id),
            "challenge": c.code,
            "period": entry.period_key,
            "value": fmt_value(entry.value),
            "target": fmt_value(c.final_target()),
            "steps_done": entry.steps_done,
        },
    )


def fmt_value(v: Decimal) -> str:
    """A progress value as text: whole numbers without decimals, money with two."""
    return str(v.quantize(Decimal(1))) if v == v.to_integral_value() else fmt(v, 2)


@dataclass(frozen=True)
class Planned:
    """What the receipt's hook planned for one challenge (additive goals): the period, the
    value and steps before, the value after."""

    challenge: ChallengeSpec
    window: progress.Window
    before: Decimal
    steps_before: int
    after: Decimal

    @property
    def reaches_step(self) -> bool:
        targets = [t for t, _ in self.challenge.ladder()]
        return progress.steps_reached(targets, self.after) > self.steps_before


def planned_event(p: Planned, member_id: uuid.UUID) -> tuple[str, dict[str, Any]]:
    """``challenge.progressed`` of an addition the receipt's statement makes (its
    ``steps_done``: the steps the value after reaches)."""
    c = p.challenge
    targets = [t for t, _ in c.ladder()]
    return (
        "challenge.progressed",
        {
            "member_id": str(member_id),
            "challenge": c.code,
            "period": p.window.key,
            "value": fmt_value(p.after),
            "target": fmt_value(c.final_target()),
            "steps_done": max(p.steps_before, progress.steps_reached(targets, p.after)),
        },
    )


def settle_receipt(
    session: Session,
    st: Setup,
    receipt: Settled,
    planned: Sequence[Planned],
    slow: Iterable[ChallengeSpec],
) -> None:
    """After a settled receipt's rows are written: reward the steps the planned additions
    reach (their ``challenge.progressed`` went with the receipt's statement), count the
    challenges the statement could not and emit their ``challenge.progressed``."""
    assert receipt.member_id is not None
    member_id = receipt.member_id
    events: list[tuple[str, dict[str, Any]]] = []
    for p in planned:
        if p.reaches_step:
            entry = _locked_entry(session, member_id, p.challenge.code, p.window)
            cause = f"purchase:{receipt.purchase_id}"
            settle_steps(session, st, p.challenge, entry, receipt.occurred_at, cause)
    facts = receipt_of(receipt, st.tz)
    for c in slow:
        w = window_for(session, st, c, member_id, receipt.occurred_at)
        if w is None:
            continue
        got = progress.receipt_contribution(c, facts, st.tz)
        if got.value <= 0:
            continue
        row = contribution_row(
            member_id, c.code, w, f"purchase:{receipt.purchase_id}", got, facts.day, facts
        )
        done = count(session, st, c, member_id, w, row, receipt.occurred_at, receipt.store)
        if done is not None:
            events.append(done)
    if events:
        emit_many(session, [(t, d, member_id) for t, d in events])


def reverse_receipt(session: Session, receipt: Reversed) -> None:
    """A cancel or a return: each contribution of the receipt recomputed on what is left
    of it; a step no longer reached loses its reward while it is pending."""
    if receipt.member_id is None:
        return
    rows = list(
        session.execute(
            select(ChallengeContribution)
            .where(
                ChallengeContribution.member_id == receipt.member_id,
                ChallengeContribution.source == f"purchase:{receipt.purchase_id}",
            )
            .order_by(ChallengeContribution.challenge)
        ).scalars()
    )
    if not rows:
        return
    st = setup_of(receipt.program)
    if receipt.kind == "cancel":
        returned = None
    else:
        returned = {ln.line_no: (ln.quantity, ln.refund) for ln in receipt.lines}
    events: list[tuple[str, dict[str, Any]]] = []
    for row in rows:
        c = st.challenge(row.challenge)
        if c is None:
            continue  # the challenge left the programme: its progress stays as it was
        before = _receipt_from(row)
        if returned is None:
            left = progress.after_return(
                before, {ln.line_no: (ln.quantity, ln.paid) for ln in before.lines}
            )
        else:
            left = progress.after_return(before, returned)
        now = progress.receipt_contribution(c, left, st.tz)
        if now.value >= row.value and now.tokens == tuple(row.tokens or ()):
            continue
        row.value = now.value if now.value > 0 else ZERO
        row.tokens = list(now.tokens)
        row.lines = lines_json(left)
        row.paid = left.paid
        session.flush()
        entry = session.execute(
            select(ChallengeEntry)
            .where(
                ChallengeEntry.member_id == row.member_id,
                ChallengeEntry.challenge == row.challenge,
                ChallengeEntry.period_key == row.period_key,
            )
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one()
        before_value = entry.value
        entry.value = progress.progress(c, _contributions(session, entry))
        entry.updated_at = ledger.clock()
        _move_boards(
            session,
            st,
            c,
            receipt.member_id,
            receipt.occurred_at,
            receipt.store,
            entry.value - before_value,
        )
        settle_steps(session, st, c, entry, ledger.clock(), f"{receipt.kind}:{receipt.key}")
        events.append(progressed(c, entry))
    if events:
        emit_many(session, [(t, d, receipt.member_id) for t, d in events])


def on_event(session: Session, event: Recorded) -> None:
    """A custom event recorded: the badges its rules give, and progress of ``count:
    events`` goals of its type (in the event's transaction)."""
    st = setup(session)
    for item in event.rewards:
        badge = st.rule_badges.get(item.get("rule", ""))
        if badge is not None and item.get("status") == "granted" and not event.held_out:
            award_badge(
                session,
                event.member_id,
                badge,
                source=f"rule:{item['rule']}",
                actor=SYSTEM_ACTOR,
                reason=f"event {event.type} {event.id}",
            )
    day = progress.local_day(event.occurred_at, st.tz)
    events: list[tuple[str, dict[str, Any]]] = []
    for c in st.challenges:
        got = progress.event_contribution(c, event.type, day)
        if got.value <= 0:
            continue
        w = window_for(session, st, c, event.member_id, event.occurred_at)
        if w is None:
            continue
        row = contribution_row(event.member_id, c.code, w, f"event:{event.id}", got, day)
        done = count(session, st, c, event.member_id, w, row, event.occurred_at)
        if done is not None:
            events.append(done)
    if events:
        emit_many(session, [(t, d, event.member_id) for t, d in events])


def on_referral(session: Session, q: Qualification) -> None:
    """A friend qualified (progress of the referrer's ``count: referrals`` goals), or the
    qualification was reversed (that friend no longer counts)."""
    st = setup(session)
    if not any(c.goal.count == "referrals" for c in st.challenges):
        return
    if not q.qualified:
        rows = session.execute(
            select(ChallengeContribution).where(
                ChallengeContribution.member_id == q.referrer_id,
                ChallengeContribution.source == q.key,
            )
        ).scalars()
        for counted in rows:
            c = st.challenge(counted.challenge)
            if c is None or counted.value <= 0:
                continue
            counted.value = ZERO
            session.flush()
            entry = _locked_entry(
                session,
                q.referrer_id,
                c.code,
                progress.Window(counted.period_key, None, None),
            )
            entry.value = progress.progress(c, _contributions(session, entry))
            settle_steps(session, st, c, entry, ledger.clock(), f"{q.key}:reversed")
        return
    day = progress.local_day(q.at, st.tz)
    for c in st.challenges:
        got = progress.referral_contribution(c, day)
        if got.value <= 0:
            continue
        w = window_for(session, st, c, q.referrer_id, q.at)
        if w is None:
            continue
        row = contribution_row(q.referrer_id, c.code, w, q.key, got, day)
        done = count(session, st, c, q.referrer_id, w, row, q.at)
        if done is not None:
            emit(session, done[0], done[1], member_id=q.referrer_id)


# ---------------------------------------------------------------------------- steps, rewards


def settle_steps(
    session: Session,
    st: Setup,
    c: ChallengeSpec,
    entry: ChallengeEntry,
    occurred_at: dt.datetime,
    cause: str,
) -> None:
    """Reward each step ``entry.value`` newly reaches; take back (while pending) the
    rewards of steps it no longer reaches. Under the entry's lock."""
    ladder = c.ladder()
    reached = progress.steps_reached([t for t, _ in ladder], entry.value)
    at = ledger.clock()
    if reached > entry.steps_done:
        for step in range(entry.steps_done + 1, reached + 1):
            _grant(session, st, c, entry, step, ladder[step - 1][1], occurred_at)
        entry.steps_done = reached
        if reached == len(ladder):
            entry.completed_at = at
            emit(
                session,
                "challenge.completed",
                {
                    "member_id": str(entry.member_id),
                    "challenge": c.code,
                    "period": entry.period_key,
                    "value": fmt_value(entry.value),
                    "rewards": _rewards_json(session, entry),
                },
                member_id=entry.member_id,
            )
    elif reached < entry.steps_done:
        kept = entry.steps_done
        for step in range(entry.steps_done, reached, -1):
            if not _revert(session, st, c, entry, step, cause):
                break  # a reward that stands: this step and those below stay done
            kept = step - 1
        if kept != entry.steps_done:
            entry.steps_done = kept
            if kept < len(ladder):
                entry.completed_at = None
                entry.noticed_at = None
    session.flush()


def _grant(
    session: Session,
    st: Setup,
    c: ChallengeSpec,
    entry: ChallengeEntry,
    step: int,
    reward: RewardSpec | None,
    occurred_at: dt.datetime,
) -> None:
    rounds = session.execute(
        select(func.count()).where(
            ChallengeReward.member_id == entry.member_id,
            ChallengeReward.challenge == c.code,
            ChallengeReward.period_key == entry.period_key,
            ChallengeReward.step == step,
        )
    ).scalar_one()
    hold = reward.hold_days if reward is not None else 0
    hold_until = max(occurred_at + dt.timedelta(days=hold), ledger.clock())
    row = ChallengeReward(
        id=uuid7(),
        member_id=entry.member_id,
        challenge=c.code,
        period_key=entry.period_key,
        step=step,
        round=rounds + 1,
        hold_until=hold_until,
        status="pending" if hold_until > ledger.clock() else "standing",
        created_at=ledger.clock(),
    )
    if in_control_group(entry.member_id, st.share):
        row.status = "control_group"
        session.add(row)
        return
    if reward is not None:
        if reward.currency is not None and reward.amount is not None:
            cur = ledger.currency_row(session, reward.currency)
            _, expires = ledger.lot_times(cur, hold_until, st.tz, pending_days=0)
            e = ledger.credit(
                session,
                key=f"challenge-reward:{row.id}",
                kind="challenge",
                member_id=entry.member_id,
                currency=reward.currency,
                amount=reward.amount,
                actor=SYSTEM_ACTOR,
                description=_describe(c, step, "reward"),
                occurred_at=occurred_at,
                available_at=hold_until,
                expires_at=expires,
                fresh=True,
            )
            row.currency, row.amount, row.entry_id = reward.currency, reward.amount, e.id
        if reward.coupon_pool is not None:
            code, reason = issue_to_member(
                session, reward.coupon_pool, entry.member_id, SYSTEM_ACTOR
            )
            if code is None:
                audit(
                    session,
                    SYSTEM_ACTOR,
                    "challenge.coupon_not_issued",
                    "challenge",
                    c.code,
                    details={
                        "member_id": str(entry.member_id),
                        "pool": reward.coupon_pool,
                        "reason": reason,
                    },
                )
            else:
                row.coupon_pool, row.coupon_code = reward.coupon_pool, code
        if reward.badge is not None and award_badge(
            session,
            entry.member_id,
            reward.badge,
            source=f"challenge:{c.code}",
            actor=SYSTEM_ACTOR,
            reason=f"{c.name.en} ({entry.period_key})",
        ):
            row.badge = reward.badge
    session.add(row)


def _describe(c: ChallengeSpec, step: int, what: str) -> str:
    steps = len(c.ladder())
    at = f", step {step} of {steps}" if steps > 1 else ""
    return f"challenge «{c.name.ru}» / {c.name.en}{at}: {what}"


def _revert(
    session: Session, st: Setup, c: ChallengeSpec, entry: ChallengeEntry, step: int, cause: str
) -> bool:
    """Take back the reward of ``step`` when it is still pending (True), or leave it
    standing (False)."""
    row = session.execute(
        select(ChallengeReward)
        .where(
            ChallengeReward.member_id == entry.member_id,
            ChallengeReward.challenge == c.code,
            ChallengeReward.period_key == entry.period_key,
            ChallengeReward.step == step,
            ChallengeReward.status != "revoked",
        )
        .order_by(ChallengeReward.round.desc())
        .limit(1)
        .with_for_update()
    ).scalar_one_or_none()
    if row is None:
        return True
    at = ledger.clock()
    if row.status == "standing" or (row.status == "pending" and at >= row.hold_until):
        return False
    voided = None
    if row.entry_id is not None:
        ledger.reverse(
            session,
            row.entry_id,
            key=f"challenge-reward:{row.id}:revoked",
            actor=SYSTEM_ACTOR,
            kind="challenge_revert",
            description=_describe(c, step, "reward revoked, the purchase was returned"),
        )
    if row.coupon_code is not None:
        voided = void_if_unused(session, row.coupon_code)
    if row.badge is not None:
        revoke_badge(
            session,
            entry.member_id,
            row.badge,
            actor=SYSTEM_ACTOR,
            reason=f"challenge {c.code} undone ({cause})",
            missing_ok=True,
        )
    was = row.status
    row.status = "revoked"
    row.revoked_at = at
    session.flush()
    if was == "control_group":
        return True
    emit(
        session,
        "challenge.reverted",
        {
            "member_id": str(entry.member_id),
            "challenge": c.code,
            "period": entry.period_key,
            "step": step,
            "cause": cause,
            "points": (
                {"currency": row.currency, "amount": str(row.amount)} if row.currency else None
            ),
            "coupon": (
                {"code": row.coupon_code, "voided": voided} if row.coupon_code is not None else None
            ),
            "badge": row.badge,
        },
        member_id=entry.member_id,
    )
    return True


def _rewards_json(session: Session, entry: ChallengeEntry) -> list[dict[str, Any]]:
    rows = session.execute(
        select(ChallengeReward)
        .where(
            ChallengeReward.member_id == entry.member_id,
            ChallengeReward.challenge == entry.challenge,
            ChallengeReward.period_key == entry.period_key,
        )
        .order_by(ChallengeReward.step, ChallengeReward.round)
    ).scalars()
    return [reward_json(r) for r in rows]


def reward_json(r: ChallengeReward) -> dict[str, Any]:
    status = r.status
    if status == "pending" and ledger.clock() >= r.hold_until:
        status = "standing"
    return {
        "step": r.step,
        "status": status,
        "points": (
            {"currency": r.currency, "amount": str(r.amount)} if r.currency is not None else None
        ),
        "coupon_code": r.coupon_code,
        "badge": r.badge,
        "available_at": r.hold_until.isoformat(),
    }


# ---------------------------------------------------------------------------- badges


def award_badge(
    session: Session,
    member_id: uuid.UUID,
    badge: str,
    *,
    source: str,
    actor: str,
    reason: str | None = None,
) -> bool:
    """Give a member a badge (True), or nothing when they hold it already (False);
    ``badge.awarded`` in the same transaction."""
    at = ledger.clock()
    found = session.execute(
        select(MemberBadge)
        .where(MemberBadge.member_id == member_id, MemberBadge.badge == badge)
        .with_for_update()
    ).scalar_one_or_none()
    if found is not None and found.revoked_at is None:
        return False
    if found is None:
        stmt = (
            _insert(session)(MemberBadge)
            .values(
                id=uuid7(),
                member_id=member_id,
                badge=badge,
                source=source,
                reason=reason,
                actor=actor,
                awarded_at=at,
            )
            .on_conflict_do_nothing()
            .returning(MemberBadge.id)
        )
        if session.execute(stmt).first() is None:
            return False
    else:
        found.source, found.reason, found.actor, found.awarded_at = source, reason, actor, at
        found.revoked_at = None
        found.revoked_reason = None
        session.flush()
    emit(
        session,
        "badge.awarded",
        {
            "member_id": str(member_id),
            "badge": badge,
            "source": source,
            "reason": reason,
            "awarded_at": at.isoformat(),
        },
        member_id=member_id,
    )
    return True


def revoke_badge(
    session: Session,
    member_id: uuid.UUID,
    badge: str,
    *,
    actor: str,
    reason: str,
    missing_ok: bool = False,
) -> bool:
    """Take a badge back (``badge.revoked``); 404 ``badge_not_held`` unless ``missing_ok``."""
    found = session.execute(
        select(MemberBadge)
        .where(
            MemberBadge.member_id == member_id,
            MemberBadge.badge == badge,
            MemberBadge.revoked_at.is_(None),
        )
        .with_for_update()
    ).scalar_one_or_none()
    if found is None:
        if missing_ok:
            return False
        raise Problem(404, "badge_not_held", f"member {member_id} does not hold badge {badge!r}")
    found.revoked_at = ledger.clock()
    found.revoked_reason = reason
    session.flush()
    emit(
        session,
        "badge.revoked",
        {"member_id": str(member_id), "badge": badge, "reason": reason, "actor": actor},
        member_id=member_id,
    )
    return True


def award_by_hand(
    session: Session, member_id: uuid.UUID, badge: str, reason: str, actor: str
) -> dict[str, Any]:
    """Staff award a badge by hand (audited). 422 ``unknown_badge``; 409
    ``badge_already_held``."""
    st = setup(session)
    if badge not in st.badges:
        raise Problem(
            422,
            "unknown_badge",
            f"no badge {badge!r} in the programme",
            errors=[field_error("badge", f"no badge {badge!r} in the programme", "unknown_badge")],
        )
    members.get_member(session, member_id)
    if not award_badge(session, member_id, badge, source="staff", actor=actor, reason=reason):
        raise Problem(409, "badge_already_held", f"the member holds badge {badge!r} already")
    audit(
        session,
        actor,
        "badge.award",
        "member",
        str(member_id),
        after={"badge": badge},
        details={"reason": reason},
    )
    return next(b for b in member_badges(session, member_id) if b["code"] == badge)


def revoke_by_hand(
    session: Session, member_id: uuid.UUID, badge: str, reason: str, actor: str
) -> None:
    """Staff take a badge back (audited). 404 ``badge_not_held``."""
    members.get_member(session, member_id)
    revoke_badge(session, member_id, badge, actor=actor, reason=reason)
    audit(
        session,
        actor,
        "badge.revoke",
        "member",
        str(member_id),
        before={"badge": badge},
        details={"reason": reason},
    )


def badge_json(b: BadgeSpec) -> dict[str, Any]:
    return {
        "code": b.code,
        "name": b.name.model_dump(),
        "description": b.description.model_dump() if b.description else None,
        "image": b.image,
    }


def badges(session: Session) -> list[dict[str, Any]]:
    """The programme's badge catalogue."""
    return [badge_json(b) for b in setup(session).badges.values()]


def member_badges(session: Session, member_id: uuid.UUID) -> list[dict[str, Any]]:
    """The badges a member holds, newest first (those since removed from the programme
    too, named by their code)."""
    members.get_member(session, member_id)
    st = setup(session)
    rows = session.execute(
        select(MemberBadge)
        .where(MemberBadge.member_id == member_id, MemberBadge.revoked_at.is_(None))
        .order_by(MemberBadge.awarded_at.desc(), MemberBadge.badge)
    ).scalars()
    out = []
    for r in rows:
        spec = st.badges.get(r.badge)
        out.append(
            {
                "code": r.badge,
                "name": spec.name.model_dump() if spec else {"ru": r.badge, "en": r.badge},
                "description": spec.description.model_dump() if spec and spec.description else None,
                "image": spec.image if spec else None,
                "awarded_at": r.awarded_at.isoformat(),
                "source": r.source,
            }
        )
    return out


# ---------------------------------------------------------------------------- reading


def challenge_json(c: ChallengeSpec) -> dict[str, Any]:
    """A challenge of the catalogue, as the programme states it."""
    doc = c.model_dump(mode="json", exclude_none=True)
    doc["target"] = fmt_value(c.final_target())
    return doc


def catalogue(session: Session) -> list[dict[str, Any]]:
    return [challenge_json(c) for c in setup(session).challenges]


def member_challenges(
    session: Session, member_id: uuid.UUID, codes: set[str] | None = None, history: int = 20
) -> list[dict[str, Any]]:
    """A member's challenges: each challenge of the programme the member may take part in,
    in its current period (with the progress made), then past periods with progress
    (completed or expired), newest first."""
    member = members.get_member(session, member_id)
    st = setup(session)
    at = ledger.clock()
    who = progress.Audience(member.tier, frozenset(member.tags or ()))
    joins = dict(
        session.execute(
            select(ChallengeJoin.challenge, ChallengeJoin.joined_at).where(
                ChallengeJoin.member_id == member_id
            )
        ).all()
    )
    entries = list(
        session.execute(
            select(ChallengeEntry)
            .where(ChallengeEntry.member_id == member_id)
            .order_by(ChallengeEntry.period_end.is_(None).desc(), ChallengeEntry.period_end.desc())
        ).scalars()
    )
    by_key = {(e.challenge, e.period_key): e for e in entries}
    rewards: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in session.execute(
        select(ChallengeReward)
        .where(ChallengeReward.member_id == member_id)
        .order_by(ChallengeReward.step, ChallengeReward.round)
    ).scalars():
        rewards.setdefault((r.challenge, r.period_key), []).append(reward_json(r))
    out: list[dict[str, Any]] = []
    current: set[tuple[str, str]] = set()
    for c in st.challenges:
        if codes is not None and c.code not in codes:
            continue
        if not progress.in_audience(c, who):
            continue
        joined = joins.get(c.code)
        w = progress.window(c.period, at, st.tz, joined)
        if w is None and c.period is not None and c.period.days is not None and joined is None:
            w = progress.Window("join", None, None)  # not joined yet: its days start then
        if w is None:
            continue
        e = by_key.get((c.code, w.key))
        current.add((c.code, w.key))
        out.append(_item(c, w, e, joined, c.join == "auto" or joined is not None, at, rewards))
    seen = 0
    for e in entries:
        if (e.challenge, e.period_key) in current or (
            codes is not None and e.challenge not in codes
        ):
            continue
        past = st.challenge(e.challenge)
        if past is None or seen >= history:
            continue
        seen += 1
        w = progress.Window(e.period_key, e.period_start, e.period_end)
        out.append(_item(past, w, e, joins.get(past.code), True, at, rewards))
    return out


def _item(
    c: ChallengeSpec,
    w: progress.Window,
    e: ChallengeEntry | None,
    joined: dt.datetime | None,
    taking_part: bool,
    at: dt.datetime,
    rewards: Mapping[tuple[str, str], list[dict[str, Any]]],
) -> dict[str, Any]:
    value = e.value if e is not None else ZERO
    done = e.steps_done if e is not None else 0
    ladder = c.ladder()
    status = "completed" if done == len(ladder) else progress.status(c, value, w, at)
    if status == "completed" and done < len(ladder):
        status = "active"  # reached, its reward being given in this very transaction
    item: dict[str, Any] = {
        "code": c.code,
        "name": c.name.model_dump(),
        "description": c.description.model_dump() if c.description else None,
        "status": status,
        "progress": {"value": fmt_value(value), "target": fmt_value(c.final_target())},
        "period": {
            "key": w.key,
            "from": w.start.isoformat() if w.start else None,
            "to": w.end.isoformat() if w.end else None,
        },
        "join": c.join,
        "joined": taking_part,
        "joined_at": joined.isoformat() if joined else None,
        "steps": [
            {
                "target": fmt_value(t),
                "done": i < done,
                "reward": r.model_dump(mode="json", exclude_none=True) if r else None,
            }
            for i, (t, r) in enumerate(ladder)
        ],
        "streak": (
            {"every": c.streak.every, "length": c.streak.length, "grace": c.streak.grace}
            if c.streak
            else None
        ),
        "completed_at": e.completed_at.isoformat() if e is not None and e.completed_at else None,
        "rewards": rewards.get((c.code, w.key), []),
    }
    return item


def completions_to_notice(session: Session, member_id: uuid.UUID) -> list[dict[str, Any]]:
    """The member's completions the app has not shown yet, marked shown (the home screen's
    notice appears once)."""
    st = setup(session)
    rows = list(
        session.execute(
            select(ChallengeEntry)
            .where(
                ChallengeEntry.member_id == member_id,
                ChallengeEntry.completed_at.is_not(None),
                ChallengeEntry.noticed_at.is_(None),
            )
            .order_by(ChallengeEntry.completed_at)
            .with_for_update()
        ).scalars()
    )
    out = []
    for e in rows:
        c = st.challenge(e.challenge)
        e.noticed_at = ledger.clock()
        if c is not None:
            out.append({"code": c.code, "name": c.name.model_dump()})
    session.flush()
    return out


# ---------------------------------------------------------------------------- privacy


def export_member(session: Session, member_id: uuid.UUID) -> dict[str, Any]:
    """The member's challenges (opt-ins, progress, rewards) and badges, for the export."""
    joins = session.execute(
        select(ChallengeJoin).where(ChallengeJoin.member_id == member_id)
    ).scalars()
    entries = session.execute(
        select(ChallengeEntry).where(ChallengeEntry.member_id == member_id)
    ).scalars()
    held = session.execute(select(MemberBadge).where(MemberBadge.member_id == member_id)).scalars()
    rewards = session.execute(
        select(ChallengeReward).where(ChallengeReward.member_id == member_id)
    ).scalars()
    return {
        "joined": [{"challenge": j.challenge, "joined_at": j.joined_at.isoformat()} for j in joins],
        "progress": [
            {
                "challenge": e.challenge,
                "period": e.period_key,
                "value": fmt_value(e.value),
                "steps_done": e.steps_done,
                "completed_at": e.completed_at.isoformat() if e.completed_at else None,
            }
            for e in entries
        ],
        "rewards": [
            {"challenge": r.challenge, "period": r.period_key, **reward_json(r)} for r in rewards
        ],
        "badges": [
            {
                "badge": b.badge,
                "source": b.source,
                "awarded_at": b.awarded_at.isoformat(),
                "revoked_at": b.revoked_at.isoformat() if b.revoked_at else None,
            }
            for b in held
        ],
    }


def erase_member(session: Session, member_id: uuid.UUID) -> None:
    """An erasure: the free texts about the member (a badge's reason written by staff)
    are blanked; progress and rewards stay (the ledger refers to them) and name no one."""
    session.execute(
        update(MemberBadge)
        .where(MemberBadge.member_id == member_id)
        .values(reason=None, revoked_reason=None)
    )
