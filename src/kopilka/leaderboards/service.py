"""The leaderboards: scores kept as receipts happen, members' choice to be shown, and the
boards read (top N, a member's rank).

**Scores.** A settled receipt adds to the member's score on every board of the programme
(``plan_settled``, called by ``hook.LeaderboardHook`` with the receipt's own plan: the rows
are written in the receipt's statement, no round trip of their own); a cancel or a return
takes back what the receipt gave (``take_back``). The purchases' path records a receipt
once (a replay is answered from the receipt already recorded, its hooks not called again),
so a score is added to once per receipt.

**Who shows.** Only members who opted in (``set_player``); a score row carries the member's
choice (``visible``), so a board's ranking reads one partial index. Opting in or out
changes every score row of the member at once, under the member's lock
(``ledger.service.lock_member``), which every receipt of the member takes too: a receipt
cannot write a row with a stale choice.

**Ranks.** Among the members shown only, in this order: the higher value first; of equal
values, the one reached first (``reached_at``: the moment of the receipt that last changed
it); then the member's id. Every member shown has a rank of their own (1, 2, 3 …).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    bindparam,
    delete,
    func,
    literal,
    select,
    text,
    true,
    tuple_,
    type_coerce,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kopilka.core.errors import Problem, field_error, validation_problem
from kopilka.core.money import ZERO, fmt, plain
from kopilka.core.plan import Plan, UpsertAdd, table
from kopilka.core.write import write
from kopilka.leaderboards import buckets, names, periods
from kopilka.leaderboards.models import (
    ALL_STORES,
    LeaderboardBucket,
    LeaderboardPlayer,
    LeaderboardScore,
)
from kopilka.ledger import service as ledger
from kopilka.members import service as members
from kopilka.program.service import current_program
from kopilka.purchases.hooks import Reversed, Settled
from kopilka.spec.leaderboards import LeaderboardSpec
from kopilka.spec.program import ProgramSpec

SCORES = table(LeaderboardScore)
KEY = ("board", "period", "store", "member_id")
# The hook's one read with every receipt: is the member shown (their choice, or NULL)?
VISIBLE = "leaderboards_visible"


def visible_column() -> ColumnElement[Any]:
    """The receipt hook's read: the member's choice (``:member_id``), one primary-key probe."""
    return (
        select(LeaderboardPlayer.opted_in)
        .where(LeaderboardPlayer.member_id == bindparam("member_id"))
        .scalar_subquery()
        .label(VISIBLE)
    )


def visible_in(read: Mapping[str, Any]) -> bool:
    """Whether the receipt's member is shown, from what the receipt's hooks read."""
    return bool(read.get(VISIBLE))


# ---------------------------------------------------------------------------- scores


@dataclass(frozen=True)
class ScoreAdd:
    """``delta`` to a member's score on ``board``, in the period of ``at`` at ``store``."""

    board: LeaderboardSpec
    member_id: uuid.UUID
    at: dt.datetime
    store: str
    delta: Decimal


def settled_adds(spec: ProgramSpec, receipt: Settled) -> list[ScoreAdd]:
    """What a settled receipt adds to each board (pure): ``points_earned`` what it earned
    in the board's currency, ``visits`` one, ``spent`` the money paid; ``challenge``
    boards are moved by the challenges (``plan_add``)."""
    if receipt.member_id is None:
        return []
    out = []
    for board in spec.leaderboards:
        if board.metric == "points_earned":
            delta = receipt.earned.get(board.currency or "", ZERO)
        elif board.metric == "visits":
            delta = Decimal(1)
        elif board.metric == "spent":
            delta = receipt.total_due
        else:
            continue
        if delta:
            out.append(
                ScoreAdd(board, receipt.member_id, receipt.occurred_at, receipt.store, delta)
            )
    return out


