"""HTTP endpoints for coupon pools, codes, printing and a member's coupons."""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from kopilka.core import pagination
from kopilka.core.auth import SessionDep, require
from kopilka.core.config import get_settings
from kopilka.core.db import get_db, now
from kopilka.core.errors import Problem, field_error, loc_to_field, validation_problem
from kopilka.core.idempotency import run_idempotent
from kopilka.core.principal import Principal
from kopilka.coupons import issue, pools, printing, queries
from kopilka.coupons.schemas import (
    CodeListOut,
    CodeOut,
    CodePage,
    GenerateIn,
    ImportedOut,
    ImportIn,
    PersonalCodesOut,
    PersonalIn,
    PoolDetailOut,
    PoolIn,
    PoolOut,
    PoolPage,
    PoolPatch,
    SheetIn,
)
from kopilka.members import service as members
from kopilka.security.middleware import body_limit

router = APIRouter(tags=["coupons"])

Manager = Annotated[Principal, Depends(require("admin", "manager"))]
Reader = Annotated[Principal, Depends(require("admin", "manager", "analyst"))]
Staff = Annotated[Principal, Depends(require("admin", "manager", "analyst", "support", "cashier"))]
Anyone = Annotated[
    Principal,
    Depends(require("admin", "manager", "analyst", "support", "cashier", "member")),
]
IdemKey = Annotated[str | None, Header()]
CodePath = Annotated[str, Path(min_length=1, max_length=80)]

# An import's most (100,000 codes of up to 64 characters, each with a member id) is about
# 11 MB as CSV or JSON; ``body_limit`` refuses more than this with 413 before reading it.
MAX_IMPORT_BYTES = 20 * 1024 * 1024


def _answer(status: int, payload: Any) -> JSONResponse:
    return JSONResponse(payload, status_code=status)


def _pool_out(session: Any, pool: Any) -> dict[str, Any]:
    return {**pools.pool_json(pool), "stats": pools.pool_stats(session, pool.id)}


# ---------------------------------------------------------------------------- pools


@router.post("/coupon-pools", status_code=201, response_model=PoolOut)
def create_pool(
    body: PoolIn, session: SessionDep, principal: Manager, idempotency_key: IdemKey = None
) -> JSONResponse:
    """A new coupon pool (a campaign): reward, validity, conditions, limits, code pattern.
    Codes come after: ``generate``, ``personal-codes`` or ``codes/import``."""

    def action() -> tuple[int, Any]:
        pool = pools.create_pool(session, body, principal.actor)
        return 201, pools.pool_json(pool)

    return _answer(
        *run_idempotent(
            session,
            principal.actor,
            idempotency_key,
            "POST /coupon-pools",
            body.model_dump(mode="json"),
            action,
        )
    )


