"""The member app shows the tier by name and the progress to the next level."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from fastapi.testclient import TestClient

from kopilka.core.db import Database, now
from kopilka.memberapp import notices
from kopilka.members.schemas import MemberCreate
from kopilka.members.service import create_member
from kopilka.program.service import parse_program
from tests.memberapp.conftest import PHONE, sign_in_by_code
from tests.tiers.conftest import Buy, program_text


def _text(html: str, testid: str) -> str:
    found = re.search(rf'data-testid="{testid}"[^>]*>([^<]*)<', html)
    assert found, testid
    return found.group(1).strip()


def test_the_card_shows_the_tier_and_what_is_left_to_the_next(
    client: TestClient,
    tiered: Database,
    code_file: Path,
    buy: Buy,
) -> None:
    # given a member who spent 18 000, signed in to the app
    with tiered.session() as s:
        member = create_member(s, MemberCreate(phone=PHONE, name="Ольга"), "RU")
        s.commit()
        card = member.card_number
    buy({"card_number": card}, now(), "18000.00")
    sign_in_by_code(client, code_file)
    # when the phone opens the card in Russian
    html = client.get("/app/", headers={"Accept-Language": "ru"}).text
    # then the level is named and the way to gold is shown in roubles
    assert _text(html, "tier") == "Серебро"
    assert _text(html, "tier-progress") == "Ещё 12\xa0000,00\xa0₽ до уровня «Золото»"
    # and in English likewise
    html = client.get("/app/", headers={"Accept-Language": "en"}).text
    assert _text(html, "tier-progress") == "RUB\xa012,000.00 to Золото"
    # and the app's API answers the same progress
    me = client.get("/api/v1/app/me").json()
    assert me["member"]["tier"] == "silver"
    assert me["tier_progress"] == {
        "tier": "silver",
        "name": "Серебро",
        "metric": "spend",
        "currency": None,
        "precision": 2,
        "qualifying_value": "18000.00",
        "next": {"tier": "gold", "name": "Золото", "remaining": "12000.00"},
    }


def test_at_the_top_level_no_progress_is_shown(
    client: TestClient,
    tiered: Database,
    code_file: Path,
    buy: Buy,
) -> None:
    with tiered.session() as s:
        member = create_member(s, MemberCreate(phone=PHONE), "RU")
        s.commit()
        card = member.card_number
    buy({"card_number": card}, now(), "100000.00")
    sign_in_by_code(client, code_file)
    html = client.get("/app/", headers={"Accept-Language": "en"}).text
    assert _text(html, "tier") == "Платина"
    assert 'data-testid="tier-progress"' not in html


def test_the_push_notice_names_the_new_level() -> None:
    spec = parse_program(program_text())
    data = {"member_id": "x", "from": "silver", "to": "gold", "to_name": "Золото"}
    at = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    message = notices.message_for("tier.changed", data, spec, "ru", at)
    assert message is not None and message["body"] == "Теперь ваш уровень — Золото."
