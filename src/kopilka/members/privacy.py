"""A member's rights over their data (152-FZ, GDPR): export everything, erase everything.

Export gathers the profile, every consent record, balances, the whole ledger history,
purchases and the audit trail about the member, plus what other parts of Kopilka add with
``register_exporter`` (e.g. the member app's devices). The ledger's and the purchases'
sections are the ledger's and the purchases' own (``use_ledger``, ``use_purchases``,
filled by ``kopilka.wiring``: both packages build on this one, so it does not import
them); an export without them would be incomplete, so it refuses to run.

Erasure removes the personal data and keeps the member row as an anonymous account: the
phone, email, name, birth date and external id are cleared, the card number is replaced by
a fresh one that nobody holds (the plastic card no longer leads to the account), consents
are withdrawn, and every part that registered an eraser (``register_eraser``) removes what
it holds about the member. The ledger is not touched, so balances, the double entry and
every report stay as they were.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kopilka.audit import service as audit
from kopilka.audit.service import record
from kopilka.core.db import now
from kopilka.core.pagination import all_pages
from kopilka.events import service as events
from kopilka.members import service
from kopilka.members.cards import new_card_number
from kopilka.members.models import CHANNELS, PERSONAL, Member

T = TypeVar("T")
Exporter = Callable[[Session, uuid.UUID], Any]
Eraser = Callable[[Session, uuid.UUID], None]
# The ledger's part of an export: ``{"balances": [...], "ledger": [...]}``.
LedgerExporter = Callable[[Session, uuid.UUID], dict[str, Any]]

_lock = threading.Lock()
_exporters: dict[str, Exporter] = {}
_erasers: dict[str, Eraser] = {}
# ``kopilka.wiring``: the ledger's and the purchases' sections of every export.
_ledger: list[LedgerExporter] = []
_purchases: list[Exporter] = []

EXPORT_FORMAT = "kopilka.member-export/1"
PAGE = 200


def register_exporter(name: str, exporter: Exporter) -> None:
    """Add a section ``name`` to every export: ``exporter(session, member_id)`` returns
    JSON-ready data about the member held by the registering part of Kopilka."""
    with _lock:
        _exporters[name] = exporter


def register_eraser(name: str, eraser: Eraser) -> None:
    """Call ``eraser(session, member_id)`` in the erasure's transaction: it must delete or
    anonymise every personal datum of the member that its part of Kopilka holds."""
    with _lock:
        _erasers[name] = eraser


def use_ledger(exporter: LedgerExporter) -> None:
    """Say how the ledger's part of an export is read: ``exporter(session, member_id)``
    returns its ``balances`` and ``ledger`` (again replaces it)."""
    _ledger[:] = [exporter]


def use_purchases(exporter: Exporter) -> None:
    """Say how the ``purchases`` of an export are read (again replaces it)."""
    _purchases[:] = [exporter]


def _section(registered: list[T], name: str) -> T:
    if not registered:
        raise RuntimeError(f"no {name} for the member's export: wire() was not called")
    return registered[0]


def _audit(session: Session, member_id: uuid.UUID) -> list[dict[str, Any]]:
    return all_pages(
        lambda c: audit.list_entries(
            session, target_type="member", target_id=str(member_id), cursor=c, limit=PAGE
        )
    )


def export_member(session: Session, member_id: uuid.UUID, actor: str) -> dict[str, Any]:
    """Everything Kopilka holds about a member, as one JSON document (audited)."""
    member = service.get_member(session, member_id)
    profile = service.to_out(session, member).model_dump(mode="json")
    profile.update(
        referred_by=str(member.referred_by) if member.referred_by else None,
        updated_at=member.updated_at.isoformat(),
        erased_at=member.erased_at.isoformat() if member.erased_at else None,
    )
    doc: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "exported_at": now().isoformat(),
        "member": profile,
        "consents": service.consent_history(session, member_id),
        **_section(_ledger, "ledger")(session, member_id),
        "purchases": _section(_purchases, "purchases")(session, member_id),
        "audit": _audit(session, member_id),
    }
    with _lock:
        extra = dict(_exporters)
    doc["other"] = {name: fn(session, member_id) for name, fn in sorted(extra.items())}
    record(session, actor, "member.export", "member", str(member_id))
    return doc


def erase_member(
    session: Session,
    member_id: uuid.UUID,
    actor: str,
    reason: str | None = None,
    card_prefix: str = "77",
) -> Member:
    """Remove a member's personal data, keeping an anonymous account (not committed).
    Erasing an erased member again changes nothing."""
    member = service.get_member(session, member_id, lock=True)
    if member.status == "erased":
        return member
    held = [f for f in PERSONAL if getattr(member, f) is not None]
    before_status = member.status
    granted = [c for c, on in service.current_consents(session, member_id).items() if on]
    member.phone = None
    member.email = None
    member.name = None
    member.birth_date = None
    member.external_id = None
    member.status = "erased"
    member.erased_at = member.updated_at = now()
    session.flush()
    _new_card(session, member, card_prefix)
    if granted:
        service.record_consents(
            session,
            member_id,
            {c: False for c in CHANNELS if c in granted},
            "erasure",
            actor=actor,
        )
    events.redact_member(session, member_id, EVENT_IDENTIFIERS)
    with _lock:
        erasers = dict(_erasers)
    for _name, eraser in sorted(erasers.items()):
        eraser(session, member_id)
    record(
        session,
        actor,
        "member.erase",
        "member",
        str(member_id),
        before={"status": before_status, "fields": held},
        after={"status": "erased"},
        details={"reason": reason} if reason else None,
    )
    return member


# Identifiers of the person that events about a member may carry (never phone, email or
# name: those stay in the API). Erasure blanks them in the outbox, so a webhook replayed
# later does not bring them back.
EVENT_IDENTIFIERS = ("card_number", "external_id")


def _new_card(session: Session, member: Member, prefix: str) -> None:
    for _attempt in range(5):
        try:
            with session.begin_nested():
                member.card_number = new_card_number(prefix)
                session.flush()
            return
        except IntegrityError:
            continue
    raise RuntimeError("could not allocate a unique card number")  # pragma: no cover


def erased_members(session: Session) -> list[uuid.UUID]:
    """Ids of erased members (for checks and reports)."""
    return list(session.scalars(select(Member.id).where(Member.status == "erased")))
