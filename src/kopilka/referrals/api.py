"""HTTP endpoints of the referrals: a member's friends, the staff's list and review queue."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from kopilka.core.auth import SessionDep, require
from kopilka.core.principal import Principal
from kopilka.referrals import report as referral_report
from kopilka.referrals import service
from kopilka.referrals.schemas import (
    ApproveIn,
    ReferralList,
    ReferralOut,
    ReferralPage,
    ReferralReportOut,
    RejectIn,
)

router = APIRouter(tags=["referrals"])
# The report, beside the other reports' URLs: included before the reports' router, whose
# ``/reports/{name}`` would take ``referrals`` for a report of its own.
reports_router = APIRouter(prefix="/reports", tags=["reports"])

# A member sees their own friends (masked names); only staff see and review the rest.
FriendsReader = Annotated[
    Principal, Depends(require("admin", "manager", "analyst", "support", "member"))
]
Staff = Annotated[Principal, Depends(require("admin", "manager", "analyst", "support"))]
Reviewer = Annotated[Principal, Depends(require("admin", "manager", "support"))]
Analyst = Annotated[Principal, Depends(require("admin", "manager", "analyst"))]

Status = Literal["joined", "qualified", "rewarded", "rejected", "reversed"]
Review = Literal["none", "pending", "approved", "rejected"]


@router.get("/members/{member_id}/referrals", response_model=ReferralList)
def member_referrals(member_id: uuid.UUID, session: SessionDep, _: FriendsReader) -> dict[str, Any]:
    """The friends a member invited, newest first, each with its status, the reason of a
    rejection or reversal, and the member's own rewards for it."""
    return {"items": service.friends_of(session, member_id)}


@router.get("/referrals", response_model=ReferralPage)
def list_referrals(
    session: SessionDep,
    _: Staff,
    status: Status | None = None,
    review: Review | None = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Referrals newest first; ``review=pending`` is the review queue."""
    items, nxt = service.list_referrals(
        session, status=status, review=review, cursor=cursor, limit=limit
    )
    return {"items": items, "next_cursor": nxt}


@router.get("/referrals/{referral_id}", response_model=ReferralOut)
def get_referral(referral_id: uuid.UUID, session: SessionDep, _: Staff) -> dict[str, Any]:
    return service.referral_json(session, [service.get_referral(session, referral_id)])[0]


@router.post("/referrals/{referral_id}/approve", response_model=ReferralOut)
def approve(
    referral_id: uuid.UUID, session: SessionDep, principal: Reviewer, body: ApproveIn | None = None
) -> dict[str, Any]:
    """Approve a flagged referral (409 ``referral_not_in_review`` unless it waits for a
    review): a qualified one gets its rewards now, pending until its hold ends."""
    ref = service.approve(session, referral_id, principal.actor, body.note if body else None)
    session.commit()
    return service.referral_json(session, [ref])[0]


@router.post("/referrals/{referral_id}/reject", response_model=ReferralOut)
def reject(
    referral_id: uuid.UUID, body: RejectIn, session: SessionDep, principal: Reviewer
) -> dict[str, Any]:
    """Reject a flagged referral with a reason: nothing is given, pending rewards are
    taken back."""
    ref = service.reject(session, referral_id, principal.actor, body.reason)
    session.commit()
    return service.referral_json(session, [ref])[0]


def csv_response(rep: referral_report.ReferralReport) -> Response:
    """The report as a CSV file for spreadsheets (UTF-8 with a BOM, ``;``, CRLF)."""
    return Response(
        rep.to_csv(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{rep.csv_name()}"'},
    )


PeriodFrom = Annotated[str | None, Query(alias="from", max_length=10)]
PeriodTo = Annotated[str | None, Query(alias="to", max_length=10)]


@reports_router.get(
    "/referrals",
    response_model=ReferralReportOut,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def referrals_report(
    session: SessionDep,
    _: Analyst,
    start: PeriodFrom = None,
    end: PeriodTo = None,
    format: Annotated[Literal["json", "csv"] | None, Query()] = None,
) -> Any:
    """The referrals' funnel by ISO week (links opened → joined → qualified → rewarded),
    rejections and reversals by reason, the cost of the rewards in money and the revenue
    of referred members against the others, for ``from``/``to`` (local dates, inclusive;
    the 90 days up to today by default). ``format=csv``: the same as CSV."""
    rep = referral_report.build(session, referral_report.period_of(session, start, end))
    if format == "csv":
        return csv_response(rep)
    return rep.as_json()


@reports_router.get(
    "/referrals.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def referrals_report_csv(
    session: SessionDep, _: Analyst, start: PeriodFrom = None, end: PeriodTo = None
) -> Response:
    """The referrals' report as CSV (UTF-8 with a BOM, ``;`` between fields, CRLF)."""
    rep = referral_report.build(session, referral_report.period_of(session, start, end))
    return csv_response(rep)
