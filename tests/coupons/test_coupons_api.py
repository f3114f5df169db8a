"""The coupons API: pools, codes, import/export, look-ups, brute-force protection."""

from __future__ import annotations

import csv
import io
import subprocess
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from kopilka.audit.models import AuditEntry
from kopilka.core.db import Database, now
from kopilka.coupons import issue, pools, queries, redeem
from kopilka.coupons.models import Coupon, CouponPool
from tests.conftest import KeyFactory
from tests.coupons.conftest import AddCode, MakeMember, MakePool, receipt

POOLS = "/api/v1/coupon-pools"
BODY: dict[str, Any] = {
    "name": "Весна",
    "reward": {"kind": "percent", "value": "10"},
    "valid_from": "2026-03-01T00:00:00+03:00",
    "valid_until": "2026-06-01T00:00:00+03:00",
    "min_receipt": "500",
    "stores": ["msk-01"],
    "channels": ["pos", "app"],
    "uses_per_code": 1,
    "uses_per_member": 2,
    "code_pattern": {"prefix": "spring", "groups": 2, "group_length": 4},
}


def create(client: TestClient, h: dict[str, str], **over: Any) -> dict[str, Any]:
    r = client.post(POOLS, json={**BODY, **over}, headers=h)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


def codes_of(client: TestClient, h: dict[str, str], pool_id: str) -> list[str]:
    r = client.get(f"{POOLS}/{pool_id}/codes", params={"limit": 1000}, headers=h)
    assert r.status_code == 200
    return [c["code"] for c in r.json()["items"]]


# ---------------------------------------------------------------------------- pools


def test_create_and_read_a_pool(
    client: TestClient, admin: dict[str, str], program: Database, auth: KeyFactory
) -> None:
    pool = create(client, admin)
    assert pool["name"] == "Весна"
    assert pool["reward"] == {
        "kind": "percent",
        "value": "10",
        "currency": None,
        "max_discount": None,
        "skus": [],
        "categories": [],
        "free_sku": None,
        "free_quantity": None,
    }
    assert pool["valid_from"] == "2026-02-28T21:00:00+00:00"
    assert pool["min_receipt"] == "500.00"
    assert pool["channels"] == ["app", "pos"]
    assert pool["code_pattern"] == {
        "prefix": "SPRING",
        "groups": 2,
        "group_length": 4,
        "example": "SPRING-XXXX-XXXX",
    }
    assert pool["code_count"] == 0
    assert pool["generation"]["status"] == "idle"
    analyst = auth("analyst")
    got = client.get(f"{POOLS}/{pool['id']}", headers=analyst).json()
    assert got["stats"] == {"uses": 0, "released": 0}
    assert {k: v for k, v in got.items() if k != "stats"} == pool
    listed = client.get(POOLS, headers=analyst).json()
    assert [p["id"] for p in listed["items"]] == [pool["id"]]
    assert listed["next_cursor"] is None
    with program.session() as s:
        actions = s.execute(
            select(AuditEntry.action).where(AuditEntry.target_id == pool["id"])
        ).scalars()
        assert list(actions) == ["coupon_pool.create"]


def test_pool_list_is_paginated(
    client: TestClient, admin: dict[str, str], program: Database
) -> None:
    ids = [create(client, admin, name=f"p{i}")["id"] for i in range(3)]
    first = client.get(POOLS, params={"limit": 2}, headers=admin).json()
    assert [p["id"] for p in first["items"]] == ids[:2]
    second = client.get(POOLS, params={"limit": 2, "cursor": first["next_cursor"]}, headers=admin)
    assert [p["id"] for p in second.json()["items"]] == ids[2:]
    assert second.json()["next_cursor"] is None
    bad = client.get(POOLS, params={"cursor": "!!"}, headers=admin)
    assert bad.status_code == 422


