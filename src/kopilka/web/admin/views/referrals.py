"""Referrals: the dashboard (the funnel by week, rejections by reason, the rewards' cost,
the revenue of referred members against the others, the CSV) and the review queue of
flagged referrals, approved or rejected with a reason (``referrals.service``, audited
there)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from itertools import pairwise
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from kopilka.console import service as console
from kopilka.core.errors import Problem
from kopilka.referrals import report as referral_report
from kopilka.referrals import service as referrals
from kopilka.referrals.api import csv_response
from kopilka.web.admin import charts, i18n
from kopilka.web.admin.views.shared import (
    Page,
    PageError,
    SessionDep,
    UserDep,
    check_csrf,
    page,
    problem_message,
)

router = APIRouter()

STEPS = ("links_opened", "joined", "qualified", "rewarded")


def _page(request: Request, user: console.Current, session: Session) -> Page:
    """The screen's page: for those who may see the dashboard or review referrals."""
    p = page(request, user, None, session)
    if not (p.can("referrals.dashboard") or p.can("referrals.review")):
        raise PageError(403, "forbidden")
    return p


def _dashboard(p: Page, request: Request, session: Session) -> dict[str, Any]:
    qp = request.query_params
    period = referral_report.period_of(session, qp.get("from"), qp.get("to"))
    rep = referral_report.build(session, period)
    t = p.t

    def num(v: Decimal) -> str:
        return i18n.fmt_number(v, p.lang, 0 if v == v.to_integral_value() else 2)

    labels = [i18n.fmt_day(w["week_start"], p.lang)[:5] for w in rep.weeks]
    funnel = charts.bar_chart(
        "referral-funnel",
        t("referral_funnel"),
        labels,
        [charts.Series(t(f"step_{k}"), [w[k] for w in rep.weeks]) for k in STEPS],
        num,
    )
    groups = ("referred", "others")
    revenue = charts.bar_chart(
        "referral-revenue",
        t("revenue_per_member"),
        [t(f"group_{g}") for g in groups],
        [
            charts.Series(
                t("revenue_per_member"),
                [Decimal(rep.revenue[g]["revenue_per_member"] or 0) for g in groups],
            )
        ],
        num,
    )
    totals = rep.totals
    conversion = {k: referral_report.rate(totals[k], totals[prev]) for prev, k in pairwise(STEPS)}
    return {
        "rep": rep,
        "charts": {"funnel": funnel, "revenue": revenue},
        "conversion": conversion,
        "query": urlencode({"from": period.start.isoformat(), "to": period.end.isoformat()}),
    }


def _screen(
    request: Request,
    session: Session,
    user: console.Current,
    status: int = 200,
    error: str | None = None,
) -> HTMLResponse:
    p = _page(request, user, session)
    data: dict[str, Any] = {}
    if p.can("referrals.dashboard"):
        try:
            data = _dashboard(p, request, session)
        except Problem as exc:
            return p.render("error.html", 422, message=problem_message(p, exc))
    queue = referrals.review_queue(session) if p.can("referrals.review") else []
    return p.render(
        "referrals.html",
        status,
        queue=queue,
        done=request.query_params.get("done"),
        error=error,
        **data,
    )


@router.get("/referrals")
def referrals_screen(request: Request, session: SessionDep, user: UserDep) -> HTMLResponse:
    """The dashboard (``from``/``to``: local dates) and the review queue."""
    return _screen(request, session, user)


@router.get("/referrals.csv")
def referrals_csv(request: Request, session: SessionDep, user: UserDep) -> Response:
    page(request, user, "referrals.dashboard")
    qp = request.query_params
    try:
        period = referral_report.period_of(session, qp.get("from"), qp.get("to"))
    except Problem as exc:
        raise PageError(exc.status, exc.code, exc.detail) from exc
    return csv_response(referral_report.build(session, period))


def _done(done: str) -> RedirectResponse:
    return RedirectResponse(f"/admin/referrals?done={done}#review", status_code=303)


@router.post("/referrals/{referral_id}/approve")
def referral_approve(
    request: Request,
    referral_id: uuid.UUID,
    session: SessionDep,
    user: UserDep,
    csrf: Annotated[str, Form(max_length=200)],
    note: Annotated[str | None, Form(max_length=500)] = None,
) -> Response:
    check_csrf(user, csrf)
    p = page(request, user, "referrals.review")
    try:
        referrals.approve(session, referral_id, user.actor, (note or "").strip() or None)
        session.commit()
    except Problem as exc:
        session.rollback()
        if exc.status == 404:
            raise PageError(404, "not_found") from exc
        return _screen(request, session, user, exc.status, problem_message(p, exc))
    return _done("referral_approved")


@router.post("/referrals/{referral_id}/reject")
def referral_reject(
    request: Request,
    referral_id: uuid.UUID,
    session: SessionDep,
    user: UserDep,
    csrf: Annotated[str, Form(max_length=200)],
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    check_csrf(user, csrf)
    p = page(request, user, "referrals.review")
    if len(reason.strip()) < 3:
        return _screen(request, session, user, 422, p.t("referral_reason_needed"))
    try:
        referrals.reject(session, referral_id, user.actor, reason.strip())
        session.commit()
    except Problem as exc:
        session.rollback()
        if exc.status == 404:
            raise PageError(404, "not_found") from exc
        return _screen(request, session, user, exc.status, problem_message(p, exc))
    return _done("referral_rejected")