def reversed_adds(spec: ProgramSpec, receipt: Reversed) -> list[ScoreAdd]:
    """What a cancel or a return takes back from the periods and store its receipt counted
    in (pure; negative): the points it revoked, the money it refunded, and one visit for a
    cancel."""
    if receipt.member_id is None:
        return []
    out = []
    for board in spec.leaderboards:
        if board.metric == "points_earned":
            delta = -receipt.revoked.get(board.currency or "", ZERO)
        elif board.metric == "visits":
            delta = Decimal(-1) if receipt.kind == "cancel" else ZERO
        elif board.metric == "spent":
            delta = -receipt.refund
        else:
            continue
        if delta:
            out.append(
                ScoreAdd(board, receipt.member_id, receipt.occurred_at, receipt.store, delta)
            )
    return out


def score_key(board: LeaderboardSpec, at: dt.datetime, store: str, tz: str) -> tuple[str, str]:
    """``(period, store)`` of a score on ``board`` made at ``at`` in ``store``."""
    return periods.key_of(board.period, at, tz), store if board.per_store else ALL_STORES


def plan_adds(
    plan: Plan, tz: str, adds: Sequence[ScoreAdd], visible: bool, reached_at: dt.datetime
) -> None:
    """Add ``adds`` to ``plan`` as one upsert of the scores, merged with the one the plan
    has already (the receipt's own, the challenges'): on PostgreSQL a statement may change
    a row once, so one row per key; new rows shown when ``visible``."""
    part = next(
        (p for p in plan.parts if isinstance(p, UpsertAdd) and p.table is SCORES and not p.limits),
        None,
    )
    rows: dict[tuple[Any, ...], dict[str, Any]] = {
        tuple(r[k] for k in KEY): r for r in (part.rows if part else [])
    }
    for a in adds:
        period, store = score_key(a.board, a.at, a.store, tz)
        key = (a.board.code, period, store, a.member_id)
        row = rows.get(key)
        if row is None:
            rows[key] = {
                "board": a.board.code,
                "period": period,
                "store": store,
                "member_id": a.member_id,
                "value": a.delta,
                "minus_value": -a.delta,
                "visible": visible,
                "reached_at": reached_at,
            }
        else:
            row["value"] += a.delta
            row["minus_value"] -= a.delta
            row["reached_at"] = max(row["reached_at"], reached_at)
    if part is None:
        plan.upsert_add(SCORES, KEY, ("value", "minus_value"), list(rows.values()))
    else:
        part.rows = list(rows.values())


def plan_settled(plan: Plan, spec: ProgramSpec, receipt: Settled, read: Mapping[str, Any]) -> None:
    """A settled receipt's scores, into the receipt's ``plan``."""
    adds = settled_adds(spec, receipt)
    if adds:
        plan_adds(plan, spec.timezone, adds, visible_in(read), receipt.occurred_at)


def plan_add(
    plan: Plan,
    read: Mapping[str, Any],
    *,
    challenge: str,
    member_id: uuid.UUID,
    at: dt.datetime,
    store: str,
    delta: Decimal,
    spec: ProgramSpec,
) -> None:
    """The interface for the challenges: add ``delta`` (negative to take back) of the
    progress of ``challenge`` to every ``metric: challenge`` board of that challenge, for
    ``member_id``, in the period of ``at`` (the receipt's moment) and at ``store``.

    Call it from the challenges' own receipt hook (``settled``/``reversed``) with that
    receipt's ``plan`` and ``read`` (every hook is handed the same ``read``: it holds this
    package's ``VISIBLE`` column, so the row of a member shown is made shown); the rows
    are written with the receipt's. ``spec``: the programme the receipt is judged by
    (``receipt.program.spec``). Called once per receipt (the receipt's hooks are), it
    counts once."""
    adds = [
        ScoreAdd(b, member_id, at, store, delta)
        for b in spec.leaderboards
        if b.metric == "challenge" and b.challenge == challenge
    ]
    if adds and delta:
        plan_adds(plan, spec.timezone, adds, visible_in(read), at)


