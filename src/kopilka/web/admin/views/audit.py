"""The audit log screen."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from kopilka.audit.models import AuditEntry
from kopilka.core.dates import timestamp_error
from kopilka.web.admin.views.shared import SessionDep, UserDep, page

router = APIRouter()


@router.get("/audit")
def audit(request: Request, session: SessionDep, user: UserDep) -> HTMLResponse:
    p = page(request, user, "audit", session)
    qp = request.query_params
    q = select(AuditEntry).order_by(AuditEntry.occurred_at.desc(), AuditEntry.id.desc())
    if qp.get("action"):
        q = q.where(AuditEntry.action.like(qp["action"].replace("%", "") + "%"))
    if qp.get("target"):
        q = q.where(AuditEntry.target_id == qp["target"])
    if qp.get("actor"):
        q = q.where(AuditEntry.actor == qp["actor"])
    if qp.get("before"):
        with contextlib.suppress(ValueError):
            before = dt.datetime.fromisoformat(qp["before"])
            if before.tzinfo is None:
                before = before.replace(tzinfo=dt.UTC)
            if timestamp_error(before) is None:  # else ignored, as what does not parse is
                q = q.where(AuditEntry.occurred_at < before)
    rows = list(session.execute(q.limit(51)).scalars())
    more = rows[50].occurred_at.isoformat() if len(rows) > 50 else None
    base = {k: v for k, v in qp.items() if k in ("action", "target", "actor")}
    return p.render(
        "audit.html",
        entries=rows[:50],
        filters=base,
        next_url=("/admin/audit?" + urlencode({**base, "before": more})) if more else None,
        as_json=lambda v: json.dumps(v, ensure_ascii=False, indent=1, sort_keys=True),
    )
