"""The checks a till can make, each with its reason: the referrer themself (their mailbox
written another way, their payment card), someone who was a member before (erased and
back with the same phone), a circle, the limits, the programme's dates; and what only
looks suspicious waits for a person (velocity, a throwaway mailbox)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from kopilka.core.db import Database
from kopilka.members.schemas import MemberCreate
from kopilka.members.service import Enrolment, create_member
from kopilka.referrals import fraud
from tests.referrals.conftest import REFERRAL_PROGRAM, Enrol, apply, receipt
from tests.referrals.test_lifecycle import balance, event_types, friends, ledger_holds


def only(client: TestClient, h: dict[str, str], member: str) -> dict[str, Any]:
    [ref] = friends(client, h, member)
    return ref


def test_the_referrers_own_mailbox_written_another_way_is_a_self_referral(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol
) -> None:
    # given Anna with ivan.petrova@gmail.com
    anna = enrol(email="ivan.petrova@gmail.com")
    # when "a friend" enrols with IvanPetrova+shop@gmail.com on her code
    enrol(code=anna["referral_code"], email="IvanPetrova+shop@gmail.com")
    # then the referral is rejected as a self-referral, and said so
    ref = only(client, admin, anna["id"])
    assert (ref["status"], ref["reason"]) == ("rejected", "self_referral")
    assert event_types(db) == ["referral.rejected"]


def test_a_friend_paying_with_the_referrers_card_is_a_self_referral(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol
) -> None:
    # given Anna paid with a card whose fingerprint the terminal reports
    anna = enrol()
    card = {"payment": {"card_fingerprint": "fp-7f3a9c21e0"}}
    r = client.post(
        "/api/v1/purchases", json=receipt("A-1", anna["card_number"], "50", **card), headers=admin
    )
    assert r.status_code == 201, r.text
    olga = enrol(code=anna["referral_code"])
    # when Olga's first receipt is paid with that card
    r = client.post(
        "/api/v1/purchases", json=receipt("O-1", olga["card_number"], "1500", **card), headers=admin
    )
    # then the receipt goes through, and the referral is rejected: nothing is given
    assert r.status_code == 201, r.text
    assert (
        only(client, admin, anna["id"])["status"],
        only(client, admin, anna["id"])["reason"],
    ) == (
        "rejected",
        "self_referral",
    )
    assert balance(client, admin, anna["id"]) == ("2.50", "0.00")
    ledger_holds(db)


def test_an_erased_member_enrolling_again_with_the_same_phone_is_not_a_new_friend(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol
) -> None:
    # given Boris, a member, erased at his request
    boris = enrol(phone="+79161234567")
    r = client.post(f"/api/v1/members/{boris['id']}/erase", headers=admin)
    assert r.status_code == 200, r.text
    anna = enrol()
    # when he enrols again with the same phone on Anna's code
    enrol(code=anna["referral_code"], phone="+79161234567")
    # then the referral is rejected: he already was a member
    ref = only(client, admin, anna["id"])
    assert (ref["status"], ref["reason"]) == ("rejected", "already_member")


def test_a_referrer_invited_back_by_the_one_they_invited_is_a_circle(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol
) -> None:
    # given Boris invited Anna, then Boris was erased
    boris = enrol(phone="+79161234568")
    anna = enrol(code=boris["referral_code"])
    client.post(f"/api/v1/members/{boris['id']}/erase", headers=admin)
    # when Boris enrols again on Anna's code
    enrol(code=anna["referral_code"], phone="+79161234568")
    # then it is a circle
    ref = only(client, admin, anna["id"])
    assert (ref["status"], ref["reason"]) == ("rejected", "circular")


def test_the_monthly_limit_rejects_the_third_friend(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol
) -> None:
    # given three friends of Anna (the programme rewards two a month)
    anna = enrol()
    trio = [enrol(code=anna["referral_code"]) for _ in range(3)]
    # when all three buy enough
    for i, f in enumerate(trio):
        r = client.post(
            "/api/v1/purchases", json=receipt(f"R-{i}", f["card_number"], "1000"), headers=admin
        )
        assert r.status_code == 201, r.text
    # then two qualify and the third is rejected: limit reached
    by_friend = {f["friend"]["id"]: f for f in friends(client, admin, anna["id"])}
    assert [(by_friend[f["id"]]["status"], by_friend[f["id"]]["reason"]) for f in trio] == [
        ("qualified", None),
        ("qualified", None),
        ("rejected", "limit_reached"),
    ]
    assert balance(client, admin, anna["id"]) == ("0.00", "600.00")


def test_enrolments_outside_the_programmes_dates_are_rejected(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol
) -> None:
    # given referrals that start tomorrow (the clock is pinned at 5 December)
    apply(db, REFERRAL_PROGRAM + "  from: 2026-12-06\n")
    anna = enrol()
    # when a friend enrols today
    enrol(code=anna["referral_code"])
    # then the referral is rejected: outside the programme's dates
    assert only(client, admin, anna["id"])["reason"] == "outside_dates"


def test_many_friends_in_a_day_and_throwaway_mailboxes_wait_for_review(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol
) -> None:
    # given Anna's three friends today (the programme looks twice from the fourth)
    anna = enrol()
    for _ in range(3):
        enrol(code=anna["referral_code"])
    # when a fourth enrols, and a fifth with a throwaway mailbox
    fourth = enrol(code=anna["referral_code"])
    fifth = enrol(code=anna["referral_code"], email="x1@mail.throwaway.example")
    # then both wait for a review, flagged with why
    by_friend = {f["friend"]["id"]: f for f in friends(client, admin, anna["id"])}
    assert (by_friend[fourth["id"]]["review"], by_friend[fourth["id"]]["flags"]) == (
        "pending",
        ["referrer_velocity"],
    )
    assert by_friend[fifth["id"]]["flags"] == ["referrer_velocity", "disposable_email"]
    # and a flagged friend's qualifying receipt gives nothing until someone approves it
    r = client.post(
        "/api/v1/purchases", json=receipt("R-4", fourth["card_number"], "1000"), headers=admin
    )
    assert r.status_code == 201, r.text
    ref = friends(client, admin, anna["id"])
    waiting = next(f for f in ref if f["friend"]["id"] == fourth["id"])
    assert (waiting["status"], waiting["rewards"]) == ("qualified", [])
    assert balance(client, admin, anna["id"]) == ("0.00", "0.00")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("ivan.petrov@gmail.com", "IVANPETROV+x@googlemail.com"),
        ("ivan-petrov@yandex.ru", "ivan.petrov@ya.ru"),
        ("Ivan@Example.COM", "ivan+promo@example.com"),
    ],
)
def test_one_mailbox_written_two_ways_is_one(a: str, b: str) -> None:
    assert fraud.mailbox_of(a) == fraud.mailbox_of(b)


def test_different_mailboxes_stay_apart() -> None:
    assert fraud.mailbox_of("ivan.petrov@example.com") != fraud.mailbox_of("ivanpetrov@example.com")
    assert fraud.is_disposable("a@sub.mailinator.com")
    assert not fraud.is_disposable("a@gmail.com")
    assert fraud.is_disposable("a@x.example", ["X.example"])


def enrol_at(db: Database, code: str, phone: str, via: Enrolment) -> None:
    """Enrol through the service, as the member app's invite page or a till does."""
    with db.session() as s:
        create_member(s, MemberCreate(phone=phone, referral_code=code), "RU", via=via)
        s.commit()