def test_create_is_idempotent(client: TestClient, admin: dict[str, str], program: Database) -> None:
    h = {**admin, "Idempotency-Key": "pool-1"}
    a = client.post(POOLS, json=BODY, headers=h)
    b = client.post(POOLS, json=BODY, headers=h)
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] == b.json()["id"]
    c = client.post(POOLS, json={**BODY, "name": "other"}, headers=h)
    assert (c.status_code, c.json()["code"]) == (422, "idempotency_key_reused")
    assert len(client.get(POOLS, headers=admin).json()["items"]) == 1


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"reward": {"kind": "percent", "value": "101"}}, "reward"),
        ({"reward": {"kind": "fixed", "value": "1.001"}}, "reward"),
        ({"reward": {"kind": "points", "value": "5"}}, "reward"),
        ({"reward": {"kind": "multiplier", "value": "1", "currency": "BONUS"}}, "reward"),
        ({"reward": {"kind": "free_product"}}, "reward"),
        ({"reward": {"kind": "percent", "value": "5", "currency": "BONUS"}}, "reward"),
        ({"valid_until": "2026-01-01T00:00:00+03:00"}, "body"),
        ({"valid_from": "2026-03-01T00:00:00"}, "valid_from"),
        ({"uses_per_code": 0}, "uses_per_code"),
        ({"channels": ["fax"]}, "channels[0]"),
        ({"code_pattern": {"prefix": "SPR ING"}}, "code_pattern.prefix"),
        ({"code_pattern": {"groups": 1, "group_length": 4}}, "code_pattern"),
        ({"surprise": 1}, "surprise"),
        ({"name": "a\x07b"}, "name"),
        ({"reward": {"kind": "percent", "value": "5", "skus": ["A\x1b"]}}, "reward.skus[0]"),
    ],
)
def test_create_refuses_bad_pools(
    client: TestClient, admin: dict[str, str], program: Database, over: dict[str, Any], field: str
) -> None:
    r = client.post(POOLS, json={**BODY, **over}, headers=admin)
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"
    assert field in [e["field"] for e in r.json()["errors"]]
    assert client.get(POOLS, headers=admin).json()["items"] == []


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"stores": ["msk-01", "nowhere"]}, "stores[1]"),
        ({"reward": {"kind": "points", "value": "5", "currency": "NOPE"}}, "reward.currency"),
        ({"reward": {"kind": "points", "value": "0.5", "currency": "STAMP"}}, "reward.value"),
    ],
)
def test_create_checks_the_programme(
    client: TestClient, admin: dict[str, str], program: Database, over: dict[str, Any], field: str
) -> None:
    r = client.post(POOLS, json={**BODY, **over}, headers=admin)
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == [field]


def test_roles(client: TestClient, auth: KeyFactory, program: Database) -> None:
    admin = auth("admin")
    pool = create(client, admin)
    for role, can_read, can_write in [
        ("manager", True, True),
        ("analyst", True, False),
        ("cashier", False, False),
        ("partner", False, False),
    ]:
        h = auth(role)
        assert (client.get(f"{POOLS}/{pool['id']}", headers=h).status_code == 200) is can_read
        w = client.patch(f"{POOLS}/{pool['id']}", json={"name": role}, headers=h)
        assert (w.status_code == 200) is can_write, (role, w.status_code)
        if not can_write:
            assert w.json()["code"] == "forbidden"
    assert client.get(POOLS).status_code == 401


def test_patch_pool(
    client: TestClient, admin: dict[str, str], program: Database, add_code: AddCode
) -> None:
    pool = create(client, admin)
    r = client.patch(
        f"{POOLS}/{pool['id']}", json={"status": "paused", "min_receipt": "1000"}, headers=admin
    )
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["min_receipt"]) == ("paused", "1000.00")
    assert r.json()["name"] == "Весна"  # untouched
    bad = client.patch(
        f"{POOLS}/{pool['id']}", json={"valid_until": "2026-01-01T00:00:00Z"}, headers=admin
    )
    assert bad.status_code == 422 and bad.json()["code"] == "validation_error"
    assert client.get(f"{POOLS}/{pool['id']}", headers=admin).json()["valid_until"] == (
        "2026-05-31T21:00:00+00:00"
    )
    missing = client.patch(f"{POOLS}/{uuid.uuid4()}", json={"name": "x"}, headers=admin)
    assert (missing.status_code, missing.json()["code"]) == (404, "coupon_pool_not_found")


