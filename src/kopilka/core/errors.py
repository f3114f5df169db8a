"""Errors as ``application/problem+json`` (RFC 9457) with stable machine-readable codes.

Every error a caller can cause is a ``Problem`` with a ``code``; the handlers installed by
``install_error_handlers`` turn framework errors (404, 405, request validation) into the
same shape and hide everything else behind a generic 500 that carries the request id.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

log = structlog.get_logger("kopilka.errors")

PROBLEM_JSON = "application/problem+json"

# code → (title in English, title in Russian)
TITLES: dict[str, tuple[str, str]] = {
    "validation_error": ("The request is not valid", "Запрос содержит ошибки"),
    "unauthorized": ("Authentication is required", "Требуется аутентификация"),
    "forbidden": ("Not allowed for this caller", "Недостаточно прав"),
    "not_found": ("Not found", "Не найдено"),
    "method_not_allowed": ("Method not allowed", "Метод не поддерживается"),
    "member_not_found": ("Member not found", "Участник не найден"),
    "member_exists": ("A member with these details exists", "Участник уже существует"),
    "member_blocked": ("The member is blocked", "Участник заблокирован"),
    "idempotency_key_reused": (
        "The Idempotency-Key was used with another request",
        "Ключ идемпотентности уже использован с другим запросом",
    ),
    "idempotency_key_invalid": (
        "The Idempotency-Key is not valid",
        "Неверный ключ идемпотентности",
    ),
    "program_invalid": ("The programme file is not valid", "Файл программы содержит ошибки"),
    "program_not_configured": ("No programme is configured", "Программа не настроена"),
    "currency_not_found": ("Unknown currency", "Неизвестная валюта"),
    "insufficient_balance": ("Insufficient balance", "Недостаточно баллов"),
    "redeem_limit_exceeded": ("More than the programme allows", "Превышен лимит списания"),
    "balance_limit_exceeded": (
        "More than a wallet can hold",
        "Больше, чем может вместить кошелёк",
    ),
    "adjustment_not_found": ("Adjustment not found", "Корректировка не найдена"),
    "adjustment_own_request": (
        "Someone other than the requester must approve it",
        "Одобрить может только другой сотрудник",
    ),
    "adjustment_decided": ("The adjustment is decided already", "Корректировка уже рассмотрена"),
    "adjustment_needs_approval": (
        "This adjustment needs a second person's approval",
        "Эта корректировка требует одобрения второго сотрудника",
    ),
    "transfers_disabled": ("Transfers are disabled", "Переводы отключены"),
    "transfer_limit_exceeded": ("Transfer limit exceeded", "Превышен лимит перевода"),
    "entry_not_found": ("Ledger entry not found", "Проводка не найдена"),
    "reversal_exceeds_entry": (
        "More than is left of the entry to reverse",
        "Сторно больше остатка проводки",
    ),
    "webhook_not_found": ("Webhook not found", "Вебхук не найден"),
    "delivery_not_found": ("Delivery not found", "Доставка не найдена"),
    "webhook_inactive": ("Webhook is disabled", "Вебхук отключён"),
    "store_not_found": ("Unknown store", "Неизвестный магазин"),
    "purchase_not_found": ("Purchase not found", "Покупка не найдена"),
    "custom_event_not_found": ("Custom event not found", "Событие не найдено"),
    "duplicate_external_id": (
        "A different receipt with this external_id exists",
        "Другой чек с этим external_id уже есть",
    ),
    "quote_changed": ("The figures changed since the quote", "Расчёт изменился"),
    "purchase_not_returnable": ("The purchase cannot be returned", "Покупку нельзя вернуть"),
    "return_exceeds_purchase": (
        "More returned than was bought",
        "Возврат превышает количество в чеке",
    ),
    "purchase_state_conflict": (
        "The purchase is not in a state for this",
        "Неверный статус покупки",
    ),
    "rate_limited": ("Too many requests", "Слишком много запросов"),
    "payload_too_large": ("The request is too large", "Слишком большой запрос"),
    "member_erased": ("The member's data is erased", "Данные участника удалены"),
    "api_key_not_found": ("API key not found", "API-ключ не найден"),
    "api_key_inactive": ("The API key is revoked or expired", "API-ключ отозван или истёк"),
    "api_key_rotated": ("The API key was rotated already", "API-ключ уже заменён"),
    "flag_not_found": ("Flag not found", "Отметка не найдена"),
    "flag_reviewed": ("The flag is reviewed already", "Отметка уже рассмотрена"),
    "report_not_found": ("No such report", "Нет такого отчёта"),
    "csrf_invalid": ("The form expired; reload the page", "Форма устарела, обновите страницу"),
    "sign_in_failed": ("Wrong email or password", "Неверный email или пароль"),
    "account_locked": ("Too many failed attempts", "Слишком много неудачных попыток"),
    "totp_invalid": ("Wrong one-time code", "Неверный одноразовый код"),
    "coupon_invalid": ("Unknown coupon code", "Неизвестный код купона"),
    "rule_not_found": ("Rule not found", "Правило не найдено"),
    "rule_exists": ("A rule with this key exists", "Правило с таким ключом уже есть"),
    "campaign_not_found": ("Campaign not found", "Кампания не найдена"),
    "campaign_in_use": ("Rules still belong to the campaign", "В кампании ещё есть правила"),
    "delivery_in_flight": ("The delivery is being sent", "Доставка сейчас отправляется"),
    "coupon_expired": ("The coupon has expired", "Срок действия купона истёк"),
    "coupon_not_started": ("The coupon is not valid yet", "Купон ещё не действует"),
    "coupon_used": ("The coupon was used", "Купон уже использован"),
    "coupon_limit_reached": ("The coupon's limit is reached", "Лимит купона исчерпан"),
    "coupon_not_applicable": ("The coupon does not apply", "Купон не применим"),
    "coupon_not_combinable": ("The coupon cannot be combined", "Купон нельзя совмещать"),
    "coupon_pool_not_found": ("Coupon pool not found", "Пул купонов не найден"),
    "coupon_pool_in_use": ("The pool's coupons were used", "Купоны пула уже использовались"),
    "coupon_generation_running": ("Codes are being generated", "Коды ещё генерируются"),
    "coupon_pattern_exhausted": (
        "The code pattern has no room for more codes",
        "Шаблон кода не вмещает столько кодов",
    ),
    "coupon_code_exists": ("The coupon code exists", "Такой код купона уже есть"),
    "sign_in_code_invalid": ("Wrong code", "Неверный код"),
    "sign_in_code_expired": (
        "The code has expired: ask for a new one",
        "Код больше не действует: запросите новый",
    ),
    "app_link_invalid": (
        "The link is used or expired: ask at the till for a new one",
        "Ссылка использована или устарела: попросите новую на кассе",
    ),
    "app_session_required": (
        "Only a device signed in to the app can do this",
        "Это доступно только устройству со входом в приложение",
    ),
    "device_not_found": ("Device not found", "Устройство не найдено"),
    "internal_error": ("Internal error", "Внутренняя ошибка"),
}


class Problem(Exception):
    """An error a caller can cause. Raising it changes nothing (the transaction rolls back)."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str | None = None,
        *,
        errors: Sequence[dict[str, Any]] | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or code)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = list(errors) if errors else None
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self, request_id: str | None = None, lang: str = "en") -> dict[str, Any]:
        en, ru = TITLES.get(self.code, (self.code.replace("_", " ").capitalize(), ""))
        body: dict[str, Any] = {
            "type": f"https://kopilka.dev/problems/{self.code.replace('_', '-')}",
            "title": ru if lang == "ru" and ru else en,
            "status": self.status,
            "code": self.code,
        }
        if self.detail:
            body["detail"] = self.detail
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        if request_id:
            body["request_id"] = request_id
        return body


