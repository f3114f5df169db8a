"""HTTP endpoints for purchases: calculate, confirm, commit, cancel, returns."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import JSONResponse

from kopilka.core.auth import SessionDep, require
from kopilka.core.db import get_db
from kopilka.core.idempotency import run_idempotent
from kopilka.core.principal import Principal
from kopilka.core.responses import FastJSONResponse
from kopilka.core.threads import run_in_thread
from kopilka.program.service import check_occurred_at
from kopilka.purchases import confirmation, figures, holds, queries, returns
from kopilka.purchases.schemas import (
    CalculationOut,
    CancelledOut,
    CommitIn,
    PurchaseIn,
    PurchaseOut,
    PurchasePage,
    ReturnIn,
    ReturnOut,
)

router = APIRouter(prefix="/purchases", tags=["purchases"])

Till = Annotated[Principal, Depends(require("admin", "manager", "cashier", "partner"))]
Reader = Annotated[Principal, Depends(require("admin", "manager", "analyst", "cashier", "partner"))]
IdemKey = Annotated[str | None, Header()]


# The two calls a till makes on every receipt are async and hop to a thread once, for the
# whole database transaction, in the pool of ``core.threads``: each hop (a sync dependency
# or endpoint is one, a sync generator two) costs real CPU on a busy till's request.
#
# Every answer declares its model (``response_model``) and is rendered from the dict the
# service built (``FastJSONResponse``), which FastAPI passes through without validating it
# again: the figures are built once, by ``service``, and the tests and the fuzzer check
# that they match the models. A purchase's stored figures are answered as they were
# recorded.


@router.post("/calculate", response_model=CalculationOut)
async def calculate(body: PurchaseIn, principal: Till) -> JSONResponse:
    """The figures the till shows the customer; writes nothing. Limits on redemption are
    reported in ``warnings`` instead of failing; ``quote_id`` pins these figures."""
    return FastJSONResponse(await run_in_thread(_calculate, body, principal))


def _calculate(body: PurchaseIn, principal: Principal) -> dict[str, Any]:
    with get_db().session() as session:
        check_occurred_at(session, body.occurred_at)
        return figures.calculate(session, body, principal)


@router.post(
    "",
    status_code=201,
    response_model=PurchaseOut,
    responses={200: {"model": PurchaseOut, "description": "The same receipt again"}},
)
async def confirm(
    body: PurchaseIn, principal: Till, idempotency_key: IdemKey = None
) -> JSONResponse:
    """Record a receipt (``hold: true`` reserves the points until commit or cancel).
    The same receipt again answers 200 with the same purchase."""
    status, payload = await run_in_thread(_confirm, body, principal, idempotency_key)
    return FastJSONResponse(payload, status_code=status)


def _confirm(
    body: PurchaseIn, principal: Principal, idempotency_key: str | None
) -> tuple[int, Any]:
    with get_db().session() as session:

        def action() -> tuple[int, Any]:
            check_occurred_at(session, body.occurred_at)
            return confirmation.confirm(session, body, principal)

        return run_idempotent(
            session,
            principal.actor,
            idempotency_key,
            "POST /purchases",
            body.model_dump(mode="json") if idempotency_key is not None else None,
            action,
        )


@router.get("", response_model=PurchasePage)
def list_purchases(
    session: SessionDep,
    principal: Reader,
    member_id: uuid.UUID | None = None,
    store: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JSONResponse:
    """Purchases newest first, by member or store; a cashier sees only its own store."""
    if principal.store is not None:
        store = principal.store
    items, nxt = queries.list_purchases(
        session, member_id=member_id, store=store, cursor=cursor, limit=limit
    )
    return FastJSONResponse({"items": items, "next_cursor": nxt})


@router.get("/{purchase_id}", response_model=PurchaseOut)
def get_purchase(purchase_id: uuid.UUID, session: SessionDep, principal: Reader) -> JSONResponse:
    return FastJSONResponse(
        confirmation.purchase_json(queries.get_purchase(session, purchase_id, principal))
    )


@router.post("/{purchase_id}/commit", response_model=PurchaseOut)
def commit(
    purchase_id: uuid.UUID,
    session: SessionDep,
    principal: Till,
    body: CommitIn | None = None,
    idempotency_key: IdemKey = None,
) -> JSONResponse:
    """Settle a hold after the fiscal receipt printed. Idempotent."""
    data = body or CommitIn()

    def action() -> tuple[int, Any]:
        return 200, holds.commit(session, purchase_id, data, principal)

    status, payload = run_idempotent(
        session,
        principal.actor,
        idempotency_key,
        f"POST /purchases/{purchase_id}/commit",
        data.model_dump(mode="json"),
        action,
    )
    return FastJSONResponse(payload, status_code=status)


@router.post("/{purchase_id}/cancel", response_model=CancelledOut)
def cancel(
    purchase_id: uuid.UUID, session: SessionDep, principal: Till, idempotency_key: IdemKey = None
) -> JSONResponse:
    """Release a hold, or reverse a confirmed purchase entirely. Idempotent."""

    def action() -> tuple[int, Any]:
        return 200, returns.cancel(session, purchase_id, principal)

    status, payload = run_idempotent(
        session,
        principal.actor,
        idempotency_key,
        f"POST /purchases/{purchase_id}/cancel",
        {},
        action,
    )
    return FastJSONResponse(payload, status_code=status)


@router.post(
    "/{purchase_id}/returns",
    status_code=201,
    response_model=ReturnOut,
    responses={200: {"model": ReturnOut, "description": "The same return again"}},
)
def create_return(
    purchase_id: uuid.UUID,
    body: ReturnIn,
    session: SessionDep,
    principal: Till,
    idempotency_key: IdemKey = None,
) -> JSONResponse:
    """Return lines (partly or wholly); money refunded and points restored/revoked in
    proportion, so that returning everything reverses the purchase exactly."""

    def action() -> tuple[int, Any]:
        return returns.create_return(session, purchase_id, body, principal)

    status, payload = run_idempotent(
        session,
        principal.actor,
        idempotency_key,
        f"POST /purchases/{purchase_id}/returns",
        body.model_dump(mode="json"),
        action,
    )
    return FastJSONResponse(payload, status_code=status)