def test_delete_pool(
    client: TestClient, admin: dict[str, str], program: Database, add_code: AddCode
) -> None:
    unused = create(client, admin)
    client.post(f"{POOLS}/{unused['id']}/generate", json={"count": 5}, headers=admin)
    assert client.delete(f"{POOLS}/{unused['id']}", headers=admin).status_code == 204
    assert client.get(f"{POOLS}/{unused['id']}", headers=admin).status_code == 404
    with program.session() as s:
        assert s.execute(select(Coupon.id)).first() is None
    used = create(
        client, admin, uses_per_member=None, min_receipt=None, valid_from=None, valid_until=None
    )
    with program.session() as s:
        pool = s.get(CouponPool, uuid.UUID(used["id"]))
        assert pool is not None
    code = add_code(pool, "USED-CODE-1")
    with program.session() as s:
        out = redeem.evaluate(s, [code], receipt(), None, now())
        assert out.results[0].status == "applied"
        redeem.consume(s, out, uuid.uuid4(), None, now())
        s.commit()
    r = client.delete(f"{POOLS}/{used['id']}", headers=admin)
    assert (r.status_code, r.json()["code"]) == (409, "coupon_pool_in_use")


# ---------------------------------------------------------------------------- codes


def test_generate_codes_now(client: TestClient, admin: dict[str, str], program: Database) -> None:
    pool = create(client, admin)
    r = client.post(f"{POOLS}/{pool['id']}/generate", json={"count": 300}, headers=admin)
    assert r.status_code == 201
    assert r.json()["code_count"] == 300
    assert r.json()["generation"]["status"] == "done"
    assert r.json()["generation"]["done"] == 300
    codes = codes_of(client, admin, pool["id"])
    assert len(codes) == len(set(codes)) == 300
    assert all(c.startswith("SPRING-") and len(c) == 16 for c in codes)


def test_generate_refuses_more_than_the_pattern_holds(
    client: TestClient, admin: dict[str, str], program: Database
) -> None:
    # 6 random characters: 32**6 / 10 000 = 107 374 codes at most
    pool = create(client, admin, code_pattern={"groups": 2, "group_length": 3})
    r = client.post(f"{POOLS}/{pool['id']}/generate", json={"count": 107_375}, headers=admin)
    assert r.status_code == 422
    assert r.json()["code"] == "coupon_pattern_exhausted"
    assert r.json()["room"] == 107_374
    assert r.json()["errors"][0]["field"] == "count"


def test_large_pools_are_generated_by_the_worker(
    client: TestClient,
    admin: dict[str, str],
    program: Database,
    settings_env: Callable[[str, str], None],
) -> None:
    from kopilka.core.jobs import JOBS, load_jobs
    from kopilka.coupons import jobs

    settings_env("KOPILKA_COUPON_SYNC_GENERATE_MAX", "100")
    pool = create(client, admin)
    # when more codes than the request makes at once are asked for
    r = client.post(f"{POOLS}/{pool['id']}/generate", json={"count": 250}, headers=admin)
    # then they are queued for the worker
    assert r.status_code == 202
    assert r.headers["location"] == f"/api/v1/coupon-pools/{pool['id']}"
    assert (r.json()["generation"]["status"], r.json()["generation"]["requested"]) == (
        "queued",
        250,
    )
    assert r.json()["code_count"] == 0
    again = client.post(f"{POOLS}/{pool['id']}/generate", json={"count": 5}, headers=admin)
    assert (again.status_code, again.json()["code"]) == (409, "coupon_generation_running")
    # and the worker's job makes them
    assert "coupons.generate" in load_jobs()  # what `kopilka worker` finds
    assert JOBS["coupons.generate"].fn is jobs.generate_codes
    with program.session() as s:
        assert jobs.generate_codes(s, now()) == 250
    done = client.get(f"{POOLS}/{pool['id']}", headers=admin).json()
    assert done["generation"]["status"] == "done"
    assert done["generation"]["done"] == done["code_count"] == 250
    assert done["generation"]["finished_at"] is not None
    assert len(set(codes_of(client, admin, pool["id"]))) == 250
    with program.session() as s:
        assert jobs.generate_codes(s, now()) == 0  # nothing left


