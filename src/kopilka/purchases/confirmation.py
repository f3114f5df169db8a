"""The confirmation of a receipt: read, figure, plan, write. One path, both databases.

Every receipt takes it: with or without a member (named by card, phone, id, external id
or the app's rotating code), with coupon codes or without, held or settled at once.

1. **Lock.** The member, found by the reference, and their wallets of the currencies the
   receipt may move, locked ``FOR UPDATE`` in account order, in one statement
   (``_member_and_wallets``; the same locks as ``ledger.lock_member``, so receipts,
   returns and adjustments of one member take turns and never deadlock). A receipt
   without a member locks nothing.
2. **Read.** Under those locks, one statement of everything the figures and the plan
   depend on (``_context``): whether the receipt is already recorded, the member's
   history and cap usage (``rules.service.context_columns``), the budgets spent, the
   redeemed wallet's open lots (``ledger.queries.open_lots_columns``; SQLite reads them
   in a second statement), the tier standing (``tiers.service.standing_columns``) and
   what the receipt hooks read (``purchases.hooks``).
3. **Figure.** ``figures.figure``, the function ``calculate`` answers with: discounts,
   coupons, the redemption, the earning.
4. **Plan.** Every domain adds the rows it writes to one ``core.plan.Plan``: the receipt
   (``_plan_receipt``), the rules' caps and budgets (``rules.service.plan_draws``), the
   ledger's entries (``ledger.planner`` via ``_ledger_plans``), the tier move
   (``tiers.service.plan_move``), the hooks' rows, and the events with their webhook
   deliveries (``events.service.plan_events``).
5. **Write.** ``core.write.write``: one statement on PostgreSQL, part by part on SQLite.
   Coupon codes are taken after it, one conditional update each (``coupons.consume``).

What the plan was made on but does not hold a lock of (a campaign's budget, the member's
tier, a twin of the receipt sent to another till) is written conditionally; when it
changed meanwhile the writer raises ``Contended``, and ``core.write.retrying`` rolls back
and runs the attempt once more, that time locking the budgets and the member's tier
first.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, bindparam, select, true
from sqlalchemy.orm import Session

from kopilka.core.batch import RawSelect
from kopilka.core.db import now
from kopilka.core.errors import Problem, field_error
from kopilka.core.ids import uuid7
from kopilka.core.money import (
    ZERO,
    fmt,
)
from kopilka.core.plan import Plan, table
from kopilka.core.principal import Principal
from kopilka.core.write import retrying, write
from kopilka.coupons import queries as coupon_queries
from kopilka.coupons import redeem as coupons
from kopilka.events import service as events_service
from kopilka.events.service import emit, emit_many
from kopilka.ledger import planner as ledger_planner
from kopilka.ledger import queries as ledger_queries
from kopilka.ledger import rows as ledger_rows
from kopilka.ledger import service as ledger
from kopilka.members import queries as member_queries
from kopilka.members import service as members
from kopilka.members.schemas import MemberRef
from kopilka.program.service import Program, current_program
from kopilka.purchases import figures, hooks
from kopilka.purchases.models import (
    LineEarning,
    Purchase,
    PurchaseLine,
)
from kopilka.purchases.schemas import PurchaseIn
from kopilka.rules import engine
from kopilka.rules import service as rules_service
from kopilka.security.crypto import blind_index
from kopilka.tiers import service as tiers


def confirm(session: Session, body: PurchaseIn, principal: Principal) -> tuple[int, dict[str, Any]]:
    """Record a receipt (or hold it). 201 the first time; 200 with the same purchase when
    the same receipt comes again; 409 ``duplicate_external_id`` when its content differs.
    ``Contended`` is retried once (see the module)."""
    return retrying(session, lambda retry: _attempt(session, body, principal, retry))


def _attempt(
    session: Session, body: PurchaseIn, principal: Principal, retry: bool
) -> tuple[int, dict[str, Any]]:
    program = current_program(session)
    spec = program.spec
    body_hash = figures.request_hash(body)
    partner = figures.check_store(body, program, principal)
    compiled = figures.compiled_rules(program, session)

    # 1. the member and their wallets, locked
    member, wallets = _lock(session, body, program)
    figures.check_redeem(body, program, member is not None)
    setup = tiers.setup(session)
    if retry and member is not None and setup is not None:
        tiers.lock_standing(session, member.id)  # a tier moved meanwhile: decide under it

    # 2. what the figures depend on, read under the locks
    redeem = body.redeem.currency if body.redeem is not None else None
    if redeem not in wallets:
        redeem = None  # nothing to spend: the figures refuse the redemption
    at = ledger.clock()  # lots are judged by the ledger's clock
    row, read_lots = _context(session, body, program, compiled, setup, member, wallets, redeem, at)
    if row.existing is not None:
        return _replay(session, body, body_hash)
    count, spend, usage, spent = rules_service.read_context(row, compiled)
    if retry and compiled.budgeted:
        spent = rules_service.campaign_spent(session, compiled, lock=True)

    # 3. the figures
    ctx = (
        rules_service.context_of(member, spec, count, spend, usage) if member is not None else None
    )
    spendable = None  # no redemption asked
    if body.redeem is not None and member is not None:
        spendable = ledger_planner.available(wallets[redeem], read_lots, at) if redeem else ZERO
    fig = figures.figure(
        session,
        body,
        program,
        member.id if member is not None else None,
        partner,
        strict=True,
        member_ctx=ctx,
        caller=principal.actor,
        campaign_spent=spent,
        available=spendable,
    )
    figures.check_quote(body, fig)
    if member is not None:
        # wallets made when value first moves into them (their ids come after those locked)
        _hold_wallets(
            session,
            wallets,
            member.id,
            [c for c, a in fig.earned.items() if c not in wallets and sum(a, ZERO) > 0],
        )

    # 4. the plan: every row of every domain
    plan = Plan()
    values, lines, earnings, rule_rows = receipt_rows(body, body_hash, program, fig, principal)
    purchase = Purchase(**values)
    _plan_receipt(plan, values, lines, earnings)
    if fig.applied:
        rules_service.plan_draws(
            plan,
            compiled,
            rule_rows,
            rules_service.usage_rows(
                fig.member_id, compiled, fig.given, body.occurred_at, spec.timezone
            ),
            fig.campaign_spend,
        )
    lots = _Lots(session, wallets, {redeem: list(read_lots)} if redeem else {}, at)
    if fig.redeemed > 0 and fig.redeem_currency:
        _plan_redemption(plan, session, purchase, fig, lots, principal.actor, body.hold)
    if body.hold:
        events = purchase_events(purchase, "purchase.held")
    else:
        standing = tiers.read_standing(row) if setup is not None and member is not None else None
        events = _plan_settled(
            plan,
            session,
            purchase,
            fig.earned,
            lots,
            principal.actor,
            setup,
            standing,
            row._mapping,
        )

    # 5. the write
    outcome = fig.coupons if fig.coupons is not None and fig.coupons.applied else None

    def take_codes() -> None:
        # A hold takes its codes too: no other receipt can take the last use meanwhile.
        assert outcome is not None
        coupons.consume(session, outcome, purchase.id, fig.member_id, values["created_at"])

    _write_with_events(
        session,
        plan,
        purchase,
        events,
        codes_later=outcome is not None and not body.hold,
        take_codes=take_codes if outcome is not None else None,
    )
    if not body.hold:
        hooks.after_settled(session, settled(purchase, fig.earned), row._mapping)
    return 201, purchase_json(purchase)


# ---------------------------------------------------------------------------- 1. lock


def _lock(
    session: Session, body: PurchaseIn, program: Program
) -> tuple[Any, dict[str, ledger_planner.Wallet]]:
    """The receipt's member (a row of ``_member_and_wallets``, or None) and their
    wallets, locked; the anchor wallet made when missing (``ledger.lock_member``)."""
    if body.member is None:
        return None, {}
    spec = program.spec
    lookup = members.lookup_of(body.member, spec.default_phone_region)
    if lookup is None:  # the app's rotating code: decoded first
        found = members.resolve_member(session, body.member, spec.default_phone_region, "member")
        lookup = members.lookup_of(MemberRef(id=found.id), spec.default_phone_region)
        assert lookup is not None
    column, ref, subjects = lookup
    codes = ledger.member_lock_codes(spec, figures.touched(program, body, session))
    rows = _read(
        session,
        ("lock", column.key),
        lambda pg: _member_and_wallets(column, pg),
        {"ref": ref, "codes": codes},
    )
    if not rows:
        raise members.missed(subjects)
    member = rows[0]
    figures.check_member(member.id, member.status)
    wallets = {
        r.w_currency: ledger_planner.Wallet(r.w_id, member.id, r.w_currency, r.w_balance, r.w_debt)
        for r in rows
        if r.w_id is not None
    }
    anchor = ledger.anchor_currency(spec)
    if anchor is not None and anchor not in wallets:
        _hold_wallets(session, wallets, member.id, [anchor])
    return member, wallets


def _member_and_wallets(column: Any, pg: bool) -> Select[Any]:
    """The member whose ``column`` is ``:ref`` and their wallets of ``:codes``, locked in
    account order (one row per wallet; one row of NULL wallet columns when the member has
    none of them yet)."""
    m = member_queries.for_receipt(column).cte("m")
    w = ledger_queries.wallets_locked(select(m.c.id).scalar_subquery(), arrays=pg).cte("w")
    return select(
        m,
        w.c.id.label("w_id"),
        w.c.currency.label("w_currency"),
        w.c.balance.label("w_balance"),
        w.c.debt.label("w_debt"),
    ).select_from(m.outerjoin(w, true()))


def _hold_wallets(
    session: Session,
    wallets: dict[str, ledger_planner.Wallet],
    member_id: uuid.UUID,
    codes: list[str],
) -> None:
    """Make (when missing) and lock the member's wallets of ``codes``, into ``wallets``."""
    if codes:
        for (_, c), acc in ledger.lock_wallets(session, [(member_id, c) for c in codes]).items():
            wallets[c] = ledger_planner.Wallet(acc.id, member_id, c, acc.balance, acc.debt)


