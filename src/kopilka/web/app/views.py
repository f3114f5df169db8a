"""The member app's pages under ``/app``: server-rendered (Jinja2, Babel), small ES
modules for what must happen on the phone (the rotating card code, sign-in, profile
actions), and a service worker that keeps the last pages for offline use.

Pages are rendered for the signed-in device only and sent with ``Cache-Control:
no-store``; the service worker keeps its own copy of the card, balance and history
pages (Cache Storage), shows it when there is no network, and forgets it at sign-out.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from sqlalchemy.orm import Session

from kopilka import __version__
from kopilka.challenges import service as challenges
from kopilka.core.config import get_settings
from kopilka.core.db import get_db, now
from kopilka.core.errors import Problem, serve_not_found_page
from kopilka.coupons.queries import member_coupons
from kopilka.leaderboards import service as leaderboards
from kopilka.ledger.service import balances, history
from kopilka.memberapp import formatting
from kopilka.memberapp import service as app_service
from kopilka.memberapp.api import set_browser_cookie
from kopilka.memberapp.lang import LANG_COOKIE, LANGS, pick_lang
from kopilka.members import service as members
from kopilka.program.service import current_program
from kopilka.purchases.confirmation import purchase_json
from kopilka.purchases.queries import get_purchase
from kopilka.referrals import service as referrals
from kopilka.rewards import service as rewards
from kopilka.security.middleware import CSP
from kopilka.spec.leaderboards import LeaderboardSpec
from kopilka.spec.program import BrandingSpec, ProgramSpec
from kopilka.spec.referrals import ReferralReward
from kopilka.tiers.service import progress
from kopilka.web.app import branding, codes, i18n

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix="/app", include_in_schema=False)

HISTORY_PAGE = 30
RECENT = 5
DEFAULT_NAME = "Kopilka"
DEFAULT_BRANDING = BrandingSpec()


def _digest_of_static() -> str:
    h = hashlib.sha256(__version__.encode())
    for path in sorted(STATIC.rglob("*")):
        if path.is_file():
            h.update(path.relative_to(STATIC).as_posix().encode())
            h.update(path.read_bytes())
    h.update((HERE / "sw.js").read_bytes())
    return h.hexdigest()[:12]


# Changes whenever a static file or the service worker changes: browsers then install
# the new service worker and the app offers to update.
ASSET_VERSION = _digest_of_static()


def static_files() -> list[str]:
    return sorted(
        "/app/static/" + p.relative_to(STATIC).as_posix() for p in STATIC.rglob("*") if p.is_file()
    )


class AppStatic(StaticFiles):
    """Static files that browsers revalidate (cheap with ETags), so a deploy is seen
    at once; the service worker keeps its own versioned copy for offline use."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


# ---------------------------------------------------------------------------- context


