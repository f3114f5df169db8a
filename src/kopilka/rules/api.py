"""Rules and campaigns over HTTP: read, create, change, remove (each change a new programme
version; a rule's history is kept) and the JSON Schema. The dry-run simulation,
``POST /rules/simulate``, runs receipts through the purchases' figuring, so it is theirs
(``kopilka.purchases.api``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Response
from fastapi.responses import JSONResponse

from kopilka.core.auth import SessionDep, require
from kopilka.core.idempotency import run_idempotent
from kopilka.core.principal import Principal
from kopilka.core.responses import pydantic_json as _answer
from kopilka.rules import service
from kopilka.rules.schemas import (
    CampaignOut,
    CampaignPage,
    RuleOut,
    RulePage,
    RulesSchemaOut,
    RuleVersionPage,
)
from kopilka.spec.rules import rules_json_schema

router = APIRouter(tags=["rules"])

Reader = Annotated[Principal, Depends(require("admin", "manager", "analyst"))]
Editor = Annotated[Principal, Depends(require("admin", "manager"))]
IdemKey = Annotated[str | None, Header()]

# The answers are the rule language's normalised documents, rendered as the service builds
# them under the models they declare (see ``rules/schemas.py``), by pydantic as they always
# were (a raw definition's numbers keep their form): ``_answer``.


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