# ---------------------------------------------------------------------------- 2. read

_lock_statements = threading.Lock()
_statements: dict[Any, Any] = {}


def _read(
    session: Session, key: Any, build: Callable[[bool], Select[Any]], params: dict[str, Any]
) -> list[Any]:
    """Run the statement ``build(pg)`` makes (built once per ``key``): on PostgreSQL on
    psycopg's raw cursor, prepared (SQLAlchemy's execution layer cost more than the reads
    themselves); on SQLite through SQLAlchemy."""
    dialect = session.get_bind().dialect
    pg = dialect.name == "postgresql"
    full = (key, pg)
    with _lock_statements:
        hit: Any = _statements.get(full)
    if hit is None:
        hit = RawSelect(build(pg), dialect) if pg else build(pg)
        with _lock_statements:
            if len(_statements) > 64:
                _statements.clear()
            _statements[full] = hit
    if pg:
        rows: list[Any] = hit.all(session, params)
        return rows
    return list(session.execute(hit, params).all())


def _context_statement(
    compiled: engine.CompiledRules, metric: str | None, lots: bool
) -> Select[Any]:
    """One row of what the figures and the plan depend on (see the module)."""
    cols: list[Any] = [
        select(Purchase.id)
        .where(Purchase.store == bindparam("p_store"), Purchase.external_id == bindparam("p_ext"))
        .scalar_subquery()
        .label("existing"),
        *rules_service.context_columns(compiled),
    ]
    if metric is not None:
        cols += tiers.standing_columns(metric)
    if lots:
        ids, rest, available, expires = ledger_queries.open_lots_columns(
            bindparam("lots_account"), ledger_queries.at_param("lots_at")
        )
        cols += [
            ids.label("lot_ids"),
            rest.label("lot_rest"),
            available.label("lot_available"),
            expires.label("lot_expires"),
        ]
    cols += hooks.columns()
    return select(*cols)


