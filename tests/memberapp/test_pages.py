"""The app's pages as the server renders them: sign-in, card, balances, history, receipt,
profile, languages, manifest, icons, theme and service worker."""

from __future__ import annotations

import io
import re
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import text

from kopilka.adjustments.service import post as adjust
from kopilka.core.db import Database, now
from kopilka.memberapp.models import MemberDevice
from kopilka.web.app import views
from tests.conftest import KeyFactory
from tests.memberapp.conftest import MemberFactory, SignedIn, sign_in_by_code

pytestmark = pytest.mark.usefixtures("program")


@pytest.fixture
def signed(client: TestClient, code_file: Path, make_member: MemberFactory) -> SignedIn:
    make_member()
    return sign_in_by_code(client, code_file)


def _give(db: Database, member_id: object, amount: str) -> None:
    with db.session() as s:
        adjust(
            s,
            member_id=member_id,  # type: ignore[arg-type]
            currency="BONUS",
            amount=Decimal(amount),
            reason="welcome",
            actor="test",
            key=f"welcome-{member_id}-{amount}",
        )
        s.commit()


def _buy(client: TestClient, auth: KeyFactory, member_id: str) -> str:
    r = client.post(
        "/api/v1/purchases",
        json={
            "external_id": "R-PAGE-1",
            "member": {"id": member_id},
            "store": "msk-01",
            "channel": "pos",
            "occurred_at": now().isoformat(),
            "lines": [
                {"sku": "MILK-1L", "name": "Milk 1 l", "quantity": "2", "unit_price": "89.90"},
                {"sku": "COFFEE", "name": "Coffee", "quantity": "1", "unit_price": "450.00"},
            ],
        },
        headers=auth("cashier"),
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _text(html: str, testid: str) -> str:
    found = re.search(rf'data-testid="{testid}"[^>]*>([^<]*)<', html)
    assert found, testid
    return found.group(1).strip()


def test_the_app_asks_a_stranger_to_sign_in(client: TestClient) -> None:
    # when someone without a session opens the app
    root = client.get("/app", follow_redirects=False)
    home = client.get("/app/", follow_redirects=False)
    # then /app leads to /app/ and that to the sign-in page, which comes back after
    assert root.status_code == 308 and root.headers["location"] == "/app/"
    assert home.status_code == 303
    assert home.headers["location"] == "/app/sign-in?next=%2Fapp%2F"
    page = client.get(home.headers["location"])
    assert page.status_code == 200
    assert 'data-next="/app/"' in page.text and "Get a code" in page.text


def test_the_language_follows_the_browser_and_the_members_choice(client: TestClient) -> None:
    # when the browser prefers Russian
    ru = client.get("/app/sign-in", headers={"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"})
    # then the page is in Russian
    assert '<html lang="ru">' in ru.text and "Получить код" in ru.text
    assert ru.headers["content-language"] == "ru"
    # when the member chooses English
    chosen = client.get("/app/lang/en?next=/app/sign-in", follow_redirects=False)
    assert chosen.status_code == 303 and chosen.headers["location"] == "/app/sign-in"
    assert "kopilka_lang=en" in chosen.headers["set-cookie"]
    # then the next page is in English even for a Russian browser
    en = client.get("/app/sign-in", headers={"Accept-Language": "ru"})
    assert '<html lang="en">' in en.text and "Get a code" in en.text
    # and a foreign redirect target is not followed
    away = client.get("/app/lang/ru?next=https://evil.example.com/", follow_redirects=False)
    assert away.headers["location"] == "/app/"


def test_the_card_page_shows_the_card_balance_tier_and_history(
    client: TestClient, signed: SignedIn, db: Database, auth: KeyFactory
) -> None:
    # given a member with a welcome bonus and a purchase
    _give(db, signed.member_id, "1000.00")
    _buy(client, auth, str(signed.member_id))
    # when the phone opens the app in Russian
    html = client.get("/app/", headers={"Accept-Language": "ru"}).text
    # then the main balance is written the Russian way (1000 + 5 % of each line: 8.99 + 22.50)
    assert _text(html, "balance") == "1\xa0031,49"
    assert _text(html, "tier") == "Пока без уровня"
    # and the card carries this device's code parameters for the phone to compute
    with db.session() as s:
        device = s.get(MemberDevice, signed.device_id)
        assert device is not None
    assert f'data-device="{device.card_no}"' in html
    assert f'data-secret="{device.card_secret}"' in html
    assert 'data-testid="card-code"' in html
    # with the static card number as a barcode with an accessible name
    number = client.get("/api/v1/app/me").json()["member"]["card_number"]
    assert _text(html, "card-number") == number
    assert f'aria-label="Штрихкод номера карты {number}"' in html
    # and the recent history links the receipt
    assert "Начислено" in html and "Корректировка" in html
    assert "/app/receipts/" in html
    assert "+31,49" in html and "+1\xa0000,00" in html


def test_pending_points_and_the_next_expiry_are_shown(
    client: TestClient, signed: SignedIn, db: Database
) -> None:
    # given points that expire in a year (the programme's BONUS)
    _give(db, signed.member_id, "20.00")
    # when the app is opened in English
    html = client.get("/app/").text
    # then the balance and when the points expire are shown
    assert _text(html, "balance") == "20.00"
    assert _text(html, "expiring").startswith("20.00 expire on ")


def test_the_history_page_and_a_receipt(
    client: TestClient, signed: SignedIn, db: Database, auth: KeyFactory
) -> None:
    # given a purchase
    purchase_id = _buy(client, auth, str(signed.member_id))
    # when the history is opened
    history = client.get("/app/history").text
    # then the purchase's points are listed with a link to the receipt
    assert f'href="/app/receipts/{purchase_id}"' in history
    assert "Earned" in history and "+31.49" in history
    # when the receipt is opened
    receipt = client.get(f"/app/receipts/{purchase_id}").text
    # then it shows the lines, the total and what was earned
    assert "Milk 1 l" in receipt and "Coffee" in receipt
    assert "R-PAGE-1" in receipt and "Тверская, 12" in receipt
    assert "+31.49" in receipt


def test_another_members_receipt_is_not_found(
    client: TestClient, signed: SignedIn, auth: KeyFactory, make_member: MemberFactory
) -> None:
    # given another member's purchase
    other = make_member(phone="+79160000009", email="other@example.com")
    purchase_id = _buy(client, auth, str(other))
    # when this member opens it
    r = client.get(f"/app/receipts/{purchase_id}")
    # then it does not exist for them
    assert r.status_code == 404
    assert "Milk" not in r.text


def test_the_profile_shows_consents_devices_and_the_referral_link(
    client: TestClient, signed: SignedIn
) -> None:
    # given consent to SMS given in the app
    client.post("/api/v1/app/consents", json={"sms": True}, headers=signed.headers)
    # when the profile is opened
    html = client.get("/app/profile").text
    me = client.get("/api/v1/app/me").json()["member"]
    # then the SMS consent is on and the others off
    assert re.search(r'data-testid="consent-sms" checked', html)
    assert not re.search(r'data-testid="consent-email" checked', html)
    # the device is listed as this one, and the referral link is the member's
    assert "This device" in html
    assert f'data-url="http://testserver/app/r/{me["referral_code"]}"' in html
    assert _text(html, "referral-code") == me["referral_code"]


def test_the_invitation_page_shows_the_code(
    client: TestClient, make_member: MemberFactory, db: Database
) -> None:
    # (joining from it: tests/memberapp/test_invite.py)
    make_member()
    with db.session() as s:
        code = s.execute(text("SELECT referral_code FROM members")).scalar_one()
    r = client.get(f"/app/r/{code.lower()}", headers={"Accept-Language": "ru"})
    assert r.status_code == 200
    assert _text(r.text, "invited-code") == code
    assert "Вас приглашают в Test programme" in r.text
    assert client.get("/app/r/AB2CD3EF").status_code == 404  # nobody's code
    assert client.get("/app/r/%3Cscript%3E").status_code == 404


def test_pages_run_no_inline_script_or_style(client: TestClient, signed: SignedIn) -> None:
    # the Content-Security-Policy forbids inline scripts and styles: no page relies on them
    code = client.get("/api/v1/app/me").json()["member"]["referral_code"]
    pages = ("/app/", "/app/history", "/app/invite", "/app/profile", "/app/offline", "/app/link")
    for path in (*pages, f"/app/r/{code}"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["cache-control"] == "no-store"
        for tag in re.findall(r"<script[^>]*>", r.text):
            assert 'src="/app/static/' in tag or 'type="application/json"' in tag, tag
        assert " style=" not in r.text, path


def test_the_manifest_makes_the_app_installable(client: TestClient) -> None:
    # when the browser reads the manifest
    r = client.get("/app/manifest.webmanifest", headers={"Accept-Language": "ru"})
    m = r.json()
    # then it names the programme, starts at /app/ standalone, in the brand's colour
    assert r.headers["content-type"] == "application/manifest+json"
    assert m["name"] == "Test programme" and m["short_name"] == "Test program"
    assert (m["start_url"], m["scope"], m["display"]) == ("/app/", "/app/", "standalone")
    assert m["theme_color"] == "#1f6feb" and m["lang"] == "ru"
    # with 192 and 512 icons, plain and maskable, that are real PNGs of those sizes
    kinds = {(i["sizes"], i["purpose"]) for i in m["icons"]}
    assert kinds == {
        ("192x192", "any"),
        ("512x512", "any"),
        ("192x192", "maskable"),
        ("512x512", "maskable"),
    }
    for icon in m["icons"]:
        png = client.get(icon["src"])
        assert png.headers["content-type"] == "image/png"
        image = Image.open(io.BytesIO(png.content))
        size = int(icon["sizes"].split("x")[0])
        assert image.size == (size, size) and image.format == "PNG"
        corner = image.convert("RGBA").getpixel((0, 0))
        if icon["purpose"] == "maskable":  # full bleed: the corner is the brand's colour
            assert corner == (0x1F, 0x6F, 0xEB, 255)
        else:  # a rounded square: the corner is transparent
            assert corner[3] == 0


def test_the_theme_follows_the_programmes_colour(client: TestClient) -> None:
    css = client.get("/app/theme.css").text
    assert css == ":root{--brand:#1f6feb;--on-brand:#ffffff;--brand-text:#1f6feb;}\n"


def test_the_service_worker_precaches_the_shell(client: TestClient) -> None:
    # when the browser fetches the service worker
    r = client.get("/app/sw.js")
    # then it is JavaScript with its version and the shell to precache filled in
    assert r.headers["content-type"].startswith("text/javascript")
    assert r.headers["cache-control"] == "no-cache"
    assert f'const VERSION = "{views.ASSET_VERSION}-' in r.text
    for path in (
        "/app/offline",
        "/app/manifest.webmanifest",
        "/app/static/app.js",
        "/app/static/card.js",
        "/app/static/qr.js",
        "/app/static/cardcode.js",
        "/app/static/app.css",
    ):
        assert f'"{path}"' in r.text, path
    assert "__VERSION__" not in r.text and "__PRECACHE__" not in r.text
    # and static files are revalidated by browsers (the worker keeps its own copy)
    static = client.get("/app/static/app.js")
    assert static.status_code == 200 and static.headers["cache-control"] == "no-cache"


def test_the_card_page_shows_the_members_own_coupons_with_their_codes(
    client: TestClient, signed: SignedIn, db: Database, make_member: MemberFactory
) -> None:
    from kopilka.coupons import issue, pools
    from kopilka.coupons.schemas import PoolIn

    # given a pool with a personal code for this member and one for another member
    other = make_member(phone="+79165550001", email=None)
    with db.session() as s:
        pool = pools.create_pool(
            s,
            PoolIn.model_validate(
                {"name": "Birthday 20 %", "reward": {"kind": "percent", "value": "20"}}
            ),
            "test",
        )
        mine = issue.issue_personal(s, pool.id, [signed.member_id], "test")[0]["code"]
        theirs = issue.issue_personal(s, pool.id, [other], "test")[0]["code"]
        s.commit()
    # when the member opens the app
    html = client.get("/app/", headers={"Accept-Language": "en"}).text
    # then their code is shown with its pool, and nobody else's
    assert _text(html, "coupon-code") == mine
    assert "Birthday 20 %" in html
    assert theirs not in html
