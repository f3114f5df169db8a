"""The invite screen (``/app/invite``: the link, its QR code, the friends invited with their
status and the member's rewards) and the invitation page (``/app/r/{code}``: a visit
counted, a friend joining with a phone and a one-time code, landing signed in with the
referral applied)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kopilka.core.db import Database, now
from kopilka.memberapp.models import JoinCode, MemberDevice
from kopilka.members.models import Member
from kopilka.referrals.models import Referral, ReferralVisit
from tests.conftest import KeyFactory
from tests.memberapp.conftest import (
    EMAIL,
    PHONE,
    MemberFactory,
    SignedIn,
    last_code,
    sign_in_by_code,
)
from tests.referrals.conftest import REFERRAL_PROGRAM, apply

pytestmark = pytest.mark.usefixtures("program")

FRIEND = "+79035551234"


@pytest.fixture
def referrals(program: Database) -> Database:
    """The programme with referrals: 200 BONUS to the friend, 300 to the referrer, for a
    first receipt of at least 1000 within 30 days, held 14 days."""
    apply(program, REFERRAL_PROGRAM)
    return program


@pytest.fixture
def referrer(client: TestClient, code_file: Path, make_member: MemberFactory) -> SignedIn:
    """A member signed in to the app in ``client`` (Ольга, +79161234567)."""
    make_member(name="Ольга Смирнова")
    return sign_in_by_code(client, code_file)


def _code_of(db: Database, member_id: uuid.UUID) -> str:
    with db.session() as s:
        member = s.get(Member, member_id)
        assert member is not None
        return member.referral_code


def _visits(db: Database) -> int:
    with db.session() as s:
        return int(s.execute(select(func.count()).select_from(ReferralVisit)).scalar_one())


def _text(html: str, testid: str) -> list[str]:
    return [
        re.sub(r"[ \t\n]+", " ", m).strip(" \n")
        for m in re.findall(rf'data-testid="{testid}"[^>]*>([^<]*)<', html)
    ]


def _buy(client: TestClient, auth: KeyFactory, member_id: str, external_id: str) -> None:
    r = client.post(
        "/api/v1/purchases",
        json={
            "external_id": external_id,
            "member": {"id": member_id},
            "store": "msk-01",
            "channel": "pos",
            "occurred_at": now().isoformat(),
            "lines": [{"sku": "TV", "name": "TV", "quantity": "1", "unit_price": "1500.00"}],
        },
        headers=auth("cashier"),
    )
    assert r.status_code == 201, r.text


def _join(
    client: TestClient,
    code_file: Path,
    referral_code: str,
    phone: str = FRIEND,
    **extra: Any,
) -> Any:
    asked = client.post(
        "/api/v1/app/join/code", json={"phone": phone, "referral_code": referral_code}
    )
    assert asked.status_code == 202, asked.text
    normalised = "+7" + re.sub(r"\D", "", phone)[-10:]
    return client.post(
        "/api/v1/app/join/verify",
        json={
            "challenge": asked.json()["challenge"],
            "code": last_code(code_file, normalised),
            "phone": phone,
            "referral_code": referral_code,
            **extra,
        },
    )


# ---------------------------------------------------------------------------- the invitation


def test_the_invitation_page_counts_a_visit_and_offers_to_join(
    client: TestClient, db: Database, make_member: MemberFactory, referrals: Database
) -> None:
    # given a member's referral code
    code = _code_of(db, make_member())
    # when a stranger's browser opens the invite link (in lower case, in Russian)
    r = client.get(f"/app/r/{code.lower()}", headers={"Accept-Language": "ru"})
    # then the page invites them, with the friend's reward and a form to join
    assert r.status_code == 200
    assert "Вас приглашают в Test programme" in r.text
    assert _text(r.text, "invited-code") == [code]
    assert _text(r.text, "invited-terms") == [
        "Зарегистрируйтесь и получите 200,00 Бонусные рубли за первую покупку "
        "от 1\xa0000,00\xa0₽ в течение 30 дн."
    ]
    assert 'data-testid="join-phone"' in r.text and f'data-code="{code}"' in r.text
    # and the visit is counted, the funnel's first step
    assert _visits(db) == 1
    # and the browser gets its own id for the enrolment, kept a long time
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("kopilka_device=") and "HttpOnly" in cookie
    assert "Max-Age=34560000" in cookie
    # when it opens the link again, it keeps that id
    again = client.get(f"/app/r/{code}")
    assert "set-cookie" not in again.headers
    assert _visits(db) == 2


def test_an_unknown_or_malformed_code_is_not_found(client: TestClient, db: Database) -> None:
    assert client.get("/app/r/AB2CD3EF").status_code == 404
    assert client.get("/app/r/%3Cscript%3E").status_code == 404
    assert _visits(db) == 0


def test_a_member_signed_in_is_told_they_have_a_card(
    client: TestClient, db: Database, referrer: SignedIn, make_member: MemberFactory
) -> None:
    # given a member signed in, and another member's link
    other = make_member(phone="+79160000001", email="a@example.com", name="Анна")
    # when the member opens it
    r = client.get(f"/app/r/{_code_of(db, other)}")
    # then they are told the invitation is for new members, and nothing is counted
    assert r.status_code == 200
    assert _text(r.text, "invited-member") == [
        "You already have a card: the invitation is for new members."
    ]
    assert 'data-testid="join-phone"' not in r.text
    assert _visits(db) == 0


# ---------------------------------------------------------------------------- joining


def test_a_friend_joins_with_a_code_and_lands_signed_in_with_the_referral(
    client: TestClient,
    db: Database,
    code_file: Path,
    make_member: MemberFactory,
    referrals: Database,
) -> None:
    # given a member's invite link opened in a browser
    referrer_id = make_member()
    code = _code_of(db, referrer_id)
    client.get(f"/app/r/{code}")
    browser = client.cookies["kopilka_device"]
    # when the friend asks for a code with a phone written the national way
    asked = client.post(
        "/api/v1/app/join/code",
        json={"phone": "8 903 555-12-34", "referral_code": code.lower(), "lang": "ru"},
    )
    # then a code is sent to the phone, shown masked
    assert asked.status_code == 202, asked.text
    assert asked.json()["sent_to"] == "+7 *** *** 12 34"
    assert asked.json()["channel"] == "sms"
    sent = last_code(code_file, FRIEND)
    # and only an HMAC of the challenge, the phone and the code is kept
    with db.session() as s:
        row = s.get(JoinCode, uuid.UUID(asked.json()["challenge"]))
        assert row is not None and sent not in row.code_hash and "555" not in row.code_hash
    # when the friend types it in with a name
    done = client.post(
        "/api/v1/app/join/verify",
        json={
            "challenge": asked.json()["challenge"],
            "code": sent,
            "phone": "8 903 555-12-34",
            "referral_code": code,
            "name": "Иван Петров",
        },
    )
    # then a new member is enrolled from the app, signed in on this phone
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["joined"] is True and body["csrf_token"]
    assert "kopilka_member=" in done.headers["set-cookie"]
    friend_id = uuid.UUID(body["member_id"])
    with db.session() as s:
        friend = s.get(Member, friend_id)
        assert friend is not None
        assert (friend.phone, friend.name, friend.referred_by) == (
            FRIEND,
            "Иван Петров",
            referrer_id,
        )
        ref = s.execute(select(Referral).where(Referral.friend_id == friend_id)).scalar_one()
        device = s.execute(
            select(MemberDevice).where(MemberDevice.member_id == friend_id)
        ).scalar_one()
    # and the referral is made: joined, from the app, on this browser (kept as a digest)
    assert (ref.referrer_id, ref.status, ref.channel) == (referrer_id, "joined", "app")
    assert ref.device is not None and ref.device != browser
    assert device.signed_in_by == "code"
    # and the card page is the friend's
    home = client.get("/app/")
    assert home.status_code == 200 and friend.card_number in home.text


def test_a_browser_without_an_id_gets_one_when_it_joins(
    client: TestClient, db: Database, code_file: Path, make_member: MemberFactory
) -> None:
    # given a link never opened in this browser (the code given by hand)
    code = _code_of(db, make_member())
    # when a friend joins from it
    done = _join(client, code_file, code)
    # then the browser gets its id with the session, and the referral knows the device
    assert done.status_code == 200, done.text
    assert "kopilka_device=" in done.headers["set-cookie"]
    with db.session() as s:
        ref = s.execute(select(Referral)).scalar_one_or_none()
    # (the test programme runs no referrals: enrolled with the code, no referral made)
    assert ref is None
    with db.session() as s:
        friend = s.get(Member, uuid.UUID(done.json()["member_id"]))
        assert friend is not None and friend.referred_by is not None


def test_a_members_phone_is_signed_in_without_the_referral(
    client: TestClient,
    db: Database,
    code_file: Path,
    make_member: MemberFactory,
    referrals: Database,
) -> None:
    # given a member, and another member's invite link
    member_id = make_member()
    other = make_member(phone="+79160000001", email="a@example.com", name="Анна")
    code = _code_of(db, other)
    # when the member asks to join with their own phone
    asked = client.post("/api/v1/app/join/code", json={"phone": PHONE, "referral_code": code})
    # then the answer looks as for anyone (nobody learns who is a member)
    assert asked.status_code == 202 and asked.json()["sent_to"] == "+7 *** *** 45 67"
    # when the code that came is typed in
    done = client.post(
        "/api/v1/app/join/verify",
        json={
            "challenge": asked.json()["challenge"],
            "code": last_code(code_file, PHONE),
            "phone": PHONE,
            "referral_code": code,
        },
    )
    # then they are signed in as themselves, told so, and no referral is made
    assert done.status_code == 200, done.text
    assert done.json()["joined"] is False
    assert done.json()["member_id"] == str(member_id)
    with db.session() as s:
        assert s.execute(select(func.count()).select_from(Referral)).scalar_one() == 0
        member = s.get(Member, member_id)
        assert member is not None and member.referred_by is None


def test_a_phone_enrolled_meanwhile_at_a_till_signs_in(
    client: TestClient,
    db: Database,
    code_file: Path,
    make_member: MemberFactory,
    admin: dict[str, str],
) -> None:
    # given a friend who asked for a code to join
    code = _code_of(db, make_member())
    asked = client.post("/api/v1/app/join/code", json={"phone": FRIEND, "referral_code": code})
    sent = last_code(code_file, FRIEND)
    # when the same phone is enrolled at a till before the code is typed in
    at_till = client.post("/api/v1/members", json={"phone": FRIEND}, headers=admin)
    assert at_till.status_code == 201
    done = client.post(
        "/api/v1/app/join/verify",
        json={
            "challenge": asked.json()["challenge"],
            "code": sent,
            "phone": FRIEND,
            "referral_code": code,
        },
    )
    # then the code, which proves the phone, signs its member in
    assert done.status_code == 200, done.text
    assert (done.json()["joined"], done.json()["member_id"]) == (False, at_till.json()["id"])


def test_a_wrong_code_or_another_phone_counts_and_five_kill_the_code(
    client: TestClient, db: Database, code_file: Path, make_member: MemberFactory
) -> None:
    code = _code_of(db, make_member())
    asked = client.post("/api/v1/app/join/code", json={"phone": FRIEND, "referral_code": code})
    sent = last_code(code_file, FRIEND)
    body = {"challenge": asked.json()["challenge"], "phone": FRIEND, "referral_code": code}
    wrong = "000000" if sent != "000000" else "111111"
    # a wrong code is refused, saying how many tries are left
    r = client.post("/api/v1/app/join/verify", json={**body, "code": wrong})
    assert r.status_code == 422 and r.json()["code"] == "sign_in_code_invalid"
    assert r.json()["attempts_left"] == 4
    # the right code with another phone is wrong too (the code belongs to the phone)
    r = client.post("/api/v1/app/join/verify", json={**body, "phone": "+79035550000", "code": sent})
    assert r.status_code == 422 and r.json()["attempts_left"] == 3
    for _ in range(3):
        client.post("/api/v1/app/join/verify", json={**body, "code": wrong})
    # after five, even the right code is dead, and nobody was enrolled
    r = client.post("/api/v1/app/join/verify", json={**body, "code": sent})
    assert r.status_code == 422 and r.json()["code"] == "sign_in_code_expired"
    with db.session() as s:
        assert s.execute(select(func.count()).select_from(Member)).scalar_one() == 1


def test_a_code_joins_once_and_not_after_it_expires(
    client: TestClient, db: Database, code_file: Path, make_member: MemberFactory
) -> None:
    code = _code_of(db, make_member())
    done = _join(client, code_file, code)
    assert done.status_code == 200
    again = client.post(
        "/api/v1/app/join/verify",
        json={
            "challenge": str(_last_challenge(db)),
            "code": last_code(code_file, FRIEND),
            "phone": FRIEND,
            "referral_code": code,
        },
    )
    assert again.status_code == 422 and again.json()["code"] == "sign_in_code_expired"
    # a code asked for ten minutes ago has expired
    asked = client.post(
        "/api/v1/app/join/code", json={"phone": "+79035550000", "referral_code": code}
    )
    with db.session() as s:
        row = s.get(JoinCode, uuid.UUID(asked.json()["challenge"]))
        assert row is not None
        row.expires_at = now() - dt.timedelta(seconds=1)
        s.commit()
    late = client.post(
        "/api/v1/app/join/verify",
        json={
            "challenge": asked.json()["challenge"],
            "code": last_code(code_file, "+79035550000"),
            "phone": "+79035550000",
            "referral_code": code,
        },
    )
    assert late.status_code == 422 and late.json()["code"] == "sign_in_code_expired"


def _last_challenge(db: Database) -> uuid.UUID:
    with db.session() as s:
        return s.execute(
            select(JoinCode.id).order_by(JoinCode.created_at.desc()).limit(1)
        ).scalar_one()


def test_a_bad_phone_or_an_unknown_referral_code_names_the_field(
    client: TestClient, db: Database, code_file: Path, make_member: MemberFactory
) -> None:
    code = _code_of(db, make_member())
    bad_phone = client.post("/api/v1/app/join/code", json={"phone": "12", "referral_code": code})
    assert bad_phone.status_code == 422
    assert [e["field"] for e in bad_phone.json()["errors"]] == ["phone"]
    unknown = client.post(
        "/api/v1/app/join/code", json={"phone": FRIEND, "referral_code": "ZZZZ9999"}
    )
    assert unknown.status_code == 422
    assert [e["field"] for e in unknown.json()["errors"]] == ["referral_code"]
    assert not code_file.exists() or FRIEND not in code_file.read_text()


def test_asking_to_join_is_limited_per_phone_with_the_sign_in(
    client: TestClient, db: Database, code_file: Path, make_member: MemberFactory
) -> None:
    # the per-phone limit (5 codes in 15 minutes) is the sign-in's: shared between both
    code = _code_of(db, make_member())
    for _ in range(3):
        r = client.post("/api/v1/app/sign-in/code", json={"phone": FRIEND})
        assert r.status_code == 202
    for _ in range(2):
        r = client.post("/api/v1/app/join/code", json={"phone": FRIEND, "referral_code": code})
        assert r.status_code == 202
    r = client.post("/api/v1/app/join/code", json={"phone": FRIEND, "referral_code": code})
    assert r.status_code == 429


def test_wrong_join_codes_are_limited_per_address(
    client: TestClient, db: Database, make_member: MemberFactory
) -> None:
    # given 30 wrong codes from one address (the sign-in's limit of failures per 15 minutes)
    code = _code_of(db, make_member())
    body = {"challenge": str(uuid.uuid4()), "code": "123456", "phone": FRIEND}
    answers = [
        client.post("/api/v1/app/join/verify", json={**body, "referral_code": code}).status_code
        for _ in range(30)
    ]
    assert answers == [422] * 30
    # then the next is refused before it is checked, and so is a sign-in
    r = client.post("/api/v1/app/join/verify", json={**body, "referral_code": code})
    assert r.status_code == 429
    r = client.post(
        "/api/v1/app/sign-in/verify", json={"challenge": body["challenge"], "code": "1"}
    )
    assert r.status_code == 429


def test_a_member_joining_a_friend_on_their_own_phone_is_a_self_referral(
    client: TestClient,
    db: Database,
    code_file: Path,
    make_member: MemberFactory,
    referrals: Database,
) -> None:
    # given a member who joined from an invitation on this phone
    first = make_member()
    joined = _join(client, code_file, _code_of(db, first), "+79035551111")
    assert joined.json()["joined"] is True
    own = _code_of(db, uuid.UUID(joined.json()["member_id"]))
    # when they sign out and enrol a second phone with their own link, on the same phone
    client.post("/api/v1/app/sign-out", headers={"X-CSRF-Token": joined.json()["csrf_token"]})
    client.get(f"/app/r/{own}")
    second = _join(client, code_file, own, "+79035552222")
    # then the second referral is refused as the member's own
    assert second.json()["joined"] is True
    with db.session() as s:
        ref = s.execute(
            select(Referral).where(Referral.friend_id == uuid.UUID(second.json()["member_id"]))
        ).scalar_one()
    assert (ref.status, ref.reason) == ("rejected", "self_referral")


# ---------------------------------------------------------------------------- the invite screen


def test_the_invite_screen_asks_a_stranger_to_sign_in(client: TestClient) -> None:
    r = client.get("/app/invite", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/app/sign-in?next=%2Fapp%2Finvite"


def test_the_invite_screen_shows_the_link_its_qr_code_and_the_terms(
    client: TestClient, referrer: SignedIn, referrals: Database
) -> None:
    # when the member opens the invite screen in Russian
    html = client.get("/app/invite", headers={"Accept-Language": "ru"}).text
    code = client.get("/api/v1/app/me").json()["member"]["referral_code"]
    url = f"http://testserver/app/r/{code}"
    # then the link is shown, with its QR code (an image with a name) and a share button
    assert _text(html, "invite-link") == [url]
    assert f'role="img" aria-label="QR-код ссылки {url}"' in html
    assert '<svg viewBox="0 0 ' in html and 'data-testid="share"' in html
    assert f'data-url="{url}"' in html
    # and the programme's rewards, and nobody invited yet
    terms = html[html.index('data-testid="invite-terms"') :]
    assert "Вам — 300,00 Бонусные рубли" in terms
    assert "Другу — 200,00 Бонусные рубли" in terms
    assert "от 1\xa0000,00\xa0₽ в течение 30 дн." in terms
    assert "Награды можно потратить через 14 дн. после покупки." in terms
    assert _text(html, "friends-empty") == ["По вашей ссылке пока никто не зарегистрировался."]
    # and the tab bar leads here, marked as the current page
    assert re.search(r'href="/app/invite" aria-current="page" data-testid="nav-invite"', html)


def test_without_a_referral_programme_the_invite_screen_shows_the_link_alone(
    client: TestClient, referrer: SignedIn
) -> None:
    # given a programme without a referrals: section
    html = client.get("/app/invite").text
    # then the screen has the link and its QR code, and promises no reward
    assert _text(html, "invite-link")[0].startswith("http://testserver/app/r/")
    assert 'class="qr-box" role="img"' in html
    assert 'data-testid="invite-terms"' not in html
    assert "a friend joins with it in the app, or gives your code at the till" in html


def test_the_invite_screen_lists_friends_with_status_reason_and_reward(
    client: TestClient,
    referrer: SignedIn,
    referrals: Database,
    admin: dict[str, str],
    auth: KeyFactory,
) -> None:
    code = client.get("/api/v1/app/me").json()["member"]["referral_code"]

    def enrol(phone: str, **fields: Any) -> str:
        body = {"phone": phone, "referral_code": code, **fields}
        r = client.post("/api/v1/members", json=body, headers=admin)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    # given a friend who joined, one who bought for 1500, and the member's own other mailbox
    enrol("+79035550001", name="Пётр Иванов")
    bought = enrol("+79035550002", name="Мария Кузнецова")
    _buy(client, auth, bought, "R-INV-1")
    enrol("+79035550003", email=EMAIL.replace("@", "+2@"))
    # when the member opens the invite screen
    html = client.get("/app/invite").text
    # then the friends are listed newest first, masked, with their status in words
    assert _text(html, "friend-name") == ["•••• " + _last4(client, admin, 2), "Мария К.", "Пётр И."]
    assert _text(html, "friend-status") == [
        "Not counted",
        "Purchase made",
        "Waiting for the first purchase",
    ]
    # with the reason of the one not counted
    assert _text(html, "friend-reason") == ["Looks like your own account"]
    # and the member's own reward for the friend who bought, pending until the hold ends
    available = (now() + dt.timedelta(days=14)).astimezone(dt.timezone(dt.timedelta(hours=3)))
    day = f"{available:%b} {available.day}, {available.year}"
    assert _text(html, "friend-reward") == [f"Available from {day}: +300.00 Бонусные рубли"]


def test_a_cancelled_purchase_and_a_flagged_friend_are_said_in_words(
    client: TestClient,
    referrer: SignedIn,
    referrals: Database,
    admin: dict[str, str],
    auth: KeyFactory,
) -> None:
    code = client.get("/api/v1/app/me").json()["member"]["referral_code"]
    # given a friend whose qualifying purchase was cancelled within the hold
    r = client.post(
        "/api/v1/members",
        json={"phone": "+79035550001", "name": "Пётр", "referral_code": code},
        headers=admin,
    )
    cancelled = str(r.json()["id"])
    _buy(client, auth, cancelled, "R-INV-C")
    purchase = client.get(
        "/api/v1/purchases", params={"member_id": cancelled}, headers=admin
    ).json()["items"][0]["id"]
    assert client.post(f"/api/v1/purchases/{purchase}/cancel", headers=admin).status_code == 200
    # and a friend at a throwaway mailbox (flagged for review) who bought
    r = client.post(
        "/api/v1/members",
        json={"phone": "+79035550002", "email": "x@throwaway.example", "referral_code": code},
        headers=admin,
    )
    _buy(client, auth, str(r.json()["id"]), "R-INV-F")
    # when the member opens the invite screen in Russian
    html = client.get("/app/invite", headers={"Accept-Language": "ru"}).text
    # then the flagged friend's reward waits for a check, and the cancelled one is said so
    assert _text(html, "friend-status") == [
        "Покупка совершена",
        "Покупка отменена, ждём новую",
    ]
    assert _text(html, "friend-reason") == ["Покупка отменена"]
    assert _text(html, "friend-reward") == [
        "Награда — после проверки",
        "Отменено: +300,00 Бонусные рубли",
    ]


def _last4(client: TestClient, admin: dict[str, str], index: int) -> str:
    found = client.get("/api/v1/members", params={"phone": "+79035550003"}, headers=admin)
    return str(found.json()["items"][0]["card_number"])[-4:]


def test_the_profile_leads_to_the_invite_screen(client: TestClient, referrer: SignedIn) -> None:
    html = client.get("/app/profile").text
    assert 'href="/app/invite" data-testid="invite-open"' in html


def test_the_service_worker_keeps_the_invite_screen_for_offline_use(client: TestClient) -> None:
    sw = client.get("/app/sw.js").text
    assert '"/app/invite"' in sw
    assert "/app/static/invite.js" in sw and "/app/static/join.js" in sw