def _context(
    session: Session,
    body: PurchaseIn,
    program: Program,
    compiled: engine.CompiledRules,
    setup: tiers.Setup | None,
    member: Any,
    wallets: dict[str, ledger_planner.Wallet],
    redeem: str | None,
    at: dt.datetime,
) -> tuple[Any, list[ledger_planner.OpenLot]]:
    """The context row, and the redeemed wallet's open lots."""
    metric = setup.tiers.metric if setup is not None and member is not None else None
    params: dict[str, Any] = {
        "p_store": body.store,
        "p_ext": body.external_id,
        "member_id": member.id if member is not None else None,
        **rules_service.context_params(
            compiled, rules_service.local_day(body.occurred_at, program.spec.timezone)
        ),
    }
    if setup is not None and metric is not None:
        params |= tiers.standing_params(setup, body.occurred_at)
    pg = session.get_bind().dialect.name == "postgresql"
    in_row = redeem is not None and pg  # SQLite has no arrays: its lots come apart
    if in_row:
        assert redeem is not None
        params |= {"lots_account": wallets[redeem].id, "lots_at": at}
    (row,) = _read(
        session,
        ("context", id(compiled), metric, in_row, hooks.registered()),
        lambda _: _context_statement(compiled, metric, in_row),
        params,
    )
    if redeem is None:
        return row, []
    if in_row:
        return row, ledger_queries.lots_of(
            row.lot_ids, row.lot_rest, row.lot_available, row.lot_expires
        )
    return row, ledger.open_lots(session, wallets[redeem].id, at)


