"""The audit log screen."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from kopilka.audit.queries import newest_entries
from kopilka.core.dates import timestamp_error
from kopilka.web.admin.views.shared import SessionDep, UserDep, page

router = APIRouter()


@router.get("/audit")
def audit(request: Request, session: SessionDep, user: UserDep) -> HTMLResponse:
    p = page(request, user, "audit", session)
    qp = request.query_params
    before: dt.datetime | None = None
    if qp.get("before"):
        with contextlib.suppress(ValueError):
            moment = dt.datetime.fromisoformat(qp["before"])
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
            if timestamp_error(moment) is None:  # else ignored, as what does not parse is
                before = moment
    rows = newest_entries(
        session,
        action_prefix=qp.get("action") or None,
        target_id=qp.get("target") or None,
        actor=qp.get("actor") or None,
        before=before,
        limit=51,
    )
    more = rows[50].occurred_at.isoformat() if len(rows) > 50 else None
    base = {k: v for k, v in qp.items() if k in ("action", "target", "actor")}
    return p.render(
        "audit.html",
        entries=rows[:50],
        filters=base,
        next_url=("/admin/audit?" + urlencode({**base, "before": more})) if more else None,
        as_json=lambda v: json.dumps(v, ensure_ascii=False, indent=1, sort_keys=True),
    )