def test_a_generation_resumes_where_a_dead_worker_stopped(
    program: Database, make_pool: MakePool
) -> None:
    # given a queued generation of 50 codes, of which a worker made one chunk of 20 and died
    pool = make_pool()
    with program.session() as s:
        issue.start_generation(s, pool.id, 50, "test")
        s.commit()
    with program.session() as s:
        assert issue.generation_step(s, pool.id, chunk=20) == 20
        half = pools.pool_json(pools.get_pool(s, pool.id))["generation"]
    assert (half["status"], half["done"]) == ("running", 20)
    # when the next run of the job comes
    with program.session() as s:
        assert issue.generate_queued(s, chunk=20) == 30
        got = pools.get_pool(s, pool.id)
        assert (got.generation_status, got.generation_done, got.code_count) == ("done", 50, 50)
        assert len(s.execute(select(Coupon.id).where(Coupon.pool_id == pool.id)).all()) == 50


def test_one_generation_at_a_time(
    client: TestClient, admin: dict[str, str], program: Database
) -> None:
    pool = create(client, admin)
    with program.session() as s:
        s.execute(
            update(CouponPool)
            .where(CouponPool.id == uuid.UUID(pool["id"]))
            .values(
                generation_status="running",
                generation_requested=10**6,
                generation_heartbeat_at=now(),
            )
        )
        s.commit()
    r = client.post(f"{POOLS}/{pool['id']}/generate", json={"count": 5}, headers=admin)
    assert (r.status_code, r.json()["code"]) == (409, "coupon_generation_running")
    # a worker is writing: the pool cannot be deleted under it
    r = client.delete(f"{POOLS}/{pool['id']}", headers=admin)
    assert (r.status_code, r.json()["code"]) == (409, "coupon_generation_running")
    # one whose worker went silent can be
    with program.session() as s:
        s.execute(
            update(CouponPool)
            .where(CouponPool.id == uuid.UUID(pool["id"]))
            .values(generation_heartbeat_at=now() - pools.STALE_AFTER * 2)
        )
        s.commit()
    assert client.delete(f"{POOLS}/{pool['id']}", headers=admin).status_code == 204