def _replay(session: Session, body: PurchaseIn, body_hash: str) -> tuple[int, dict[str, Any]]:
    session.rollback()
    found = existing(session, body.store, body.external_id)
    if found is None:  # pragma: no cover - the conflicting row cannot vanish
        raise RuntimeError(f"receipt {body.external_id} at {body.store} conflicted, then vanished")
    session.rollback()
    return replay(found, body_hash)


# ---------------------------------------------------------------------------- 4. plan


def _plan_receipt(
    plan: Plan,
    values: dict[str, Any],
    lines: list[dict[str, Any]],
    earnings: list[dict[str, Any]],
) -> None:
    """``receipt_rows`` as parts of ``plan``: the receipt first, inserted only if
    the store's receipt is not there yet (a twin recorded a moment ago by another till
    is ``Contended``, and the retry replays it), then its lines and earnings (the rules
    that gave them: ``rules.service.plan_draws``)."""
    pid = values["id"]
    plan.insert_new(table(Purchase), ("store", "external_id"), [values], "receipt")
    plan.insert(table(PurchaseLine), [{"purchase_id": pid, **ln} for ln in lines])
    plan.insert(table(LineEarning), [{"purchase_id": pid, **e} for e in earnings])


class _Lots:
    """The wallets a receipt moves and their open lots as the entries planned before leave
    them (read only for a wallet that needs them: the redeemed one, read with the context,
    or one in debt that the receipt earns into, which is rare); the entries planned."""

    def __init__(
        self,
        session: Session,
        wallets: dict[str, ledger_planner.Wallet],
        known: dict[str, list[ledger_planner.OpenLot]],
        at: dt.datetime,
    ) -> None:
        self.session = session
        self.at = at
        self.state: dict[str, tuple[ledger_planner.Wallet, list[ledger_planner.OpenLot] | None]]
        self.state = {c: (w, known.get(c)) for c, w in wallets.items()}
        self.entries: list[ledger_planner.EntryPlan] = []

    def wallet(self, code: str) -> ledger_planner.Wallet:
        return self.state[code][0]

    def lots(self, code: str) -> list[ledger_planner.OpenLot]:
        wallet, known = self.state[code]
        if known is None:
            known = ledger.open_lots(self.session, wallet.id, self.at) if wallet.debt > 0 else []
            self.state[code] = (wallet, known)
        return known

    def planned(self, code: str, entry: ledger_planner.EntryPlan) -> None:
        self.state[code] = ledger_planner.after(self.wallet(code), self.lots(code), entry)
        self.entries.append(entry)


