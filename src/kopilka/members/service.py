"""Members: creation, lookup and references from other requests, changes, consents.

Personal data is encrypted at rest (see ``members.models``); exact look-ups by phone,
email, card and name go through blind indexes. Look-ups that find nobody count against
the caller (``member_lookup_miss``: API key or session, and address), so nobody can probe
which phone numbers or cards belong to members: past the limit every look-up by phone,
email, card or name of that caller answers 429 until the window has slid on.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import phonenumbers
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kopilka.audit.service import record
from kopilka.core import context
from kopilka.core.db import now
from kopilka.core.errors import Problem, field_error, validation_problem
from kopilka.core.plan import Plan, table
from kopilka.events.service import emit
from kopilka.members.cards import is_valid_card, new_card_number, new_referral_code
from kopilka.members.models import CHANNELS, ConsentRecord, Member
from kopilka.members.schemas import MemberCreate, MemberOut, MemberRef, normalise_email
from kopilka.security import ratelimit
from kopilka.security.crypto import blind_index

LOOKUP_MISS = ratelimit.define("member_lookup_miss", 30, 300)
STATUSES = ("active", "blocked")

# The member app's rotating card codes (``memberapp.service.resolve_card_code``), given by
# ``kopilka.wiring``: the member whose device shows a code at a moment, or None.
CardCodes = Callable[[Session, str, dt.datetime], uuid.UUID | None]
_card_codes: list[CardCodes] = []


@dataclass(frozen=True)
class Enrolment:
    """Where a member enrolled: ``channel`` (``api``, ``pos``, ``app``, ``console``,
    ``demo``), the store and the cashier (the caller's name) of a till, and the member
    app's device (an install's id, raw: whoever keeps it digests it)."""

    channel: str = "api"
    store: str | None = None
    cashier: str | None = None
    device: str | None = None


# What else happens when a member enrols, in the enrolment's transaction (the referrals:
# ``referrals.service.on_enrolled``), given the member, who referred them and where.
Enrolled = Callable[[Session, Member, "uuid.UUID | None", Enrolment], None]
_enrolled: list[Enrolled] = []


def on_enrolled(hook: Enrolled) -> None:
    """Run ``hook`` after each enrolment (``wiring``; again replaces it)."""
    _enrolled[:] = [hook]


def use_card_codes(resolve: CardCodes) -> None:
    """Say how a card code from the member app is resolved (again replaces it)."""
    _card_codes[:] = [resolve]


def normalise_phone(raw: str, region: str, field: str = "phone") -> str:
    """A phone number in E.164, or a 422 naming ``field``."""
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise validation_problem([field_error(field, f"not a phone number: {exc}")]) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise validation_problem([field_error(field, "not a valid phone number")])
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


_BY_INDEX = {
    kind: select(Member).where(column == bindparam("index"))
    for kind, column in (
        ("card", Member.card_number_index),
        ("phone", Member.phone_index),
        ("email", Member.email_index),
    )
}  # built once: a till looks a member up on every receipt


def _by_index(session: Session, kind: str, value: str) -> Member | None:
    return session.execute(
        _BY_INDEX[kind], {"index": blind_index(kind, value)}
    ).scalar_one_or_none()


def _conflicts(
    session: Session,
    phone: str | None,
    email: str | None,
    ext: str | None,
    exclude: uuid.UUID | None = None,
) -> list[str]:
    fields = []
    for name, col, value in (
        ("phone", Member.phone_index, blind_index("phone", phone) if phone else None),
        ("email", Member.email_index, blind_index("email", email) if email else None),
        ("external_id", Member.external_id, ext),
    ):
        if value is None:
            continue
        q = select(Member.id).where(col == value)
        if exclude is not None:
            q = q.where(Member.id != exclude)
        if session.execute(q).first():
            fields.append(name)
    return fields


def _exists_problem(fields: Sequence[str]) -> Problem:
    return Problem(
        409,
        "member_exists",
        f"a member with this {' and '.join(fields)} exists",
        errors=[field_error(f, "already used by another member", "duplicate") for f in fields],
    )


def create_member(
    session: Session,
    data: MemberCreate,
    region: str,
    card_prefix: str = "77",
    via: Enrolment | None = None,
) -> Member:
    """Create a member (not committed). 409 ``member_exists`` on a taken phone, email or
    external id; 422 naming the field for a bad phone or referral code. ``via``: where
    they enrolled, for what runs on an enrolment (``on_enrolled``)."""
    phone = normalise_phone(data.phone, region) if data.phone else None
    clash = _conflicts(session, phone, data.email, data.external_id)
    if clash:
        raise _exists_problem(clash)
    referrer = None
    if data.referral_code:
        referrer = session.execute(
            select(Member.id).where(Member.referral_code == data.referral_code.upper())
        ).scalar_one_or_none()
        if referrer is None:
            raise validation_problem(
                [field_error("referral_code", "no member has this referral code", "unknown")]
            )
    for _attempt in range(5):
        member = Member(
            card_number=new_card_number(card_prefix),
            phone=phone,
            email=data.email,
            name=data.name,
            birth_date=data.birth_date,
            external_id=data.external_id,
            referral_code=new_referral_code(),
            referred_by=referrer,
        )
        try:
            with session.begin_nested():
                session.add(member)
                session.flush()
            break
        except IntegrityError as exc:
            # A concurrent insert took the phone/email/external id, or (rarely) the
            # random card or referral code collided: the latter is worth a retry.
            clash = _conflicts(session, phone, data.email, data.external_id)
            if clash:
                raise _exists_problem(clash) from exc
    else:  # pragma: no cover - 5 collisions of 10^10 random numbers
        raise RuntimeError("could not allocate a unique card number")
    if data.consents is not None:
        record_consents(
            session,
            member.id,
            data.consents.model_dump(),
            data.consent_source,
            data.consent_text_version,
        )

    emit(
        session,
        "member.created",
        {
            "member_id": str(member.id),
            "card_number": member.card_number,
            "external_id": member.external_id,
            "referred_by": str(referrer) if referrer else None,
        },
        member_id=member.id,
    )
    for hook in _enrolled:
        hook(session, member, referrer, via or Enrolment())
    return member


def record_consents(
    session: Session,
    member_id: uuid.UUID,
    consents: dict[str, bool | None],
    source: str,
    text_version: str | None = None,
    *,
    actor: str | None = None,
) -> list[ConsentRecord]:
    """Append one consent record per channel given (not committed): when, where from
    (``source``: api, app, pos, console…), which consent text, and who recorded it."""
    out = []
    for channel in CHANNELS:
        granted = consents.get(channel)
        if granted is not None:
            record = ConsentRecord(
                member_id=member_id,
                channel=channel,
                granted=granted,
                source=source,
                text_version=text_version,
                actor=actor,
            )
            session.add(record)
            out.append(record)
    session.flush()
    return out


def current_consents(session: Session, member_id: uuid.UUID) -> dict[str, bool]:
    rows = session.execute(
        select(ConsentRecord.channel, ConsentRecord.granted)
        .where(ConsentRecord.member_id == member_id)
        .order_by(ConsentRecord.recorded_at, ConsentRecord.id)
    ).all()
    state = dict.fromkeys(CHANNELS, False)
    for channel, granted in rows:
        state[channel] = granted
    return state


def consent_history(session: Session, member_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every consent record of a member, oldest first."""
    rows = session.scalars(
        select(ConsentRecord)
        .where(ConsentRecord.member_id == member_id)
        .order_by(ConsentRecord.recorded_at, ConsentRecord.id)
    )
    return [
        {
            "id": str(r.id),
            "channel": r.channel,
            "granted": r.granted,
            "recorded_at": r.recorded_at.isoformat(),
            "source": r.source,
            "text_version": r.text_version,
            "actor": r.actor,
        }
        for r in rows
    ]