def test_collisions_are_topped_up(
    client: TestClient, admin: dict[str, str], program: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a generator whose first batch repeats one code and hits an existing one
    pool = create(client, admin, code_pattern={"prefix": "", "groups": 2, "group_length": 4})
    client.post(f"{POOLS}/{pool['id']}/codes/import", json={"codes": ["AAAA-BBBB"]}, headers=admin)
    real = pools.codegen.generate
    calls: list[int] = []

    def flaky(pattern: Any, count: int) -> list[tuple[str, str]]:
        calls.append(count)
        if len(calls) == 1:
            return [
                ("AAAA-BBBB", "AAAABBBB"),
                ("CCCC-DDDD", "CCCCDDDD"),
                ("CCCC-DDDD", "CCCCDDDD"),
            ][:count] + real(pattern, count - 3)
        return real(pattern, count)

    monkeypatch.setattr(pools.codegen, "generate", flaky)
    r = client.post(f"{POOLS}/{pool['id']}/generate", json={"count": 10}, headers=admin)
    # then two more are drawn and exactly ten new codes exist
    assert r.status_code == 201
    assert calls == [10, 2]
    assert r.json()["code_count"] == 11
    codes = codes_of(client, admin, pool["id"])
    assert len(set(codes)) == 11 and codes.count("CCCC-DDDD") == 1


def test_personal_codes_and_the_member_app_list(
    client: TestClient,
    admin: dict[str, str],
    program: Database,
    make_member: MakeMember,
    auth: KeyFactory,
) -> None:
    alice, bob = make_member(), make_member()
    pool = create(client, admin, name="Подарок на день рождения")
    r = client.post(
        f"{POOLS}/{pool['id']}/personal-codes",
        json={"member_ids": [str(alice), str(bob), str(alice)]},
        headers=admin,
    )
    assert r.status_code == 201
    issued = r.json()["codes"]
    assert [c["member_id"] for c in issued] == [str(alice), str(bob), str(alice)]
    assert len({c["code"] for c in issued}) == 3
    mine = client.get(f"/api/v1/members/{alice}/coupons", headers=auth("cashier")).json()
    assert [c["code"] for c in mine["items"]] == [issued[2]["code"], issued[0]["code"]]
    first = mine["items"][0]
    assert first["status"] == "not_started" or first["status"] in ("available", "expired")
    assert first["pool"]["name"] == "Подарок на день рождения"
    assert first["member_id"] == str(alice) and first["uses_left"] == 1
    assert "history" not in first
    # a cashier looking a personal code up by itself learns nothing, not even that it exists
    # (regression: it answered the code's status and its owner's member id)
    r = client.get(f"/api/v1/coupons/{issued[0]['code']}", headers=auth("cashier"))
    assert (r.status_code, r.json()["code"]) == (404, "coupon_invalid")
    r = client.get(f"/api/v1/coupons/{issued[0]['code']}", headers=auth("analyst"))
    assert r.status_code == 200 and r.json()["member_id"] == str(alice)
    page = client.get(f"/api/v1/members/{alice}/coupons", params={"limit": 1}, headers=admin)
    assert len(page.json()["items"]) == 1 and page.json()["next_cursor"] is not None
    missing = client.post(
        f"{POOLS}/{pool['id']}/personal-codes",
        json={"member_ids": [str(alice), str(uuid.uuid4())]},
        headers=admin,
    )
    assert missing.status_code == 404
    assert missing.json()["code"] == "member_not_found"
    assert [e["field"] for e in missing.json()["errors"]] == ["member_ids[1]"]
    nobody = client.get(f"/api/v1/members/{uuid.uuid4()}/coupons", headers=admin)
    assert nobody.status_code == 404


def test_import_csv_and_json(
    client: TestClient, admin: dict[str, str], program: Database, make_member: MakeMember
) -> None:
    alice = make_member()
    pool = create(client, admin)
    csv_body = f"code,member_id\r\nPARTNER-0001,\r\npartner 0002,{alice}\r\n\r\n".encode()
    r = client.post(
        f"{POOLS}/{pool['id']}/codes/import",
        content=csv_body,
        headers={**admin, "Content-Type": "text/csv"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["imported"] == 2
    plain = client.post(
        f"{POOLS}/{pool['id']}/codes/import",
        content=b"FLYER-A1\nFLYER-A2\n",
        headers={**admin, "Content-Type": "text/plain"},
    )
    assert plain.json()["imported"] == 2
    js = client.post(
        f"{POOLS}/{pool['id']}/codes/import", json={"codes": ["FLYER-A3"]}, headers=admin
    )
    assert js.status_code == 201
    assert js.json()["pool"]["code_count"] == 5
    rows = client.get(f"{POOLS}/{pool['id']}/codes", headers=admin).json()["items"]
    assert [(c["code"], c["source"], c["member_id"]) for c in rows] == [
        ("PARTNER-0001", "imported", None),
        ("PARTNER-0002", "personal", str(alice)),
        ("FLYER-A1", "imported", None),
        ("FLYER-A2", "imported", None),
        ("FLYER-A3", "imported", None),
    ]


def test_import_is_all_or_nothing(
    client: TestClient, admin: dict[str, str], program: Database
) -> None:
    a = create(client, admin, name="a")
    b = create(client, admin, name="b")
    client.post(f"{POOLS}/{a['id']}/codes/import", json={"codes": ["TAKEN-001"]}, headers=admin)
    # a code of another pool (spelled differently) → 409, nothing imported
    r = client.post(
        f"{POOLS}/{b['id']}/codes/import", json={"codes": ["NEW-0001", "taken 001"]}, headers=admin
    )
    assert r.status_code == 409
    assert r.json()["code"] == "coupon_code_exists"
    assert [e["field"] for e in r.json()["errors"]] == ["codes[1]"]
    # unreadable and repeated codes → 422 naming each
    r = client.post(
        f"{POOLS}/{b['id']}/codes/import",
        json={"codes": ["OK-00001", "no!", "ok 00001"]},
        headers=admin,
    )
    assert r.status_code == 422
    assert [(e["field"], e["code"]) for e in r.json()["errors"]] == [
        ("codes[1]", "invalid"),
        ("codes[2]", "duplicate"),
    ]
    r = client.post(
        f"{POOLS}/{b['id']}/codes/import",
        content=b"code,member_id\nX-000001,not-a-uuid\n,\n",
        headers={**admin, "Content-Type": "text/csv"},
    )
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["line 2.member_id"]
    r = client.post(
        f"{POOLS}/{b['id']}/codes/import",
        content=b"<codes/>",
        headers={**admin, "Content-Type": "application/xml"},
    )
    assert r.status_code == 415
    assert client.get(f"{POOLS}/{b['id']}", headers=admin).json()["code_count"] == 0


def test_codes_are_unique_across_pools_in_the_database(
    program: Database, make_pool: MakePool
) -> None:
    from sqlalchemy.exc import IntegrityError

    a, b = make_pool(), make_pool()
    with program.session() as s:
        s.add(Coupon(pool_id=a.id, code="SAME-1", lookup="SAME1", source="imported", uses=0))
        s.commit()
        s.add(Coupon(pool_id=b.id, code="SAME 1", lookup="SAME1", source="imported", uses=0))
        with pytest.raises(IntegrityError):
            s.commit()


def test_export_csv(
    client: TestClient, admin: dict[str, str], program: Database, auth: KeyFactory
) -> None:
    pool = create(client, admin)
    client.post(f"{POOLS}/{pool['id']}/generate", json={"count": 25}, headers=admin)
    r = client.get(f"{POOLS}/{pool['id']}/codes.csv", headers=auth("analyst"))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["code", "status", "uses", "member_id", "source", "created_at"]
    assert len(rows) == 26
    assert sorted(r[0] for r in rows[1:]) == sorted(codes_of(client, admin, pool["id"]))
    assert {r[2] for r in rows[1:]} == {"0"}
    assert client.get(f"{POOLS}/{uuid.uuid4()}/codes.csv", headers=admin).status_code == 404


def test_export_streams_in_batches(program: Database, make_pool: MakePool) -> None:
    pool = make_pool()
    with program.session() as s:
        issue.generate_now(s, pool.id, 7, "test")
        s.commit()
    chunks = list(queries.export_csv(program, pool.id, batch=3))
    assert len(chunks) == 1 + 3  # header, then 3 + 3 + 1
    assert sum(c.count(b"\r\n") for c in chunks) == 8


# ---------------------------------------------------------------------------- look-ups


def test_look_up_a_code(
    client: TestClient, admin: dict[str, str], program: Database, auth: KeyFactory
) -> None:
    pool = create(client, admin, valid_from=None, valid_until=None, uses_per_member=None)
    client.post(f"{POOLS}/{pool['id']}/codes/import", json={"codes": ["LOOK-0001"]}, headers=admin)
    r = client.get("/api/v1/coupons/look 0001", headers=auth("cashier"))
    assert r.status_code == 200
    body = r.json()
    assert body["code"] == "LOOK-0001"
    assert body["status"] == "available"
    assert body["uses"] == 0 and body["uses_left"] == 1
    assert body["pool"]["id"] == pool["id"]
    assert "history" not in body  # who used it is not the cashier's business
    with program.session() as s:
        found = queries.find_code(s, "LOOK-0001")
        assert found is not None
        out = redeem.evaluate(s, ["LOOK-0001"], receipt(), None, now())
        assert out.results[0].status == "applied"
        pid = uuid.uuid4()
        redeem.consume(s, out, pid, None, now())
        s.commit()
    body = client.get("/api/v1/coupons/LOOK-0001", headers=auth("analyst")).json()
    assert body["status"] == "used"
    assert [(h["purchase_id"], h["discount"], h["released_at"]) for h in body["history"]] == [
        (str(pid), "62.98", None)
    ]
    r = client.get("/api/v1/coupons/LOOK-0002", headers=admin)
    assert (r.status_code, r.json()["code"]) == (404, "coupon_invalid")


def test_unknown_codes_count_against_the_caller(
    client: TestClient,
    auth: KeyFactory,
    program: Database,
    settings_env: Callable[[str, str], None],
) -> None:
    settings_env("KOPILKA_COUPON_FAILURE_LIMIT", "3")
    admin = auth("admin")
    pool = create(client, admin)
    client.post(f"{POOLS}/{pool['id']}/codes/import", json={"codes": ["REAL-0001"]}, headers=admin)
    guesser = auth("cashier")
    for i in range(3):
        r = client.get(f"/api/v1/coupons/GUESS-{i:04d}", headers=guesser)
        assert r.status_code == 404
    # past the limit: 429, for a real code too, and for its pictures
    for path in (
        "/api/v1/coupons/GUESS-9999",
        "/api/v1/coupons/REAL-0001",
        "/api/v1/coupons/REAL-0001/qr.svg",
    ):
        r = client.get(path, headers=guesser)
        assert r.status_code == 429, path
        assert r.json()["code"] == "rate_limited"
        assert 1 <= int(r.headers["retry-after"]) <= 900
    # another caller is not affected
    assert client.get("/api/v1/coupons/REAL-0001", headers=admin).status_code == 200


def test_throttle_counts_even_when_the_request_rolls_back(
    program: Database, settings_env: Callable[[str, str], None]
) -> None:
    from kopilka.core.errors import Problem
    from tests.coupons.conftest import NOW, receipt

    settings_env("KOPILKA_COUPON_FAILURE_LIMIT", "4")
    # a calculation that never commits, with three unknown codes, then another with one
    with program.session() as s:
        out = redeem.evaluate(
            s, ["A-22222", "B-22222", "C-22222"], receipt(), None, NOW, caller="k1"
        )
        assert out.failures == 3
        s.rollback()
    with program.session() as s:
        redeem.evaluate(s, ["D-22222"], receipt(), None, NOW, caller="k1")
    # then the caller is blocked until the window's end
    with program.session() as s, pytest.raises(Problem) as exc:
        redeem.evaluate(s, ["E-22222"], receipt(), None, NOW, caller="k1")
    assert exc.value.status == 429
    assert exc.value.headers == {"Retry-After": "900"}  # NOW is 07:00, the window ends 07:15
    with program.session() as s:
        later = NOW + pools.dt.timedelta(seconds=900)
        assert redeem.evaluate(s, ["E-22222"], receipt(), None, later, caller="k1").failures == 1


# ---------------------------------------------------------------------------- pictures


def _zbar(png: bytes, tmp_path: Any) -> list[str]:
    path = tmp_path / "symbol.png"
    path.write_bytes(png)
    out = subprocess.run(
        ["/usr/bin/zbarimg", "-q", "--raw", str(path)], capture_output=True, check=False, text=True
    )
    return out.stdout.split()


def test_qr_and_barcode_images(
    client: TestClient, admin: dict[str, str], program: Database, auth: KeyFactory, tmp_path: Any
) -> None:
    pool = create(client, admin)
    client.post(f"{POOLS}/{pool['id']}/codes/import", json={"codes": ["PRINT-7KQ2"]}, headers=admin)
    cashier = auth("cashier")
    svg = client.get("/api/v1/coupons/print-7kq2/qr.svg", headers=cashier)
    assert svg.status_code == 200
    assert svg.headers["content-type"] == "image/svg+xml"
    assert b"<svg" in svg.content
    png = client.get("/api/v1/coupons/PRINT-7KQ2/qr.png", headers=cashier)
    assert png.headers["content-type"] == "image/png"
    assert _zbar(png.content, tmp_path) == ["PRINT-7KQ2"]
    bars = client.get("/api/v1/coupons/PRINT-7KQ2/barcode.png", headers=cashier)
    assert bars.headers["content-type"] == "image/png"
    assert _zbar(bars.content, tmp_path) == ["PRINT-7KQ2"]
    bsvg = client.get("/api/v1/coupons/PRINT-7KQ2/barcode.svg", headers=cashier)
    assert bsvg.status_code == 200 and b"<svg" in bsvg.content
    assert client.get("/api/v1/coupons/NOPE-7KQ2/qr.png", headers=cashier).status_code == 404


def test_a_member_sees_only_their_own_coupons(
    client: TestClient, admin: dict[str, str], program: Database, make_member: MakeMember
) -> None:
    from tests.security.principals import as_member, principal_sessions

    alice, bob = make_member(), make_member()
    pool = create(client, admin, valid_from=None, valid_until=None)
    issued = client.post(
        f"{POOLS}/{pool['id']}/personal-codes",
        json={"member_ids": [str(alice), str(bob)]},
        headers=admin,
    ).json()["codes"]
    mine, theirs = issued[0]["code"], issued[1]["code"]
    with principal_sessions():
        me = as_member(str(alice))
        listed = client.get(f"/api/v1/members/{alice}/coupons", headers=me)
        assert [c["code"] for c in listed.json()["items"]] == [mine]
        assert listed.json()["items"][0]["status"] == "available"
        assert client.get(f"/api/v1/members/{bob}/coupons", headers=me).status_code == 403
        assert client.get(f"/api/v1/coupons/{mine}/qr.svg", headers=me).status_code == 200
        other = client.get(f"/api/v1/coupons/{theirs}/qr.svg", headers=me)
        assert (other.status_code, other.json()["code"]) == (404, "coupon_invalid")
        # the look-up with history is for staff only
        assert client.get(f"/api/v1/coupons/{mine}", headers=me).status_code == 403


def test_a_failed_generation_is_reported(
    program: Database, make_pool: MakePool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a background job whose second chunk fails
    pool = make_pool()
    with program.session() as s:
        issue.start_generation(s, pool.id, 30, "test")
        s.commit()
    real = issue._add_generated
    calls: list[int] = []

    def failing(session: Any, p: CouponPool, count: int) -> int:
        calls.append(count)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real(session, p, count)

    monkeypatch.setattr(issue, "_add_generated", failing)
    issue.run_generation(pool.id, program, chunk=20)
    # then the first chunk stays, the pool says what happened
    with program.session() as s:
        got = pools.get_pool(s, pool.id)
        data = pools.pool_json(got)
        assert len(s.execute(select(Coupon.id).where(Coupon.pool_id == pool.id)).all()) == 20
    assert calls == [20, 10]
    assert data["generation"]["status"] == "failed"
    assert data["generation"]["done"] == 20 and data["code_count"] == 20
    assert data["generation"]["error"] == "RuntimeError: disk full"


@pytest.mark.parametrize("cursor", ["55080198920268465461583", "9223372036854775808", "٣"])
def test_a_numeric_cursor_beyond_any_id_is_422_not_500(
    client: TestClient, admin: dict[str, str], make_member: MakeMember, cursor: str
) -> None:
    # Regression (issue 19, found by fuzzing): a code list's cursor of more than 2^63 - 1
    # reached the database, which cannot compare it (500 on both).
    # given a pool with a code and a member
    pool = create(client, admin)
    client.post(f"{POOLS}/{pool['id']}/generate", json={"count": 1}, headers=admin)
    member = make_member()
    for url in (f"{POOLS}/{pool['id']}/codes", f"/api/v1/members/{member}/coupons"):
        # when a page is asked for after such a cursor
        r = client.get(url, params={"cursor": cursor}, headers=admin)
        # then it is refused naming the cursor
        assert r.status_code == 422, r.text
        assert [(e["field"], e["in"]) for e in r.json()["errors"]] == [("cursor", "query")]
        # and the largest id there can be is a cursor (after which there is nothing)
        last = client.get(url, params={"cursor": str(2**63 - 1)}, headers=admin)
        assert last.status_code == 200, last.text


def test_a_csv_import_the_csv_module_cannot_read_is_422_naming_the_line(
    client: TestClient, admin: dict[str, str], program: Database
) -> None:
    # Regression (issue 19, found by fuzzing): a lone carriage return inside a line, or a
    # field beyond the csv module's limit, raised csv.Error: 500.
    # given a pool
    pool = create(client, admin)
    url = f"{POOLS}/{pool['id']}/codes/import"
    csv_headers = {**admin, "Content-Type": "text/csv"}
    # when codes come in a file whose lines end with a lone \r (old Mac style)
    r = client.post(url, content=b"OLDMAC-0001\rOLDMAC-0002\r", headers=csv_headers)
    # then they are read as two lines
    assert r.status_code == 201, r.text
    assert client.get(url.removesuffix("/import"), headers=admin).json()["items"][1]["code"] == (
        "OLDMAC-0002"
    )
    # when a line holds more than the csv module reads in one field
    r = client.post(url, content=b"code\n" + b"A" * 200_000 + b"\n", headers=csv_headers)
    # then it is refused naming the line, and nothing is added
    assert r.status_code == 422, r.text
    assert [(e["field"], e["code"]) for e in r.json()["errors"]] == [("line 2", "csv")]
    assert client.get(f"{POOLS}/{pool['id']}", headers=admin).json()["code_count"] == 2