@dataclass
class Page:
    """What every template gets: language, words, the programme's brand, the member."""

    request: Request
    lang: str
    spec: ProgramSpec | None
    device: app_service.MemberDevice | None = None
    member: Any = None
    rendered_at: dt.datetime = field(default_factory=now)

    @property
    def t(self) -> i18n.Translator:
        return i18n.translator(self.lang)

    @property
    def branding(self) -> BrandingSpec:
        return self.spec.branding if self.spec else DEFAULT_BRANDING

    @property
    def app_name(self) -> str:
        if self.spec is None:
            return DEFAULT_NAME
        return self.spec.branding.app_name or self.spec.name

    @property
    def tz(self) -> str:
        return self.spec.timezone if self.spec else "UTC"

    @property
    def version(self) -> str:
        return ASSET_VERSION

    @property
    def logo_url(self) -> str | None:
        url = self.branding.logo_url
        if url and (url.startswith("/") or url.startswith(("https://", "http://"))):
            return url
        return None

    @property
    def csrf(self) -> str:
        return app_service.csrf_token(self.device) if self.device else ""

    @property
    def script_words(self) -> Markup:
        # JSON inside a non-executable script element: "<" is escaped so no text in it
        # can close the element.
        text = json.dumps(i18n.script_messages(self.lang), ensure_ascii=False)
        return Markup(text.replace("<", "\\u003c"))  # noqa: S704 - JSON, "<" escaped

    def other_lang(self) -> str:
        return "ru" if self.lang == "en" else "en"

    def points(self, amount: Decimal, precision: int, signed: bool = False) -> str:
        return formatting.points(amount, precision, self.lang, signed=signed)

    def amount(self, value: str, code: str, signed: bool = False) -> str:
        """An amount as the API writes it ("15.74") in the member's way."""
        return self.points(Decimal(value), self.precision(code), signed)

    def quantity(self, value: Decimal | str) -> str:
        return formatting.quantity(Decimal(str(value)), self.lang)

    def money(self, amount: Decimal | str) -> str:
        currency = self.spec.base_currency if self.spec else "RUB"
        return formatting.money(Decimal(str(amount)), currency, self.lang)

    def moment(self, value: dt.datetime | str) -> str:
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        return formatting.moment(value, self.tz, self.lang)

    def day(self, value: dt.datetime | str) -> str:
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        return formatting.day(value, self.tz, self.lang)

    def as_of(self) -> str:
        return formatting.as_of(self.rendered_at, self.tz, self.lang, now())

    def currency_name(self, code: str) -> str:
        cur = self.spec.currency(code) if self.spec else None
        return cur.name if cur else code

    def precision(self, code: str) -> int:
        cur = self.spec.currency(code) if self.spec else None
        return cur.precision if cur else 2

    def render(self, name: str, status: int = 200, **data: Any) -> HTMLResponse:
        ctx = {"page": self, "t": self.t, **data}
        response = templates.TemplateResponse(self.request, name, ctx, status_code=status)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Language"] = self.lang
        response.headers["Vary"] = "Cookie, Accept-Language"
        logo = self.logo_url
        if logo and logo.startswith("http"):
            parts = urlsplit(logo)
            origin = f"{parts.scheme}://{parts.netloc}"
            response.headers["Content-Security-Policy"] = CSP.replace(
                "img-src 'self' data: blob:", f"img-src 'self' data: blob: {origin}"
            )
        return response


def _lang(request: Request) -> str:
    return pick_lang(request.headers.get("accept-language"), request.cookies.get(LANG_COOKIE))


def _spec(session: Session) -> ProgramSpec | None:
    try:
        return current_program(session).spec
    except Problem:
        return None


def _page(request: Request, session: Session) -> Page:
    return Page(request, _lang(request), _spec(session))


def _signed_in(request: Request, session: Session, page: Page) -> bool:
    """Fill ``page`` with the device and member of the session cookie; False if none."""
    device = app_service.load_device(session, request.cookies.get(app_service.COOKIE))
    if device is None:
        session.commit()
        return False
    member = members.get_member(session, device.member_id)
    session.commit()
    if member.status == "erased":
        return False
    page.device, page.member = device, member
    return True


