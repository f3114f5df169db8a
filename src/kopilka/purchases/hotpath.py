"""The confirmation of an ordinary receipt on PostgreSQL, in three round trips and a commit.

``service.confirm`` records a receipt with a statement per step: find the member, lock
the wallets, read the history, the caps, the budgets, the open lots, insert the receipt,
record the rules' usage, debit, credit, write the events, read the tier standing, lock
the member, move the tier, draw on the budgets. On a till's busy day those statements,
and the Python that runs each of them, cost more than the writes themselves. Here the
same receipt takes:

1. the member, found by the reference, and their wallets locked ``FOR UPDATE`` in
   account order (the same locks as ``ledger.lock_wallets``, so receipts of one member
   still queue and never deadlock with the general path);
2. under those locks, everything the figures depend on: whether the receipt is already
   recorded, the member's history and cap usage (``rules.service.context_columns``), the
   budgets spent, the redeemed wallet's open lots (``ledger.queries.open_lots_columns``)
   and the tier standing (``tiers.service.standing_columns``);
3. the figures, by the very function the general path uses (``service.figure``), then
   every write of every domain as one statement of data-modifying parts guarded by the
   receipt's insert (``core.batch``): the receipt, lines, earnings, rules, caps,
   budgets, ledger entries, lots, postings, wallets, events, webhook deliveries, tiers.

The writes that depend on rows not locked by step 1 are conditional (a budget that must
still fit, a tier that must still be what was read); if one did not take, ``Contended``:
``core.write.retrying`` rolls everything back and the receipt goes the general way, which
locks those rows first. What
this path does not handle goes the general way from the start, in the same transaction
or after a rollback: a receipt without a member, with coupon codes, a hold, a member
named by the app's rotating code (a wallet in debt is planned here too: the ledger's
planner repays the debt first, from lots read for it). The rows
written are the rows the general path writes (a test compares the two, row by row).
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import ARRAY, Select, String, any_, bindparam, select, true
from sqlalchemy.orm import Session

from kopilka.core import write
from kopilka.core.batch import Batch, RawSelect
from kopilka.core.db import now
from kopilka.core.money import ZERO
from kopilka.core.plan import Contended, Plan
from kopilka.core.principal import Principal
from kopilka.events import service as events_service
from kopilka.ledger import planner as ledger_planner
from kopilka.ledger import queries as ledger_queries
from kopilka.ledger import rows as ledger_rows
from kopilka.ledger import service as ledger
from kopilka.ledger.models import Account
from kopilka.members import service as members
from kopilka.members.models import Member
from kopilka.program.service import Program
from kopilka.purchases import hooks, service
from kopilka.purchases.models import Purchase
from kopilka.purchases.schemas import PurchaseIn
from kopilka.rules import engine
from kopilka.rules import service as rules_service
from kopilka.tiers import service as tiers


class Fallback(Exception):
    """This receipt takes the general path (``rolled_back``: the transaction was rolled
    back first; otherwise it goes on in the same transaction, the wallets locked)."""

    def __init__(self, rolled_back: bool) -> None:
        super().__init__()
        self.rolled_back = rolled_back


def applies(body: PurchaseIn) -> bool:
    """Whether the receipt may take this path (what the body alone tells)."""
    return body.member is not None and body.member.qr is None and not body.coupons and not body.hold


# ---------------------------------------------------------------------------- statements

_lock = threading.Lock()
_statements: dict[Any, Any] = {}


def _cached(key: Any, build: Any) -> Any:
    with _lock:
        hit = _statements.get(key)
    if hit is None:
        hit = build()
        with _lock:
            if len(_statements) > 64:
                _statements.clear()
            _statements[key] = hit
    return hit


def _member_and_wallets(column: Any) -> Select[Any]:
    """Step 1: the member whose ``column`` is ``:ref`` and their wallets of ``:codes``,
    locked in account order (one row per wallet; one row of NULL wallet columns when the
    member has none of them yet)."""
    m = (
        select(
            Member.id,
            Member.status,
            Member.tier,
            Member.tags,
            Member.birth_date,
            Member.created_at,
            Member.personal_discount,
        )
        .where(column == bindparam("ref"))
        .cte("m")
    )
    w = (
        select(Account.id, Account.currency, Account.balance, Account.debt)
        .where(
            Account.kind == "member",
            Account.member_id == select(m.c.id).scalar_subquery(),
            Account.currency == any_(bindparam("codes", type_=ARRAY(String))),
        )
        .order_by(Account.id)
        .with_for_update()
        .cte("w")
    )
    return select(
        m,
        w.c.id.label("w_id"),
        w.c.currency.label("w_currency"),
        w.c.balance.label("w_balance"),
        w.c.debt.label("w_debt"),
    ).select_from(m.outerjoin(w, true()))


def _context(compiled: engine.CompiledRules, metric: str | None, redeem: bool) -> Select[Any]:
    """Step 2: one row of what the figures and the tier depend on (see the module)."""
    cols: list[Any] = [
        select(Purchase.id)
        .where(Purchase.store == bindparam("p_store"), Purchase.external_id == bindparam("p_ext"))
        .scalar_subquery()
        .label("existing"),
        *rules_service.context_columns(compiled),
    ]
    if metric is not None:
        cols += tiers.standing_columns(metric)
    if redeem:
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


# ---------------------------------------------------------------------------- confirm


def confirm(
    session: Session, body: PurchaseIn, principal: Principal, program: Program, body_hash: str
) -> tuple[int, dict[str, Any]]:
    """Record a member's receipt (``applies``); ``Fallback`` when it must go the general
    way, ``Contended`` when a conditional write did not take (the caller rolls back)."""
    assert body.member is not None
    spec = program.spec
    partner = service.check_store(body, program, principal)
    lookup = members.lookup_of(body.member, spec.default_phone_region)
    if lookup is None:  # pragma: no cover - ``applies`` keeps the rotating code out
        raise Fallback(rolled_back=False)
    column, ref, subjects = lookup
    anchor = ledger.anchor_currency(spec)
    codes = ledger.member_lock_codes(spec, service.touched(program, body, session))
    compiled = service.compiled_rules(program, session)
    dialect = session.get_bind().dialect

    # 1. the member and their wallets, locked
    rows = _cached(
        ("lock", column.key), lambda: RawSelect(_member_and_wallets(column), dialect)
    ).all(session, {"ref": ref, "codes": codes})
    if not rows:
        raise members.missed(subjects)
    member = rows[0]
    service.check_member(member.id, member.status)
    service.check_redeem(body, program, True)
    wallets = {
        r.w_currency: ledger_planner.Wallet(r.w_id, member.id, r.w_currency, r.w_balance, r.w_debt)
        for r in rows
        if r.w_id is not None
    }
    if anchor is not None and anchor not in wallets:  # the member's lock (ledger.lock_member)
        _hold(session, wallets, member.id, [anchor])

    # 2. what the figures depend on, read under the locks
    setup = tiers.setup(session)
    metric = setup.tiers.metric if setup is not None else None
    redeem = body.redeem.currency if body.redeem is not None else None
    if redeem not in wallets:
        redeem = None  # nothing to spend: the figures refuse the redemption
    at = now()
    params: dict[str, Any] = {
        "p_store": body.store,
        "p_ext": body.external_id,
        "member_id": member.id,
        **rules_service.context_params(
            compiled, rules_service.local_day(body.occurred_at, spec.timezone)
        ),
    }
    if setup is not None:
        params |= tiers.standing_params(setup, body.occurred_at)
    if redeem is not None:
        params |= {"lots_account": wallets[redeem].id, "lots_at": at}
    (row,) = _cached(
        ("context", id(compiled), metric, redeem is not None, hooks.registered()),
        lambda: RawSelect(_context(compiled, metric, redeem is not None), dialect),
    ).all(session, params)
    if row.existing is not None:
        return _replay(session, body, body_hash)
    count, spend, usage, spent = rules_service.read_context(row, compiled)
    lots = (
        ledger_queries.lots_of(row.lot_ids, row.lot_rest, row.lot_available, row.lot_expires)
        if redeem is not None
        else []
    )
    ctx = rules_service.context_of(member, spec, count, spend, usage)
    spendable = None  # no redemption asked
    if body.redeem is not None:
        spendable = ledger_planner.available(wallets[redeem], lots, at) if redeem else ZERO
    fig = service.figure(
        session,
        body,
        program,
        member.id,
        partner,
        strict=True,
        member_ctx=ctx,
        caller=principal.actor,
        campaign_spent=spent,
        available=spendable,
    )
    service.check_quote(body, fig)

    # wallets made when value first moves into them (their ids come after those locked)
    _hold(
        session,
        wallets,
        member.id,
        [c for c, a in fig.earned.items() if c not in wallets and sum(a, ZERO) > 0],
    )

    # 3. every write, in one statement
    values, lines, earnings, rule_rows = service.receipt_rows(
        body, body_hash, program, fig, principal
    )
    pid = values["id"]
    batch = Batch(service.RECEIPT_GUARD)
    service.receipt_parts(batch, values, lines, earnings, rule_rows)
    usage_rows = (
        rules_service.usage_rows(member.id, compiled, fig.given, body.occurred_at, spec.timezone)
        if fig.applied
        else []
    )
    draws = rules_service.add_draws_to_batch(batch, compiled, usage_rows, fig.campaign_spend)
    writes = Plan()
    ledger_rows.add_entries(
        writes,
        _ledger_plans(session, body, fig, pid, wallets, lots, at, principal.actor, spec.timezone),
    )
    write.add_parts(batch, writes, "ledger")
    purchase = Purchase(**values)
    events = service.purchase_events(purchase, "purchase.confirmed")
    if setup is not None:
        before, has_state = tiers.read_standing(row)
        earned = {c: sum(a, ZERO) for c, a in fig.earned.items()}
        value = before.value + tiers.contribution(setup, values["total_due"], earned)
        changed = tiers.add_tier_move_to_batch(
            batch, setup, member.id, before, has_state, value, body.occurred_at
        )
        if changed is not None:
            events.append(changed)
    events_service.add_events_to_batch(batch, session, events)
    hooked = Plan()  # what the registered capabilities add (purchases.hooks)
    hooks.on_settled(service.settled(purchase, fig.earned), row._mapping, hooked)
    checks = write.add_parts(batch, hooked, "hooks")
    out = batch.run(session)
    if out.receipt_id is None:  # a twin recorded it a moment ago (it held no lock of ours)
        return _replay(session, body, body_hash)
    write.check(out, checks)  # Contended: the caller's one retry
    if draws and out.budgets_drawn < draws:
        raise Contended("campaign budget")  # the caller's one retry (core.write.retrying)
    if not tiers.tier_writes_held(out):
        raise Contended("tier")
    return 201, service.purchase_json(purchase)


def _hold(
    session: Session,
    wallets: dict[str, ledger_planner.Wallet],
    member_id: uuid.UUID,
    codes: list[str],
) -> None:
    """Make (when missing) and lock the member's wallets of ``codes``, into ``wallets``."""
    if codes:
        for (_, c), acc in ledger.lock_wallets(session, [(member_id, c) for c in codes]).items():
            wallets[c] = ledger_planner.Wallet(acc.id, member_id, c, acc.balance, acc.debt)


