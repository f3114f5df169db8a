"""``Idempotency-Key`` for state-changing POSTs.

The key is recorded in the same transaction as the change it guards, so either both are
committed or neither. Two concurrent requests with one key race on the unique index: the
loser's transaction (and its change) rolls back and it answers the winner's response.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import JSON, Integer, String, UniqueConstraint, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from kopilka.core.context import mark_replayed
from kopilka.core.db import Base, UTCDateTime, now
from kopilka.core.errors import Problem


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(255))
    route: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[Any] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now)


def request_hash(route: str, payload: Any) -> str:
    raw = json.dumps([route, payload], sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


def _check_key(key: str) -> None:
    if not (1 <= len(key) <= 255) or not key.isprintable():
        raise Problem(
            422,
            "idempotency_key_invalid",
            "Idempotency-Key must be 1 to 255 printable characters",
            errors=[
                {
                    "field": "Idempotency-Key",
                    "in": "header",
                    "code": "invalid",
                    "message": "1 to 255 printable characters",
                }
            ],
        )


def _stored(session: Session, scope: str, key: str) -> IdempotencyRecord | None:
    return session.execute(
        select(IdempotencyRecord).where(
            IdempotencyRecord.scope == scope, IdempotencyRecord.key == key
        )
    ).scalar_one_or_none()


def _replay(record: IdempotencyRecord, digest: str) -> tuple[int, Any]:
    if record.request_hash != digest:
        raise Problem(
            422,
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request",
        )

    mark_replayed()  # nothing changed: the HTTP audit leaves the request out
    return record.status_code, record.response


def run_idempotent(
    session: Session,
    scope: str,
    key: str | None,
    route: str,
    payload: Any,
    action: Callable[[], tuple[int, Any]],
) -> tuple[int, Any]:
    """Run ``action`` (which writes through ``session`` without committing) once per key.

    Returns ``(status, body)``: the action's, or the first response for this key.
    Commits the session.
    """
    if key is None:
        result = action()
        session.commit()
        return result
    _check_key(key)
    digest = request_hash(route, payload)
    record = _stored(session, scope, key)
    if record is not None:
        session.rollback()
        return _replay(record, digest)
    try:
        status, body = action()
        session.add(
            IdempotencyRecord(
                scope=scope,
                key=key,
                route=route,
                request_hash=digest,
                status_code=status,
                response=body,
            )
        )
        session.commit()
    except IntegrityError:
        session.rollback()
        record = _stored(session, scope, key)
        if record is None:
            raise
        session.rollback()
        return _replay(record, digest)
    except Problem:
        # A concurrent twin may have won and made our action fail (e.g. on a unique
        # index of the business data): then answer what the twin answered.
        session.rollback()
        record = _stored(session, scope, key)
        session.rollback()
        if record is not None:
            return _replay(record, digest)
        raise
    except BaseException:
        session.rollback()
        raise
    return status, body
