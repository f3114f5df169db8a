"""Rate limits: the sliding-window arithmetic, and each limit as a caller meets it."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from kopilka.core.config import reset_settings_cache
from kopilka.core.db import Database
from kopilka.core.errors import install_error_handlers
from kopilka.security import ratelimit
from kopilka.security.middleware import install as install_security
from kopilka.security.ratelimit import allowed, retry_after_ms
from tests.conftest import KeyFactory

# ---------------------------------------------------------------------- arithmetic


def _allows_after(prev: int, count: int, e: int, limit: int, window: int, d: int) -> bool:
    """Would one more hit ``d`` ms from now pass, no other hit meanwhile?"""
    w = window * 1000
    t = e + d
    if t < w:
        return allowed(prev, count + 1, t, limit, window)
    if t < 2 * w:
        return allowed(count, 1, t - w, limit, window)
    return allowed(0, 1, t - 2 * w, limit, window)


@given(
    limit=st.integers(1, 50),
    window=st.integers(1, 120),
    prev=st.integers(0, 120),
    count=st.integers(1, 120),
    frac=st.integers(0, 999),
)
@settings(max_examples=400)
def test_retry_after_is_the_first_moment_another_hit_passes(
    limit: int, window: int, prev: int, count: int, frac: int
) -> None:
    # given a window's counters at some moment in it
    e = window * 1000 * frac // 1000
    # when the wait for the next hit is computed
    d = retry_after_ms(prev, count, e, limit, window)
    # then a hit after that wait passes, and one a millisecond earlier would not
    assert _allows_after(prev, count, e, limit, window, d)
    if d > 0:
        assert not _allows_after(prev, count, e, limit, window, d - 1)


@given(limit=st.integers(1, 30), window=st.integers(1, 60), hits=st.integers(1, 100))
def test_within_one_window_exactly_limit_hits_pass(limit: int, window: int, hits: int) -> None:
    # given no earlier window: the k-th hit passes iff k <= limit
    passed = sum(allowed(0, k, 0, limit, window) for k in range(1, hits + 1))
    assert passed == min(hits, limit)


def test_the_previous_window_weighs_by_its_overlap() -> None:
    # given 10 hits in the previous minute and a limit of 10 per minute
    # then at the start of this minute nothing more passes, at half time five do
    assert not allowed(10, 1, 0, 10, 60)
    assert allowed(10, 5, 30_000, 10, 60)
    assert not allowed(10, 6, 30_000, 10, 60)


def test_overrides_are_parsed_and_checked() -> None:
    got = ratelimit.parse_overrides(" a=3/60, b=10/1 ")
    assert {n: (lim.limit, lim.window) for n, lim in got.items()} == {"a": (3, 60), "b": (10, 1)}
    for bad in ("a=3", "a=x/60", "a=0/60", "=3/60x"):
        with pytest.raises(ValueError):
            ratelimit.parse_overrides(bad)


# ---------------------------------------------------------------------- limits as met


@pytest.fixture
def tight(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Small limits for the test (as an operator would set KOPILKA_RATE_LIMITS)."""
    monkeypatch.setenv(
        "KOPILKA_RATE_LIMITS",
        "auth_failure=3/60,member_lookup_miss=3/60,member_export=2/3600,test_member=2/60",
    )
    reset_settings_cache()
    yield
    monkeypatch.delenv("KOPILKA_RATE_LIMITS")
    reset_settings_cache()


def _is_429(r: object) -> None:
    assert r.status_code == 429, r.text  # type: ignore[attr-defined]
    assert r.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    body = r.json()  # type: ignore[attr-defined]
    assert body["code"] == "rate_limited"
    wait = int(r.headers["retry-after"])  # type: ignore[attr-defined]
    assert 1 <= wait <= 2 * 3600 and body["retry_after"] == wait


@pytest.mark.usefixtures("program", "tight")
def test_per_key_export_limit(client: TestClient, auth: KeyFactory) -> None:
    # given a member and two admin keys, with two exports per key per hour
    a, b = auth("admin"), auth("admin")
    m = client.post("/api/v1/members", json={"phone": "+79160000001"}, headers=a).json()
    url = f"/api/v1/members/{m['id']}/export"
    # when key A exports three times
    assert client.get(url, headers=a).status_code == 200
    assert client.get(url, headers=a).status_code == 200
    # then the third is refused with Retry-After, and key B is not affected
    _is_429(client.get(url, headers=a))
    assert client.get(url, headers=b).status_code == 200


