"""What other parts read of the API keys' table (the demo's keys)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from kopilka.apikeys.models import ApiKey as ApiKey  # the type other domains are handed


def live_keys_like(
    session: Session, name: str, role: str, created_by: str, other_than: uuid.UUID
) -> Sequence[uuid.UUID]:
    """The ids of the keys not revoked, named ``name``, of ``role``, made by
    ``created_by`` or by no one said, but ``other_than``."""
    return session.scalars(
        select(ApiKey.id).where(
            ApiKey.name == name,
            ApiKey.role == role,
            ApiKey.revoked_at.is_(None),
            ApiKey.id != other_than,
            or_(ApiKey.created_by == created_by, ApiKey.created_by.is_(None)),
        )
    ).all()
