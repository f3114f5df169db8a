"""Ledger operations: credit, debit, reverse, transfer, expire, balances, history.

Every operation writes one journal entry with a unique ``key`` (the client-chosen id that
makes retries harmless) and postings that sum to zero. Operations on a member's wallet take
the wallet's row lock first (``SELECT … FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on
SQLite), so concurrent debits are serialised per wallet and never overspend; the lots'
``remaining >= 0`` check constraint backs this in the database. Several wallets are always
locked in ascending account id order, so two transfers in opposite directions cannot
deadlock. Nothing here commits: the caller's transaction decides.

Time: a lot is *pending* until ``available_at`` and *expired* from ``expires_at``; balances
apply both by the clock, so they are right at any moment without waiting for a job. The
expiry job (``expire_due``) only writes the expiry entries, for reports and notices.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from kopilka.core import pagination
from kopilka.core.db import db_key, now
from kopilka.core.errors import Problem, field_error, validation_problem
from kopilka.core.ids import uuid7
from kopilka.core.money import ZERO, fits_precision, fmt
from kopilka.core.plan import Plan
from kopilka.core.write import write
from kopilka.events.service import emit
from kopilka.ledger import planner, queries, rows
from kopilka.ledger.models import Account, Entry, Lot, Posting
from kopilka.program.queries import active_currencies, currency_precisions
from kopilka.program.service import current_program
from kopilka.spec.program import CurrencySpec, ProgramSpec

# ---------------------------------------------------------------------------- accounts


def currency_row(session: Session, code: str, field_name: str = "currency") -> CurrencySpec:
    """An active currency of the programme in force (from the cached programme)."""
    cur = current_program(session).spec.currency(code)
    if cur is None:
        raise Problem(
            422,
            "currency_not_found",
            f"no active currency {code!r} in the programme",
            errors=[field_error(field_name, f"unknown currency {code!r}", "unknown")],
        )
    return cur


def check_amount(cur: CurrencySpec, amount: Decimal, field_name: str = "amount") -> None:
    if not fits_precision(amount, cur.precision):
        raise validation_problem(
            [
                field_error(
                    field_name,
                    f"{cur.code} has {cur.precision} decimal places; {amount} has more",
                    "precision",
                )
            ]
        )


def _insert(session: Session) -> type[postgresql.Insert] | type[sqlite.Insert]:
    return postgresql.Insert if session.get_bind().dialect.name == "postgresql" else sqlite.Insert


# System account ids never change once made, so each process remembers them.
_system_ids: dict[tuple[str, str, str], int] = {}
_system_lock = threading.Lock()


def clear_caches() -> None:
    """Forget remembered account ids (tests that empty the database call this)."""
    with _system_lock:
        _system_ids.clear()


def system_account(session: Session, currency: str, kind: str) -> int:
    """The id of a currency's system account (issuance, redemption, breakage, …)."""
    cache_key = (db_key(session), currency, kind)
    with _system_lock:
        hit = _system_ids.get(cache_key)
    if hit is not None:
        return hit
    cond = [Account.currency == currency, Account.kind == kind, Account.member_id.is_(None)]
    found = session.execute(select(Account.id).where(*cond)).scalar_one_or_none()
    # An account made by this very transaction is not remembered: if the transaction rolls
    # back, the id would name a row that never existed (regression: racing tills whose
    # transactions were rolled back left other tills posting to a phantom account).
    tx = session.get_transaction()
    made: tuple[object, set[tuple[str, str, str]]] | None = session.info.get("kopilka.system_made")
    if made is None or made[0] is not tx:
        made = (tx, set())
        session.info["kopilka.system_made"] = made
    if found is None:
        made[1].add(cache_key)
        session.execute(
            _insert(session)(Account)
            .values(
                currency=currency,
                kind=kind,
                member_id=None,
                balance=ZERO,
                debt=ZERO,
                created_at=now(),
            )
            .on_conflict_do_nothing()
        )
        found = session.execute(select(Account.id).where(*cond)).scalar_one()
    if cache_key not in made[1]:
        with _system_lock:
            _system_ids[cache_key] = int(found)
    return int(found)


def _tx_wallets(session: Session) -> dict[tuple[uuid.UUID, str], Account]:
    """The wallets locked in the session's current transaction."""
    session.connection()  # begin the transaction now, so it can be told from the last one
    tx = session.get_transaction()
    held = session.info.get("kopilka.wallets")
    if held is None or held[0] is not tx:
        held = (tx, {})
        session.info["kopilka.wallets"] = held
    wallets: dict[tuple[uuid.UUID, str], Account] = held[1]
    return wallets