def _entry_row(
    p: Purchase, wallet: ledger_planner.Wallet, key: str, kind: str, amount: Decimal, actor: str
) -> dict[str, Any]:
    return ledger.entry_row(
        key=key,
        kind=kind,
        currency=wallet.currency,
        amount=amount,
        member_id=wallet.member_id,
        actor=actor,
        description=f"receipt {p.external_id} at {p.store}",
        occurred_at=p.occurred_at,
        purchase_id=p.id,
    )


def _plan_redemption(
    plan: Plan,
    session: Session,
    p: Purchase,
    fig: figures.Figures,
    lots: _Lots,
    actor: str,
    hold: bool,
) -> None:
    """The points redeemed on the receipt, spent from the wallet's lots (oldest expiry
    first: ``ledger.planner``) into the redemption account, or a hold's account until it
    is committed."""
    code = fig.redeem_currency
    assert code is not None
    cur = ledger.currency_row(session, code)
    ledger.check_amount(cur, fig.redeemed)
    wallet = lots.wallet(code)
    entry = ledger_planner.plan_debit(
        wallet,
        lots.lots(code),
        ledger.system_account(session, code, "held" if hold else "redemption"),
        _entry_row(p, wallet, f"purchase:{p.id}:redeem", "redeem", fig.redeemed, actor),
        precision=cur.precision,
        at=lots.at,
    )
    lots.planned(code, entry)
    ledger_rows.add_entries(plan, [entry])


def _plan_settled(
    plan: Plan,
    session: Session,
    p: Purchase,
    earned: dict[str, list[Decimal]],
    lots: _Lots,
    actor: str,
    setup: tiers.Setup | None,
    standing: tuple[tiers.Standing, bool] | None,
    read: Mapping[str, Any],
) -> list[tuple[str, dict[str, Any], uuid.UUID | None]]:
    """What a settled receipt (confirmed at once, or a hold committed) adds to ``plan``:
    what each currency earned, credited (a debt repaid first: ``ledger.planner``); the tier
    move on ``standing`` (the member's standing before the receipt, and whether they have
    a tier state row); the rows of the registered hooks (``purchases.hooks``, on
    ``read``). Its events: ``purchase.confirmed``, the points', a tier's change."""
    tz = current_program(session).spec.timezone
    entries = []
    for code, amounts in earned.items():
        total = sum(amounts, ZERO)
        if total <= 0 or p.member_id is None:
            continue
        cur = ledger.currency_row(session, code)
        ledger.check_amount(cur, total)
        available_at, expires_at = ledger.lot_times(cur, p.occurred_at, tz)
        wallet = lots.wallet(code)
        entry = ledger_planner.plan_credit(
            wallet,
            ledger.system_account(session, code, "issuance"),
            _entry_row(p, wallet, f"purchase:{p.id}:earn:{code}", "earn", total, actor),
            available_at=available_at,
            expires_at=expires_at,
            precision=cur.precision,
            lots=lots.lots(code),
            at=lots.at,
        )
        lots.planned(code, entry)
        entries.append(entry)
    ledger_rows.add_entries(plan, entries)
    events = purchase_events(p, "purchase.confirmed")
    if setup is not None and standing is not None and p.member_id is not None:
        before, has_state = standing
        value = before.value + tiers.contribution(
            setup, p.total_due, {c: sum(a, ZERO) for c, a in earned.items()}
        )
        changed = tiers.plan_move(plan, setup, p.member_id, before, has_state, value, p.occurred_at)
        if changed is not None:
            events.append(changed)
    events.extend(hooks.on_settled(settled(p, earned), read, plan))
    return events


def _write_with_events(
    session: Session,
    plan: Plan,
    p: Purchase,
    events: list[tuple[str, dict[str, Any], uuid.UUID | None]],
    codes_later: bool,
    take_codes: Callable[[], None] | None = None,
) -> None:
    """Write ``plan`` with ``events`` (the receipt's first), then ``take_codes`` (coupon
    uses name the receipt: they come after its row). ``codes_later``: a receipt settled
    with coupon codes, whose events go in the order receipt, codes, points."""
    events_service.plan_events(plan, session, events[:1] if codes_later else events)
    write(session, plan)
    if take_codes is not None:
        take_codes()
    if codes_later:
        emit_coupons(session, p)
        events_service.emit_many(session, events[1:])