def test_many_enrolments_at_one_till_or_on_one_device_wait_for_review(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol
) -> None:
    # given ten referrers, and a till that enrolled ten friends this hour (the programme
    # looks twice from the eleventh)
    referrers = [enrol() for _ in range(12)]
    till = Enrolment(channel="pos", store="msk-01", cashier="api_key:till-7")
    for i in range(10):
        enrol_at(db, referrers[i]["referral_code"], f"+7926100{i:04d}", till)
    # when the till enrols an eleventh
    enrol_at(db, referrers[10]["referral_code"], "+79261009999", till)
    # then that one waits for a review: cashier velocity
    assert only(client, admin, referrers[10]["id"])["flags"] == ["cashier_velocity"]
    assert only(client, admin, referrers[9]["id"])["flags"] == []
    # when one phone's browser enrolled two friends and enrols a third (two per 24 hours)
    phone = Enrolment(channel="app", device="browser-5c1e")
    enrol_at(db, referrers[0]["referral_code"], "+79262000001", phone)
    enrol_at(db, referrers[1]["referral_code"], "+79262000002", phone)
    enrol_at(db, referrers[11]["referral_code"], "+79262000003", phone)
    # then the third waits: device velocity
    assert only(client, admin, referrers[11]["id"])["flags"] == ["device_velocity"]


def test_the_total_limit_rejects_past_it(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol
) -> None:
    # given a programme rewarding at most one friend per referrer, ever
    apply(db, REFERRAL_PROGRAM.replace("{per_referrer_per_month: 2}", "{per_referrer_total: 1}"))
    anna = enrol()
    olga, ivan = enrol(code=anna["referral_code"]), enrol(code=anna["referral_code"])
    # when both buy enough
    for ext, f in (("R-1", olga), ("R-2", ivan)):
        r = client.post(
            "/api/v1/purchases", json=receipt(ext, f["card_number"], "1000"), headers=admin
        )
        assert r.status_code == 201, r.text
    # then the first qualifies and the second is rejected: limit reached
    by_friend = {f["friend"]["id"]: f for f in friends(client, admin, anna["id"])}
    assert (by_friend[olga["id"]]["status"], by_friend[ivan["id"]]["reason"]) == (
        "qualified",
        "limit_reached",
    )
