"""The leaderboards' tables: a member's score on a board in a period (and store), kept as
receipts happen, and the member's choice to be shown (with a nickname)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, Index, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.core.db import Amount, Base, BigId, UTCDateTime, now

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
        # top N and a member's rank: the shown members of one board, period and store in
        # rank order (``minus_value``: the higher value first, in an ascending index that
        # both databases' schemas compare alike), a rank counted on ranges of it; the
        # members not shown are not in it
        Index(
            "ix_leaderboard_scores_rank",
            "board",
            "period",
            "store",
            "minus_value",
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
    minus_value: Mapped[Decimal] = mapped_column(Amount)  # -value: the ranking's order
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


class LeaderboardBucket(Base):
    """How many members shown have a value in ``bucket`` (a range of values:
    ``buckets.bucket_of``) on a board in a period and store, as additions (+1 and −1)
    that ``compact`` sums now and then into one row per bucket. On PostgreSQL a trigger on
    ``leaderboard_scores`` writes them (rows only ever inserted: receipts of different
    members never wait on one counter), so that a member's rank is the sum of the buckets
    above theirs plus a count within their own, whatever their rank; SQLite, the embedded
    database of small programmes, counts the scores themselves."""

    __tablename__ = "leaderboard_buckets"
    __table_args__ = (Index("ix_leaderboard_buckets_board", "board", "period", "store", "bucket"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    board: Mapped[str] = mapped_column(String(40))
    period: Mapped[str] = mapped_column(String(10))
    store: Mapped[str] = mapped_column(String(64))
    bucket: Mapped[int] = mapped_column(BigInteger)
    n: Mapped[int] = mapped_column(BigInteger)