def add_challenge_progress(
    session: Session,
    spec: ProgramSpec,
    *,
    challenge: str,
    member_id: uuid.UUID,
    at: dt.datetime,
    store: str,
    delta: Decimal,
) -> None:
    """``plan_add`` for progress the challenges count outside a receipt's statement (a
    custom event, a friend, a goal counted with the service's own statements, a return
    recomputed): the member's choice read, the scores written at once, in the caller's
    transaction."""
    adds = [
        ScoreAdd(b, member_id, at, store, delta)
        for b in spec.leaderboards
        if b.metric == "challenge" and b.challenge == challenge
    ]
    if not adds or not delta:
        return
    shown = session.scalar(
        select(LeaderboardPlayer.opted_in).where(LeaderboardPlayer.member_id == member_id)
    )
    plan = Plan()
    plan_adds(plan, spec.timezone, adds, bool(shown), at)
    write(session, plan)


def plan_for_receipt(plan: Plan, receipt: Settled, read: Mapping[str, Any]) -> None:
    """``plan_settled`` by the programme the receipt is judged by."""
    spec = receipt.program.spec
    if spec.leaderboards:
        plan_settled(plan, spec, receipt, read)


def take_back(session: Session, receipt: Reversed) -> None:
    """A cancel's or a return's part, under the member's lock, in its transaction: what it
    takes back, from the scores of the period and store the receipt counted in. A score is
    taken back to zero at most (a board added after the receipt was not given anything)."""
    if receipt.member_id is None:
        return
    spec = receipt.program.spec
    if not spec.leaderboards:
        return
    adds = reversed_adds(spec, receipt)
    if not adds:
        return
    keys = {(a.board.code, *score_key(a.board, a.at, a.store, spec.timezone)): a for a in adds}
    have = {
        (r.board, r.period, r.store): r.value
        for r in session.execute(
            select(
                LeaderboardScore.board,
                LeaderboardScore.period,
                LeaderboardScore.store,
                LeaderboardScore.value,
            ).where(
                LeaderboardScore.member_id == receipt.member_id,
                tuple_(LeaderboardScore.board, LeaderboardScore.period, LeaderboardScore.store).in_(
                    list(keys)
                ),
            )
        )
    }
    kept = []
    for key, a in keys.items():
        value = have.get(key)
        if value is not None and value > 0:
            kept.append(ScoreAdd(a.board, a.member_id, a.at, a.store, max(a.delta, -value)))
    if kept:
        plan = Plan()
        plan_adds(plan, spec.timezone, kept, False, ledger.clock())
        write(session, plan)


# ---------------------------------------------------------------------------- players


def player_json(player: LeaderboardPlayer | None) -> dict[str, Any]:
    if player is None:
        return {"opted_in": False, "nickname": None, "display_name": None}
    return {
        "opted_in": player.opted_in,
        "nickname": player.nickname,
        "display_name": player.nickname or player.masked_name,
    }


def get_player(session: Session, member_id: uuid.UUID) -> dict[str, Any]:
    """The member's choice (``opted_in``, ``nickname``, the name they are shown under)."""
    members.get_member(session, member_id)
    return player_json(session.get(LeaderboardPlayer, member_id))


