"""What other domains read of the members' table in their own statements (a receipt's
member, a member's tier beside another domain's state of them, pages of tiers)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Select, Subquery, bindparam, func, select
from sqlalchemy.orm import Session

from kopilka.members.models import Member as Member  # the type other domains are handed


def for_receipt(column: Any) -> Select[Any]:
    """The member whose ``column`` (from ``service.lookup_of``) is bound as ``ref``, with
    what a receipt's rules know of them: ``id``, ``status``, ``tier``, ``tags``,
    ``birth_date``, ``created_at``, ``personal_discount``."""
    columns: list[Any] = [
        Member.id,
        Member.status,
        Member.tier,
        Member.tags,
        Member.birth_date,
        Member.created_at,
        Member.personal_discount,
    ]
    return select(*columns).where(column == bindparam("ref"))


def existing_ids(session: Session, member_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    """Which of ``member_ids`` are members' ids (an erased member's too)."""
    return set(session.execute(select(Member.id).where(Member.id.in_(member_ids))).scalars())


def tier_of(member_id: Any) -> Any:
    """The tier of the member ``member_id`` (a bound parameter or a column), as a scalar
    subquery."""
    return select(Member.tier).where(Member.id == member_id).scalar_subquery()


def tier_with(columns: Sequence[Any], state: Any, state_member_id: Any) -> Select[Any]:
    """``(tier, *columns)`` of the member bound as ``member_id``, where ``columns`` are of
    ``state``, another domain's table of one row per member outer-joined on its
    ``state_member_id``: one row, none for an unknown member."""
    return (
        select(Member.tier, *columns)
        .select_from(Member)
        .outerjoin(state, state_member_id == Member.id)
        .where(Member.id == bindparam("member_id"))
    )


def tiers_after(after: uuid.UUID | None, limit: int) -> Select[uuid.UUID, str | None]:
    """``(id, tier)`` of the first ``limit`` members not erased, by id, after the member
    ``after`` (from the first member with None)."""
    q = (
        select(Member.id, Member.tier)
        .where(Member.status != "erased")
        .order_by(Member.id)
        .limit(limit)
    )
    if after is not None:
        q = q.where(Member.id > after)
    return q


def cards(session: Session) -> list[Any]:
    """``(id, card_number)`` of every member, in the order they were enrolled (ids increase
    within a process): the demo's seeded history gives the same receipts to the same
    members on every run (read in the order of the random card numbers' index, it did not,
    and a test of the demo's challenges failed one run in two)."""
    return list(session.execute(select(Member.id, Member.card_number).order_by(Member.id)).all())


def active_joined(session: Session) -> list[Any]:
    """``(id, created_at)`` of every active member, in the order the database reads them."""
    return list(
        session.execute(select(Member.id, Member.created_at).where(Member.status == "active")).all()
    )


def count_members(session: Session) -> int:
    """How many members there are (erased ones too)."""
    return session.execute(select(func.count()).select_from(Member)).scalar_one()


# ---------------------------------------------------------------------------- for the reports


def joined_by_id(
    limit: int,
    *,
    since: uuid.UUID | None = None,
    only: Sequence[uuid.UUID] | None = None,
    after: uuid.UUID | None = None,
) -> Select[uuid.UUID, dt.datetime]:
    """``(id, created_at)`` of the first ``limit`` members by id (erased ones too) of those
    with an id from ``since`` on (ids are time-ordered: enrolled at its moment or later),
    among ``only``, after the member ``after``; a condition given as None is left out."""
    q = select(Member.id, Member.created_at).order_by(Member.id).limit(limit)
    if since is not None:
        q = q.where(Member.id >= since)
    if only is not None:
        q = q.where(Member.id.in_(only))
    if after is not None:
        q = q.where(Member.id > after)
    return q


def with_tier(q: Select[Any], member_id: Any) -> Select[Any]:
    """``q`` with the member whose id is ``member_id`` (a column of ``q``'s rows)
    outer-joined, and their tier added as the last column, labelled ``tier`` (None where
    there is no such member, or they have no tier)."""
    joined: Select[Any] = q.outerjoin(Member, Member.id == member_id).add_columns(
        Member.tier.label("tier")
    )
    return joined


def of_tier(tier: str) -> Subquery:
    """The members whose tier is ``tier`` now (``member_id``), to join a report's rows of
    members on."""
    return select(Member.id.label("member_id")).where(Member.tier == tier).subquery()


def count_by_tier() -> Select[str, int]:
    """``(tier, members)``: how many members not erased each tier has now, members without
    a tier under the empty name."""
    tier = func.coalesce(Member.tier, "").label("tier")
    return (
        select(tier, func.count().label("members")).where(Member.status != "erased").group_by(tier)
    )


def tiers_in_use() -> Select[str | None]:
    """``(tier,)``: each tier some member has now (no member without a tier), by name."""
    return select(Member.tier).where(Member.tier.is_not(None)).distinct().order_by(Member.tier)


# ---------------------------------------------------------------------------- for the referrals


def referrer_of(session: Session, member_id: uuid.UUID) -> uuid.UUID | None:
    """Who referred a member (None: nobody, or no such member)."""
    return session.execute(
        select(Member.referred_by).where(Member.id == member_id)
    ).scalar_one_or_none()


def with_referral_code(session: Session, code: str) -> uuid.UUID | None:
    """The member whose referral code this is (written in any case), None if nobody's."""
    return session.execute(
        select(Member.id).where(Member.referral_code == code.strip().upper())
    ).scalar_one_or_none()


def by_ids(session: Session, member_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Member]:
    """These members, by id (unknown ids left out)."""
    if not member_ids:
        return {}
    found = session.execute(select(Member).where(Member.id.in_(list(member_ids)))).scalars()
    return {m.id: m for m in found}


# --- challenges ---


def audience_among(member_ids: Any) -> Select[Any]:
    """``(id, tier, tags)`` of the active members whose id ``member_ids`` (a select of
    ids) gives: what a challenge's audience looks at (the console's simulation)."""
    columns: list[Any] = [Member.id, Member.tier, Member.tags]
    return select(*columns).where(Member.id.in_(member_ids), Member.status == "active")