@router.get("/coupon-pools", response_model=PoolPage)
def list_pools(
    session: SessionDep,
    _: Reader,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    rows, nxt = pools.list_pools(session, cursor, limit)
    return {"items": [pools.pool_json(p) for p in rows], "next_cursor": nxt}


@router.get("/coupon-pools/{pool_id}", response_model=PoolDetailOut)
def get_pool(pool_id: uuid.UUID, session: SessionDep, _: Reader) -> dict[str, Any]:
    """The pool with its generation progress and use counts."""
    return _pool_out(session, pools.get_pool(session, pool_id))


@router.patch("/coupon-pools/{pool_id}", response_model=PoolOut)
def update_pool(
    pool_id: uuid.UUID, body: PoolPatch, session: SessionDep, principal: Manager
) -> dict[str, Any]:
    """Change fields of a pool (e.g. ``{"status": "paused"}``); validated as a whole."""
    pool = pools.update_pool(session, pool_id, body, principal.actor)
    out = pools.pool_json(pool)
    session.commit()
    return out


@router.delete("/coupon-pools/{pool_id}", status_code=204)
def delete_pool(pool_id: uuid.UUID, session: SessionDep, principal: Manager) -> Response:
    """Delete a pool and its codes; 409 ``coupon_pool_in_use`` once a code was used."""
    pools.delete_pool(session, pool_id, principal.actor)
    session.commit()
    return Response(status_code=204)


@router.post(
    "/coupon-pools/{pool_id}/generate",
    status_code=201,
    response_model=PoolOut,
    responses={202: {"model": PoolOut, "description": "queued for the worker; poll the pool"}},
)
def generate(
    pool_id: uuid.UUID,
    body: GenerateIn,
    session: SessionDep,
    principal: Manager,
    idempotency_key: IdemKey = None,
) -> JSONResponse:
    """Generate ``count`` unique random codes. Up to ``KOPILKA_COUPON_SYNC_GENERATE_MAX``
    they are made at once (201); more are queued for ``kopilka worker`` (202), whose
    progress is the pool's ``generation``."""
    background = body.count > get_settings().coupon_sync_generate_max

    def action() -> tuple[int, Any]:
        if background:
            pool = issue.start_generation(session, pool_id, body.count, principal.actor)
            return 202, pools.pool_json(pool)
        pool = issue.generate_now(session, pool_id, body.count, principal.actor)
        return 201, pools.pool_json(pool)

    status, payload = run_idempotent(
        session,
        principal.actor,
        idempotency_key,
        f"POST /coupon-pools/{pool_id}/generate",
        body.model_dump(mode="json"),
        action,
    )
    headers = {"Location": f"/api/v1/coupon-pools/{pool_id}"} if status == 202 else None
    return JSONResponse(payload, status_code=status, headers=headers)


@router.post(
    "/coupon-pools/{pool_id}/personal-codes", status_code=201, response_model=PersonalCodesOut
)
def issue_personal(
    pool_id: uuid.UUID,
    body: PersonalIn,
    session: SessionDep,
    principal: Manager,
    idempotency_key: IdemKey = None,
) -> JSONResponse:
    """A new personal code of the pool for each member; only that member can use it, and
    the member app lists it under ``/members/{id}/coupons``."""

    def action() -> tuple[int, Any]:
        codes = issue.issue_personal(session, pool_id, body.member_ids, principal.actor)
        return 201, {"codes": codes}

    return _answer(
        *run_idempotent(
            session,
            principal.actor,
            idempotency_key,
            f"POST /coupon-pools/{pool_id}/personal-codes",
            body.model_dump(mode="json"),
            action,
        )
    )


@router.post(
    "/coupon-pools/{pool_id}/codes/import",
    status_code=201,
    response_model=ImportedOut,
    dependencies=[Depends(body_limit(MAX_IMPORT_BYTES))],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/json": {"schema": ImportIn.model_json_schema()},
            },
        }
    },
)
async def import_codes(
    pool_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: Manager,
    idempotency_key: IdemKey = None,
) -> JSONResponse:
    """Add codes made elsewhere: ``text/csv`` (a ``code`` column and optionally
    ``member_id``, or one code per line) or JSON ``{"codes": [...]}``. All or none."""
    raw = await request.body()
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            body = ImportIn.model_validate_json(raw)
        except ValidationError as exc:
            raise validation_problem(
                [
                    field_error(
                        loc_to_field(("body", *e.get("loc", ())))[1],
                        str(e.get("msg", "invalid")).removeprefix("Value error, "),
                        str(e.get("type", "invalid")),
                    )
                    for e in exc.errors()
                ][:100]
            ) from exc
    elif kind in ("text/csv", "text/plain", "application/csv"):
        body = await run_in_threadpool(issue.parse_csv, raw)
    else:
        raise Problem(
            415,
            "validation_error",
            "send text/csv or application/json",
            errors=[
                {
                    "field": "Content-Type",
                    "in": "header",
                    "code": "unsupported",
                    "message": "text/csv or application/json",
                }
            ],
        )

    def action() -> tuple[int, Any]:
        return 201, issue.import_codes(session, pool_id, body, principal.actor)

    def work() -> tuple[int, Any]:
        return run_idempotent(
            session,
            principal.actor,
            idempotency_key,
            f"POST /coupon-pools/{pool_id}/codes/import",
            hashlib.sha256(raw).hexdigest(),
            action,
        )

    return _answer(*(await run_in_threadpool(work)))


