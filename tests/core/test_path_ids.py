"""A path id that is not a UUID names nothing: it answers what an unknown id answers.

Regression (issue 19): ``/api/v1/members/abc`` and ``/api/v1/purchases/xyz/commit``
answered 422 ``validation_error`` while an unknown UUID answered 404 ``member_not_found``
/ ``purchase_not_found``. The routes are read from the application itself, so a route
added later with an id in its path is checked the moment it is mounted.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kopilka.core.db import Database
from kopilka.core.errors import PATH_IDS
from kopilka.main import create_app
from kopilka.members.schemas import MemberCreate
from kopilka.members.service import create_member
from kopilka.security.policy import RouteInfo, route_infos
from tests.conftest import KeyFactory
from tests.console.test_console import make_user, sign_in
from tests.memberapp.conftest import PHONE, code_file, sign_in_by_code  # noqa: F401
from tests.security.principals import as_member, as_user, principal_sessions

PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


def _id_params(route: RouteInfo) -> list[str]:
    return [p.name for p in route.dependant.path_params if p.field_info.annotation is uuid.UUID]


def _routes_with_ids() -> list[RouteInfo]:
    return [r for r in route_infos(create_app().routes, prefix="") if _id_params(r)]


def _url(route: RouteInfo, ids: dict[str, str]) -> str:
    return PARAM.sub(lambda m: ids.get(m.group(1), "x-test"), route.path)


# A body for the routes that read theirs in the endpoint, after the path: one that gets
# as far as looking the id up.
BODIES: dict[str, Any] = {"/api/v1/coupon-pools/{pool_id}/codes/import": {"codes": ["AB12CD34"]}}


def _answer(
    client: TestClient, method: str, route: RouteInfo, ids: dict[str, str], headers: dict[str, str]
) -> Any:
    """What ``route`` answers with these ``ids`` in its path (redirects naming them as
    ``{id}``)."""
    body = BODIES.get(route.path, {}) if method in ("POST", "PUT", "PATCH") else None
    r = client.request(method, _url(route, ids), json=body, headers=headers, follow_redirects=False)
    kind = r.headers.get("content-type", "").split(";")[0]
    code = r.json().get("code") if kind.endswith("json") else None
    errors = r.json().get("errors") if kind.endswith("json") else None
    location = r.headers.get("location")
    for value in ids.values():
        location = location and location.replace(value, "{id}")
    return r.status_code, kind, code, errors, location


def test_every_id_in_a_path_has_its_not_found_code() -> None:
    # given every route of the application with a UUID in its path
    routes = _routes_with_ids()
    assert len(routes) > 20
    # then each such id names the code an unknown one answers
    names = {name for r in routes for name in _id_params(r)}
    assert names - set(PATH_IDS) == set()


def test_a_path_id_that_is_not_a_uuid_answers_as_an_unknown_id(
    program: Database,
    client: TestClient,
    auth: KeyFactory,
    code_file: Path,  # noqa: F811
) -> None:
    # given callers of every kind: API keys, a console user and a member signed in to the
    # console and the app (each with its own cookies), a member's API session, nobody
    make_user(program)
    console = TestClient(create_app(), raise_server_exceptions=False)
    assert sign_in(console, "ops@example.com").status_code == 303
    with program.session() as s:
        create_member(s, MemberCreate(phone=PHONE, name="Ольга"), "RU")
        s.commit()
    phone = TestClient(create_app(), raise_server_exceptions=False)
    signed = sign_in_by_code(phone, code_file)
    callers = [
        ("admin", client, auth("admin")),
        ("cashier", client, auth("cashier")),
        ("console", console, {}),
        ("app", phone, signed.headers),
        ("member", client, as_member(str(signed.member_id))),
        ("support", client, as_user("support")),
        ("nobody", client, {}),
    ]
    differ = []
    with principal_sessions():
        for route in _routes_with_ids():
            names = _id_params(route)
            for method in sorted(route.methods - {"HEAD"}):
                for who, caller, headers in callers:
                    # when it is called with ids that are not UUIDs, and with unknown UUIDs
                    bad = dict.fromkeys(names, "not-a-uuid")
                    unknown = {n: str(uuid.uuid4()) for n in names}
                    got = _answer(caller, method, route, bad, headers)
                    expected = _answer(caller, method, route, unknown, headers)
                    # then both answer alike (status, content, code, errors, redirect)
                    if got != expected:
                        differ.append(f"{method} {route.path} as {who}: {got} != {expected}")
    assert differ == [], "\n".join(differ)


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        ("GET", "/api/v1/members/abc", "member_not_found"),
        ("GET", "/api/v1/members/abc/balances", "member_not_found"),
        ("POST", "/api/v1/purchases/xyz/commit", "purchase_not_found"),
        ("POST", "/api/v1/purchases/xyz/cancel", "purchase_not_found"),
        ("GET", "/api/v1/purchases/1", "purchase_not_found"),
        ("GET", "/api/v1/webhooks/abc/deliveries", "webhook_not_found"),
        ("GET", "/api/v1/events/12345678-1234-1234-1234", "custom_event_not_found"),
    ],
)
def test_the_issues_examples_answer_404_with_the_resources_code(
    program: Database, client: TestClient, admin: dict[str, str], method: str, path: str, code: str
) -> None:
    # when a path carries an id that is not a UUID
    r = client.request(method, path, headers=admin)
    # then it is the resource's 404 problem, as for an id nobody has
    assert r.status_code == 404, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == code
    assert "errors" not in r.json()


def test_other_errors_of_the_request_still_answer_422(
    program: Database, client: TestClient, admin: dict[str, str]
) -> None:
    # when a return names a purchase that is not a UUID and has a bad body too
    r = client.post("/api/v1/purchases/xyz/returns", json={"lines": []}, headers=admin)
    # then the body's errors answer, as they do for an unknown purchase
    assert r.status_code == 422
    fields = sorted(e["field"] for e in r.json()["errors"])
    assert fields == ["external_id", "lines"]