def _to_sign_in(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/app/sign-in?next={quote(target, safe='')}", status_code=303)


def _safe_next(raw: str | None) -> str:
    if raw and raw.startswith("/app/") and not raw.startswith("//") and "\\" not in raw:
        return raw
    return "/app/"


# ---------------------------------------------------------------------------- data


@dataclass(frozen=True)
class BalanceRow:
    code: str
    name: str
    available: str
    pending: str | None
    expiring: str | None
    main: bool


def _balances(page: Page, session: Session, member_id: uuid.UUID) -> list[BalanceRow]:
    order = {c.code: i for i, c in enumerate(page.spec.currencies)} if page.spec else {}
    main = page.spec.currencies[0].code if page.spec else None
    rows = []
    for b in sorted(balances(session, member_id), key=lambda b: order.get(b.currency, 99)):
        expiring = None
        if b.expiring_at is not None and b.expiring_amount:
            expiring = page.t(
                "expiring_next",
                amount=page.points(b.expiring_amount, b.precision),
                day=page.day(b.expiring_at),
            )
        rows.append(
            BalanceRow(
                code=b.currency,
                name=page.currency_name(b.currency),
                available=page.points(b.available, b.precision),
                pending=page.points(b.pending, b.precision) if b.pending else None,
                expiring=expiring,
                main=b.currency == main,
            )
        )
    return rows


@dataclass(frozen=True)
class TierRow:
    name: str
    progress: str | None  # "12 000 ₽ to Gold"


def _tier(page: Page, session: Session, member_id: uuid.UUID) -> TierRow | None:
    """The member's level by name and what is left to the next (None without tiers)."""
    got = progress(session, member_id)
    if got is None:
        return None
    nxt = got["next"]
    text = None
    if nxt is not None:
        left = Decimal(nxt["remaining"])
        if got["metric"] == "purchases":
            text = page.t("tier_progress_purchases", n=f"{left:f}", tier=nxt["name"])
        else:
            amount = (
                page.money(left)
                if got["metric"] == "spend"
                else f"{page.points(left, got['precision'])} {page.currency_name(got['currency'])}"
            )
            text = page.t("tier_progress", amount=amount, tier=nxt["name"])
    return TierRow(name=got["name"] or page.t("tier_none"), progress=text)


@dataclass(frozen=True)
class HistoryRow:
    kind: str
    label: str
    amount: str
    negative: bool
    currency: str
    when: str
    purchase_id: str | None
    description: str


def _history(
    page: Page, session: Session, member_id: uuid.UUID, cursor: str | None, limit: int
) -> tuple[list[HistoryRow], str | None]:
    items, nxt = history(session, member_id, cursor=cursor, limit=limit)
    rows = []
    for item in items:
        key = f"kind_{item.kind}"
        label = page.t(key) if key in i18n.MESSAGES else item.kind
        rows.append(
            HistoryRow(
                kind=item.kind,
                label=label,
                amount=page.points(item.amount, item.precision, signed=True),
                negative=item.amount < 0,
                currency=page.currency_name(item.currency),
                when=page.moment(item.occurred_at),
                purchase_id=str(item.purchase_id) if item.purchase_id else None,
                description=item.description,
            )
        )
    return rows, nxt


def _reward(page: Page, reward: dict[str, Any]) -> str:
    kind = str(reward.get("kind"))
    value = reward.get("value") or ""
    if kind == "fixed":
        value = page.money(value)
    if kind == "points":
        return page.t(
            "reward_points",
            value=value,
            currency=page.currency_name(str(reward.get("currency") or "")),
        )
    if kind == "free_product":
        return page.t("reward_free_product", sku=reward.get("free_sku") or "")
    key = f"reward_{kind}"
    return page.t(key, value=value) if key in i18n.MESSAGES else kind


def _coupons(page: Page, session: Session, member_id: uuid.UUID) -> list[dict[str, Any]]:
    """The member's personal coupons that can be used now (none if coupons are off)."""
    items, _ = member_coupons(session, member_id, limit=20)
    out = []
    for c in items:
        if c.get("status") != "available":
            continue
        until = c.get("valid_until")
        out.append(
            {
                "code": c["code"],
                "name": c["pool"]["name"],
                "description": c["pool"].get("description"),
                "reward": _reward(page, c.get("reward") or {}),
                "until": page.t("valid_until", day=page.day(until)) if until else None,
            }
        )
    return out


def _prize(page: Page, reward: ReferralReward | None) -> str | None:
    """A reward of the programme in words ("200,00 Бонусные рубли", "a coupon «Welcome»")."""
    if reward is None:
        return None
    if reward.coupon_pool is not None:
        return page.t("invite_coupon", pool=reward.coupon_pool)
    assert reward.currency is not None and reward.amount is not None
    amount = page.points(reward.amount, page.precision(reward.currency))
    return f"{amount} {page.currency_name(reward.currency)}"


def _terms(page: Page) -> dict[str, str] | None:
    """The programme's referral rewards in words, None without referrals: for the member
    who invites (``you``, ``friend``, ``purchase``, ``hold``) and for the friend invited
    (``welcome``)."""
    spec = page.spec.referrals if page.spec else None
    if spec is None:
        return None
    q = spec.qualifying
    paid = page.money(q.min_paid)
    out: dict[str, str] = {}
    if q.min_paid > 0:
        out["purchase"] = page.t("invite_purchase_from", amount=paid, days=q.within_days)
    else:
        out["purchase"] = page.t("invite_purchase_any", days=q.within_days)
    you, friend = _prize(page, spec.referrer_reward), _prize(page, spec.friend_reward)
    if you:
        out["you"] = page.t("invite_you_get", prize=you)
    if friend:
        out["friend"] = page.t("invite_friend_gets", prize=friend)
        key = "invited_prize_from" if q.min_paid > 0 else "invited_prize_any"
        out["welcome"] = page.t(key, prize=friend, amount=paid, days=q.within_days)
    if spec.hold_days:
        out["hold"] = page.t("invite_hold", days=spec.hold_days)
    return out


@dataclass(frozen=True)
class FriendRow:
    name: str
    status: str  # joined | qualified | rewarded | rejected | reversed
    status_text: str
    reason: str | None
    since: str
    rewards: list[str]


def _reward_line(page: Page, r: dict[str, Any]) -> str:
    """One of the member's rewards for a friend: what, and pending until when or given."""
    if r.get("coupon_pool"):
        what = page.t("invite_coupon", pool=r["coupon_pool"])
    else:
        code = str(r.get("currency") or "")
        what = f"{page.amount(str(r['amount']), code, signed=True)} {page.currency_name(code)}"
    if r["status"] == "pending":
        return page.t("friend_reward_pending", reward=what, day=page.day(r["available_at"]))
    if r["status"] == "revoked":
        return page.t("friend_reward_revoked", reward=what)
    return page.t("friend_reward_standing", reward=what)


def _friends(page: Page, session: Session, member_id: uuid.UUID) -> list[FriendRow]:
    """The friends the member invited, newest first, in words."""
    rows = []
    for f in referrals.friends_of(session, member_id):
        status = str(f["status"])
        reason = f.get("reason")
        reason_key = f"referral_reason_{reason}"
        rewards = [_reward_line(page, r) for r in f["rewards"]]
        if status == "qualified" and not rewards and f.get("review") == "pending":
            rewards = [page.t("friend_reward_checked")]
        rows.append(
            FriendRow(
                name=str(f["friend"]["display_name"]),
                status=status,
                status_text=page.t(f"referral_status_{status}"),
                reason=page.t(reason_key) if reason and reason_key in i18n.MESSAGES else reason,
                since=page.t("friend_since", day=page.day(f["created_at"])),
                rewards=rewards,
            )
        )
    return rows


def _origin(request: Request) -> str:
    return (get_settings().public_url or str(request.base_url)).rstrip("/")


# ---------------------------------------------------------------------------- pages


def _session() -> Any:
    return get_db().session()


@router.get("")
def app_root() -> RedirectResponse:
    return RedirectResponse("/app/", status_code=308)


@router.get("/")
def home(request: Request) -> Response:
    """The card (rotating code, barcode), balances, tier, coupons and recent history."""
    with _session() as session:
        page = _page(request, session)
        if not _signed_in(request, session, page):
            return _to_sign_in(request)
        assert page.device is not None
        member = page.member
        balances = _balances(page, session, member.id)
        recent, _ = _history(page, session, member.id, None, RECENT)
        coupons = _coupons(page, session, member.id)
        tier = _tier(page, session, member.id)
        notices = _challenge_notices(page, session, member.id)
        session.commit()
    return page.render(
        "home.html",
        nav="card",
        notices=notices,
        balances=balances,
        tier=tier,
        recent=recent,
        coupons=coupons,
        card=app_service.card_params(page.device),
        barcode=codes.ean13_svg(
            member.card_number, page.t("barcode_label", number=member.card_number)
        ),
    )


@router.get("/history")
def history_page(request: Request, cursor: str | None = None) -> Response:
    """Every ledger entry of the member, newest first, a page at a time."""
    with _session() as session:
        page = _page(request, session)
        if not _signed_in(request, session, page):
            return _to_sign_in(request)
        try:
            rows, nxt = _history(page, session, page.member.id, cursor, HISTORY_PAGE)
        except Problem:
            rows, nxt = [], None
        session.commit()
    return page.render("history.html", nav="history", rows=rows, next_cursor=nxt)


@router.get("/receipts/{purchase_id}")
def receipt(request: Request, purchase_id: uuid.UUID) -> Response:
    """One of the member's receipts with its lines, discounts, points spent and earned."""
    with _session() as session:
        page = _page(request, session)
        if not _signed_in(request, session, page):
            return _to_sign_in(request)
        try:
            purchase = get_purchase(session, purchase_id)
        except Problem:
            purchase = None
        if purchase is None or purchase.member_id != page.member.id:
            session.commit()
            return page.render("not_found.html", 404, nav="history")
        data = purchase_json(purchase)
        stores = page.spec.stores if page.spec else []
        store = next((s.name for s in stores if s.code == purchase.store), None)
        occurred = purchase.occurred_at
        session.commit()
    return page.render(
        "receipt.html",
        nav="history",
        receipt=data,
        store=store or purchase.store,
        occurred=occurred,
        number=purchase.receipt_number or purchase.external_id,
    )


@router.get("/profile")
def profile(request: Request) -> Response:
    """Contact details, referral code, language, consents, notifications, devices."""
    with _session() as session:
        page = _page(request, session)
        if not _signed_in(request, session, page):
            return _to_sign_in(request)
        assert page.device is not None
        consents = members.current_consents(session, page.member.id)
        devices = [
            app_service.device_json(d, page.device.id)
            for d in app_service.list_devices(session, page.member.id)
        ]
        session.commit()
    referral_url = f"{_origin(request)}/app/r/{page.member.referral_code}"
    return page.render(
        "profile.html",
        nav="profile",
        consents=consents,
        devices=devices,
        referral_url=referral_url,
    )


@router.get("/invite")
def invite(request: Request) -> Response:
    """The member's invite link with its QR code and a share button, the programme's
    referral rewards, and the friends invited with their status and the member's rewards."""
    with _session() as session:
        page = _page(request, session)
        if not _signed_in(request, session, page):
            return _to_sign_in(request)
        friends = _friends(page, session, page.member.id)
        session.commit()
    url = f"{_origin(request)}/app/r/{page.member.referral_code}"
    return page.render(
        "invite.html",
        nav="invite",
        url=url,
        qr=codes.qr_svg(url, page.t("invite_qr_label", url=url)),
        terms=_terms(page),
        friends=friends,
    )


@router.get("/sign-in")
def sign_in(request: Request, next: str | None = None) -> Response:
    """Sign in with a one-time code sent to the phone or email."""
    with _session() as session:
        page = _page(request, session)
        if _signed_in(request, session, page):
            return RedirectResponse(_safe_next(next), status_code=303)
        session.commit()
    return page.render("sign_in.html", next=_safe_next(next))


@router.get("/link")
def link(request: Request) -> Response:
    """The landing page of a one-time app link (its token is in the fragment)."""
    with _session() as session:
        page = _page(request, session)
        session.commit()
    return page.render("link.html")


@router.get("/offline")
def offline(request: Request) -> Response:
    """What the service worker shows for a page it has no copy of, without network."""
    with _session() as session:
        page = _page(request, session)
        session.commit()
    return page.render("offline.html")


@router.get("/r/{code}")
def invited(request: Request, code: str) -> Response:
    """The page a member's invite link opens (counted as a visit, the referral funnel's
    first step, unless a member signed in opens it): the friend joins here with a phone
    and a one-time code, or gives the code at the till. The browser gets its own id
    (``kopilka_device``), the enrolment's device."""
    clean = code.strip().upper()
    with _session() as session:
        page = _page(request, session)
        if not clean.isalnum() or len(clean) > 16:
            session.commit()
            return page.render("not_found.html", 404)
        member = _signed_in(request, session, page)
        known = member or referrals.visited(session, clean)
        session.commit()
    if not known:
        return page.render("not_found.html", 404)
    response = page.render("invited.html", code=clean, terms=_terms(page), signed_in=member)
    if app_service.browser_id(request.cookies.get(app_service.DEVICE_COOKIE)) is None:
        set_browser_cookie(response, request, app_service.new_browser_id())
    return response


@router.get("/lang/{lang}")
def choose_language(lang: str, next: str | None = None) -> RedirectResponse:
    """Remember the chosen language and go back."""
    response = RedirectResponse(_safe_next(next), status_code=303)
    if lang in LANGS:
        response.set_cookie(LANG_COOKIE, lang, max_age=400 * 24 * 3600, path="/", samesite="lax")
    return response


# ---------------------------------------------------------------------------- assets


def _brand(request: Request) -> tuple[str, BrandingSpec, str]:
    with _session() as session:
        spec = _spec(session)
        session.commit()
    name = spec.name if spec else DEFAULT_NAME
    brand = spec.branding if spec else DEFAULT_BRANDING
    digest = hashlib.sha256(
        json.dumps([name, brand.model_dump()], sort_keys=True).encode()
    ).hexdigest()[:8]
    return name, brand, digest


@router.get("/manifest.webmanifest")
def manifest(request: Request) -> Response:
    name, brand, digest = _brand(request)
    body = branding.manifest(name, brand, _lang(request), digest)
    return JSONResponse(
        body, media_type="application/manifest+json", headers={"Cache-Control": "no-cache"}
    )


@router.get("/theme.css")
def theme(request: Request) -> Response:
    _, brand, _ = _brand(request)
    return Response(
        branding.theme_css(brand),
        media_type="text/css",
        headers={"Cache-Control": "no-cache"},
    )


@router.get("/icons/{name}")
def icon(request: Request, name: str) -> Response:
    if name not in branding.ICONS:
        return Response(status_code=404)
    _, brand, _ = _brand(request)
    size, maskable = branding.ICONS[name]
    return Response(
        branding.icon_png(brand.primary_color.lower(), size, maskable),
        media_type="image/png",
        headers={"Cache-Control": "public, max-age=86400"},
    )


def service_worker_source(brand_digest: str) -> str:
    """The service worker with its version and the files it precaches filled in."""
    version = f"{ASSET_VERSION}-{brand_digest}"
    precache = [
        "/app/offline",
        "/app/manifest.webmanifest",
        "/app/theme.css",
        *(f"/app/icons/{name}?v={brand_digest}" for name in branding.ICONS),
        *static_files(),
    ]
    source = (HERE / "sw.js").read_text(encoding="utf-8")
    return source.replace("__VERSION__", json.dumps(version)).replace(
        "__PRECACHE__", json.dumps(precache)
    )


@router.get("/sw.js")
def service_worker(request: Request) -> Response:
    _, _, digest = _brand(request)
    return Response(
        service_worker_source(digest),
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache"},
    )


def _not_found(request: Request) -> Response:
    """What a page of the app answers for something that is not there (a receipt's id
    that is not a UUID): sign in first, then "not found"."""
    with _session() as session:
        page = _page(request, session)
        if not _signed_in(request, session, page):
            return _to_sign_in(request)
        session.commit()
    return page.render("not_found.html", 404)


def mount(app: FastAPI) -> None:
    """Serve the member app at ``/app`` (its device sessions call ``/api/v1`` through the
    authenticator ``kopilka.wiring`` registers)."""
    app.include_router(router)
    serve_not_found_page(app, "/app/", _not_found)
    app.mount("/app/static", AppStatic(directory=STATIC), name="app-static")


# --- leaderboards ---


@dataclass(frozen=True)
class BoardRow:
    rank: int
    name: str
    value: str
    mine: bool


def _score(page: Page, board: LeaderboardSpec, value: Decimal) -> str:
    """A board's value in the member's way: money as money, points in their precision,
    counts as numbers."""
    if board.metric == "spent":
        return page.money(value)
    if board.metric == "points_earned" and board.currency:
        return page.points(value, page.precision(board.currency))
    return page.quantity(value)


def _metric_text(page: Page, board: LeaderboardSpec) -> str:
    currency = page.currency_name(board.currency) if board.currency else ""
    return page.t(f"leaderboard_metric_{board.metric}", currency=currency)


def _period_text(page: Page, board: LeaderboardSpec, key: str) -> str:
    return page.t(f"leaderboard_period_{board.period}", period=key)


@router.get("/leaderboard")
def leaderboard_page(
    request: Request, board: str | None = None, store: str | None = None
) -> Response:
    """The programme's leaderboards (one at a time, ``board``), the member's own place
    highlighted, and the switch to take part, with a nickname."""
    with _session() as session:
        page = _page(request, session)
        if not _signed_in(request, session, page):
            return _to_sign_in(request)
        spec = page.spec
        member_id = page.member.id
        player = leaderboards.get_player(session, member_id)
        boards = spec.leaderboards if spec else []
        chosen = next((b for b in boards if b.code == board), boards[0] if boards else None)
        rows: list[BoardRow] = []
        mine = None
        period = ""
        stores = spec.stores if spec else []
        shop = None
        if spec is not None and chosen is not None:
            if chosen.per_store:
                shop = (
                    store
                    if store in {s.code for s in stores}
                    else (stores[0].code if stores else None)
                )
            w = leaderboards.where(spec, chosen, None, shop)
            period = _period_text(page, chosen, w.period)
            for r in leaderboards.top(session, w, chosen.size):
                rows.append(
                    BoardRow(
                        r["rank"],
                        r["display_name"],
                        _score(page, chosen, r["value"]),
                        r["member_id"] == member_id,
                    )
                )
            found = leaderboards.rank_of(session, w, member_id)
            if found is not None:
                mine = {
                    "rank": found["rank"],
                    "value": _score(page, chosen, found["value"]),
                }
        masked = leaderboards.masked_name_of(page.member.name, page.member.card_number)
        session.commit()
    return page.render(
        "leaderboard.html",
        nav="leaderboard",
        boards=boards,
        chosen=chosen,
        metric=_metric_text(page, chosen) if chosen else "",
        period=period,
        rows=rows,
        mine=mine,
        player=player,
        masked=masked,
        stores=stores,
        store=shop,
    )


# --- rewards ---


@router.get("/stickers")
def stickers(request: Request) -> Response:
    """The sticker card: the balance (a debt shown), each reward with how far the balance
    gets toward it ("17 of 30") and what it buys; a claim button for coupon rewards, "show
    at the till" for products."""
    with _session() as session:
        page = _page(request, session)
        if not _signed_in(request, session, page):
            return _to_sign_in(request)
        data = rewards.card(session, page.member.id, page.lang)
        session.commit()
    cards = []
    for c in data["cards"]:
        code, p = c["currency"], page.precision(c["currency"])
        items = []
        for r in c["rewards"]:
            cost = page.amount(r["cost"]["amount"], code)
            price = page.money(r["gives"]["price"]) if r["kind"] == "till" else None
            items.append(
                {
                    **r,
                    "have": int(Decimal(r["progress"]["have"]) * 10**p),
                    "need": int(Decimal(r["progress"]["need"]) * 10**p),
                    "progress_text": page.t(
                        "stickers_progress",
                        have=page.points(Decimal(r["progress"]["have"]), p),
                        need=page.points(Decimal(r["progress"]["need"]), p),
                    ),
                    "cost_text": cost,
                    "till_text": page.t("stickers_at_till", sku=r["gives"]["sku"], price=price)
                    if price is not None
                    else None,
                }
            )
        cards.append(
            {
                **c,
                "balance_text": page.amount(c["balance"], code),
                "debt_text": page.t("stickers_debt", amount=page.amount(c["debt"], code))
                if c["debt"]
                else None,
                "until_text": page.t(
                    "stickers_until", day=page.day(c["expires_on"] + "T12:00:00+00:00")
                )
                if c["expires_on"]
                else None,
                "items": items,
            }
        )
    return page.render("stickers.html", nav="stickers", cards=cards)


# ---------------------------------------------------------------------------- challenges
# --- challenges ---


@dataclass
class ChallengeRow:
    code: str
    name: str
    description: str | None
    status: str
    status_text: str
    progress: str  # "3 of 5"
    percent: int
    left: str | None  # "3 days left"
    joinable: bool
    joined: bool
    steps: list[str]
    streak: str | None
    rewards: list[str]
    current: bool


def _reward_words(page: Page, r: dict[str, Any]) -> str:
    parts = []
    if r.get("points"):
        p = r["points"]
        parts.append(
            f"{page.amount(p['amount'], p['currency'])} {page.currency_name(p['currency'])}"
        )
    if r.get("coupon_code"):
        parts.append(f"{page.t('coupon_word')} {r['coupon_code']}")
    if r.get("badge"):
        parts.append(page.t("badge_word", name=_badge_name(page, r["badge"])))
    return ", ".join(parts)


def _badge_name(page: Page, code: str) -> str:
    badge = next((b for b in (page.spec.badges if page.spec else []) if b.code == code), None)
    return getattr(badge.name, page.lang) if badge else code


def _challenge_rows(page: Page, items: list[dict[str, Any]]) -> list[ChallengeRow]:
    rows = []
    seen: set[str] = set()
    at = now()
    for item in items:
        current = item["code"] not in seen
        seen.add(item["code"])
        value, target = Decimal(item["progress"]["value"]), Decimal(item["progress"]["target"])
        end = item["period"]["to"]
        left = None
        if current and item["status"] == "active" and end:
            delta = dt.datetime.fromisoformat(end) - at
            if delta.total_seconds() > 0:
                left = page.t("time_left", left=formatting.time_left(delta, page.lang))
        streak = item.get("streak")
        rows.append(
            ChallengeRow(
                code=item["code"],
                name=item["name"][page.lang],
                description=(item["description"] or {}).get(page.lang),
                status=item["status"],
                status_text=page.t(f"challenge_{item['status']}"),
                progress=page.t(
                    "progress_of", value=page.quantity(value), target=page.quantity(target)
                ),
                percent=int(min(value / target, Decimal(1)) * 100) if target else 0,
                left=left,
                joinable=current and not item["joined"] and item["status"] == "active",
                joined=item["joined"],
                steps=(
                    [
                        page.t("challenge_step", n=i + 1, target=page.quantity(s["target"]))
                        for i, s in enumerate(item["steps"])
                    ]
                    if len(item["steps"]) > 1
                    else []
                ),
                streak=(
                    page.t(
                        "challenge_streak",
                        length=streak["length"],
                        every=page.t(f"every_{streak['every']}"),
                        grace=streak["grace"],
                    )
                    if streak
                    else None
                ),
                rewards=[
                    page.t(f"challenge_reward_{r['status']}", what=_reward_words(page, r))
                    for r in item["rewards"]
                    if r["status"] in ("pending", "standing", "revoked") and _reward_words(page, r)
                ],
                current=current,
            )
        )
    return rows


@router.get("/challenges")
def challenges_page(request: Request) -> Response:
    """The member's challenges: a card per challenge with its progress bar ("3 of 5"), the
    time left, a button to take part in an opt-in one; then earlier periods."""
    with _session() as session:
        page = _page(request, session)
        if not _signed_in(request, session, page):
            return _to_sign_in(request)
        items = challenges.member_challenges(session, page.member.id)
        session.commit()
    rows = _challenge_rows(page, items)
    return page.render(
        "challenges.html",
        nav="challenges",
        current=[r for r in rows if r.current],
        past=[r for r in rows if not r.current],
    )


@dataclass
class BadgeRow:
    code: str
    name: str
    description: str | None
    image: str | None
    earned: str | None  # "Earned 5 Dec 2026"


@router.get("/badges")
def badges_page(request: Request) -> Response:
    """The badge wall: every badge of the programme, those earned first, with the day."""
    with _session() as session:
        page = _page(request, session)
        if not _signed_in(request, session, page):
            return _to_sign_in(request)
        held = {b["code"]: b for b in challenges.member_badges(session, page.member.id)}
        catalogue = challenges.badges(session)
        session.commit()
    rows = []
    for b in catalogue:
        got = held.get(b["code"])
        image = b["image"]
        if image and not image.startswith(("http://", "https://")):
            image = f"/app/static/{image}"
        rows.append(
            BadgeRow(
                code=b["code"],
                name=b["name"][page.lang],
                description=(b["description"] or {}).get(page.lang),
                image=image,
                earned=page.t("badges_earned", day=page.day(got["awarded_at"])) if got else None,
            )
        )
    rows.sort(key=lambda r: r.earned is None)
    earned = sum(1 for r in rows if r.earned)
    return page.render(
        "badges.html",
        nav="badges",
        badges=rows,
        count=page.t("badges_count", n=earned, total=len(rows)),
    )


def _challenge_notices(page: Page, session: Session, member_id: uuid.UUID) -> list[str]:
    """The home screen's notices of challenges completed since the app last showed them
    (each shown once)."""
    return [
        page.t("challenge_done_notice", name=n["name"][page.lang])
        for n in challenges.completions_to_notice(session, member_id)
    ]
