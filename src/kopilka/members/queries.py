"""What other domains read of the members' table in their own statements."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

from sqlalchemy import Select, bindparam, select
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