def not_found(code: str, detail: str | None = None) -> Problem:
    return Problem(404, code, detail)


# The not-found code of each id a path carries (``/members/{member_id}``): a path id that
# is not a UUID names nothing, so it answers what an unknown id answers (a till's typo is
# "no such purchase", not a malformed request). ``install_error_handlers`` applies it to
# every route; a test walks the routes so that none has an id missing here.
PATH_IDS: dict[str, str] = {
    "member_id": "member_not_found",
    "purchase_id": "purchase_not_found",
    "event_id": "custom_event_not_found",
    "webhook_id": "webhook_not_found",
    "delivery_id": "delivery_not_found",
    "pool_id": "coupon_pool_not_found",
    "key_id": "api_key_not_found",
    "flag_id": "flag_not_found",
    "session_id": "device_not_found",
    "adjustment_id": "adjustment_not_found",
    "referral_id": "referral_not_found",
}


# The pages (the console, the member app) answer an unknown id with a page, not a problem:
# each registers, for the paths it serves, the page a malformed id gets instead.
NotFoundPage = Callable[[Request], Response]


def serve_not_found_page(app: FastAPI, prefix: str, page: NotFoundPage) -> None:
    """Answer a path id that is not a UUID under ``prefix`` with ``page(request)`` (run in
    a worker thread: pages read the database), as the pages there answer an unknown id."""
    app.state.not_found_pages = {**getattr(app.state, "not_found_pages", {}), prefix: page}


def _malformed_path_id(err: Any) -> str | None:
    """The name of the path id a request validation error is about, or None."""
    loc = err.get("loc", ())
    if len(loc) == 2 and loc[0] == "path" and loc[1] in PATH_IDS:
        return str(loc[1])
    return None


