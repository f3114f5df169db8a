"""Custom events over HTTP: rewards, conditions, limits, idempotency, errors, outbox."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kopilka.core.db import Database
from kopilka.custom_events.models import Activity, ActivityReward
from kopilka.events.models import OutboxEvent
from kopilka.ledger.models import Entry
from kopilka.ledger.verify import verify
from tests.custom_events.conftest import Enrol, UseRules, event
from tests.security.principals import as_member, as_user, principal_sessions

JAR = {
    "name": "Jar returned",
    "event": "jar_returned",
    "reward": {"points": {"currency": "BONUS", "amount": "10"}},
}
ECO = {
    "name": "Eco — clothes recycled",
    "event": "clothes_recycled",
    "when": {"properties": {"kg": {"min": "1"}}},
    "reward": {"points": {"currency": "BONUS", "amount": "50", "per_property": "kg", "max": "500"}},
}


def _post(client: TestClient, h: dict[str, str], body: dict[str, Any], **headers: str) -> Any:
    return client.post("/api/v1/events", json=body, headers={**h, **headers})


def _available(client: TestClient, h: dict[str, str], member_id: str) -> str:
    r = client.get(f"/api/v1/members/{member_id}/balances", headers=h)
    bonus = [b for b in r.json()["balances"] if b["currency"] == "BONUS"]
    return str(bonus[0]["available"]) if bonus else "0.00"


def _count(db: Database, model: Any) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _statuses(r: Any) -> list[tuple[str, str, str | None]]:
    return [(x["rule"], x["status"], x.get("reason")) for x in r.json()["rewards"]]


# ---------------------------------------------------------------------------- rewards


def test_fixed_reward_is_credited_as_a_reward_entry(
    client: TestClient, admin: dict[str, str], use_rules: UseRules, enrol: Enrol, program: Database
) -> None:
    # given a rule giving 10 BONUS for a returned jar, and a member
    use_rules([JAR])
    m = enrol()
    # when a till records a returned jar
    r = _post(client, admin, event(m["id"], "JAR-1", note="glass"))
    # then the answer names what was granted, and the points are the member's
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["type"] == "jar_returned"
    assert body["external_id"] == "JAR-1"
    assert body["member_id"] == m["id"]
    assert body["occurred_at"] == "2026-11-20T10:00:00+03:00"
    assert body["properties"] == {"note": "glass"}
    assert body["rewards"] == [
        {
            "rule": "Jar returned",
            "status": "granted",
            "points": {
                "currency": "BONUS",
                "amount": "10.00",
                "available_at": "2026-11-20T10:00:00+03:00",
            },
        }
    ]
    assert _available(client, admin, m["id"]) == "10.00"
    ledger = client.get(f"/api/v1/members/{m['id']}/ledger", headers=admin).json()
    entries = ledger["items"]
    assert [(e["kind"], e["amount"]) for e in entries] == [("reward", "10.00")]
    assert entries[0]["description"] == "Jar returned (jar_returned JAR-1)"
    with program.session() as s:
        assert verify(s, stop_at_first=False) == []


def test_reward_per_property_is_rounded_down_and_capped(
    client: TestClient, admin: dict[str, str], use_rules: UseRules, enrol: Enrol
) -> None:
    # given 50 BONUS per kg, at most 500, from 1 kg
    use_rules([ECO])
    m = enrol()
    cases = [("E-1", "2.5", "125.00"), ("E-2", 12, "500.00"), ("E-3", "1.0333", "51.66")]
    for ext, kg, expected in cases:
        # when clothes are brought
        r = _post(client, admin, event(m["id"], ext, "clothes_recycled", kg=kg))
        # then the points follow the weight, rounded down to 0.01 and capped at 500
        assert r.status_code == 201, r.text
        assert r.json()["rewards"][0]["points"]["amount"] == expected, ext
    assert _available(client, admin, m["id"]) == "676.66"


def test_json_number_properties_are_read_as_their_decimal_text(
    client: TestClient, admin: dict[str, str], use_rules: UseRules, enrol: Enrol
) -> None:
    use_rules([ECO])
    m = enrol()
    r = _post(client, admin, event(m["id"], "E-1", "clothes_recycled", kg=1.1))
    assert r.json()["rewards"][0]["points"]["amount"] == "55.00"


# ---------------------------------------------------------------------------- conditions


@pytest.mark.parametrize(
    "when,properties,matched",
    [
        ({"properties": {"kg": {"min": "1"}}}, {"kg": "0.99"}, False),
        ({"properties": {"kg": {"min": "1"}}}, {"kg": "1"}, True),
        ({"properties": {"kg": {"max": "5"}}}, {"kg": "5.01"}, False),
        ({"properties": {"kg": {"min": "1", "max": "5"}}}, {"kg": 5}, True),
        ({"properties": {"kg": {"min": "1"}}}, {}, False),
        ({"properties": {"material": {"equals": "cotton"}}}, {"material": "cotton"}, True),
        ({"properties": {"material": {"equals": "cotton"}}}, {"material": "Cotton"}, False),
        ({"properties": {"bags": {"equals": 2}}}, {"bags": "2.0"}, True),
        ({"properties": {"sorted": {"equals": True}}}, {"sorted": True}, True),
        ({"properties": {"sorted": {"equals": True}}}, {"sorted": "true"}, False),
        ({"period": {"from": "2026-11-21", "to": "2026-12-31"}}, {}, False),
        ({"period": {"from": "2026-11-20"}}, {}, True),
        ({"period": {"to": "2026-11-19"}}, {}, False),
    ],
)
def test_conditions_on_properties_and_period(
    client: TestClient,
    admin: dict[str, str],
    use_rules: UseRules,
    enrol: Enrol,
    when: dict[str, Any],
    properties: dict[str, Any],
    matched: bool,
) -> None:
    # given a rule with a condition
    use_rules([{**JAR, "when": when}])
    m = enrol()
    # when an event comes (on 2026-11-20 Moscow time)
    r = _post(client, admin, event(m["id"], "J-1", **properties))
    # then the rule answers only if its conditions hold (otherwise it is not listed)
    assert r.status_code == 201, r.text
    assert _statuses(r) == ([("Jar returned", "granted", None)] if matched else [])


def test_period_is_read_in_the_programme_time_zone(
    client: TestClient, admin: dict[str, str], use_rules: UseRules, enrol: Enrol
) -> None:
    # given a rule from 2026-11-21 (Moscow)
    use_rules([{**JAR, "when": {"period": {"from": "2026-11-21"}}}])
    m = enrol()
    # when an event comes at 21:30 UTC on the 20th, i.e. 00:30 on the 21st in Moscow
    r = _post(client, admin, event(m["id"], "J-1", occurred_at="2026-11-20T21:30:00Z"))
    # then it is inside the period
    assert _statuses(r) == [("Jar returned", "granted", None)]


def test_tier_condition(
    client: TestClient, admin: dict[str, str], use_rules: UseRules, enrol: Enrol
) -> None:
    # given a rule for gold members only
    use_rules([{**JAR, "when": {"member": {"tiers": ["gold"]}}}])
    gold, silver, none = enrol(tier="gold"), enrol(tier="silver"), enrol()
    # then only the gold member's event is rewarded
    assert _statuses(_post(client, admin, event(gold["id"], "J-1"))) == [
        ("Jar returned", "granted", None)
    ]
    assert _statuses(_post(client, admin, event(silver["id"], "J-2"))) == []
    assert _statuses(_post(client, admin, event(none["id"], "J-3"))) == []


def test_several_rules_of_one_type_answer_in_programme_order(
    client: TestClient, admin: dict[str, str], use_rules: UseRules, enrol: Enrol
) -> None:
    use_rules(
        [
            JAR,
            {
                **JAR,
                "name": "Jar bonus",
                "reward": {"points": {"currency": "STAMP", "amount": "1"}},
            },
        ]
    )
    m = enrol()
    r = _post(client, admin, event(m["id"], "J-1"))
    assert [
        (x["rule"], x["points"]["currency"], x["points"]["amount"]) for x in r.json()["rewards"]
    ] == [
        ("Jar returned", "BONUS", "10.00"),
        ("Jar bonus", "STAMP", "1"),
    ]


# ---------------------------------------------------------------------------- limits


def _limited(
    client: TestClient, admin: dict[str, str], member_id: str, times: list[str]
) -> list[str]:
    out = []
    for i, at in enumerate(times):
        r = _post(client, admin, event(member_id, f"L-{member_id[-6:]}-{i}", occurred_at=at))
        assert r.status_code == 201, r.text
        item = r.json()["rewards"][0]
        out.append(item["status"] if item["status"] == "granted" else item["reason"])
    return out


def test_per_day_limit_counts_calendar_days_in_moscow(
    client: TestClient, admin: dict[str, str], use_rules: UseRules, enrol: Enrol
) -> None:
    # given one reward per day
    use_rules([{**JAR, "limits": {"per_day": 1}}])
    m = enrol()
    # when events come at 23:59 and 00:01 Moscow time (the same UTC day), then again late
    # on the first day and early on the second (00:30 Moscow is still the previous UTC day)
    got = _limited(
        client,
        admin,
        m["id"],
        [
            "2026-11-20T23:59:00+03:00",
            "2026-11-20T21:01:00+00:00",  # 00:01 on the 21st in Moscow
            "2026-11-20T00:30:00+03:00",  # 21:30 UTC on the 19th: still the 20th in Moscow
            "2026-11-21T23:00:00+03:00",
        ],
    )
    # then each Moscow day grants once
    assert got == ["granted", "granted", "limit_per_day", "limit_per_day"]


def test_per_week_limit_counts_iso_weeks(
    client: TestClient, admin: dict[str, str], use_rules: UseRules, enrol: Enrol
) -> None:
    # given one reward per week (2026-11-23 is a Monday)
    use_rules([{**JAR, "limits": {"per_week": 1}}])
    m = enrol()
    got = _limited(
        client,
        admin,
        m["id"],
        [
            "2026-11-22T23:59:00+03:00",  # Sunday
            "2026-11-23T00:01:00+03:00",  # Monday: a new week
            "2026-11-16T00:00:00+03:00",  # Monday of the first week
            "2026-11-29T23:59:59+03:00",  # Sunday of the second week
        ],
    )
    assert got == ["granted", "granted", "limit_per_week", "limit_per_week"]


def test_per_month_and_total_limits(
    client: TestClient, admin: dict[str, str], use_rules: UseRules, enrol: Enrol
) -> None:
    use_rules([{**JAR, "limits": {"per_month": 2, "total": 3}}])
    m = enrol()
    got = _limited(
        client,
        admin,
        m["id"],
        [
            "2026-11-01T00:00:00+03:00",
            "2026-11-30T23:59:00+03:00",
            "2026-11-15T12:00:00+03:00",
            "2026-11-30T21:01:00+00:00",  # 00:01 on 1 December in Moscow
            "2026-12-02T10:00:00+03:00",
        ],
    )
    assert got == ["granted", "granted", "limit_per_month", "granted", "limit_total"]


def test_a_limited_rule_grants_nothing_and_says_so(
    client: TestClient, admin: dict[str, str], use_rules: UseRules, enrol: Enrol, program: Database
) -> None:
    use_rules([{**JAR, "limits": {"per_day": 1}}])
    m = enrol()
    _post(client, admin, event(m["id"], "J-1"))
    r = _post(client, admin, event(m["id"], "J-2"))
    assert r.status_code == 201
    assert r.json()["rewards"] == [
        {"rule": "Jar returned", "status": "limited", "reason": "limit_per_day"}
    ]
    assert _available(client, admin, m["id"]) == "10.00"
    # the limits are per member
    other = enrol()
    assert _statuses(_post(client, admin, event(other["id"], "J-3"))) == [
        ("Jar returned", "granted", None)
    ]


# ---------------------------------------------------------------------------- idempotency


def test_same_external_id_same_content_answers_the_same_and_moves_nothing(
    client: TestClient, admin: dict[str, str], use_rules: UseRules, enrol: Enrol, program: Database
) -> None:
    use_rules([ECO])
    m = enrol()
    body = event(m["id"], "E-1", "clothes_recycled", kg="2")
    first = _post(client, admin, body)
    assert first.status_code == 201
    counts = (_count(program, Entry), _count(program, OutboxEvent), _count(program, ActivityReward))
    # when the same event comes again (the offset written differently: the same instant)
    again = _post(client, admin, {**body, "occurred_at": "2026-11-20T07:00:00Z"})
    # then the first answer, and nothing moved
    assert again.status_code == 200
    assert again.json() == first.json()
    assert (
        _count(program, Entry),
        _count(program, OutboxEvent),
        _count(program, ActivityReward),
    ) == counts
    assert _available(client, admin, m["id"]) == "100.00"


def test_same_external_id_other_content_is_a_conflict(
    client: TestClient, admin: dict[str, str], use_rules: UseRules, enrol: Enrol, program: Database
) -> None:
    use_rules([ECO])
    m = enrol()
    first = _post(client, admin, event(m["id"], "E-1", "clothes_recycled", kg="2"))
    r = _post(client, admin, event(m["id"], "E-1", "clothes_recycled", kg="3"))
    assert r.status_code == 409
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "duplicate_external_id"
    assert r.json()["custom_event_id"] == first.json()["id"]
    assert _count(program, Activity) == 1
    assert _available(client, admin, m["id"]) == "100.00"


def test_idempotency_key(
    client: TestClient, admin: dict[str, str], use_rules: UseRules, enrol: Enrol, program: Database
) -> None:
    use_rules([JAR])
    m = enrol()
    body = event(m["id"], "J-1")
    first = _post(client, admin, body, **{"Idempotency-Key": "k-1"})
    again = _post(client, admin, body, **{"Idempotency-Key": "k-1"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    other = _post(client, admin, event(m["id"], "J-2"), **{"Idempotency-Key": "k-1"})
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert _count(program, Activity) == 1
    assert _available(client, admin, m["id"]) == "10.00"


# ---------------------------------------------------------------------------- errors


def test_unknown_member_is_404_and_nothing_is_written(
    client: TestClient, admin: dict[str, str], use_rules: UseRules, program: Database
) -> None:
    use_rules([JAR])
    r = _post(client, admin, event(str(uuid.uuid4()), "J-1"))
    assert r.status_code == 404
    assert r.json()["code"] == "member_not_found"
    body = event(str(uuid.uuid4()), "J-2")
    body["member"] = {"card": "7700000000017"}
    assert _post(client, admin, body).json()["code"] == "member_not_found"
    assert _count(program, Activity) == 0


def test_member_by_card_reference(
    client: TestClient, admin: dict[str, str], use_rules: UseRules, enrol: Enrol
) -> None:
    use_rules([JAR])
    m = enrol()
    body = event(m["id"], "J-1")
    body["member"] = {"card": m["card_number"]}
    r = _post(client, admin, body)
    assert r.status_code == 201
    assert r.json()["member_id"] == m["id"]


def test_blocked_member_is_422(
    client: TestClient, admin: dict[str, str], use_rules: UseRules, enrol: Enrol, program: Database
) -> None:
    use_rules([JAR])
    m = enrol(status="blocked")
    r = _post(client, admin, event(m["id"], "J-1"))
    assert r.status_code == 422
    assert r.json()["code"] == "member_blocked"
    assert r.json()["errors"][0]["field"] == "member"
    assert _count(program, Activity) == 0


def test_unknown_event_type_is_422_naming_type(
    client: TestClient, admin: dict[str, str], use_rules: UseRules, enrol: Enrol, program: Database
) -> None:
    use_rules([JAR])
    m = enrol()
    r = _post(client, admin, event(m["id"], "X-1", type="bottle_returned"))
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"
    assert [e["field"] for e in r.json()["errors"]] == ["type"]
    assert _count(program, Activity) == 0


def test_without_event_types_any_type_is_recorded(
    client: TestClient, admin: dict[str, str], use_rules: UseRules, enrol: Enrol
) -> None:
    use_rules([JAR], types=None)
    m = enrol()
    r = _post(client, admin, event(m["id"], "X-1", type="bottle_returned"))
    assert r.status_code == 201
    assert r.json()["rewards"] == []


@pytest.mark.parametrize(
    "change,field",
    [
        ({"properties": {"kg": {"nested": 1}}}, "properties.kg"),
        ({"properties": {"kg": [1, 2]}}, "properties.kg"),
        ({"properties": {"kg": "a lot"}}, "properties.kg"),
        ({"properties": {"kg": "-2"}}, "properties.kg"),
        ({"properties": {"kg": "1e400"}}, "properties.kg"),
        ({"properties": {"kg": 1e300}}, "properties.kg"),
        ({"properties": {"bad key": 1}}, "properties.bad key"),
        ({"occurred_at": "2026-11-20T10:00:00"}, "occurred_at"),
        ({"type": "Not A Type"}, "type"),
        ({"external_id": ""}, "external_id"),
        ({"member": {"id": None}}, "member"),
        ({"member": {"id": "x", "card": "1"}}, "member"),
    ],
)
def test_bad_input_is_422_naming_the_field_and_changes_nothing(
    client: TestClient,
    admin: dict[str, str],
    use_rules: UseRules,
    enrol: Enrol,
    program: Database,
    change: dict[str, Any],
    field: str,
) -> None:
    use_rules([ECO])
    m = enrol()
    body = {**event(m["id"], "E-1", "clothes_recycled", kg="2"), **change}
    r = _post(client, admin, body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert any(e["field"].startswith(field) for e in r.json()["errors"]), r.json()
    assert _count(program, Activity) == 0


def test_a_missing_per_unit_property_is_answered_rejected(
    client: TestClient, admin: dict[str, str], use_rules: UseRules, enrol: Enrol
) -> None:
    use_rules([{**ECO, "when": {}}])
    m = enrol()
    r = _post(client, admin, event(m["id"], "E-1", "clothes_recycled"))
    assert r.json()["rewards"] == [
        {"rule": "Eco — clothes recycled", "status": "rejected", "reason": "property_missing"}
    ]
    r = _post(client, admin, event(m["id"], "E-2", "clothes_recycled", kg=0))
    assert _statuses(r) == [("Eco — clothes recycled", "rejected", "nothing_to_grant")]


# ---------------------------------------------------------------------------- coupons


def _pool(client: TestClient, h: dict[str, str], name: str = "ECO-NEXT") -> dict[str, Any]:
    r = client.post(
        "/api/v1/coupon-pools",
        json={"name": name, "reward": {"kind": "percent", "value": "10"}},
        headers=h,
    )
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


def test_coupon_reward_issues_a_personal_code(
    client: TestClient, admin: dict[str, str], use_rules: UseRules, enrol: Enrol
) -> None:
    # given a pool and a rule giving a personal code of it with points
    _pool(client, admin)
    use_rules(
        [
            {
                **JAR,
                "reward": {
                    "points": {"currency": "BONUS", "amount": "5"},
                    "coupon": {"pool": "ECO-NEXT"},
                },
            }
        ]
    )
    m = enrol()
    # when the event is recorded
    r = _post(client, admin, event(m["id"], "J-1"))
    # then the member has a new personal code, shown in the answer and in the coupons API
    assert r.status_code == 201, r.text
    item = r.json()["rewards"][0]
    assert item["status"] == "granted"
    assert item["points"]["amount"] == "5.00"
    assert item["coupon"]["pool"] == "ECO-NEXT"
    code = item["coupon"]["code"]
    assert isinstance(code, str) and len(code) >= 8
    coupons = client.get(f"/api/v1/members/{m['id']}/coupons", headers=admin).json()["items"]
    assert [(c["code"], c["status"], c["member_id"]) for c in coupons] == [
        (code, "available", m["id"])
    ]


def test_coupon_reward_by_pool_id(
    client: TestClient, admin: dict[str, str], use_rules: UseRules, enrol: Enrol
) -> None:
    pool = _pool(client, admin, "Some pool")
    use_rules([{**JAR, "reward": {"coupon": {"pool": pool["id"]}}}])
    m = enrol()
    item = _post(client, admin, event(m["id"], "J-1")).json()["rewards"][0]
    assert item["status"] == "granted"
    assert item["coupon"]["pool"] == pool["id"]


def test_unknown_pool_is_a_rejected_reward_not_a_500(
    client: TestClient, admin: dict[str, str], use_rules: UseRules, enrol: Enrol, program: Database
) -> None:
    use_rules(
        [
            {
                **JAR,
                "reward": {
                    "points": {"currency": "BONUS", "amount": "5"},
                    "coupon": {"pool": "NO-SUCH-POOL"},
                },
            }
        ]
    )
    m = enrol()
    r = _post(client, admin, event(m["id"], "J-1"))
    assert r.status_code == 201
    assert r.json()["rewards"] == [
        {
            "rule": "Jar returned",
            "status": "rejected",
            "reason": "coupon_pool_not_found",
            "coupon": {"code": None, "pool": "NO-SUCH-POOL"},
        }
    ]
    # all or nothing: the rule's points were not granted either
    assert _available(client, admin, m["id"]) == "0.00"
    assert _count(program, Entry) == 0


# ---------------------------------------------------------------------------- outbox


def test_outbox_events_are_written_with_the_event(
    client: TestClient, admin: dict[str, str], use_rules: UseRules, enrol: Enrol, program: Database
) -> None:
    use_rules([ECO])
    m = enrol()
    r = _post(client, admin, event(m["id"], "E-1", "clothes_recycled", kg="2"))
    answer = r.json()
    with program.session() as s:
        rows = list(
            s.execute(
                select(OutboxEvent)
                .where(OutboxEvent.type.in_(["activity.recorded", "points.earned"]))
                .order_by(OutboxEvent.created_at)
            ).scalars()
        )
    assert [(e.type, e.member_id) for e in rows] == [
        ("activity.recorded", uuid.UUID(m["id"])),
        ("points.earned", uuid.UUID(m["id"])),
    ]
    assert rows[0].data == {
        "custom_event_id": answer["id"],
        "type": "clothes_recycled",
        "external_id": "E-1",
        "member_id": m["id"],
        "occurred_at": "2026-11-20T10:00:00+03:00",
        "rewards": answer["rewards"],
    }
    assert rows[1].data == {
        "member_id": m["id"],
        "purchase_id": None,
        "currency": "BONUS",
        "amount": "100.00",
        "available_at": "2026-11-20T10:00:00+03:00",
        "custom_event_id": answer["id"],
        "rule": "Eco — clothes recycled",
    }


# ---------------------------------------------------------------------------- reading


def test_get_event_and_list_a_members_events(
    client: TestClient, admin: dict[str, str], use_rules: UseRules, enrol: Enrol
) -> None:
    use_rules([JAR])
    m = enrol()
    answers = [_post(client, admin, event(m["id"], f"J-{i}")).json() for i in range(3)]
    one = client.get(f"/api/v1/events/{answers[0]['id']}", headers=admin)
    assert one.status_code == 200 and one.json() == answers[0]
    page = client.get(f"/api/v1/members/{m['id']}/events?limit=2", headers=admin).json()
    assert [e["external_id"] for e in page["items"]] == ["J-2", "J-1"]
    rest = client.get(
        f"/api/v1/members/{m['id']}/events?limit=2&cursor={page['next_cursor']}", headers=admin
    ).json()
    assert [e["external_id"] for e in rest["items"]] == ["J-0"]
    assert rest["next_cursor"] is None
    other_type = client.get(f"/api/v1/members/{m['id']}/events?type=event_checkin", headers=admin)
    assert other_type.json() == {"items": [], "next_cursor": None}
    assert client.get(f"/api/v1/events/{uuid.uuid4()}", headers=admin).json()["code"] == (
        "custom_event_not_found"
    )
    bad = client.get(f"/api/v1/members/{m['id']}/events?cursor=nope", headers=admin)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cursor"
    missing = client.get(f"/api/v1/members/{uuid.uuid4()}/events", headers=admin)
    assert missing.status_code == 404


def test_who_may_record_and_read(
    client: TestClient, auth: Any, use_rules: UseRules, enrol: Enrol
) -> None:
    use_rules([JAR])
    m, other = enrol(), enrol()
    for i, role in enumerate(("cashier", "partner", "manager")):
        assert _post(client, auth(role), event(m["id"], f"J-{i}")).status_code == 201, role
    assert _post(client, auth("analyst"), event(m["id"], "J-9")).status_code == 403
    eid = client.get(f"/api/v1/members/{m['id']}/events", headers=auth("analyst")).json()["items"][
        0
    ]["id"]
    assert client.get(f"/api/v1/events/{eid}", headers=auth("cashier")).status_code == 403
    with principal_sessions():
        assert client.get(f"/api/v1/events/{eid}", headers=as_user("support")).status_code == 200
        own = client.get(f"/api/v1/members/{m['id']}/events", headers=as_member(m["id"]))
        assert own.status_code == 200 and len(own.json()["items"]) == 3
        theirs = client.get(f"/api/v1/members/{other['id']}/events", headers=as_member(m["id"]))
        assert theirs.status_code == 403


def test_invariants_hold_after_many_events(
    client: TestClient, admin: dict[str, str], use_rules: UseRules, enrol: Enrol, program: Database
) -> None:
    use_rules([ECO, {**JAR, "limits": {"per_day": 2}}])
    members = [enrol() for _ in range(3)]
    for i in range(12):
        m = members[i % 3]
        _post(client, admin, event(m["id"], f"E-{i}", "clothes_recycled", kg=str(Decimal(i) / 2)))
        _post(client, admin, event(m["id"], f"J-{i}"))
    with program.session() as s:
        assert verify(s, stop_at_first=False) == []
        kinds = set(s.scalars(select(Entry.kind).distinct()))
        granted = s.scalar(
            select(func.count())
            .select_from(ActivityReward)
            .where(ActivityReward.status == "granted")
        )
    assert kinds == {"reward"}
    assert granted == 10 + 6  # kg >= 1 from i = 2; two jars a day per member


def test_control_group_members_earn_nothing_and_are_told_why(
    client: TestClient,
    admin: dict[str, str],
    program: Database,
    enrol: Enrol,
) -> None:
    import yaml

    from kopilka.program import service as program_service
    from kopilka.spec.control_group import in_control_group
    from tests.custom_events.conftest import program_text

    # given a programme holding half of the members out, and one member in, one out
    doc = yaml.safe_load(program_text([JAR]))
    doc["control_group_share"] = "0.5"
    with program.session() as s:
        program_service.apply_program(s, program_service.validate_program(doc))
        s.commit()
    program_service.invalidate_cache()
    members = [enrol() for _ in range(12)]
    held = next(m for m in members if in_control_group(uuid.UUID(m["id"]), Decimal("0.5")))
    free = next(m for m in members if not in_control_group(uuid.UUID(m["id"]), Decimal("0.5")))
    # when both return a jar
    r_held = _post(client, admin, event(held["id"], "J-1"))
    r_free = _post(client, admin, event(free["id"], "J-2"))
    # then the held-out member gets nothing, with the reason
    assert _statuses(r_held) == [("Jar returned", "rejected", "control_group")]
    assert _statuses(r_free) == [("Jar returned", "granted", None)]
    assert _available(client, admin, held["id"]) == "0.00"


def test_export_holds_and_erasure_blanks_the_events_properties(
    client: TestClient, admin: dict[str, str], use_rules: UseRules, enrol: Enrol, program: Database
) -> None:
    # given a member's event carrying a property
    use_rules([JAR])
    m = enrol()
    answer = _post(client, admin, event(m["id"], "J-1", note="left at the back door")).json()
    # when the member's data is exported
    export = client.get(f"/api/v1/members/{m['id']}/export", headers=admin).json()
    # then the event is in it
    assert export["other"]["custom_events"] == [answer]
    # when the member is erased
    r = client.post(f"/api/v1/members/{m['id']}/erase", json={"reason": "asked"}, headers=admin)
    assert r.status_code == 200, r.text
    # then the properties are gone, the reward stays
    after = client.get(f"/api/v1/events/{answer['id']}", headers=admin).json()
    assert after["properties"] == {}
    assert after["rewards"] == answer["rewards"]
    with program.session() as s:
        assert verify(s, stop_at_first=False) == []