def set_player(
    session: Session, member_id: uuid.UUID, opted_in: bool, nickname: str | None
) -> dict[str, Any]:
    """Opt the member in (under ``nickname``, or their masked name when None) or out;
    every score of the member is shown or hidden at once. A nickname is checked
    (``names.check_nickname``) and unique case-insensitively: 422 naming ``nickname``,
    nothing changed."""
    member = members.get_member(session, member_id)
    nick = None
    if nickname is not None and nickname.strip():
        try:
            nick = names.check_nickname(nickname)
        except ValueError as exc:
            raise validation_problem([field_error("nickname", str(exc))]) from exc
    spec = current_program(session).spec
    # the member's lock, which their receipts take too: no receipt writes a score with
    # the choice before this one once this one is made
    ledger.lock_member(session, member_id, spec, [])
    key = names.nickname_key(nick) if nick else None
    if key is not None:
        taken = session.execute(
            select(LeaderboardPlayer.member_id).where(
                LeaderboardPlayer.nickname_key == key, LeaderboardPlayer.member_id != member_id
            )
        ).first()
        if taken is not None:
            raise _nickname_taken(nick or "")
    player = session.get(LeaderboardPlayer, member_id, populate_existing=True)
    masked = names.masked_name(member.name, member.card_number)
    try:
        with session.begin_nested():
            if player is None:
                player = LeaderboardPlayer(member_id=member_id)
                session.add(player)
            player.opted_in = opted_in
            player.nickname = nick
            player.nickname_key = key
            player.masked_name = masked
            session.flush()
    except IntegrityError as exc:  # the same nickname taken by another member meanwhile
        raise _nickname_taken(nick or "") from exc
    session.execute(
        update(LeaderboardScore)
        .where(LeaderboardScore.member_id == member_id)
        .values(visible=opted_in, reached_at=LeaderboardScore.reached_at)
    )
    return player_json(player)


def masked_name_of(name: str | None, card_number: str) -> str:
    """The name a member without a nickname is shown under ("Анна К.")."""
    return names.masked_name(name, card_number)


def _nickname_taken(nick: str) -> Problem:
    return validation_problem(
        [field_error("nickname", f"the nickname {nick!r} is taken", "taken")],
        "choose another nickname",
    )


# ---------------------------------------------------------------------------- reading


def board_of(spec: ProgramSpec, code: str) -> LeaderboardSpec:
    board = next((b for b in spec.leaderboards if b.code == code), None)
    if board is None:
        raise Problem(404, "leaderboard_not_found", f"no leaderboard {code!r}")
    return board


def board_json(board: LeaderboardSpec) -> dict[str, Any]:
    return {
        "code": board.code,
        "name": board.name.model_dump(),
        "metric": board.metric,
        "currency": board.currency,
        "challenge": board.challenge,
        "period": board.period,
        "per_store": board.per_store,
        "size": board.size,
    }


def precision_of(spec: ProgramSpec, board: LeaderboardSpec) -> int | None:
    """How a board's values are written: a currency's places, money's two, visits whole;
    None (as they are) for a challenge's progress."""
    if board.metric == "points_earned":
        cur = spec.currency(board.currency or "")
        return cur.precision if cur else 2
    if board.metric == "spent":
        return 2
    if board.metric == "visits":
        return 0
    return None


def format_value(spec: ProgramSpec, board: LeaderboardSpec, value: Decimal) -> str:
    precision = precision_of(spec, board)
    return plain(value) if precision is None else fmt(value, precision)


@dataclass(frozen=True)
class Where:
    """A board's scores of one period and store (``ALL_STORES`` unless per store)."""

    board: LeaderboardSpec
    period: str
    store: str


def where(
    spec: ProgramSpec,
    board: LeaderboardSpec,
    period: str | None,
    store: str | None,
    at: dt.datetime | None = None,
) -> Where:
    """The scores asked for: ``period`` (the current one at ``at`` when None) checked
    against the board's kind of period, ``store`` given exactly when the board is per
    store (422 naming ``period`` or ``store`` otherwise)."""
    errors = []
    key = periods.key_of(board.period, at or ledger.clock(), spec.timezone)
    if period is not None:
        try:
            key = periods.parse(board.period, period)
        except ValueError as exc:
            errors.append(field_error("period", str(exc)))
    if board.per_store:
        if store is None:
            errors.append(field_error("store", "this leaderboard is per store: give store"))
        elif store not in {s.code for s in spec.stores}:
            errors.append(field_error("store", f"no store {store!r}", "unknown_store"))
    elif store is not None:
        errors.append(field_error("store", "this leaderboard is not per store"))
    if errors:
        raise validation_problem(errors)
    return Where(board, key, store if board.per_store and store else ALL_STORES)