def field_error(field: str, message: str, code: str = "invalid") -> dict[str, Any]:
    return {"field": field, "code": code, "message": message}


def validation_problem(errors: Sequence[dict[str, Any]], detail: str | None = None) -> Problem:
    return Problem(422, "validation_error", detail, errors=errors)


def _lang(request: Request) -> str:
    accept = request.headers.get("accept-language", "")
    return "ru" if accept.lower().startswith("ru") else "en"


def problem_response(request: Request, problem: Problem) -> JSONResponse:
    request_id = getattr(request.state, "request_id", None)
    return JSONResponse(
        problem.body(request_id, _lang(request)),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=problem.headers,
    )


def loc_to_field(loc: Sequence[str | int]) -> tuple[str, str]:
    parts = list(loc)
    where = str(parts[0]) if parts else "body"
    if where in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:]
    else:
        where = "body"
    field = ""
    for p in parts:
        if isinstance(p, int):
            field += f"[{p}]"
        else:
            field += ("." if field else "") + str(p)
    return where, field or where


def validation_errors(
    exc: ValidationError, prefix: str = "", root: str = "$"
) -> list[dict[str, Any]]:
    """Pydantic's errors of a model validated by hand, each naming its path: under
    ``prefix`` (``rules[3]`` → ``rules[3].earn.percent``), the model itself being ``prefix``
    or, without one, ``root``."""
    out = []
    for err in exc.errors():
        _, field = loc_to_field(("body", *err.get("loc", ())))
        if field == "body":
            field = prefix or root
        elif prefix:
            field = f"{prefix}.{field}"
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        out.append(field_error(field, msg, str(err.get("type", "invalid"))))
    return out


class FieldErrorOut(BaseModel):
    """One thing wrong with a request: where (``redeem.amount``, ``lines[2].quantity``),
    a stable code and a message."""

    field: str
    code: str
    message: str


class ProblemOut(BaseModel):
    """An error (RFC 9457 ``application/problem+json``). ``code`` is stable; a problem
    may carry more members (``max_redeemable``, ``quote``, ``purchase_id`` …)."""

    model_config = ConfigDict(extra="allow", title="Problem")

    type: str
    title: str
    status: int
    code: str
    detail: str | None = None
    errors: list[FieldErrorOut] | None = None
    request_id: str | None = None


def document_problems(app: FastAPI) -> None:
    """Make the OpenAPI document say what a refused request gets: every operation's 422
    is ``application/problem+json`` of ``Problem`` (naming each field), not FastAPI's
    ``HTTPValidationError``, which no request of this API ever receives."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = generate()
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        problem = ProblemOut.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(problem.pop("$defs", {}))
        schemas["Problem"] = problem
        refused = {
            "description": "The request is not valid: a problem naming each field",
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for item in spec.get("paths", {}).values():
            for op in item.values():
                if isinstance(op, dict) and "422" in op.get("responses", {}):
                    op["responses"]["422"] = refused
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        # An id in the path that is not a UUID: the answer an unknown id gets, i.e. the
        # other errors of the request if it has any, else the id's 404.
        ids = [(name, e) for e in exc.errors() if (name := _malformed_path_id(e)) is not None]
        raw = [e for e in exc.errors() if _malformed_path_id(e) is None]
        if ids and not raw:
            pages: dict[str, NotFoundPage] = getattr(request.app.state, "not_found_pages", {})
            for prefix, page in pages.items():
                if request.url.path.startswith(prefix):
                    return await run_in_threadpool(page, request)
            name, err = ids[0]
            detail = f"nothing has the id {err.get('input')!r}: ids are UUIDs"
            return problem_response(request, not_found(PATH_IDS[name], detail))
        errors = []
        for err in raw:
            where, field = loc_to_field(err.get("loc", ()))
            msg = str(err.get("msg", "invalid"))
            msg = msg.removeprefix("Value error, ")
            errors.append(
                {
                    "field": field,
                    "in": where,
                    "code": str(err.get("type", "invalid")),
                    "message": msg,
                }
            )
        return problem_response(request, validation_problem(errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            401: "unauthorized",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
        }.get(exc.status_code, "http_error")
        detail = (
            exc.detail
            if isinstance(exc.detail, str) and exc.status_code not in (404, 405)
            else None
        )
        return problem_response(
            request, Problem(exc.status_code, code, detail, headers=dict(exc.headers or {}))
        )

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", request_id=getattr(request.state, "request_id", None))
        return problem_response(request, Problem(500, "internal_error"))


# --- challenges (the console's simulation) ---
TITLES["challenge_not_simulated"] = (
    "Only goals counted from receipts can be simulated",
    "Просчитать можно только цели по чекам",
)