def _replay(session: Session, body: PurchaseIn, body_hash: str) -> tuple[int, dict[str, Any]]:
    session.rollback()
    found = service.existing(session, body.store, body.external_id)
    if found is None:  # pragma: no cover - the conflicting row cannot vanish
        raise RuntimeError(f"receipt {body.external_id} at {body.store} conflicted, then vanished")
    session.rollback()
    return service.replay(found, body_hash)


def _ledger_plans(
    session: Session,
    body: PurchaseIn,
    fig: service.Figures,
    pid: uuid.UUID,
    wallets: dict[str, ledger_planner.Wallet],
    lots: Sequence[ledger_planner.OpenLot],
    at: dt.datetime,
    actor: str,
    tz: str,
) -> list[ledger_planner.EntryPlan]:
    """The receipt's entries, as ``_confirm`` makes them: the redemption, then what each
    currency earned."""

    def row(wallet: ledger_planner.Wallet, key: str, kind: str, amount: Decimal) -> dict[str, Any]:
        return ledger.entry_row(
            key=key,
            kind=kind,
            currency=wallet.currency,
            amount=amount,
            member_id=wallet.member_id,
            actor=actor,
            description=f"receipt {body.external_id} at {body.store}",
            occurred_at=body.occurred_at,
            purchase_id=pid,
        )

    # each wallet's lots as the entries before leave them; read here only for a wallet in
    # debt that the receipt earns into (an earning repays a debt first), which is rare
    state = {c: (w, list(lots) if c == fig.redeem_currency else None) for c, w in wallets.items()}

    def lots_of(code: str) -> list[ledger_planner.OpenLot]:
        wallet, known = state[code]
        if known is None:
            known = ledger.open_lots(session, wallet.id, at) if wallet.debt > 0 else []
            state[code] = (wallet, known)
        return known

    def planned(code: str, plan: ledger_planner.EntryPlan) -> None:
        state[code] = ledger_planner.after(state[code][0], lots_of(code), plan)
        plans.append(plan)

    plans: list[ledger_planner.EntryPlan] = []
    if fig.redeemed > 0 and fig.redeem_currency:
        code = fig.redeem_currency
        cur = ledger.currency_row(session, code)
        ledger.check_amount(cur, fig.redeemed)
        wallet = state[code][0]
        planned(
            code,
            ledger_planner.plan_debit(
                wallet,
                lots_of(code),
                ledger.system_account(session, code, "redemption"),
                row(wallet, f"purchase:{pid}:redeem", "redeem", fig.redeemed),
                precision=cur.precision,
                at=at,
            ),
        )
    for code, amounts in fig.earned.items():
        total = sum(amounts, ZERO)
        if total <= 0:
            continue
        cur = ledger.currency_row(session, code)
        ledger.check_amount(cur, total)
        available_at, expires_at = ledger.lot_times(cur, body.occurred_at, tz)
        wallet = state[code][0]
        planned(
            code,
            ledger_planner.plan_credit(
                wallet,
                ledger.system_account(session, code, "issuance"),
                row(wallet, f"purchase:{pid}:earn:{code}", "earn", total),
                available_at=available_at,
                expires_at=expires_at,
                precision=cur.precision,
                lots=lots_of(code),
                at=at,
            ),
        )
    return plans
