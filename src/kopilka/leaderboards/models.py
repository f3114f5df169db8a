"""The leaderboards' tables: a member's score on a board in a period (and store), kept as
receipts happen, and the member's choice to be shown (with a nickname)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import Boolean, Index, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.core.db import Amount, Base, UTCDateTime, now

# The store of a board that is not per store (part of the key: never NULL).
ALL_STORES = ""


class LeaderboardScore(Base):
    """What a member has on ``board`` in ``period`` (its key: ``2026-12-07``,
    ``2026-W49``, ``2026-12``, ``all``) at ``store`` (``ALL_STORES`` for a board of the
    whole programme). ``visible`` copies the member's opt-in (changed with it), so that the
    ranking index holds only the members shown; ``reached_at`` is when ``value`` last
    changed (the receipt's moment): of two equal values the one reached first ranks first.

    No foreign key to ``members``: a receipt adds to a score in its own statement, and an
    erasure deletes the member's scores (``service.erase_scores``)."""

    __tablename__ = "leaderboard_scores"
    __table_args__ = (
        # top N and a member's rank: the shown members of one board, period and store by
        # value (read backwards for the top; equal values put in order by an incremental
        # sort), a rank counted on two ranges of it; the members not shown are not in it
        Index(
            "ix_leaderboard_scores_rank",
            "board",
            "period",
            "store",
            "value",
            "reached_at",
            "member_id",
            postgresql_where=text("visible"),
            sqlite_where=text("visible"),
        ),
        Index("ix_leaderboard_scores_member", "member_id"),
    )

    board: Mapped[str] = mapped_column(String(40), primary_key=True)
    period: Mapped[str] = mapped_column(String(10), primary_key=True)
    store: Mapped[str] = mapped_column(String(64), primary_key=True)
    member_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    value: Mapped[Decimal] = mapped_column(Amount)
    visible: Mapped[bool] = mapped_column(Boolean, default=False)
    reached_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now, onupdate=now)


class LeaderboardPlayer(Base):
    """A member's choice: shown on the leaderboards (``opted_in``) under ``nickname``
    (unique case-insensitively, by ``nickname_key``) or, without one, ``masked_name``
    ("Анна К.", made from the member's name when they opted in)."""

    __tablename__ = "leaderboard_players"

    member_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    opted_in: Mapped[bool] = mapped_column(Boolean, default=False)
    nickname: Mapped[str | None] = mapped_column(String(20))
    nickname_key: Mapped[str | None] = mapped_column(String(20), unique=True)
    masked_name: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now, onupdate=now)
