"""``GET /api/v1/reports/...``: the dashboards' figures for BI tools, as JSON or CSV."""

from __future__ import annotations

import csv
import io
import zoneinfo
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from kopilka.core.auth import SessionDep, require
from kopilka.core.db import now
from kopilka.core.principal import Principal
from kopilka.program.service import current_program
from kopilka.reports import service
from kopilka.reports.rollup import last_run
from kopilka.reports.schemas import ReportIndexOut, ReportOut

router = APIRouter(prefix="/reports", tags=["reports"])

Analyst = Annotated[Principal, Depends(require("admin", "manager", "analyst"))]


def to_csv(report: service.Report) -> str:
    """The report's rows as CSV (comma-separated, a header line, UTF-8)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(report.columns)
    for item in report.items():
        writer.writerow(["" if item[c] is None else item[c] for c in report.columns])
    return buf.getvalue()


def csv_response(report: service.Report) -> Response:
    name = f"kopilka-{report.name}-{report.filters.start}-{report.filters.end}.csv"
    return Response(
        to_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def wants_csv(request: Request, fmt: str | None) -> bool:
    if fmt is not None:
        return fmt == "csv"
    return "text/csv" in request.headers.get("accept", "")


@router.get("", response_model=ReportIndexOut)
def index(session: SessionDep, _: Analyst) -> dict[str, Any]:
    """The reports there are, and when the rollup last ran."""
    ran = last_run(session)
    return {
        "reports": service.names(),
        "rolled_up_at": ran.isoformat() if ran else None,
    }


@router.get(
    "/{name}",
    response_model=ReportOut,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def report(
    name: str,
    request: Request,
    session: SessionDep,
    _: Analyst,
    start: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=10)] = None,
    store: Annotated[str | None, Query(max_length=64)] = None,
    channel: Annotated[str | None, Query(max_length=8)] = None,
    tier: Annotated[str | None, Query(max_length=32)] = None,
    grain: Annotated[str | None, Query(max_length=5)] = None,
    format: Annotated[str | None, Query(pattern="^(json|csv)$")] = None,
) -> Response:
    """One report: ``acquisition``, ``active``, ``receipts``, ``points``, ``liability``,
    ``cohorts``, ``tiers``, ``tier_movement``, ``campaigns`` or ``roi``; filters
    ``from``/``to`` (local dates, inclusive), ``store``, ``channel``, ``tier``, ``grain``
    (day, week, month). The answer's ``ignored_filters`` names the filters given that the
    report does not apply. ``format=csv`` (or ``Accept: text/csv``) answers the rows as
    CSV."""
    program = current_program(session).spec

    today = now().astimezone(zoneinfo.ZoneInfo(program.timezone)).date()
    f = service.parse_filters(
        program,
        today,
        start=start,
        end=end,
        store=store,
        channel=channel,
        tier=tier,
        grain=grain,
    )
    result = service.run(session, name, f)
    if wants_csv(request, format):
        return csv_response(result)
    return JSONResponse(result.as_json())