@router.get("/coupon-pools/{pool_id}/codes", response_model=CodePage)
def list_codes(
    pool_id: uuid.UUID,
    session: SessionDep,
    _: Reader,
    cursor: Annotated[str | None, Query(max_length=32, pattern=r"^[0-9]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """The pool's codes in the order they were made, a page at a time."""
    pool = pools.get_pool(session, pool_id)
    at = now()
    rows, nxt = queries.list_codes(session, pool_id, pagination.after_number(cursor), limit)
    return {
        "items": [
            {
                "code": c.code,
                "status": queries.code_status(pool, c, at),
                "uses": c.uses,
                "member_id": str(c.member_id) if c.member_id else None,
                "source": c.source,
                "created_at": c.created_at.isoformat(),
            }
            for c in rows
        ],
        "next_cursor": str(nxt) if nxt is not None else None,
    }


@router.get(
    "/coupon-pools/{pool_id}/codes.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
def export_codes(pool_id: uuid.UUID, session: SessionDep, _: Reader) -> StreamingResponse:
    """Every code of the pool as CSV (``code,status,uses,member_id,source,created_at``),
    streamed: millions of codes export without holding them in memory."""
    pools.get_pool(session, pool_id)
    session.rollback()
    return StreamingResponse(
        queries.export_csv(get_db(), pool_id),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="coupons-{pool_id}.csv"'},
    )


@router.post(
    "/coupon-pools/{pool_id}/sheet.pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
def print_sheet(pool_id: uuid.UUID, body: SheetIn, session: SessionDep, _: Manager) -> Response:
    """A printable A4 sheet of the pool's codes (QR, Code 128 or both, with the code in
    text and the reward): the listed ``codes``, or the next ``limit`` unused ones. The
    header ``Kopilka-Next-After`` continues the series on the next call."""
    pool = pools.get_pool(session, pool_id)
    nxt: int | None = None
    if body.codes:
        rows = []
        bad = []
        for i, raw in enumerate(body.codes):
            found = queries.find_code(session, raw)
            if found is None or found[1].id != pool.id:
                bad.append(field_error(f"codes[{i}]", "not a code of this pool", "unknown"))
            else:
                rows.append(found[0])
        if bad:
            raise validation_problem(bad[:100])
    else:
        rows, nxt = queries.unused_codes(session, pool_id, body.after, body.limit)
    caption = _caption(pool, body.lang)
    pdf = printing.sheet_pdf(
        [printing.SheetItem(c.code, caption) for c in rows],
        title=body.title if body.title is not None else pool.name,
        columns=body.columns,
        rows=body.rows,
        symbology=body.symbology,
        font=get_settings().coupon_pdf_font,
    )
    headers = {"Content-Disposition": f'inline; filename="coupons-{pool_id}.pdf"'}
    if nxt is not None:
        headers["Kopilka-Next-After"] = str(nxt)
    return Response(pdf, media_type="application/pdf", headers=headers)


def _caption(pool: Any, lang: str) -> str:
    """The reward and the last day, in a few words, for the printed cell."""
    r = pools.reward_json(pool)
    ru = lang == "ru"
    kind = r["kind"]
    if kind == "percent":
        text = f"{'Скидка' if ru else 'Discount'} {r['value']} %"
    elif kind == "fixed":
        text = f"{'Скидка' if ru else 'Discount'} {r['value']}"
    elif kind == "points":
        text = f"+{r['value']} {r['currency']}"
    elif kind == "multiplier":
        text = f"×{r['value']} {r['currency']}"
    else:
        text = f"{'Подарок' if ru else 'Free'}: {r['free_sku']}"
    if pool.valid_until is not None:
        day = pool.valid_until.date().isoformat()
        text += f" · {'до' if ru else 'until'} {day}"
    return text


# ---------------------------------------------------------------------------- codes


def _for(principal: Principal) -> uuid.UUID | None:
    """A member sees only their own personal codes."""
    return uuid.UUID(principal.id) if principal.kind == "member" else None


@router.get("/coupons/{code}", response_model=CodeOut)
def lookup(code: CodePath, session: SessionDep, principal: Staff) -> JSONResponse:
    """A code's status and the history of its uses (the history not for cashiers). Unknown
    codes are 404 ``coupon_invalid`` and count against the caller (429 ``rate_limited``
    past the limit); so are members' personal codes asked by a cashier, who then cannot
    learn whether someone's code exists (a till applies them on the member's receipt)."""
    at = now()
    try:
        coupon, pool = queries.get_code(
            session, code, principal.actor, at, public_only=principal.role == "cashier"
        )
        out = queries.code_json(session, coupon, pool, at, history=principal.role != "cashier")
    finally:
        session.rollback()
    return JSONResponse(out)


def _symbol(code: str, session: Any, principal: Principal) -> str:
    try:
        coupon, _ = queries.get_code(session, code, principal.actor, member_id=_for(principal))
    finally:
        session.rollback()
    return coupon.code


_CACHE = {"Cache-Control": "private, max-age=300"}


@router.get("/coupons/{code}/qr.svg", response_class=Response)
def qr_svg(code: CodePath, session: SessionDep, principal: Anyone) -> Response:
    """The code as a QR symbol (SVG). Members may ask only for their own codes."""
    text = _symbol(code, session, principal)
    return Response(printing.qr_svg(text), media_type="image/svg+xml", headers=_CACHE)


@router.get("/coupons/{code}/qr.png", response_class=Response)
def qr_png(
    code: CodePath,
    session: SessionDep,
    principal: Anyone,
    scale: Annotated[int, Query(ge=1, le=40)] = 8,
) -> Response:
    text = _symbol(code, session, principal)
    return Response(printing.qr_png(text, scale), media_type="image/png", headers=_CACHE)


@router.get("/coupons/{code}/barcode.svg", response_class=Response)
def barcode_svg(code: CodePath, session: SessionDep, principal: Anyone) -> Response:
    """The code as a Code 128 barcode (SVG), with the code written under it."""
    text = _symbol(code, session, principal)
    return Response(printing.barcode_svg(text), media_type="image/svg+xml", headers=_CACHE)


@router.get("/coupons/{code}/barcode.png", response_class=Response)
def barcode_png(code: CodePath, session: SessionDep, principal: Anyone) -> Response:
    text = _symbol(code, session, principal)
    return Response(printing.barcode_png(text), media_type="image/png", headers=_CACHE)


# exclude_unset: a member's list has no ``history`` (not even null), as before
@router.get(
    "/members/{member_id}/coupons",
    response_model=CodeListOut,
    response_model_exclude_unset=True,
)
def member_coupons(
    member_id: uuid.UUID,
    session: SessionDep,
    _: Anyone,
    cursor: Annotated[str | None, Query(max_length=32, pattern=r"^[0-9]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """The member's personal coupons with their codes and status (for the member app)."""
    members.get_member(session, member_id)
    items, nxt = queries.member_coupons(session, member_id, cursor=cursor, limit=limit)
    return {"items": items, "next_cursor": nxt}