def _shown(w: Where) -> list[ColumnElement[bool]]:
    return [
        LeaderboardScore.board == w.board.code,
        LeaderboardScore.period == w.period,
        LeaderboardScore.store == w.store,
        LeaderboardScore.visible == true(),
    ]


def top(session: Session, w: Where, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` members shown, in rank order: ``rank``, ``member_id``,
    ``display_name``, ``value`` (a Decimal)."""
    rows = session.execute(
        select(
            LeaderboardScore.member_id,
            LeaderboardScore.value,
            func.coalesce(LeaderboardPlayer.nickname, LeaderboardPlayer.masked_name).label("name"),
        )
        .join(LeaderboardPlayer, LeaderboardPlayer.member_id == LeaderboardScore.member_id)
        .where(*_shown(w))
        .order_by(
            LeaderboardScore.minus_value,
            LeaderboardScore.reached_at,
            LeaderboardScore.member_id,
        )
        .limit(limit)
    ).all()
    return [
        {"rank": i, "member_id": r.member_id, "display_name": r.name, "value": r.value}
        for i, r in enumerate(rows, start=1)
    ]


def rank_of(session: Session, w: Where, member_id: uuid.UUID) -> dict[str, Any] | None:
    """The member's ``rank`` and ``value``, or None when they are not shown or have no
    score in the period: one plus the members shown ahead of them, counted on the
    ranking index (a higher value; the same value reached earlier, or at the same moment
    by a smaller id)."""
    mine = session.execute(
        select(LeaderboardScore.value, LeaderboardScore.reached_at).where(
            *_shown(w), LeaderboardScore.member_id == member_id
        )
    ).first()
    if mine is None:
        return None
    value, reached = mine
    me = tuple_(
        type_coerce(reached, LeaderboardScore.reached_at.type),
        type_coerce(member_id, LeaderboardScore.member_id.type),
    )
    order = tuple_(LeaderboardScore.reached_at, LeaderboardScore.member_id)
    # ranges of the index, never one OR (which reads every member shown): the higher
    # values, and the same value before the member's (reached_at, member_id)
    higher = [*_shown(w), LeaderboardScore.minus_value < -value]
    tied = [*_shown(w), LeaderboardScore.minus_value == -value, order < me]
    if session.get_bind().dialect.name != "postgresql":
        total = _count(higher) + _count(tied)
        ahead = int(session.execute(select(total)).scalar_one())
        return {"rank": ahead + 1, "value": value}
    # PostgreSQL: the buckets above the member's, summed, and within theirs (``size``
    # members) the shorter side counted: those ahead, or those behind (``size`` - 1 -
    # behind), each first counted up to ``TIE_PROBE`` rows; only in the middle of a
    # crowd of more than that on both sides is the side ahead counted whole
    bucket, start, end = buckets.bounds(value)
    sums = _bucket_sums(w, bucket)
    higher.append(LeaderboardScore.minus_value > -end)
    tied_after = [*_shown(w), LeaderboardScore.minus_value == -value, order > me]
    lower = [
        *_shown(w),
        LeaderboardScore.minus_value > -value,
        LeaderboardScore.minus_value <= -start,
    ]
    row = session.execute(
        select(
            sums[0],
            sums[1],
            _count(higher, TIE_PROBE),
            _count(tied, TIE_PROBE),
            _count(tied_after, TIE_PROBE),
            _count(lower, TIE_PROBE),
        )
    ).one()
    above, size, h, t, ta, lo = (int(x) for x in row)
    if h < TIE_PROBE and t < TIE_PROBE:
        ahead = above + h + t
    elif ta < TIE_PROBE and lo < TIE_PROBE:
        ahead = above + size - 1 - ta - lo
    else:
        ahead = above + int(session.execute(select(_count(higher) + _count(tied))).scalar_one())
    return {"rank": ahead + 1, "value": value}


# How many rows of the member's bucket a rank counts on one side before trying the other.
TIE_PROBE = 20_000


def _count(where: list[ColumnElement[bool]], limit: int | None = None) -> Any:
    """The number of scores ``where`` holds (at most ``limit``), as a scalar subquery."""
    rows = select(literal(1)).select_from(LeaderboardScore).where(*where)
    if limit is not None:
        rows = rows.limit(limit)
    return select(func.count()).select_from(rows.subquery()).scalar_subquery()


def _bucket_sums(w: Where, bucket: int) -> tuple[Any, Any]:
    """The members shown in the buckets above ``bucket``, and in ``bucket`` itself."""

    def total(*where: ColumnElement[bool]) -> Any:
        return (
            select(func.coalesce(func.sum(LeaderboardBucket.n), 0))
            .where(
                LeaderboardBucket.board == w.board.code,
                LeaderboardBucket.period == w.period,
                LeaderboardBucket.store == w.store,
                *where,
            )
            .scalar_subquery()
        )

    return total(LeaderboardBucket.bucket > bucket), total(LeaderboardBucket.bucket == bucket)


def board_answer(
    session: Session,
    spec: ProgramSpec,
    w: Where,
    limit: int,
    member_id: uuid.UUID | None,
    with_ids: bool = False,
) -> dict[str, Any]:
    """The API's answer: ``items`` (``rank``, ``display_name``, ``value``; with
    ``member_id`` for the staff's console when ``with_ids``) and the ``member``'s own
    ``rank`` and ``value`` (null unless shown and scored)."""
    items = []
    for r in top(session, w, min(limit, w.board.size)):
        item = {
            "rank": r["rank"],
            "display_name": r["display_name"],
            "value": format_value(spec, w.board, r["value"]),
        }
        if with_ids:
            item["member_id"] = str(r["member_id"])
        items.append(item)
    mine = rank_of(session, w, member_id) if member_id is not None else None
    return {
        "board": w.board.code,
        "period": w.period,
        "store": w.store or None,
        "items": items,
        "member": (
            None
            if mine is None
            else {"rank": mine["rank"], "value": format_value(spec, w.board, mine["value"])}
        ),
    }


def compact(session: Session) -> int:
    """Sum the buckets' additions into one row per bucket (PostgreSQL; a job): what a
    rank sums stays some 90 rows per power of ten of a board's values. Additions written
    meanwhile are other rows, left for the next time. How many rows it folded."""
    if session.get_bind().dialect.name != "postgresql":
        return 0
    folded = session.execute(
        text(
            """
WITH gone AS (DELETE FROM leaderboard_buckets RETURNING board, period, store, bucket, n),
kept AS (
  INSERT INTO leaderboard_buckets (board, period, store, bucket, n)
  SELECT board, period, store, bucket, sum(n) FROM gone
  GROUP BY board, period, store, bucket HAVING sum(n) <> 0
  RETURNING 1
)
SELECT (SELECT count(*) FROM gone) - (SELECT count(*) FROM kept)
"""
        )
    ).scalar_one()
    return int(folded)


# ---------------------------------------------------------------------------- privacy


def export_leaderboards(session: Session, member_id: uuid.UUID) -> dict[str, Any]:
    """The leaderboards' part of a member's export: their choice and scores."""
    scores = session.execute(
        select(LeaderboardScore)
        .where(LeaderboardScore.member_id == member_id)
        .order_by(LeaderboardScore.board, LeaderboardScore.period, LeaderboardScore.store)
    ).scalars()
    return {
        **player_json(session.get(LeaderboardPlayer, member_id)),
        "scores": [
            {
                "board": s.board,
                "period": s.period,
                "store": s.store or None,
                "value": plain(s.value),
            }
            for s in scores
        ],
    }


def erase_leaderboards(session: Session, member_id: uuid.UUID) -> None:
    """Erasure: the member's choice, nickname and scores are deleted."""
    session.execute(delete(LeaderboardScore).where(LeaderboardScore.member_id == member_id))
    session.execute(delete(LeaderboardPlayer).where(LeaderboardPlayer.member_id == member_id))
