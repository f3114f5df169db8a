"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from kopilka.core.db import get_db
from kopilka.core.migrate import current_revision, head_revision
from kopilka.health.schemas import LiveOut, ReadyOut

router = APIRouter(tags=["health"])


@router.get("/health/live", response_model=LiveOut)
def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/health/ready",
    response_model=ReadyOut,
    responses={503: {"model": ReadyOut, "description": "Not ready: the checks say why"}},
)
def ready() -> JSONResponse:
    """200 only when the database answers and its schema is at the code's revision."""
    db = get_db()
    checks: dict[str, str] = {}
    ok = True
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
            current = current_revision(conn)
    except Exception:
        checks["database"] = "unreachable"
        return JSONResponse({"status": "unavailable", "checks": checks}, status_code=503)
    head = head_revision()
    if current != head:
        ok = False
        checks["schema"] = f"at {current or 'nothing'}, code needs {head}: run `kopilka migrate`"
    else:
        checks["schema"] = "ok"
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks},
        status_code=200 if ok else 503,
    )