def to_out(session: Session, member: Member) -> MemberOut:
    return MemberOut(
        id=member.id,
        card_number=member.card_number,
        phone=member.phone,
        email=member.email,
        name=member.name,
        birth_date=member.birth_date,
        external_id=member.external_id,
        tier=member.tier,
        status=member.status,
        referral_code=member.referral_code,
        consents=current_consents(session, member.id),
        created_at=member.created_at,
        tags=list(member.tags or []),
        personal_discount=(
            None if member.personal_discount is None else f"{member.personal_discount:.2f}"
        ),
    )


def get_member(session: Session, member_id: uuid.UUID, *, lock: bool = False) -> Member:
    q = select(Member).where(Member.id == member_id)
    if lock:
        q = q.with_for_update()
    member = session.execute(q).scalar_one_or_none()
    if member is None:
        raise Problem(404, "member_not_found", f"no member {member_id}")
    return member


def _encode_cursor(member_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(member_id.bytes).decode().rstrip("=")


def _decode_cursor(cursor: str) -> uuid.UUID:
    try:
        return uuid.UUID(bytes=base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError) as exc:
        raise validation_problem(
            [
                {
                    "field": "cursor",
                    "in": "query",
                    "code": "invalid",
                    "message": "not a cursor from this API",
                }
            ]
        ) from exc


# ---------------------------------------------------------------------- look-up limits


def _lookup_subjects() -> list[str]:
    facts = context.current()
    if facts is None:  # the command line and the worker are not limited
        return []
    out = []
    if facts.principal is not None:
        out.append(f"{facts.principal.kind}:{facts.principal.id}")
    if facts.ip is not None:
        out.append(f"ip:{facts.ip}")
    return out


def _before_lookup() -> list[str]:
    subjects = _lookup_subjects()
    ratelimit.enforce_blocked(LOOKUP_MISS, subjects)
    return subjects


def _after_miss(subjects: list[str]) -> None:
    ratelimit.count_later(LOOKUP_MISS, subjects)


def find_members(
    session: Session,
    region: str,
    *,
    phone: str | None = None,
    email: str | None = None,
    card: str | None = None,
    external_id: str | None = None,
    name: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Member], str | None]:
    """Members matching the one filter given (or all), in creation order, a page at a time.

    Phone, email, card and name match exactly (name: ignoring case and extra spaces)."""
    query = select(Member).order_by(Member.id)
    probing = any(v is not None for v in (phone, email, card, name))
    subjects = _before_lookup() if probing else []
    if phone is not None:
        query = query.where(
            Member.phone_index == blind_index("phone", normalise_phone(phone, region))
        )
    if email is not None:
        try:
            query = query.where(Member.email_index == blind_index("email", normalise_email(email)))
        except ValueError as exc:
            raise validation_problem(
                [{"field": "email", "in": "query", "code": "invalid", "message": str(exc)}]
            ) from exc
    if card is not None:
        query = query.where(Member.card_number_index == blind_index("card", card.strip()))
    if name is not None:
        query = query.where(Member.name_index == blind_index("name", name))
    if external_id is not None:
        query = query.where(Member.external_id == external_id)
    if cursor:
        query = query.where(Member.id > _decode_cursor(cursor))
    rows = list(session.scalars(query.limit(limit + 1)))
    if probing and not rows and not cursor:
        _after_miss(subjects)
    next_cursor = _encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor


