"""What crosses the API for balances, history and transfers, and the entry an adjustment
or a transfer answers."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from kopilka.members.schemas import MemberRef

AmountStr = Annotated[Decimal, Field(max_digits=17, decimal_places=4, allow_inf_nan=False)]


class ExpiringOut(BaseModel):
    amount: str
    at: str


class BalanceOut(BaseModel):
    currency: str
    available: str
    pending: str
    expiring_next: ExpiringOut | None


class BalancesOut(BaseModel):
    balances: list[BalanceOut]


class LedgerItemOut(BaseModel):
    id: str
    occurred_at: str
    kind: str
    currency: str
    amount: str
    purchase_id: str | None
    description: str


class LedgerPage(BaseModel):
    items: list[LedgerItemOut]
    next_cursor: str | None


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: MemberRef
    currency: Annotated[str, Field(min_length=1, max_length=16)]
    amount: Annotated[Decimal, Field(gt=0, max_digits=17, decimal_places=4, allow_inf_nan=False)]
    message: Annotated[str | None, Field(max_length=200)] = None


class EntryOut(BaseModel):
    id: str
    kind: str
    currency: str
    amount: str
    occurred_at: str


def entry_out(entry: Any, precision: int) -> dict[str, Any]:
    """A ledger entry as an adjustment or a transfer answers it (``EntryOut``)."""
    return EntryOut(
        id=str(entry.id),
        kind=entry.kind,
        currency=entry.currency,
        amount=f"{entry.amount:.{precision}f}",
        occurred_at=entry.occurred_at.isoformat(),
    ).model_dump()
