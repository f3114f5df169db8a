"""The challenges' part in a receipt (the seam ``purchases.hooks``).

Read with the receipt's context, two scalar subqueries: the member's current progress rows
(the most recent periods first, ``LIMIT`` of them, as text) and the challenges the member
opted in to. The challenges are those of the programme the receipt carries (compiled once
per version, ``service.setup_of``). From those, ``settled`` plans in the receipt's own
statement, for each challenge whose goal is a plain sum (receipts, money paid, units), the
contribution row (its unique key makes a replay count once) and the addition to the
member's progress, with ``challenge.progressed``. ``after_settled`` then, only when the
read says a step is reached, rewards it; challenges that need more than the read (distinct
days or categories, streaks, an audience, an opt-in's days) are counted there with the
service's own statements. A cancel or a return is rare: ``after_reversed`` recomputes the
receipt's contributions on what is left.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, String, bindparam, cast, literal_column, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from kopilka.challenges import progress, service
from kopilka.challenges.models import ChallengeContribution, ChallengeEntry, ChallengeJoin
from kopilka.core.money import from_units
from kopilka.core.plan import Plan, table
from kopilka.leaderboards import service as leaderboards
from kopilka.purchases.hooks import Event, Reversed, Settled
from kopilka.spec.challenges import ChallengeSpec

ENTRIES = "challenges_entries"
JOINED = "challenges_joined"
# How many of the member's progress rows a receipt reads (current periods rank first: a
# programme with fewer challenges than this always finds every current one).
LIMIT = 32
CONTRIBUTIONS = table(ChallengeContribution)
PROGRESS = table(ChallengeEntry)


class joined_text(FunctionElement[str]):
    """The texts of a column joined by ``;`` (``string_agg``, SQLite's ``group_concat``),
    with the separator written into the SQL: a receipt's statement binds nothing more."""

    type = String()
    inherit_cache = True


@compiles(joined_text, "postgresql")
def _pg(element: joined_text, compiler: SQLCompiler, **kw: Any) -> str:
    return f"string_agg({compiler.process(element.clauses, **kw)}, ';')"


@compiles(joined_text, "sqlite")
def _sqlite(element: joined_text, compiler: SQLCompiler, **kw: Any) -> str:
    return f"group_concat({compiler.process(element.clauses, **kw)}, ';')"


class epoch_text(FunctionElement[str]):  # a moment as whole seconds since 1970, as text
    type = String()
    inherit_cache = True


@compiles(epoch_text, "postgresql")
def _pg_epoch(element: epoch_text, compiler: SQLCompiler, **kw: Any) -> str:
    inner = compiler.process(element.clauses, **kw)
    return f"CAST(CAST(EXTRACT(EPOCH FROM {inner}) AS BIGINT) AS VARCHAR)"


@compiles(epoch_text, "sqlite")
def _sqlite_epoch(element: epoch_text, compiler: SQLCompiler, **kw: Any) -> str:
    return f"strftime('%s', {compiler.process(element.clauses, **kw)})"


@dataclass(frozen=True)
class Read:
    """What the receipt's statement read for the challenges."""

    entries: Mapping[tuple[str, str], tuple[Decimal, int]]
    complete: bool  # every progress row of the member was read
    joined: Mapping[str, int]  # opt-in challenge -> when joined, seconds since 1970


def parse(read: Mapping[str, Any]) -> Read:
    raw = read.get(ENTRIES) or ""
    entries: dict[tuple[str, str], tuple[Decimal, int]] = {}
    n = 0
    for item in raw.split(";") if raw else ():
        code, key, units, steps = item.split("|")
        entries[(code, key)] = (from_units(int(units)), int(steps))
        n += 1
    joined: dict[str, int] = {}
    for item in (read.get(JOINED) or "").split(";"):
        if item:
            code, _, at = item.partition("@")
            joined[code] = int(at)
    return Read(entries, n < LIMIT, joined)


def plan_of(
    st: service.Setup, receipt: Settled, seen: Read
) -> tuple[list[tuple[service.Planned, progress.Contribution]], list[ChallengeSpec]]:
    """Pure: for each challenge counted from receipts, either the addition the receipt's
    statement makes (with the values before and after) or a place in the slow list."""
    planned: list[tuple[service.Planned, progress.Contribution]] = []
    slow: list[ChallengeSpec] = []
    facts: progress.Receipt | None = None
    for c in st.of_receipts:
        if c.join == "opt_in":
            joined = seen.joined.get(c.code)
            # not joined, or joined after the receipt (a till's queue sent late)
            if joined is None or receipt.occurred_at.timestamp() < joined:
                continue
        if (
            not progress.additive(c)
            or c.audience is not None
            or (c.period is not None and c.period.days is not None)
        ):
            slow.append(c)
            continue
        w = progress.window(c.period, receipt.occurred_at, st.tz)
        if w is None:
            continue
        if facts is None:
            facts = service.receipt_of(receipt, st.tz)
        got = progress.receipt_contribution(c, facts, st.tz)
        if got.value <= 0:
            continue
        before = seen.entries.get((c.code, w.key))
        if before is None and not seen.complete:
            slow.append(c)
            continue
        value, steps = before or (Decimal(0), 0)
        planned.append((service.Planned(c, w, value, steps, value + got.value), got))
    return planned, slow


class ChallengeHook:
    name = "challenges"

    def columns(self) -> Sequence[ColumnElement[Any]]:
        member: Any = bindparam("member_id")
        e = ChallengeEntry
        bar = literal_column("'|'", String)
        text = (
            e.challenge
            + bar
            + e.period_key
            + bar
            + cast(e.value, String)
            + bar
            + cast(e.steps_done, String)
        )
        recent = (
            select(text.label("s"))
            .where(e.member_id == member)
            .order_by(e.period_end.is_(None).desc(), e.period_end.desc())
            .limit(LIMIT)
            .subquery()
        )
        return [
            select(joined_text(recent.c.s)).scalar_subquery().label(ENTRIES),
            select(
                joined_text(
                    ChallengeJoin.challenge
                    + literal_column("'@'", String)
                    + epoch_text(ChallengeJoin.joined_at)
                )
            )
            .where(ChallengeJoin.member_id == member)
            .scalar_subquery()
            .label(JOINED),
        ]

    def settled(
        self, receipt: Settled, read: Mapping[str, Any], plan: Plan
    ) -> Sequence[Event] | None:
        if receipt.member_id is None:
            return None
        st = service.setup_of(receipt.program)
        if not st.of_receipts:
            return None
        planned, _ = plan_of(st, receipt, parse(read))
        if not planned:
            return None
        facts = service.receipt_of(receipt, st.tz)
        source = f"purchase:{receipt.purchase_id}"
        plan.insert_new(
            CONTRIBUTIONS,
            ("member_id", "challenge", "period_key", "source"),
            [
                service.contribution_row(
                    receipt.member_id, p.challenge.code, p.window, source, got, facts.day, facts
                )
                for p, got in planned
            ],
            "challenge contribution",
        )
        plan.upsert_add(
            PROGRESS,
            ("member_id", "challenge", "period_key"),
            ("value",),
            [
                service.entry_row(receipt.member_id, p.challenge.code, p.window, got.value)
                for p, got in planned
            ],
        )
        # the challenges' leaderboards move with them, in the same upsert as the receipt's
        # own scores (``leaderboards.service.plan_add``)
        for p, got in planned:
            leaderboards.plan_add(
                plan,
                read,
                challenge=p.challenge.code,
                member_id=receipt.member_id,
                at=receipt.occurred_at,
                store=receipt.store,
                delta=got.value,
                spec=receipt.program.spec,
            )
        # ``challenge.progressed`` in the receipt's statement (a step reached is rewarded,
        # and ``challenge.completed`` written, by ``after_settled``)
        member_id = receipt.member_id
        return [
            (t, d, member_id) for t, d in (service.planned_event(p, member_id) for p, _ in planned)
        ]

    def reversed(self, receipt: Reversed, read: Mapping[str, Any], plan: Plan) -> None:
        """No rows in the statement: ``after_reversed`` recomputes (returns are rare)."""

    def after_settled(self, session: Session, receipt: Settled, read: Mapping[str, Any]) -> None:
        if receipt.member_id is None:
            return
        st = service.setup_of(receipt.program)
        if not st.of_receipts:
            return
        planned, slow = plan_of(st, receipt, parse(read))
        if planned or slow:
            service.settle_receipt(session, st, receipt, [p for p, _ in planned], slow)

    def after_reversed(self, session: Session, receipt: Reversed, read: Mapping[str, Any]) -> None:
        service.reverse_receipt(session, receipt)


HOOK = ChallengeHook()
