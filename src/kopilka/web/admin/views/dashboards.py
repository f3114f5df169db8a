"""Dashboards and their CSV reports."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from sqlalchemy.orm import Session

from kopilka.core.db import now
from kopilka.core.errors import Problem
from kopilka.program.service import current_program
from kopilka.reports import service as reports
from kopilka.reports.api import csv_response
from kopilka.reports.rollup import last_run
from kopilka.web.admin import charts, i18n
from kopilka.web.admin.views.shared import PageError, SessionDep, UserDep, page, problem_text

router = APIRouter()


def _filters(request: Request, session: Session) -> tuple[Any, Any]:
    spec = current_program(session).spec
    today = now().astimezone(zoneinfo.ZoneInfo(spec.timezone)).date()
    qp = request.query_params
    f = reports.parse_filters(
        spec,
        today,
        start=qp.get("from"),
        end=qp.get("to"),
        store=qp.get("store"),
        channel=qp.get("channel"),
        tier=qp.get("tier"),
        grain=qp.get("grain"),
    )
    return spec, f


def _label(b: dt.date, grain: str, lang: str) -> str:
    if grain == "month":
        return b.strftime("%m.%Y" if lang == "ru" else "%Y-%m")
    return b.strftime("%d.%m" if lang == "ru" else "%m-%d")


@router.get("/dashboards")
def dashboards(request: Request, session: SessionDep, user: UserDep) -> HTMLResponse:
    p = page(request, user, "dashboards", session)
    try:
        spec, f = _filters(request, session)
    except Problem as exc:
        return p.render(
            "error.html",
            422,
            message="; ".join(f"{e['field']}: {e['message']}" for e in exc.errors or [])
            or problem_text(p, exc),
        )
    out = {name: reports.run(session, name, f) for name in reports.REPORTS}
    t = p.t
    labels = [_label(b, f.grain, p.lang) for b in f.buckets()]

    def num(v: Decimal) -> str:
        return i18n.fmt_number(v, p.lang, 0 if abs(v) >= 100 or v == v.to_integral_value() else 2)

    def pct(v: Decimal) -> str:
        return i18n.fmt_percent(v, p.lang, 0)

    rec = out["receipts"]
    pts = out["points"]
    liab = out["liability"]
    coh = out["cohorts"]
    charts_: dict[str, Markup] = {
        "acquisition": charts.bar_chart(
            "acquisition",
            t("acquisition"),
            labels,
            [charts.Series(t("members"), [r[1] for r in out["acquisition"].rows])],
            num,
        ),
        "card_share": charts.line_chart(
            "card-share",
            t("card_share"),
            labels,
            [charts.Series(t("card_share"), [r[3] for r in rec.rows])],
            pct,
        ),
        "avg_receipt": charts.line_chart(
            "avg-receipt",
            t("avg_receipt"),
            labels,
            [
                charts.Series(t("avg_members"), [r[6] for r in rec.rows]),
                charts.Series(t("avg_anonymous"), [r[7] for r in rec.rows]),
            ],
            num,
        ),
    }
    for cur in spec.currencies:
        rows = [r for r in pts.rows if r[1] == cur.code]
        charts_[f"points_{cur.code}"] = charts.bar_chart(
            f"points-{cur.code}",
            f"{t('points')} {cur.code}",
            labels,
            [
                charts.Series(t("issued"), [r[2] for r in rows]),
                charts.Series(t("redeemed"), [r[3] for r in rows]),
                charts.Series(t("expired"), [r[4] for r in rows]),
            ],
            num,
        )
    charts_["liability"] = charts.line_chart(
        "liability",
        t("liability"),
        labels,
        [
            charts.Series(cur.code, [r[3] for r in liab.rows if r[1] == cur.code])
            for cur in spec.currencies
            if cur.value > 0
        ],
        num,
    )
    cohorts_rows = sorted({r[0] for r in coh.rows})
    horizon = max([r[2] for r in coh.rows], default=0) + 1
    grid = [
        [next((r[4] for r in coh.rows if r[0] == c and r[2] == k), None) for k in range(horizon)]
        for c in cohorts_rows
    ]
    charts_["cohorts"] = charts.heatmap(
        "cohorts",
        t("cohorts"),
        [_label(c, "month", p.lang) for c in cohorts_rows],
        [str(k) for k in range(horizon)],
        grid,
        pct,
    )
    tiers_rep = out["tiers"]
    charts_["tiers"] = charts.bar_chart(
        "tiers",
        t("tiers"),
        [r[0] or t("no_tier") for r in tiers_rep.rows],
        [charts.Series(t("members"), [r[1] for r in tiers_rep.rows])],
        num,
    )
    moves = out["tier_movement"]
    charts_["tier_movement"] = charts.bar_chart(
        "tier-movement",
        t("tier_movement"),
        labels,
        [
            charts.Series(t("upgrades"), [r[2] for r in moves.rows]),
            charts.Series(t("downgrades"), [r[3] for r in moves.rows]),
            charts.Series(t("manual_changes"), [r[4] for r in moves.rows]),
            charts.Series(t("program_changed_changes"), [r[5] for r in moves.rows]),
        ],
        num,
        stacked=True,
    )
    camp = out["campaigns"]
    col = {c: i for i, c in enumerate(camp.columns)}
    camp_labels = [str(r[col["name"]] or r[col["campaign"]]) for r in camp.rows]
    charts_["campaign_cost"] = charts.bar_chart(
        "campaign-cost",
        t("campaign_cost"),
        camp_labels,
        [
            charts.Series(t("points_value"), [r[col["points_value"]] for r in camp.rows]),
            charts.Series(t("discounts"), [r[col["discounts"]] for r in camp.rows]),
        ],
        num,
        stacked=True,
    )
    charts_["campaign_lift"] = charts.diverging_bars(
        "campaign-lift",
        t("campaign_lift"),
        camp_labels,
        [r[col["lift"]] for r in camp.rows],
        pct,
    )
    campaign_rows = [dict(zip(camp.columns, r, strict=True)) for r in camp.rows]
    roi = out["roi"].summary
    charts_["roi"] = charts.interval_chart(
        "roi", t("roi"), roi.get("roi"), roi.get("roi_low"), roi.get("roi_high"), pct
    )
    query = {
        k: v
        for k, v in request.query_params.items()
        if k in ("from", "to", "store", "channel", "tier", "grain")
    }
    return p.render(
        "dashboards.html",
        f=f,
        spec=spec,
        out=out,
        charts=charts_,
        campaigns=campaign_rows,
        ignored={name: rep.ignored_filters() for name, rep in out.items()},
        tier_names={lv.code: lv.name for lv in spec.tiers.levels} if spec.tiers else {},
        tiers=reports.known_tiers(session),
        query=urlencode(query),
        rolled_up_at=last_run(session),
    )


@router.get("/reports/{name}.csv")
def report_csv(request: Request, name: str, session: SessionDep, user: UserDep) -> Response:
    page(request, user, "dashboards")
    try:
        _, f = _filters(request, session)
        return csv_response(reports.run(session, name, f))
    except Problem as exc:
        raise PageError(
            exc.status, "not_found" if exc.status == 404 else exc.code, exc.detail
        ) from exc
