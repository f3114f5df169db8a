"""A small known set of referrals for the report and the console, made over the API on the
pinned clock (Saturday 2026-12-05, ISO week 2026-W49; a BONUS point worth 0.37 roubles):

* Anna's invite link is opened seven times in W49 and once in W51;
* Olga joins with her code and buys 1200 and 333.33: qualified (200 + 300 BONUS);
* Ivan joins with Anna's own mailbox written another way: rejected, self_referral; he
  still buys for 700 (he counts among the others);
* Boris joins and buys 1500, cancelled within the hold: reversed, purchase_cancelled;
* Lena (the fourth friend of the day: referrer_velocity) buys 1100: qualified, her
  rewards wait for the review; Sasha (the fifth, a throwaway mailbox) waits too;
* Maria (no code) buys 3000 and Anna 1000;
* 15 days later (Sunday 2026-12-20, W51) the hold is over: Olga's referral is rewarded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from kopilka.core.db import Database
from kopilka.referrals import service
from kopilka.referrals.service import release_due
from tests.conftest import Clock
from tests.referrals.conftest import REFERRAL_PROGRAM, Enrol, apply, receipt

# The referral programme with a BONUS point worth 0.37: the cost in money is exact.
PRICED_PROGRAM = REFERRAL_PROGRAM.replace('value: "1.00"', 'value: "0.37"', 1)
assert PRICED_PROGRAM != REFERRAL_PROGRAM


@dataclass
class Dataset:
    anna: dict[str, Any]
    olga: dict[str, Any]
    lena: dict[str, Any]
    sasha: dict[str, Any]


def buy(client: TestClient, h: dict[str, str], ext: str, card: str, *amounts: str) -> str:
    r = client.post("/api/v1/purchases", json=receipt(ext, card, *amounts), headers=h)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def visit(db: Database, code: str, times: int) -> None:
    with db.session() as s:
        for _ in range(times):
            assert service.visited(s, code)
        s.commit()


def make(
    client: TestClient, db: Database, admin: dict[str, str], enrol: Enrol, clock: Clock
) -> Dataset:
    apply(db, PRICED_PROGRAM)
    anna = enrol(name="Анна Петрова", email="anna.petrova@gmail.com")
    code = anna["referral_code"]
    visit(db, code, 7)
    olga = enrol(code=code, name="Ольга Смирнова")
    ivan = enrol(code=code, name="Иван Петров", email="AnnaPetrova+shop@gmail.com")
    boris = enrol(code=code, name="Борис Орлов")
    lena = enrol(code=code, name="Елена Кузнецова")
    sasha = enrol(code=code, name="Саша Белов", email="sasha@mailinator.com")
    maria = enrol(name="Мария Иванова")
    buy(client, admin, "R-OLGA-1", olga["card_number"], "700", "500")
    buy(client, admin, "R-OLGA-2", olga["card_number"], "333.33")
    buy(client, admin, "R-IVAN", ivan["card_number"], "700")
    cancelled = buy(client, admin, "R-BORIS", boris["card_number"], "1500")
    r = client.post(f"/api/v1/purchases/{cancelled}/cancel", headers=admin)
    assert r.status_code == 200, r.text
    buy(client, admin, "R-LENA", lena["card_number"], "1100")
    buy(client, admin, "R-MARIA", maria["card_number"], "3000")
    buy(client, admin, "R-ANNA", anna["card_number"], "1000")
    clock.advance(days=15)
    with db.session() as s:
        assert release_due(s, clock.at) == 1
        s.commit()
    visit(db, code, 1)
    return Dataset(anna, olga, lena, sasha)