@pytest.mark.usefixtures("program", "tight")
def test_per_address_limit_on_bad_credentials(client: TestClient, admin: dict[str, str]) -> None:
    # given three wrong keys from one address are allowed per minute
    bad = {"Authorization": "Bearer kop_000000000000_wrong"}
    for _ in range(3):
        assert client.get("/api/v1/members", headers=bad).status_code == 401
    # when a fourth comes, then it is 429 (a malformed one too)
    _is_429(client.get("/api/v1/members", headers=bad))
    _is_429(client.get("/api/v1/members", headers={"Authorization": "Basic eDp5"}))
    # while a right key from that address still works (a shared address is not locked out)
    assert client.get("/api/v1/members", headers=admin).status_code == 200
    # and another address's wrong key is a plain 401
    other = TestClient(client.app, client=("203.0.113.9", 40000))
    assert other.get("/api/v1/members", headers=bad).status_code == 401


@pytest.mark.usefixtures("program", "tight")
def test_lookups_that_find_nobody_are_limited(client: TestClient, auth: KeyFactory) -> None:
    # given a member, and three look-ups finding nobody allowed per minute
    prober, till = auth("cashier"), auth("cashier")
    client.post("/api/v1/members", json={"phone": "+79160000001"}, headers=till)
    other_addr = TestClient(client.app, client=("203.0.113.7", 40000))
    for n in range(3):
        r = client.get(f"/api/v1/members?phone=%2B7916999000{n}", headers=prober)
        assert r.status_code == 200 and r.json()["items"] == []
    # when the caller keeps probing, then it is refused, even for a phone that exists
    _is_429(client.get("/api/v1/members?phone=%2B79169990009", headers=prober))
    _is_429(client.get("/api/v1/members?phone=%2B79160000001", headers=prober))
    # and by card at the till too (the same caller)
    body = {
        "external_id": "R-1",
        "member": {"phone": "+79160000001"},
        "store": "msk-01",
        "channel": "pos",
        "occurred_at": "2026-11-22T10:00:00+03:00",
        "lines": [{"sku": "A", "name": "A", "quantity": "1", "unit_price": "10.00"}],
    }
    _is_429(client.post("/api/v1/purchases/calculate", json=body, headers=prober))
    # while another key from another address still finds the member
    r = other_addr.get("/api/v1/members?phone=%2B79160000001", headers=till)
    assert r.status_code == 200 and len(r.json()["items"]) == 1
    # and look-ups that find someone never count
    for _ in range(5):
        r = other_addr.get("/api/v1/members?phone=%2B79160000001", headers=till)
        assert r.status_code == 200


@pytest.mark.usefixtures("tight")
def test_per_member_limit_dependency(db: Database) -> None:
    # given a route limited per member (as sign-in codes would be)
    ratelimit.define("test_member", 100, 60)
    app = FastAPI()
    install_error_handlers(app)
    install_security(app)

    @app.post(
        "/members/{member_id}/code",
        dependencies=[Depends(ratelimit.rate_limit("test_member", per=("ip", "member")))],
    )
    def send_code(member_id: str) -> dict[str, str]:
        return {"sent": member_id}

    # when one member's code is asked for three times from different addresses
    answers = [
        TestClient(app, client=(f"198.51.100.{i}", 1000)).post("/members/m1/code").status_code
        for i in range(3)
    ]
    # then the third is refused (two per member per minute), another member is not
    assert answers == [200, 200, 429]
    assert (
        TestClient(app, client=("198.51.100.9", 1000)).post("/members/m2/code").status_code == 200
    )


def _hammer(url: str, n: int, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    # A separate process with its own engine and pool, like another server worker.
    os.environ["KOPILKA_RATE_LIMITS"] = "shared=25/600"
    reset_settings_cache()
    from kopilka.core.db import Database, make_engine, set_db

    set_db(Database(make_engine(url=url)))
    ratelimit.define("shared", 1, 1)
    queue.put(sum(ratelimit.hit("shared", "key:one").allowed for _ in range(n)))


def test_limits_hold_across_processes(database: Database, db: Database) -> None:
    # given two processes hitting one subject's limit of 25 at the same time
    url = database.engine.url.render_as_string(hide_password=False)
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_hammer, args=(url, 20, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    # then exactly 25 of the 40 hits passed between them
    assert [p.exitcode for p in procs] == [0, 0]
    assert queue.get() + queue.get() == 25
