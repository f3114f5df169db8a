"""Rules and campaigns over HTTP: read, create, change, remove (each change a new programme
version; a rule's history is kept), the JSON Schema, and the dry-run simulation."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from kopilka.core.auth import SessionDep, require
from kopilka.core.dates import Day, Timestamp
from kopilka.core.db import now
from kopilka.core.errors import Problem, validation_errors
from kopilka.core.idempotency import run_idempotent
from kopilka.core.principal import Principal
from kopilka.program.service import Program, canonical, digest_of, validate_program
from kopilka.purchases import figures as purchases
from kopilka.purchases.schemas import PurchaseIn
from kopilka.rules import engine, service
from kopilka.rules.schemas import (
    CampaignOut,
    CampaignPage,
    RuleOut,
    RulePage,
    RulesSchemaOut,
    RuleVersionPage,
    SimulationOut,
    SimulationPage,
)
from kopilka.spec.rules import rules_json_schema

router = APIRouter(tags=["rules"])

Reader = Annotated[Principal, Depends(require("admin", "manager", "analyst"))]
Editor = Annotated[Principal, Depends(require("admin", "manager"))]
Simulator = Annotated[Principal, Depends(require("admin", "manager", "analyst", "cashier"))]
IdemKey = Annotated[str | None, Header()]

# The answers are the rule language's normalised documents, rendered as the service builds
# them under the models they declare (see ``rules/schemas.py``), by pydantic as they always
# were (a raw definition's numbers keep their form).
_ANY = TypeAdapter(Any)


def _answer(payload: Any) -> Response:
    return Response(_ANY.dump_json(payload), media_type="application/json")


def _version_json(v: Any) -> dict[str, Any]:
    return {
        "key": v.key,
        "version": v.version,
        "program_version": v.program_version,
        "removed": v.definition is None,
        "definition": v.definition,
        "created_at": v.created_at.isoformat(),
        "created_by": v.created_by,
    }


@router.get("/rules", response_model=RulePage)
def list_rules(session: SessionDep, _: Reader) -> Response:
    """The rules in force, in the programme's order, each with its key and version."""
    return _answer({"items": service.current_rules(session), "next_cursor": None})


@router.get("/rules/schema", response_model=RulesSchemaOut)
def schema(_: Reader) -> dict[str, Any]:
    """The JSON Schema of a rule and of a campaign."""
    return rules_json_schema()


@router.post("/rules", status_code=201, response_model=RuleOut)
def create_rule(
    body: dict[str, Any], session: SessionDep, principal: Editor, idempotency_key: IdemKey = None
) -> JSONResponse:
    """Add a rule (a new programme version). Its ``key`` defaults to one made from its name;
    a key already in use is a 409 ``rule_exists``."""

    def action() -> tuple[int, Any]:
        out = service.create_rule(session, body, principal.actor)
        session.commit()
        return 201, out

    status, payload = run_idempotent(
        session, principal.actor, idempotency_key, "POST /rules", body, action
    )
    return JSONResponse(payload, status_code=status)


@router.get("/rules/{key}", response_model=RuleOut)
def get_rule(key: str, session: SessionDep, _: Reader) -> Response:
    return _answer(service.get_rule(session, key))


@router.put("/rules/{key}", response_model=RuleOut)
def put_rule(key: str, body: dict[str, Any], session: SessionDep, principal: Editor) -> Response:
    """Replace the rule (or add it under this key). Purchases already made keep the version
    that priced them."""
    out = service.put_rule(session, key, body, principal.actor)
    session.commit()
    return _answer(out)


@router.delete("/rules/{key}", status_code=204)
def delete_rule(key: str, session: SessionDep, principal: Editor) -> Response:
    """Take the rule out of the programme (its history stays)."""
    service.delete_rule(session, key, principal.actor)
    session.commit()
    return Response(status_code=204)


@router.get("/rules/{key}/versions", response_model=RuleVersionPage)
def rule_versions(key: str, session: SessionDep, _: Reader) -> Response:
    """Every definition the rule has had, newest first."""
    return _answer(
        {
            "items": [_version_json(v) for v in service.rule_history(session, key)],
            "next_cursor": None,
        }
    )


@router.get("/campaigns", response_model=CampaignPage)
def list_campaigns(session: SessionDep, _: Reader) -> Response:
    """Campaigns with their schedule, budget, spend so far and the rules in them."""
    return _answer({"items": service.campaigns(session), "next_cursor": None})


@router.get("/campaigns/{code}", response_model=CampaignOut)
def get_campaign(code: str, session: SessionDep, _: Reader) -> Response:
    return _answer(service.campaign_report(session, code))


@router.put("/campaigns/{code}", response_model=CampaignOut)
def put_campaign(
    code: str, body: dict[str, Any], session: SessionDep, principal: Editor
) -> Response:
    out = service.put_campaign(session, code, body, principal.actor)
    session.commit()
    return _answer(out)


@router.delete("/campaigns/{code}", status_code=204)
def delete_campaign(code: str, session: SessionDep, principal: Editor) -> Response:
    service.delete_campaign(session, code, principal.actor)
    session.commit()
    return Response(status_code=204)


# ---------------------------------------------------------------------------- simulate


class HypotheticalMember(BaseModel):
    """A member who need not exist, for "what would a gold member with a birthday get"."""

    model_config = ConfigDict(extra="forbid")
    tier: Annotated[str | None, Field(max_length=32)] = None
    tags: list[Annotated[str, Field(max_length=64)]] = []
    birth_date: Day | None = None
    joined_at: Timestamp | None = None
    purchases_count: Annotated[int, Field(ge=0)] = 0
    lifetime_spend: Annotated[Decimal, Field(ge=0, max_digits=17, decimal_places=2)] = Decimal(0)
    personal_discount: Annotated[Decimal | None, Field(gt=0, le=100, decimal_places=4)] = None


class SimulateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    receipt: dict[str, Any] | None = None
    receipts: Annotated[list[dict[str, Any]], Field(max_length=100)] | None = None
    member_context: HypotheticalMember | None = None
    # a draft: a whole programme (as the programme file's mapping) or only new rules
    program: dict[str, Any] | None = None
    rules: list[dict[str, Any]] | None = None


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
        _, doc = service.current_document(session)
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


@router.post("/rules/simulate", response_model=SimulationOut | SimulationPage)
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
        results.append(purchases.simulate(session, receipt, principal, program, hypo))
    if body.receipt is not None:
        return _answer(results[0])
    return _answer({"items": results})
