"""What other parts read of the programme's tables (the console's programme screen)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kopilka.program.models import ProgramVersion


def recent_versions(session: Session, limit: int = 20) -> list[Any]:
    """The newest programme versions: ``version``, ``name``, ``applied_at``, ``applied_by``."""
    return list(
        session.execute(
            select(
                ProgramVersion.version,
                ProgramVersion.name,
                ProgramVersion.applied_at,
                ProgramVersion.applied_by,
            )
            .order_by(ProgramVersion.version.desc())
            .limit(limit)
        ).all()
    )
