"""HTTP endpoints for purchases: calculate, confirm, commit, cancel, returns; and the
rules' dry run over receipts, ``POST /rules/simulate`` (``simulation_router``)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from kopilka.core.auth import SessionDep, require
from kopilka.core.db import get_db, now
from kopilka.core.errors import Problem, validation_errors
from kopilka.core.idempotency import run_idempotent
from kopilka.core.principal import Principal
from kopilka.core.responses import FastJSONResponse, pydantic_json
from kopilka.core.threads import run_in_thread
from kopilka.program.service import (
    Program,
    canonical,
    check_occurred_at,
    digest_of,
    validate_program,
)
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
    SimulateIn,
    SimulationOut,
    SimulationPage,
)
from kopilka.rules import engine
from kopilka.rules import service as rules

router = APIRouter(prefix="/purchases", tags=["purchases"])
# The rules' dry run: among the rules' routes (``/rules/simulate``, tag ``rules``), here
# because it runs receipts through the purchases' figuring.
simulation_router = APIRouter(tags=["rules"])

Till = Annotated[Principal, Depends(require("admin", "manager", "cashier", "partner"))]
Reader = Annotated[Principal, Depends(require("admin", "manager", "analyst", "cashier", "partner"))]
IdemKey = Annotated[str | None, Header()]
Simulator = Annotated[Principal, Depends(require("admin", "manager", "analyst", "cashier"))]


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


# ---------------------------------------------------------------------------- simulate


def _receipt(raw: dict[str, Any], path: str) -> PurchaseIn:
    doc = {"external_id": "simulation", "occurred_at": now().isoformat(), **raw}
    try:
        return PurchaseIn.model_validate(doc)
    except ValidationError as exc:
        errors = validation_errors(exc, path)
        raise Problem(422, "validation_error", "the receipt is not valid", errors=errors) from exc


def _draft(session: Any, body: SimulateIn) -> Program | None:
    if body.program is None and body.rules is None:
        return None
    if body.program is not None and body.rules is not None:
        raise Problem(
            422,
            "validation_error",
            "give a draft programme or draft rules, not both",
            errors=[{"field": "rules", "code": "exclusive", "message": "not with program"}],
        )
    doc = body.program
    if doc is None:
        _, doc = rules.current_document(session)
        doc = {**doc, "rules": body.rules}
    prefix = "program" if body.program is not None else ""
    try:
        spec = validate_program(doc)
    except Problem as exc:
        errors = [
            {**e, "field": f"{prefix}.{e.get('field')}" if prefix else e.get("field")}
            for e in exc.errors or []
        ]
        raise Problem(422, "validation_error", "the draft is not valid", errors=errors) from exc
    return Program(0, digest_of(canonical(spec)), spec)


@simulation_router.post("/rules/simulate", response_model=SimulationOut | SimulationPage)
def simulate(body: SimulateIn, session: SessionDep, principal: Simulator) -> Response:
    """Run a receipt (or up to 100) against the programme in force or a draft, and answer
    the figures and every rule's verdict: fired (with what it gave) or not (and why).
    Writes nothing."""
    if (body.receipt is None) == (body.receipts is None):
        raise Problem(
            422,
            "validation_error",
            "give receipt or receipts",
            errors=[{"field": "receipt", "code": "missing", "message": "receipt or receipts"}],
        )
    program = _draft(session, body)
    hypo = None
    if body.member_context is not None:
        m = body.member_context
        hypo = engine.MemberContext(
            id=uuid.UUID(int=0),
            tier=m.tier,
            tags=frozenset(m.tags),
            birth_date=m.birth_date,
            joined_at=m.joined_at,
            purchases_count=m.purchases_count,
            lifetime_spend=m.lifetime_spend,
            personal_discount=m.personal_discount,
        )
    raws = [body.receipt] if body.receipt is not None else list(body.receipts or [])
    path = "receipt" if body.receipt is not None else "receipts"
    results = []
    for i, raw in enumerate(raws):
        receipt = _receipt(raw, path if body.receipt is not None else f"{path}[{i}]")
        results.append(figures.simulate(session, receipt, principal, program, hypo))
    if body.receipt is not None:
        return pydantic_json(results[0])
    return pydantic_json({"items": results})