# ---------------------------------------------------------------------------- a hold committed


def settle_hold(
    session: Session,
    p: Purchase,
    earned: dict[str, list[Decimal]],
    accounts: Mapping[str, Any],
    actor: str,
) -> None:
    """A held receipt ``p`` being committed (its reserved points moved to redemption, the
    member's wallets ``accounts`` locked, its status still ``held``): its earning, tier
    move, hooks and events, planned as at a confirmation and written at once."""
    wallets = {
        c: ledger_planner.Wallet(a.id, a.member_id, c, a.balance, a.debt)
        for c, a in accounts.items()
    }
    setup = tiers.setup(session)
    standing = None
    if p.member_id is not None:
        _hold_wallets(
            session,
            wallets,
            p.member_id,
            [c for c, a in earned.items() if c not in wallets and sum(a, ZERO) > 0],
        )
        if setup is not None:
            # the member's row locked: a tier move decided on it cannot be overtaken
            standing = tiers.standing_before(session, setup, p.member_id, p.occurred_at)
    plan = Plan()
    read = hooks.read(session, p.member_id)
    events = _plan_settled(
        plan,
        session,
        p,
        earned,
        _Lots(session, wallets, {}, ledger.clock()),
        actor,
        setup,
        standing,
        read,
    )
    codes = any(c.get("status") == "applied" for c in p.figures["coupons"])
    _write_with_events(session, plan, p, events, codes_later=codes)
    hooks.after_settled(session, settled(p, earned), read)


# ---------------------------------------------------------------------------- rows, events


def existing(session: Session, store: str, external_id: str) -> Purchase | None:
    return session.execute(
        select(Purchase).where(Purchase.store == store, Purchase.external_id == external_id)
    ).scalar_one_or_none()


def replay(found: Purchase, body_hash: str) -> tuple[int, dict[str, Any]]:
    if found.request_hash != body_hash:
        raise Problem(
            409,
            "duplicate_external_id",
            f"receipt {found.external_id!r} of store {found.store!r} was recorded with "
            "other content",
            errors=[field_error("external_id", "already used for another receipt", "duplicate")],
            extra={"purchase_id": str(found.id)},
        )
    return 200, purchase_json(found)


def purchase_json(p: Purchase) -> dict[str, Any]:
    return {
        "id": str(p.id),
        "status": p.status,
        **p.figures,
        "hold_expires_at": p.hold_expires_at.isoformat() if p.hold_expires_at else None,
        "receipt_number": p.receipt_number,
        "created_at": p.created_at.isoformat(),
    }