_LOCK_WALLETS = (
    select(Account)
    .where(
        Account.kind == "member",
        Account.member_id.in_(bindparam("members", expanding=True)),
        Account.currency.in_(bindparam("codes", expanding=True)),
    )
    .order_by(Account.id)
    .with_for_update()
    .execution_options(populate_existing=True)
)  # built once: every receipt of a member locks their wallets


def lock_wallets(
    session: Session, wallets: Iterable[tuple[uuid.UUID, str]], *, create: bool = True
) -> dict[tuple[uuid.UUID, str], Account]:
    """Get-or-create and lock member wallets, in ascending account id order, in one
    statement; wallets already locked in this transaction are not asked for again.
    ``create=False``: only those that exist (the others are left out of the answer)."""
    held = _tx_wallets(session)
    wanted = set(wallets)
    missing = wanted - held.keys()
    for attempt in range(2):
        if not missing:
            break
        member_ids = {m for m, _ in missing}
        codes = {c for _, c in missing}
        rows = session.execute(
            _LOCK_WALLETS, {"members": list(member_ids), "codes": sorted(codes)}
        ).scalars()
        for acc in rows:
            assert acc.member_id is not None
            held[(acc.member_id, acc.currency)] = acc
        missing = wanted - held.keys()
        if not create:
            return {w: held[w] for w in wanted if w in held}
        if missing and attempt == 0:
            session.execute(
                _insert(session)(Account)
                .values(
                    [
                        {
                            "currency": c,
                            "kind": "member",
                            "member_id": m,
                            "balance": ZERO,
                            "debt": ZERO,
                            "created_at": now(),
                        }
                        for m, c in sorted(missing, key=lambda w: (str(w[0]), w[1]))
                    ]
                )
                .on_conflict_do_nothing()
            )
    if missing:  # pragma: no cover - the insert above guarantees the rows
        raise RuntimeError(f"could not create wallets {missing}")
    return {w: held[w] for w in wanted}


def anchor_currency(spec: ProgramSpec) -> str | None:
    """The currency whose wallet is a member's lock (see ``lock_member``): the
    programme's first one."""
    return spec.currencies[0].code if spec.currencies else None


def member_lock_codes(spec: ProgramSpec, codes: Iterable[str]) -> list[str]:
    """The currencies whose wallets ``lock_member`` locks: ``codes`` and the anchor."""
    anchor = anchor_currency(spec)
    return sorted(set(codes) | ({anchor} if anchor is not None else set()))


def lock_member(
    session: Session, member_id: uuid.UUID, spec: ProgramSpec, codes: Iterable[str]
) -> dict[str, Account]:
    """Serialise the writes of one member (receipts, returns, activities): lock the
    member's wallets of ``codes`` that exist and the wallet of ``anchor_currency``, made
    when missing. Every such writer locks that wallet, so any two of one member take
    turns; the other wallets are made when value first moves into them (a new wallet's
    id comes after those locked here, so locks are still taken in account-id order), and
    a member holds no empty wallets of currencies they never earned."""
    anchor = anchor_currency(spec)
    if anchor is None:
        return {}
    wanted = member_lock_codes(spec, codes)
    held = lock_wallets(session, [(member_id, c) for c in wanted], create=False)
    if (member_id, anchor) not in held:
        held |= lock_wallets(session, [(member_id, anchor)])
    return {c: acc for (_, c), acc in held.items()}


# ---------------------------------------------------------------------------- entries


def _write(session: Session, entry: planner.EntryPlan) -> Entry:
    """Write a planned entry in the session's transaction (``core.write``: one statement on
    PostgreSQL); the wallets and lots loaded in the session follow (without being marked
    dirty)."""
    plan = Plan()
    rows.add_entries(plan, [entry])
    write(session, plan)
    session.info.pop("kopilka.lots", None)
    for acc_id, (bal, debt) in entry.wallet_moves.items():
        acc = session.identity_map.get(identity_key(Account, acc_id))
        if isinstance(acc, Account):
            set_committed_value(acc, "balance", acc.balance + bal)
            set_committed_value(acc, "debt", acc.debt + debt)
    for lot_id, delta in entry.lot_moves.items():
        loaded = session.identity_map.get(identity_key(Lot, lot_id))
        if isinstance(loaded, Lot):
            set_committed_value(loaded, "remaining", loaded.remaining + delta)
    return Entry(**entry.entry)


def _as_wallet(acc: Account) -> planner.Wallet:
    assert acc.member_id is not None
    return planner.Wallet(acc.id, acc.member_id, acc.currency, acc.balance, acc.debt)