def resolve_member(session: Session, ref: MemberRef, region: str, field: str = "member") -> Member:
    """The member a reference names, or 404 ``member_not_found`` (429 ``rate_limited`` for
    a caller that keeps naming members who do not exist)."""
    member: Member | None = None
    subjects: list[str] = []
    if ref.id is not None:
        member = session.get(Member, ref.id)
    elif ref.card is not None:
        subjects = _before_lookup()
        card = ref.card.strip()
        if is_valid_card(card):
            member = _by_index(session, "card", card)
    elif ref.phone is not None:
        subjects = _before_lookup()
        phone = normalise_phone(ref.phone, region, f"{field}.phone")
        member = _by_index(session, "phone", phone)
    elif ref.external_id is not None:
        member = session.execute(
            select(Member).where(Member.external_id == ref.external_id)
        ).scalar_one_or_none()
    elif ref.qr is not None:  # the member app's rotating card code
        subjects = _before_lookup()
        found = _card_codes[0](session, ref.qr, now()) if _card_codes else None
        member = session.get(Member, found) if found is not None else None
    if member is None:
        raise missed(subjects)
    return member


def lookup_of(
    ref: MemberRef, region: str, field: str = "member"
) -> tuple[Any, Any, list[str]] | None:
    """How a statement finds the member ``ref`` names: ``(column, value, subjects)``,
    the look-up counting against ``subjects`` if it misses (``missed``). None for the
    member app's rotating code, which ``resolve_member`` decodes first. The same checks
    as ``resolve_member`` (429 for a caller past the miss limit, 422 for a bad phone)."""
    if ref.id is not None:
        return Member.id, ref.id, []
    if ref.card is not None:
        subjects = _before_lookup()
        card = ref.card.strip()
        # a card number that fails its check digit names nobody
        return (
            Member.card_number_index,
            blind_index("card", card) if is_valid_card(card) else None,
            subjects,
        )
    if ref.phone is not None:
        subjects = _before_lookup()
        phone = normalise_phone(ref.phone, region, f"{field}.phone")
        return Member.phone_index, blind_index("phone", phone), subjects
    if ref.external_id is not None:
        return Member.external_id, ref.external_id, []
    return None