def receipt_rows(
    body: PurchaseIn, body_hash: str, program: Program, fig: figures.Figures, principal: Principal
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows a confirmation writes beside the ledger: the receipt, its lines, what
    each line earned and the rules that gave something. Pure."""
    at = now()
    values: dict[str, Any] = {
        "id": uuid7(),
        "store": body.store,
        "external_id": body.external_id,
        "channel": body.channel,
        "member_id": fig.member_id,
        "occurred_at": body.occurred_at,
        "status": "held" if body.hold else "confirmed",
        "request_hash": body_hash,
        "program_version": program.version,
        "subtotal": Decimal(fig.json["subtotal"]),
        "discount": Decimal(fig.json["discount"]),
        "total_due": Decimal(fig.json["total_due"]),
        "redeem_currency": fig.redeem_currency if fig.redeemed > 0 else None,
        "redeemed": fig.redeemed,
        "redeemed_value": fig.redeemed_value,
        "hold_expires_at": at + dt.timedelta(minutes=program.spec.hold_minutes)
        if body.hold
        else None,
        "receipt_number": None,
        "figures": fig.json,
        "payment_fingerprint": (
            blind_index("card_fingerprint", body.payment.card_fingerprint)
            if body.payment is not None and body.payment.card_fingerprint is not None
            else None
        ),
        "created_at": at,
        "settled_at": None if body.hold else at,
        "cancelled_at": None,
        "created_by": principal.actor,
    }
    # The first write. A receipt already recorded (a replay, or a twin that committed a
    # moment ago) is found by the unique index; nothing else has been written yet.
    lines = [
        {
            "line_no": ln.line_no,
            "sku": ln.sku,
            "name": ln.name,
            "category": ln.category,
            "quantity": ln.quantity,
            "unit_price": ln.unit_price,
            "amount": ln.amount,
            "discount": fig.discounts[i],
            "redeemed": fig.line_redeemed[i],
            "redeemed_value": fig.line_redeemed_value[i],
            "total_due": fig.line_due[i],
        }
        for i, ln in enumerate(fig.lines)
    ]
    earnings = [
        {"line_no": i + 1, "currency": c, "amount": a}
        for c, amounts in fig.earned.items()
        for i, a in enumerate(amounts)
        if a > 0
    ]
    rule_rows = (
        rules_service.rule_rows(
            values["id"],
            fig.member_id,
            fig.rules,
            fig.applied,
            body.occurred_at,
            program.spec.timezone,
        )
        if fig.rules is not None and fig.applied
        else []
    )
    return values, lines, earnings, rule_rows


def settled(p: Purchase, earned: dict[str, list[Decimal]]) -> hooks.Settled:
    """What the receipt hooks are told of a settled receipt."""
    return hooks.Settled(
        p.id,
        p.member_id,
        p.store,
        p.occurred_at,
        p.total_due,
        {c: sum(a, ZERO) for c, a in earned.items()},
        p.channel,
        p.payment_fingerprint,
        tuple(
            hooks.SettledLine(
                ln["line_no"],
                ln["sku"],
                ln["category"],
                Decimal(ln["quantity"]),
                Decimal(ln["amount"]),
                Decimal(ln["total_due"]),
            )
            for ln in p.figures["lines"]
        ),
    )


def emit_purchase(
    session: Session, p: Purchase, type_: str, extra: dict[str, Any] | None = None
) -> None:
    """The event of a change to a recorded purchase (``purchase.cancelled``,
    ``purchase.returned``), in the change's transaction."""
    emit_many(session, purchase_events(p, type_, extra))


def purchase_events(
    p: Purchase, type_: str, extra: dict[str, Any] | None = None
) -> list[tuple[str, dict[str, Any], uuid.UUID | None]]:
    """The purchase's event ``(type, data, member_id)`` and, when it is confirmed, the
    ``points.earned`` and ``points.redeemed`` of its member, in this order. Pure."""
    f = p.figures
    events: list[tuple[str, dict[str, Any], uuid.UUID | None]] = [
        (
            type_,
            {
                "purchase_id": str(p.id),
                "store": p.store,
                "external_id": p.external_id,
                "channel": p.channel,
                "member_id": str(p.member_id) if p.member_id else None,
                "occurred_at": p.occurred_at.isoformat(),
                "subtotal": f["subtotal"],
                "discount": f["discount"],
                "total_due": f["total_due"],
                "redeemed": f["redeemed"],
                "earned": f["earned"],
                **(extra or {}),
            },
            p.member_id,
        )
    ]
    if p.member_id is not None and type_ == "purchase.confirmed":
        mid = str(p.member_id)
        events += [
            ("points.earned", {"member_id": mid, "purchase_id": str(p.id), **e}, p.member_id)
            for e in f["earned"]
        ]
        events += [
            ("points.redeemed", {"member_id": mid, "purchase_id": str(p.id), **r}, p.member_id)
            for r in f["redeemed"]
        ]
    return events


def emit_coupons(session: Session, p: Purchase) -> None:
    """``coupon.redeemed`` for every code the purchase holds (at confirm or commit)."""
    for use, code, pool_name in coupon_queries.used_on(session, p.id):
        emit(
            session,
            "coupon.redeemed",
            {
                "member_id": str(p.member_id) if p.member_id else None,
                "coupon_id": use.coupon_id,
                "code": code,
                "pool": pool_name,
                "pool_id": str(use.pool_id),
                "purchase_id": str(p.id),
                "discount": fmt(use.discount, figures.MONEY_PRECISION),
            },
            member_id=p.member_id,
        )
