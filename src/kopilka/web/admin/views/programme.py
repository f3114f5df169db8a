"""The programme screen: the file in force, a draft checked and simulated, applied."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from kopilka.console import service as console
from kopilka.console.simulate import sample_receipt, simulate
from kopilka.core.errors import Problem
from kopilka.program import service as program
from kopilka.program.queries import recent_versions
from kopilka.program.service import current_program, export_program
from kopilka.web.admin.views.shared import SessionDep, UserDep, check_csrf, page

router = APIRouter()


def _programme_page(
    request: Request, session: Session, user: console.Current, status: int = 200, **extra: Any
) -> HTMLResponse:
    p = page(request, user, "programme.view", session)
    try:
        text = export_program(session)
        spec = current_program(session).spec
        receipt = sample_receipt(spec)
    except Problem:
        text, receipt = "", "{}"
    versions = recent_versions(session, limit=20)
    data = {
        "yaml": text,
        "draft": text,
        "receipt": receipt,
        "versions": versions,
        "errors": None,
        "result": None,
        "simulation": None,
        "done": request.query_params.get("done"),
    }
    data.update(extra)
    return p.render("programme.html", status, **data)


@router.get("/programme")
def programme(request: Request, session: SessionDep, user: UserDep) -> HTMLResponse:
    return _programme_page(request, session, user)


async def _draft_text(draft: str | None, file: UploadFile | None) -> str:
    if file is not None and file.filename:
        raw = await file.read(1_000_001)
        if len(raw) > 1_000_000:
            raise Problem(
                422,
                "program_invalid",
                errors=[{"field": "$", "code": "size", "message": "at most 1 MB"}],
            )
        return raw.decode("utf-8", errors="replace")
    return draft or ""


@router.post("/programme")
async def programme_action(
    request: Request,
    session: SessionDep,
    user: UserDep,
    csrf: Annotated[str, Form(max_length=200)],
    action: Annotated[str, Form(max_length=16)],
    draft: Annotated[str | None, Form(max_length=1_000_000)] = None,
    receipt: Annotated[str | None, Form(max_length=100_000)] = None,
    file: UploadFile | None = None,
) -> Response:
    """``action``: ``simulate`` (validate the draft and dry-run its rules on the sample
    receipt) or ``publish`` (apply it as the new version, audited with before/after)."""
    check_csrf(user, csrf)
    need = "programme.apply" if action == "publish" else "programme.view"
    page(request, user, need)
    text = await _draft_text(draft, file)

    def work() -> Response:
        try:
            spec = program.parse_program(text)
            if action == "publish":
                # apply_program writes the audit row (versions and what changed)
                result = program.apply_program(session, spec, user.actor)
                session.commit()
                done = "applied" if result.changed else "unchanged"
                return RedirectResponse(
                    f"/admin/programme?done={done}:{result.version}", status_code=303
                )
            sim = simulate(spec, receipt or "{}")
        except Problem as exc:
            session.rollback()
            return _programme_page(
                request,
                session,
                user,
                422,
                draft=text,
                receipt=receipt or "{}",
                errors=exc.errors or [{"field": "$", "message": exc.detail or exc.code}],
            )
        return _programme_page(
            request, session, user, draft=text, receipt=receipt or "{}", simulation=sim
        )

    return await run_in_threadpool(work)
