"""The programme over HTTP: read the programme in force, apply a new one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from kopilka.core.auth import SessionDep, require
from kopilka.core.principal import Principal
from kopilka.program import service
from kopilka.program.schemas import AppliedOut

router = APIRouter(prefix="/program", tags=["program"])

Reader = Annotated[Principal, Depends(require("admin", "manager", "analyst"))]
Admin = Annotated[Principal, Depends(require("admin", "manager"))]


@router.get("", response_class=PlainTextResponse)
def export(session: SessionDep, _: Reader) -> str:
    """The programme in force as YAML (the same text `kopilka program export` prints)."""
    return service.export_program(session)


@router.put("", response_model=AppliedOut)
async def apply(request: Request, session: SessionDep, principal: Admin) -> dict[str, Any]:
    """Apply a programme file (YAML or JSON body). Same file twice: ``changed`` is false."""
    text = (await request.body()).decode("utf-8", errors="replace")

    def work() -> service.ApplyResult:
        spec = service.parse_program(text)
        result = service.apply_program(session, spec, principal.actor)
        session.commit()
        return result

    result = await run_in_threadpool(work)
    return {"version": result.version, "changed": result.changed, "digest": result.digest}