def missed(subjects: list[str]) -> Problem:
    """The 404 of a look-up that found nobody, counted against ``subjects``."""
    _after_miss(subjects)
    return Problem(404, "member_not_found", "no member matches the reference")


def ref_from_query(params: dict[str, Any]) -> MemberRef:
    return MemberRef.model_validate({k: v for k, v in params.items() if v is not None})


# ---------------------------------------------------------------------- changes


def update_member(
    session: Session,
    member_id: uuid.UUID,
    changes: dict[str, Any],
    region: str,
    actor: str,
) -> Member:
    """Change a member's phone, email, name, birth date or external id (not committed).

    ``changes`` holds only the fields to change (None clears one). 409 ``member_exists``
    if the new phone, email or external id is another member's; 409 ``member_erased``
    for an erased member. The audit log names the fields changed, never their values."""
    member = get_member(session, member_id, lock=True)
    if member.status == "erased":
        raise Problem(409, "member_erased", f"member {member_id} is erased")
    values = dict(changes)
    if values.get("phone") is not None:
        values["phone"] = normalise_phone(values["phone"], region)
    clash = _conflicts(
        session, values.get("phone"), values.get("email"), values.get("external_id"), member.id
    )
    if clash:
        raise _exists_problem(clash)
    changed = sorted(k for k, v in values.items() if getattr(member, k) != v)
    for k in changed:
        setattr(member, k, values[k])
    if changed:
        member.updated_at = now()
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError as exc:
            raise _exists_problem(
                _conflicts(session, values.get("phone"), values.get("email"), None, member.id)
                or ["phone"]
            ) from exc
        record(
            session,
            actor,
            "member.update",
            "member",
            str(member.id),
            details={"fields": changed},
        )
        _emit_updated(session, member, changed)
    return member


def _emit_updated(session: Session, member: Member, changed: Sequence[str]) -> None:
    """``member.updated`` in the change's transaction. It names the fields changed, never
    their values: personal data stays in the API (and erasure has nothing to redact)."""
    emit(
        session,
        "member.updated",
        {
            "member_id": str(member.id),
            "changed": list(changed),
            "status": member.status,
            "updated_at": member.updated_at.isoformat(),
        },
        member_id=member.id,
    )


def set_status(
    session: Session, member_id: uuid.UUID, status: str, actor: str, reason: str | None = None
) -> Member:
    """Block or unblock a member (not committed); audited with before/after."""
    if status not in STATUSES:
        raise validation_problem([field_error("status", f"one of {', '.join(STATUSES)}")])
    member = get_member(session, member_id, lock=True)
    if member.status == "erased":
        raise Problem(409, "member_erased", f"member {member_id} is erased")
    if member.status != status:
        before = member.status
        member.status = status
        member.updated_at = now()
        session.flush()
        record(
            session,
            actor,
            "member.status",
            "member",
            str(member.id),
            before={"status": before},
            after={"status": status},
            details={"reason": reason} if reason else None,
        )
        _emit_updated(session, member, ["status"])
    return member


def plan_tier_move(
    plan: Plan,
    member_id: uuid.UUID,
    before: str | None,
    to: str | None,
    moment: dt.datetime,
) -> None:
    """Add to ``plan`` the member's tier moving from ``before`` to ``to`` (``updated_at``
    ``moment``): a part that does not take (``Contended("tier")``) if the member's tier
    is no longer ``before`` when it is written."""
    plan.update_if_unchanged(
        table(Member),
        "id",
        [(member_id, {"tier": before}, {"tier": to, "updated_at": moment})],
        "tier",
    )


def backdate(session: Session, member_id: uuid.UUID, created_at: dt.datetime) -> None:
    """Set when the member joined (the demo's history, enrolments spread over months)."""
    session.execute(update(Member).where(Member.id == member_id).values(created_at=created_at))