def _as_lots(lots: Iterable[Lot]) -> list[planner.OpenLot]:
    return [planner.OpenLot(x.id, x.remaining, x.available_at, x.expires_at) for x in lots]


def _existing(session: Session, key: str) -> Entry | None:
    return queries.entry_with_key(session, key)


def _same_or_conflict(
    found: Entry, kind: str, member_id: uuid.UUID | None, currency: str, amount: Decimal
) -> Entry:
    if (found.kind, found.member_id, found.currency, found.amount) != (
        kind,
        member_id,
        currency,
        amount,
    ):
        raise Problem(
            422,
            "idempotency_key_reused",
            f"ledger key {found.key!r} was used for a different movement",
        )
    return found


def entry_by_key(
    session: Session,
    key: str,
    *,
    kind: str,
    member_id: uuid.UUID | None,
    currency: str,
    amount: Decimal,
) -> Entry | None:
    """The entry written with ``key`` already (a retry of this movement), or None; 422
    ``idempotency_key_reused`` if that entry moved something else."""
    found = _existing(session, key)
    return None if found is None else _same_or_conflict(found, kind, member_id, currency, amount)


def entry_row(
    *,
    key: str,
    kind: str,
    currency: str,
    amount: Decimal,
    member_id: uuid.UUID | None,
    actor: str,
    description: str,
    occurred_at: dt.datetime | None,
    purchase_id: uuid.UUID | None = None,
    reverses_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """The row of a new journal entry (a fresh id, ``occurred_at`` now unless given, the
    description cut to its column)."""
    return {
        "id": uuid7(),
        "key": key,
        "kind": kind,
        "currency": currency,
        "amount": amount,
        "member_id": member_id,
        "purchase_id": purchase_id,
        "reverses_id": reverses_id,
        "occurred_at": occurred_at or now(),
        "created_at": now(),
        "actor": actor,
        "description": description[:500],
    }


# ---------------------------------------------------------------------------- lots


def _local_midnight_after(moment: dt.datetime, days: int, tz: str) -> dt.datetime:
    """Lots expire at the start of the day after their last day, in the programme's zone."""
    zone = zoneinfo.ZoneInfo(tz)
    last_day = moment.astimezone(zone).date() + dt.timedelta(days=days)
    start = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    return start.astimezone(dt.UTC)


def lot_times(
    cur: CurrencySpec, occurred_at: dt.datetime, tz: str, pending_days: int | None = None
) -> tuple[dt.datetime, dt.datetime | None]:
    """When points earned at ``occurred_at`` become available and when they expire."""
    days = cur.pending_days if pending_days is None else pending_days
    available_at = occurred_at + dt.timedelta(days=days)
    expires_at = (
        _local_midnight_after(available_at, cur.expires_after_days, tz)
        if cur.expires_after_days
        else None
    )
    if cur.expires_on is not None:
        # a fixed last day for every lot of the currency (a sticker season): whichever
        # comes first
        season_end = dt.datetime.combine(
            cur.expires_on + dt.timedelta(days=1), dt.time(), tzinfo=zoneinfo.ZoneInfo(tz)
        ).astimezone(dt.UTC)
        expires_at = season_end if expires_at is None else min(expires_at, season_end)
    return available_at, expires_at


def _open_lots(
    session: Session, wallet: Account, at: dt.datetime, exclude: Sequence[int] = ()
) -> list[Lot]:
    """Available, unexpired lots with something left."""
    q = _OPEN_LOTS
    if exclude:
        q = q.where(Lot.id.not_in(exclude))
    return list(session.execute(q, {"account": wallet.id, "at": at}).scalars())


_OPEN_LOTS = (
    select(Lot)
    .where(
        Lot.account_id == bindparam("account"),
        Lot.remaining > 0,
        Lot.available_at <= bindparam("at"),
        or_(Lot.expires_at.is_(None), Lot.expires_at > bindparam("at")),
    )
    .order_by(Lot.id)  # ``planner.fifo_order`` decides the spending order
    .execution_options(populate_existing=True)
)  # built once: every redemption reads them


def clock() -> dt.datetime:
    """The ledger's moment: what lots are judged at (available yet, expired already) and
    entries are dated by. Whoever plans ledger entries reads the time here."""
    return now()


def open_lots(session: Session, account_id: int, at: dt.datetime) -> list[planner.OpenLot]:
    """A wallet's open lots at ``at``, for a planner (read under the wallet's lock)."""
    return _as_lots(session.execute(_OPEN_LOTS, {"account": account_id, "at": at}).scalars())


def _read_lots_again(session: Session, wallet: Account, at: dt.datetime) -> list[Lot] | None:
    """The open lots ``redeemable`` read a moment ago in this transaction, under the same
    wallet lock, if nothing has been posted to the wallet since (then they are current)."""
    hit = session.info.pop("kopilka.lots", None)
    if hit is None or hit[0] is not session.get_transaction() or hit[1] != wallet.id:
        return None
    return [lot for lot in hit[3] if lot.expires_at is None or lot.expires_at > at]


# ---------------------------------------------------------------------------- operations


def credit(
    session: Session,
    *,
    key: str,
    kind: str,
    member_id: uuid.UUID,
    currency: str,
    amount: Decimal,
    actor: str,
    description: str = "",
    occurred_at: dt.datetime | None = None,
    available_at: dt.datetime | None = None,
    expires_at: dt.datetime | None = None,
    counter: str = "issuance",
    purchase_id: uuid.UUID | None = None,
    tz: str = "UTC",
    pending_days: int | None = None,
    never_expires: bool = False,
    fresh: bool = False,
) -> Entry:
    """Add ``amount`` to a member's wallet as a new lot (pending and expiry from the
    currency unless given; ``never_expires`` overrides the currency). Idempotent by key;
    ``fresh``: the caller knows the key is new (derived from a row it just inserted)."""
    if amount <= 0:
        raise validation_problem([field_error("amount", "must be more than zero", "range")])
    cur = currency_row(session, currency)
    check_amount(cur, amount)
    wallet = lock_wallets(session, [(member_id, currency)])[(member_id, currency)]
    found = None if fresh else _existing(session, key)
    if found is not None:
        return _same_or_conflict(found, kind, member_id, currency, amount)
    occurred = occurred_at or now()
    if available_at is None or expires_at is None:
        a, e = lot_times(cur, occurred, tz, pending_days)
        available_at = available_at or a
        expires_at = expires_at if expires_at is not None else e
    if never_expires:
        expires_at = None
    at = now()
    # a debt is repaid from the open lots (and the new one) at once: only then are they read
    lots = _open_lots(session, wallet, at) if wallet.debt > 0 else []
    plan = planner.plan_credit(
        _as_wallet(wallet),
        system_account(session, currency, counter),
        entry_row(
            key=key,
            kind=kind,
            currency=currency,
            amount=amount,
            member_id=member_id,
            actor=actor,
            description=description,
            occurred_at=occurred,
            purchase_id=purchase_id,
        ),
        available_at=available_at,
        expires_at=expires_at,
        precision=cur.precision,
        lots=_as_lots(lots),
        at=at,
    )
    return _write(session, plan)


def redeemable(
    session: Session, member_id: uuid.UUID, currency: str, at: dt.datetime | None = None
) -> Decimal:
    """What the member can spend now: available lots less any debt (never below zero)."""
    locked = _tx_wallets(session).get((member_id, currency))
    if locked is not None:
        when = at or now()
        lots = _open_lots(session, locked, when)
        if at is None:  # a debit in this transaction may reuse what was just read
            session.info["kopilka.lots"] = (session.get_transaction(), locked.id, when, lots)
        return planner.available(_as_wallet(locked), _as_lots(lots), when)
    acc_id = session.execute(
        select(Account.id).where(
            Account.currency == currency, Account.kind == "member", Account.member_id == member_id
        )
    ).scalar_one_or_none()
    if acc_id is None:
        return ZERO
    wallet = session.get(Account, acc_id)
    assert wallet is not None
    when = at or now()
    return planner.available(_as_wallet(wallet), _as_lots(_open_lots(session, wallet, when)), when)


def debit(
    session: Session,
    *,
    key: str,
    kind: str,
    member_id: uuid.UUID,
    currency: str,
    amount: Decimal,
    actor: str,
    description: str = "",
    occurred_at: dt.datetime | None = None,
    counter: str = "redemption",
    purchase_id: uuid.UUID | None = None,
    allow_debt: bool = False,
    fresh: bool = False,
) -> Entry:
    """Take ``amount`` from a member's available lots, FIFO by expiry. 422
    ``insufficient_balance`` if they hold less (unless ``allow_debt``). Idempotent by key;
    ``fresh`` as in ``credit``."""
    if amount <= 0:
        raise validation_problem([field_error("amount", "must be more than zero", "range")])
    cur = currency_row(session, currency)
    check_amount(cur, amount)
    wallet = lock_wallets(session, [(member_id, currency)])[(member_id, currency)]
    found = None if fresh else _existing(session, key)
    if found is not None:
        return _same_or_conflict(found, kind, member_id, currency, amount)
    at = now()
    lots = _read_lots_again(session, wallet, at) or _open_lots(session, wallet, at)
    plan = planner.plan_debit(
        _as_wallet(wallet),
        _as_lots(lots),
        system_account(session, currency, counter),
        entry_row(
            key=key,
            kind=kind,
            currency=currency,
            amount=amount,
            member_id=member_id,
            actor=actor,
            description=description,
            occurred_at=occurred_at,
            purchase_id=purchase_id,
        ),
        precision=cur.precision,
        at=at,
        allow_debt=allow_debt,
    )
    return _write(session, plan)


def _reversed_so_far(session: Session, original: Entry) -> dict[int | None, Decimal]:
    """Per lot (None: no lot) of the member's wallet: what reversals of ``original`` moved."""
    rows = session.execute(
        select(Posting.lot_id, func.sum(Posting.amount))
        .join(Entry, Entry.id == Posting.entry_id)
        .join(Account, Account.id == Posting.account_id)
        .where(Entry.reverses_id == original.id, Account.kind == "member")
        .group_by(Posting.lot_id)
    ).all()
    return {lot_id: Decimal(total) for lot_id, total in rows}


def _member_postings(session: Session, entry: Entry) -> list[Posting]:
    return list(
        session.execute(
            select(Posting)
            .join(Account, Account.id == Posting.account_id)
            .where(Posting.entry_id == entry.id, Account.kind == "member")
            .order_by(Posting.id)
        ).scalars()
    )


def reversible(session: Session, original: Entry) -> Decimal:
    """How much of ``original`` has not been reversed yet (in its own direction)."""
    done = sum(_reversed_so_far(session, original).values(), ZERO)
    return original.amount - abs(done)


def reverse(
    session: Session,
    original_id: uuid.UUID,
    *,
    key: str,
    actor: str,
    amount: Decimal | None = None,
    kind: str = "reversal",
    description: str = "",
    occurred_at: dt.datetime | None = None,
    counter: str | None = None,
) -> Entry:
    """Undo ``amount`` (default: all that is left) of an earlier credit or debit.

    A debit's reversal gives back the same lots it drew from, with their original expiry
    (the last drawn first). A credit's reversal takes from the lot it made, then from other
    available lots, and what the member has already spent becomes a debt (a negative
    balance that later earnings repay). Idempotent by ``key``."""
    original = session.get(Entry, original_id)
    if original is None or original.member_id is None:
        raise Problem(404, "entry_not_found", f"no member entry {original_id}")
    member_id = original.member_id
    wallet = lock_wallets(session, [(member_id, original.currency)])[(member_id, original.currency)]
    postings = _member_postings(session, original)
    is_credit = sum((p.amount for p in postings), ZERO) > 0
    left_to_reverse = reversible(session, original)
    amount = left_to_reverse if amount is None else amount
    found = _existing(session, key)
    if found is not None:
        return _same_or_conflict(found, kind, member_id, original.currency, amount)
    if amount <= 0 or amount > left_to_reverse:
        raise Problem(
            422,
            "reversal_exceeds_entry",
            f"{amount} is more than the {left_to_reverse} left to reverse of entry {original.id}",
        )
    counter_kind = (
        counter
        or session.execute(
            select(Account.kind)
            .join(Posting, Posting.account_id == Account.id)
            .where(Posting.entry_id == original.id, Account.kind != "member")
            .limit(1)
        ).scalar_one()
    )
    values = entry_row(
        key=key,
        kind=kind,
        currency=original.currency,
        amount=amount,
        member_id=member_id,
        actor=actor,
        description=description,
        occurred_at=occurred_at,
        purchase_id=original.purchase_id,
        reverses_id=original.id,
    )
    counter_id = system_account(session, original.currency, counter_kind)
    at = now()
    if is_credit:
        made_id = next((p.lot_id for p in postings if p.amount > 0 and p.lot_id is not None), None)
        made = session.get(Lot, made_id, populate_existing=True) if made_id is not None else None
        lots = _open_lots(session, wallet, at, exclude=[made.id] if made is not None else [])
        plan = planner.plan_reverse_credit(
            _as_wallet(wallet),
            counter_id,
            values,
            made=_as_lots([made])[0] if made is not None else None,
            lots=_as_lots(lots),
            at=at,
        )
    else:
        drawn = [
            (
                _as_lots([session.get_one(Lot, p.lot_id, populate_existing=True)])[0]
                if p.lot_id is not None
                else None,
                p.amount,
            )
            for p in postings
        ]
        plan = planner.plan_reverse_debit(
            _as_wallet(wallet),
            counter_id,
            values,
            drawn=drawn,
            done=_reversed_so_far(session, original),
            lots=_as_lots(_open_lots(session, wallet, at)),
            at=at,
        )
    return _write(session, plan)


def move_system(
    session: Session,
    *,
    key: str,
    currency: str,
    amount: Decimal,
    from_kind: str,
    to_kind: str,
    actor: str,
    member_id: uuid.UUID | None = None,
    purchase_id: uuid.UUID | None = None,
    description: str = "",
) -> Entry:
    """Move points between two system accounts (a hold's points settled into redemption)."""
    found = _existing(session, key)
    if found is not None:
        return _same_or_conflict(found, "settle", member_id, currency, amount)
    values = entry_row(
        key=key,
        kind="settle",
        currency=currency,
        amount=amount,
        member_id=member_id,
        actor=actor,
        description=description,
        occurred_at=None,
        purchase_id=purchase_id,
    )
    source = system_account(session, currency, from_kind)
    target = system_account(session, currency, to_kind)
    return _write(session, planner.plan_move(source, target, values))


def transfer(
    session: Session,
    *,
    key: str,
    from_member: uuid.UUID,
    to_member: uuid.UUID,
    currency: str,
    amount: Decimal,
    actor: str,
    description: str = "",
    program: ProgramSpec | None = None,
) -> Entry:
    """Move points between members in one entry. The recipient gets lots with the same
    expiry as the sender's lots they came from (a gift cannot extend a lifetime).

    With ``program`` (the API always passes it) its transfer switch and limits are checked
    too (``check_transfer_allowed``), under the sender's wallet lock: transfers from one
    member run one after the other, so concurrent ones cannot together pass the daily
    limit each of them passes alone."""
    if from_member == to_member:
        raise validation_problem([field_error("to", "cannot transfer to oneself", "same_member")])
    if amount <= 0:
        raise validation_problem([field_error("amount", "must be more than zero", "range")])
    cur = currency_row(session, currency)
    check_amount(cur, amount)
    wallets = lock_wallets(session, [(from_member, currency), (to_member, currency)])
    src, dst = wallets[(from_member, currency)], wallets[(to_member, currency)]
    found = _existing(session, key)
    if found is not None:
        return _same_or_conflict(found, "transfer", from_member, currency, amount)
    if program is not None:  # sums today's transfers: only meaningful under the lock
        check_transfer_allowed(session, program, cur, from_member, amount)
    at = now()
    plan = planner.plan_transfer(
        _as_wallet(src),
        _as_wallet(dst),
        entry_row(
            key=key,
            kind="transfer",
            currency=currency,
            amount=amount,
            member_id=from_member,
            actor=actor,
            description=description,
            occurred_at=at,
        ),
        source_lots=_as_lots(_open_lots(session, src, at)),
        target_lots=_as_lots(_open_lots(session, dst, at)) if dst.debt > 0 else [],
        precision=cur.precision,
        at=at,
    )
    return _write(session, plan)


def expire_due(session: Session, at: dt.datetime | None = None, limit: int = 1000) -> int:
    """Write expiry entries (to breakage) for lots expired by ``at`` with points left.
    Safe to run twice or on several workers: each lot is re-read under its wallet's lock,
    and the entry key names the lot and what it had expired before."""
    at = at or now()
    due = session.execute(
        select(Lot.id, Lot.account_id)
        .where(Lot.expires_at.is_not(None), Lot.expires_at <= at, Lot.remaining > 0)
        .order_by(Lot.expires_at, Lot.id)
        .limit(limit)
    ).all()
    written = 0
    for lot_id, account_id in due:
        acc = session.get(Account, account_id)
        assert acc is not None and acc.member_id is not None
        wallet = lock_wallets(session, [(acc.member_id, acc.currency)])[
            (acc.member_id, acc.currency)
        ]
        lot = session.get(Lot, lot_id, populate_existing=True)
        assert lot is not None and lot.expires_at is not None
        if lot.remaining <= 0:
            continue
        expired_before = -session.execute(
            select(func.coalesce(func.sum(Posting.amount), 0))
            .join(Entry, Entry.id == Posting.entry_id)
            .where(Posting.lot_id == lot.id, Entry.kind == "expire")
        ).scalar_one()
        key = f"expire:{lot.id}:{Decimal(expired_before)}"
        if _existing(session, key) is not None:
            continue
        amount = lot.remaining
        values = entry_row(
            key=key,
            kind="expire",
            currency=acc.currency,
            amount=amount,
            member_id=acc.member_id,
            actor="system:expiry",
            description="points expired",
            occurred_at=lot.expires_at,
        )
        breakage = system_account(session, acc.currency, "breakage")
        plan = planner.plan_expire(_as_wallet(wallet), _as_lots([lot])[0], breakage, values)
        entry = _write(session, plan)

        emit(
            session,
            "points.expired",
            {
                "member_id": str(acc.member_id),
                "currency": acc.currency,
                "amount": str(amount),
                "entry_id": str(entry.id),
                "expired_at": lot.expires_at.isoformat(),
            },
            member_id=acc.member_id,
            key=f"event:{key}",
        )
        written += 1
    return written


def expiring_within(
    session: Session, at: dt.datetime, days: int, limit: int = 1000
) -> list[tuple[uuid.UUID, str, Decimal, dt.datetime]]:
    """Per member, currency and expiry moment: points that expire within ``days``."""
    rows = session.execute(
        select(Account.member_id, Account.currency, func.sum(Lot.remaining), Lot.expires_at)
        .join(Account, Account.id == Lot.account_id)
        .where(
            Lot.remaining > 0, Lot.expires_at > at, Lot.expires_at <= at + dt.timedelta(days=days)
        )
        .group_by(Account.member_id, Account.currency, Lot.expires_at)
        .order_by(Lot.expires_at)
        .limit(limit)
    ).all()
    return [(m, c, Decimal(a), e) for m, c, a, e in rows if m is not None and e is not None]


# ---------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Balance:
    currency: str
    precision: int
    available: Decimal
    pending: Decimal
    expiring_amount: Decimal | None
    expiring_at: dt.datetime | None

    def as_json(self) -> dict[str, object]:
        p = self.precision
        return {
            "currency": self.currency,
            "available": fmt(self.available, p),
            "pending": fmt(self.pending, p),
            "expiring_next": None
            if self.expiring_at is None
            else {
                "amount": fmt(self.expiring_amount or ZERO, p),
                "at": self.expiring_at.isoformat(),
            },
        }


def balances(
    session: Session, member_id: uuid.UUID, as_of: dt.datetime | None = None
) -> list[Balance]:
    """Every active currency's balance for a member at ``as_of`` (default: now).

    From ``now`` on, the lots' remaining amounts answer (pending lots mature and lots
    expire by the clock). For a past moment the postings up to then are summed per lot."""
    at = as_of or now()
    currencies = active_currencies(session)
    accounts = {
        a.currency: a
        for a in session.execute(
            select(Account).where(Account.kind == "member", Account.member_id == member_id)
        ).scalars()
    }
    past = as_of is not None and as_of < now()
    out = []
    for cur in currencies:
        acc = accounts.get(cur.code)
        if acc is None:
            out.append(Balance(cur.code, cur.precision, ZERO, ZERO, None, None))
            continue
        if past:
            lot_rows = session.execute(
                select(
                    Lot.id,
                    Lot.available_at,
                    Lot.expires_at,
                    func.coalesce(func.sum(Posting.amount), 0),
                )
                .join(Posting, Posting.lot_id == Lot.id)
                .join(Entry, Entry.id == Posting.entry_id)
                .where(Lot.account_id == acc.id, Entry.occurred_at <= at)
                .group_by(Lot.id, Lot.available_at, Lot.expires_at)
            ).all()
            lots = [(a, e, Decimal(r)) for _, a, e, r in lot_rows]
            debt = -Decimal(
                session.execute(
                    select(func.coalesce(func.sum(Posting.amount), 0))
                    .join(Entry, Entry.id == Posting.entry_id)
                    .where(
                        Posting.account_id == acc.id,
                        Posting.lot_id.is_(None),
                        Entry.occurred_at <= at,
                    )
                ).scalar_one()
            )
        else:
            lot_rows2 = session.execute(
                select(Lot.available_at, Lot.expires_at, Lot.remaining).where(
                    Lot.account_id == acc.id,
                    Lot.remaining > 0,
                    or_(Lot.expires_at.is_(None), Lot.expires_at > at),
                )
            ).all()
            lots = [(a, e, r) for a, e, r in lot_rows2]
            debt = acc.debt
        available = pending = ZERO
        expiring: dict[dt.datetime, Decimal] = {}
        for available_at, expires_at, remaining in lots:
            if remaining <= 0 or (expires_at is not None and expires_at <= at):
                continue
            if available_at <= at:
                available += remaining
            else:
                pending += remaining
            if expires_at is not None:
                expiring[expires_at] = expiring.get(expires_at, ZERO) + remaining
        first = min(expiring) if expiring else None
        out.append(
            Balance(
                cur.code,
                cur.precision,
                available - debt,
                pending,
                expiring[first] if first else None,
                first,
            )
        )
    return out


@dataclass(frozen=True)
class HistoryItem:
    id: uuid.UUID
    occurred_at: dt.datetime
    kind: str
    currency: str
    amount: Decimal
    precision: int
    purchase_id: uuid.UUID | None
    description: str

    def as_json(self) -> dict[str, object]:
        return {
            "id": str(self.id),
            "occurred_at": self.occurred_at.isoformat(),
            "kind": self.kind,
            "currency": self.currency,
            "amount": fmt(self.amount, self.precision),
            "purchase_id": str(self.purchase_id) if self.purchase_id else None,
            "description": self.description,
        }


def history(
    session: Session,
    member_id: uuid.UUID,
    currency: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[HistoryItem], str | None]:
    """A member's entries, newest first, each with its signed net effect on the wallet."""
    net = func.sum(Posting.amount)
    q = (
        select(
            Entry.id,
            Entry.occurred_at,
            Entry.kind,
            Entry.currency,
            net,
            Entry.purchase_id,
            Entry.description,
            Entry.created_at,
        )
        .join(Posting, Posting.entry_id == Entry.id)
        .join(Account, Account.id == Posting.account_id)
        .where(Account.kind == "member", Account.member_id == member_id)
        .group_by(
            Entry.id,
            Entry.occurred_at,
            Entry.kind,
            Entry.currency,
            Entry.purchase_id,
            Entry.description,
            Entry.created_at,
        )
        .order_by(Entry.id.desc())
        .limit(limit + 1)
    )
    if currency:
        q = q.where(Entry.currency == currency)
    if (last := pagination.after(cursor)) is not None:
        q = q.where(Entry.id < last)
    precisions = currency_precisions(session)
    rows = session.execute(q).all()
    items = [
        HistoryItem(r[0], r[1], r[2], r[3], Decimal(r[4]), precisions.get(r[3], 2), r[5], r[6])
        for r in rows[:limit]
    ]
    nxt = str(items[-1].id) if len(rows) > limit else None
    return items, nxt


def check_transfer_allowed(
    session: Session, program: ProgramSpec, cur: CurrencySpec, member_id: uuid.UUID, amount: Decimal
) -> None:
    """The programme's transfer switch, the currency's flag, and the per-transfer and
    daily limits (a day in the programme's time zone). The daily limit sums the sender's
    transfers of today, so call it with the sender's wallet locked (``transfer`` does)."""
    if not program.transfers.enabled or not cur.transferable:
        raise Problem(
            422, "transfers_disabled", f"the programme does not allow transfers of {cur.code}"
        )
    limit = program.transfers.max_amount
    if limit is not None and amount > limit:
        raise Problem(
            422,
            "transfer_limit_exceeded",
            f"at most {limit} per transfer",
            errors=[field_error("amount", f"at most {limit} per transfer", "limit")],
        )
    daily = program.transfers.daily_limit
    if daily is not None:
        zone = zoneinfo.ZoneInfo(program.timezone)
        today = now().astimezone(zone).date()
        start = dt.datetime.combine(today, dt.time(), tzinfo=zone).astimezone(dt.UTC)
        sent = session.execute(
            select(func.coalesce(func.sum(Entry.amount), 0)).where(
                Entry.kind == "transfer",
                Entry.member_id == member_id,
                Entry.currency == cur.code,
                Entry.occurred_at >= start,
            )
        ).scalar_one()
        if Decimal(sent) + amount > daily:
            raise Problem(
                422,
                "transfer_limit_exceeded",
                f"at most {daily} a day; {Decimal(sent)} sent today",
                errors=[field_error("amount", f"at most {daily} a day", "daily_limit")],
            )


# ---------------------------------------------------------------------------- for privacy

# The page a member's export reads the history in.
EXPORT_PAGE = 200


def export_member(session: Session, member_id: uuid.UUID) -> dict[str, Any]:
    """A member's balances and whole ledger history, their export's ``balances`` and
    ``ledger`` (``members.privacy``, through ``kopilka.wiring``)."""
    entries = pagination.all_pages(lambda c: history(session, member_id, None, c, EXPORT_PAGE))
    return {
        "balances": [b.as_json() for b in balances(session, member_id)],
        "ledger": [e.as_json() for e in entries],
    }
