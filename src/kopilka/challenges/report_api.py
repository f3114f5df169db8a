"""HTTP endpoints of the challenges for analysts and managers: the report
(``GET /api/v1/reports/challenges``, ``.csv``) and the simulation of a drafted challenge
over the past's receipts (``POST /api/v1/challenges/simulate``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from kopilka.challenges import console_report as challenge_report
from kopilka.challenges import drafts
from kopilka.challenges import simulate as simulation
from kopilka.challenges.console_schemas import ChallengeReportOut, SimulationOut
from kopilka.core.auth import SessionDep, require
from kopilka.core.dates import Day
from kopilka.core.principal import Principal
from kopilka.program.service import current_program

# The report, beside the other reports' URLs: included before the reports' router, whose
# ``/reports/{name}`` would take ``challenges`` for a report of its own.
reports_router = APIRouter(prefix="/reports", tags=["reports"])
router = APIRouter(tags=["challenges"])

Analyst = Annotated[Principal, Depends(require("admin", "manager", "analyst"))]
PeriodFrom = Annotated[str | None, Query(alias="from", max_length=10)]
PeriodTo = Annotated[str | None, Query(alias="to", max_length=10)]


def csv_response(rep: challenge_report.ChallengeReport) -> Response:
    """The report as a CSV file for spreadsheets (UTF-8 with a BOM, ``;``, CRLF)."""
    return Response(
        rep.to_csv(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{rep.csv_name()}"'},
    )


@reports_router.get(
    "/challenges",
    response_model=ChallengeReportOut,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def challenges_report(
    session: SessionDep,
    _: Analyst,
    start: PeriodFrom = None,
    end: PeriodTo = None,
    format: Annotated[Literal["json", "csv"] | None, Query()] = None,
) -> Any:
    """Per challenge, for ``from``/``to`` (local dates, inclusive; the 90 days up to today
    by default): members joined and completed, the completion rate, the rewards' cost in
    money, and the spend of participants against comparable non-participants (members in
    the same decile of spend in the equal window before). ``format=csv``: as CSV."""
    rep = challenge_report.build(session, challenge_report.period_of(session, start, end))
    if format == "csv":
        return csv_response(rep)
    return rep.as_json()


@reports_router.get(
    "/challenges.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def challenges_report_csv(
    session: SessionDep, _: Analyst, start: PeriodFrom = None, end: PeriodTo = None
) -> Response:
    """The challenges' report as CSV (UTF-8 with a BOM, ``;`` between fields, CRLF)."""
    rep = challenge_report.build(session, challenge_report.period_of(session, start, end))
    return csv_response(rep)


class SimulateIn(BaseModel):
    """A challenge as the programme file writes it, and the local days to replay
    (default: the challenge's last full period, or the last 30 days)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=False)

    challenge: dict[str, Any]
    start: Annotated[Day | None, Field(alias="from")] = None
    end: Annotated[Day | None, Field(alias="to")] = None


@router.post("/challenges/simulate", response_model=SimulationOut)
def simulate_challenge(body: SimulateIn, session: SessionDep, _: Analyst) -> Any:
    """What the challenge would have done over the range's confirmed receipts (after
    their returns): members of its audience who bought, progressed and completed it (and
    each step), and its rewards' cost. Validated as in the programme file (422
    ``program_invalid`` naming ``challenge.…``); goals not counted from receipts: 422
    ``challenge_not_simulated``. Changes nothing."""
    spec = current_program(session).spec
    draft = drafts.with_challenge(spec, body.challenge, prefix="challenge.")
    simulation.simulatable(draft.challenge, "challenge.goal.count")
    sim = simulation.run(session, draft.spec, draft.challenge, body.start, body.end)
    return simulation.as_json(session, draft.spec, draft.challenge, sim)
