"""Challenges: the list of the programme's challenges with their figures
(``challenges.report``: joined, completed, the rate, the rewards' cost, participants'
spend against comparable members, the CSV), and the form that drafts a challenge, checks
it as the programme file is checked (errors beside their fields), simulates it over the
past's receipts (``challenges.simulate``), shows what the programme would change, and
publishes it as a new programme version on confirmation (``program.service
.apply_program``, which audits it)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from kopilka.challenges import console_report as challenge_report
from kopilka.challenges import drafts
from kopilka.challenges import simulate as simulation
from kopilka.challenges.report_api import csv_response
from kopilka.core.errors import Problem
from kopilka.program import service as program
from kopilka.program.service import current_program
from kopilka.spec.challenges import ChallengeSpec
from kopilka.spec.program import ProgramSpec
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

# The form's fields, in order (all text; empty: not given).
FIELDS = (
    "code",
    "name_ru",
    "name_en",
    "count",
    "target",
    "categories",
    "skus",
    "min_receipt",
    "stores",
    "channels",
    "event_type",
    "period_kind",
    "every",
    "period_from",
    "period_to",
    "period_days",
    "join",
    "tiers",
    "tags",
    "reward_currency",
    "reward_amount",
    "coupon_pool",
    "badge",
    "hold_days",
    "steps",
    "streak_every",
    "streak_length",
    "streak_grace",
    "sim_from",
    "sim_to",
)
DEFAULTS = {
    "count": "purchases",
    "period_kind": "every",
    "every": "week",
    "join": "auto",
    "hold_days": "0",
    "streak_every": "week",
    "streak_grace": "0",
}

# A path of the challenge's document (as ``drafts.relative`` says it) → the form's field;
# the longest prefix wins.
FIELD_OF = {
    "code": "code",
    "name": "name_ru",
    "name.ru": "name_ru",
    "name.en": "name_en",
    "goal": "target",
    "goal.count": "count",
    "goal.target": "target",
    "goal.where": "count",
    "goal.where.lines": "categories",
    "goal.where.lines.categories": "categories",
    "goal.where.lines.skus": "skus",
    "goal.where.min_receipt": "min_receipt",
    "goal.where.stores": "stores",
    "goal.where.channels": "channels",
    "goal.where.event_type": "event_type",
    "period": "period_kind",
    "period.every": "every",
    "period.from": "period_from",
    "period.to": "period_to",
    "period.days": "period_days",
    "join": "join",
    "audience": "tiers",
    "audience.tiers": "tiers",
    "audience.tags": "tags",
    "reward": "reward_amount",
    "reward.currency": "reward_currency",
    "reward.amount": "reward_amount",
    "reward.coupon_pool": "coupon_pool",
    "reward.badge": "badge",
    "reward.hold_days": "hold_days",
    "steps": "steps",
    "streak": "streak_length",
    "streak.every": "streak_every",
    "streak.length": "streak_length",
    "streak.grace": "streak_grace",
    "sim_from": "sim_from",
    "from": "sim_from",
    "to": "sim_to",
}


def field_of(path: str) -> str | None:
    """The form's field an error's path belongs to (None: the challenge as a whole)."""
    bare = re.sub(r"\[\d+\]", "", path)
    parts = bare.split(".")
    while parts:
        key = ".".join(parts)
        if key in FIELD_OF:
            return FIELD_OF[key]
        parts.pop()
    return None


def _words(raw: str) -> list[str] | None:
    items = [w.strip() for w in raw.replace("\n", ",").split(",") if w.strip()]
    return items or None


class FormError(Exception):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors


def challenge_doc(form: Mapping[str, str]) -> dict[str, Any]:
    """The form → the challenge's document, as the programme file writes it (values left
    as text: the spec validates them). ``FormError`` for what only the form can get wrong
    (a ladder's line that is not ``target: amount``)."""
    f = {k: (form.get(k) or "").strip() for k in FIELDS}
    doc: dict[str, Any] = {"code": f["code"], "name": {"ru": f["name_ru"], "en": f["name_en"]}}
    where: dict[str, Any] = {}
    lines = {k: v for k in ("categories", "skus") if (v := _words(f[k]))}
    if lines:
        where["lines"] = lines
    if f["min_receipt"]:
        where["min_receipt"] = f["min_receipt"]
    if stores := _words(f["stores"]):
        where["stores"] = stores
    if channels := _words(f["channels"]):
        where["channels"] = channels
    if f["event_type"]:
        where["event_type"] = f["event_type"]
    goal: dict[str, Any] = {"count": f["count"]}
    if f["target"]:
        goal["target"] = f["target"]
    if where:
        goal["where"] = where
    doc["goal"] = goal
    kind = f["period_kind"]
    if kind == "every":
        doc["period"] = {"every": f["every"]}
    elif kind == "fixed":
        doc["period"] = {
            k: v for k, v in (("from", f["period_from"]), ("to", f["period_to"])) if v
        } or {"from": None}
    elif kind == "days":
        doc["period"] = {"days": f["period_days"]}
    doc["join"] = f["join"] or "auto"
    audience = {k: v for k in ("tiers", "tags") if (v := _words(f[k]))}
    if audience:
        doc["audience"] = audience
    reward: dict[str, Any] = {}
    if f["badge"]:
        reward["badge"] = f["badge"]
    if f["coupon_pool"]:
        reward["coupon_pool"] = f["coupon_pool"]
    if f["hold_days"] and f["hold_days"] != "0":
        reward["hold_days"] = f["hold_days"]
    if f["steps"]:
        steps = []
        errors = []
        if f["reward_amount"]:
            errors.append(
                {
                    "field": "reward.amount",
                    "code": "ladder",
                    "message": "with a ladder, each step's amount is written in the ladder",
                }
            )
        rows = [r.strip() for r in f["steps"].splitlines() if r.strip()]
        for i, row in enumerate(rows):
            target, sep, amount = row.partition(":")
            if not sep or not target.strip() or not amount.strip():
                errors.append(
                    {
                        "field": f"steps[{i}]",
                        "code": "format",
                        "message": f"line {i + 1}: write “target: amount”",
                    }
                )
                continue
            step_reward: dict[str, Any] = {
                "currency": f["reward_currency"] or None,
                "amount": amount.strip(),
            }
            if i == len(rows) - 1:  # a badge or a coupon: on the last step
                step_reward.update(reward)
            elif f["hold_days"] and f["hold_days"] != "0":
                step_reward["hold_days"] = f["hold_days"]
            steps.append({"target": target.strip(), "reward": step_reward})
        if errors:
            raise FormError(errors)
        doc["steps"] = steps
    else:
        if f["reward_currency"] or f["reward_amount"]:
            reward["currency"] = f["reward_currency"] or None
            reward["amount"] = f["reward_amount"] or None
        if reward:
            doc["reward"] = reward
    if f["streak_length"]:
        doc["streak"] = {
            "every": f["streak_every"] or "week",
            "length": f["streak_length"],
            "grace": f["streak_grace"] or "0",
        }
    return doc


def form_of(c: ChallengeSpec) -> dict[str, str]:
    """A challenge of the programme → the form's values (the inverse of ``challenge_doc``
    for what the form can say)."""
    f = dict(DEFAULTS)
    w = c.goal.where
    lines = w.lines
    f.update(
        code=c.code,
        name_ru=c.name.ru,
        name_en=c.name.en,
        count=c.goal.count,
        target="" if c.goal.target is None else _plain(c.goal.target),
        categories=", ".join(lines.categories or []) if lines else "",
        skus=", ".join(lines.skus or []) if lines else "",
        min_receipt="" if w.min_receipt is None else _plain(w.min_receipt),
        stores=", ".join(w.stores or []),
        channels=", ".join(w.channels or []),
        event_type=w.event_type or "",
        join=c.join,
        tiers=", ".join(c.audience.tiers or []) if c.audience else "",
        tags=", ".join(c.audience.tags or []) if c.audience else "",
    )
    p = c.period
    if p is None:
        f["period_kind"] = "none"
    elif p.every is not None:
        f.update(period_kind="every", every=p.every)
    elif p.days is not None:
        f.update(period_kind="days", period_days=str(p.days))
    else:
        f.update(
            period_kind="fixed",
            period_from=p.from_.isoformat() if p.from_ else "",
            period_to=p.to.isoformat() if p.to else "",
        )
    last = c.ladder()[-1][1]
    if last is not None:
        f.update(
            reward_currency=last.currency or "",
            coupon_pool=last.coupon_pool or "",
            badge=last.badge or "",
            hold_days=str(last.hold_days),
        )
    if c.steps is not None:
        f["steps"] = "\n".join(
            f"{_plain(s.target)}: {_plain(s.reward.amount) if s.reward and s.reward.amount else ''}"
            for s in c.steps
        )
    elif c.reward is not None and c.reward.amount is not None:
        f["reward_amount"] = _plain(c.reward.amount)
    if c.streak is not None:
        f.update(
            streak_every=c.streak.every,
            streak_length=str(c.streak.length),
            streak_grace=str(c.streak.grace),
        )
    return f


def _plain(v: Decimal) -> str:
    return f"{v.normalize():f}" if v == v.to_integral_value() else f"{v:f}"


# ---------------------------------------------------------------------------- the list


def _list(p: Page, request: Request, session: Session, **extra: Any) -> HTMLResponse:
    qp = request.query_params
    try:
        period = challenge_report.period_of(session, qp.get("from"), qp.get("to"))
        rep = challenge_report.build(session, period)
    except Problem as exc:
        return p.render("error.html", exc.status, message=problem_message(p, exc))
    query = urlencode({"from": period.start.isoformat(), "to": period.end.isoformat()})
    return p.render(
        "challenges.html",
        rep=rep,
        doc=rep.as_json(),
        query=query,
        done=qp.get("done"),
        **extra,
    )


@router.get("/challenges")
def challenges_screen(request: Request, session: SessionDep, user: UserDep) -> HTMLResponse:
    """The programme's challenges and their figures (``from``/``to``: local dates)."""
    p = page(request, user, "challenges.view", session)
    return _list(p, request, session)


@router.get("/challenges.csv")
def challenges_csv(request: Request, session: SessionDep, user: UserDep) -> Response:
    page(request, user, "challenges.view")
    qp = request.query_params
    try:
        period = challenge_report.period_of(session, qp.get("from"), qp.get("to"))
    except Problem as exc:
        raise PageError(exc.status, exc.code, exc.detail) from exc
    return csv_response(challenge_report.build(session, period))


# ---------------------------------------------------------------------------- the form


def _form_page(
    p: Page,
    session: Session,
    form: Mapping[str, str],
    *,
    replacing: str,
    status: int = 200,
    errors: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> HTMLResponse:
    spec = current_program(session)
    by_field: dict[str, list[str]] = {}
    general: list[str] = []
    for e in errors or []:
        name = field_of(str(e.get("field", "$")))
        if name is None:
            general.append(f"{e.get('field', '$')}: {e.get('message', '')}")
        else:
            by_field.setdefault(name, []).append(str(e.get("message", "")))
    return p.render(
        "challenge_form.html",
        status,
        form={**DEFAULTS, **{k: v for k, v in form.items() if k in FIELDS}},
        replacing=replacing,
        version=spec.version,
        spec=spec.spec,
        currency_options=[(c.code, f"{c.code} · {c.name}") for c in spec.spec.currencies],
        badge_options=[
            (b.code, f"{b.code} · {b.name.ru if p.lang == 'ru' else b.name.en}")
            for b in spec.spec.badges
        ],
        field_errors=by_field,
        general_errors=general,
        **extra,
    )


@router.get("/challenges/new")
def challenge_new(request: Request, session: SessionDep, user: UserDep) -> HTMLResponse:
    p = page(request, user, "challenges.view", session)
    return _form_page(p, session, {}, replacing="")


@router.get("/challenges/{code}/edit")
def challenge_edit(request: Request, code: str, session: SessionDep, user: UserDep) -> HTMLResponse:
    p = page(request, user, "challenges.view", session)
    found = next((c for c in current_program(session).spec.challenges if c.code == code), None)
    if found is None:
        raise PageError(404, "not_found")
    return _form_page(p, session, form_of(found), replacing=code)


def _sim_range(form: Mapping[str, str]) -> tuple[dt.date | None, dt.date | None]:
    errors = []
    out: list[dt.date | None] = []
    for name in ("sim_from", "sim_to"):
        raw = (form.get(name) or "").strip()
        if not raw:
            out.append(None)
            continue
        try:
            out.append(simulation.parse_day(raw))
        except ValueError:
            errors.append({"field": name, "code": "date", "message": "a date as YYYY-MM-DD"})
            out.append(None)
    if errors:
        raise FormError(errors)
    return out[0], out[1]


def _draft(
    session: Session, form: Mapping[str, str], replacing: str
) -> tuple[ProgramSpec, drafts.Draft]:
    """The form's challenge validated in the programme in force: the programme, the draft."""
    current = current_program(session).spec
    return current, drafts.with_challenge(current, challenge_doc(form), replacing or None)


def _simulate(
    session: Session, form: Mapping[str, str], draft: drafts.Draft
) -> tuple[dict[str, Any] | None, str | None]:
    """The draft's simulation's JSON, or None and why."""
    start, end = _sim_range(form)
    try:
        sim = simulation.run(session, draft.spec, draft.challenge, start, end)
    except Problem as exc:
        if exc.code == "challenge_not_simulated":
            return None, exc.code
        raise
    return simulation.as_json(session, draft.spec, draft.challenge, sim), None


def checked_digest(draft: drafts.Draft, version: int) -> str:
    """What a check showed: the challenge as validated, and the version it went into. A
    publish whose form no longer says the same is shown again, not applied."""
    doc = draft.challenge.model_dump(mode="json")
    raw = json.dumps({"challenge": doc, "version": version}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


@router.post("/challenges/draft")
async def challenge_draft(request: Request, session: SessionDep, user: UserDep) -> Response:
    """``action``: ``check`` (validate, simulate, show the change) or ``publish`` (apply
    the programme with the challenge as a new version, if the form and the version in
    force are still those the check showed; otherwise the check again, 409)."""
    raw = await request.form()
    form = {k: str(v)[:5000] for k, v in raw.items() if isinstance(v, str)}
    check_csrf(user, form.get("csrf", ""))
    action = form.get("action", "check")
    p = page(
        request, user, "programme.apply" if action == "publish" else "challenges.view", session
    )
    replacing = form.get("replacing", "")

    def work() -> Response:
        status, errors = 200, None
        try:
            current, draft = _draft(session, form, replacing)
            version = current_program(session).version
            digest = checked_digest(draft, version)
            if action == "publish":
                if form.get("version") != str(version):
                    status, errors = (
                        409,
                        [{"field": "$", "message": p.t("challenge_programme_moved")}],
                    )
                elif form.get("checked") != digest:
                    status, errors = 409, [{"field": "$", "message": p.t("challenge_form_changed")}]
                else:
                    # apply_program writes the audit row (versions and what changed)
                    result = program.apply_program(session, draft.spec, user.actor)
                    session.commit()
                    done = "published" if result.changed else "unchanged"
                    return RedirectResponse(
                        f"/admin/challenges?done={done}:{result.version}", status_code=303
                    )
            sim, not_simulated = _simulate(session, form, draft)
        except FormError as exc:
            return _form_page(p, session, form, replacing=replacing, status=422, errors=exc.errors)
        except Problem as exc:
            session.rollback()
            errs = exc.errors or [{"field": "$", "message": problem_message(p, exc)}]
            return _form_page(p, session, form, replacing=replacing, status=422, errors=errs)
        return _form_page(
            p,
            session,
            form,
            replacing=replacing,
            status=status,
            errors=errors,
            diff=drafts.diff(current, draft.spec, f"v{version}", "draft"),
            simulation=sim,
            not_simulated=not_simulated,
            checked=digest,
        )

    return await run_in_threadpool(work)
