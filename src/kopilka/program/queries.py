"""What other parts read of the programme's tables (the console's programme screen, the
currencies' precisions, the version in force to edit)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from kopilka.program.models import Currency as Currency  # the type other domains are handed
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


def latest_version(session: Session, lock: bool = False) -> ProgramVersion | None:
    """The newest programme version (the one in force), or None before the first; ``lock``
    takes its row's lock."""
    q = select(ProgramVersion).order_by(ProgramVersion.version.desc()).limit(1)
    return session.execute(q.with_for_update() if lock else q).scalar_one_or_none()


def active_currencies(session: Session) -> list[Currency]:
    """The active currencies, by code."""
    return list(
        session.execute(
            select(Currency).where(Currency.active.is_(True)).order_by(Currency.code)
        ).scalars()
    )


def currency_precisions(session: Session) -> dict[str, int]:
    """Every currency's decimal places, by code."""
    return dict(session.execute(select(Currency.code, Currency.precision)).all())


def precision_of(session: Session, code: str) -> int | None:
    """The decimal places of the currency ``code``, or None for an unknown code."""
    found = session.execute(select(Currency.precision).where(Currency.code == code)).scalar()
    return None if found is None else int(found)


def with_precision(q: Any, code: Any) -> Select[Any]:
    """``q`` joined to the currency whose code is ``code`` (rows without one are dropped),
    with that currency's decimal places added as each row's last column."""
    joined: Select[Any] = q.add_columns(Currency.precision).join(Currency, Currency.code == code)
    return joined


# --- challenges ---


def digest_in_force() -> Any:
    """The digest of the programme version in force, as a scalar subquery (the receipt
    hooks that keep a programme's compiled form by digest read it with the receipt)."""
    return (
        select(ProgramVersion.digest)
        .order_by(ProgramVersion.version.desc())
        .limit(1)
        .scalar_subquery()
    )
