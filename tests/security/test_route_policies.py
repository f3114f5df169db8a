"""Every API route declares who may call it, and the declaration is what happens.

The decision is read from the routes themselves (declared with ``kopilka.core.auth``, read
by ``kopilka.security.policy``), so routes other parts add are checked the moment they are
mounted: a route under /api/v1 without a policy fails here, and so does one whose answers
disagree with its policy.
"""

from __future__ import annotations

import re
import typing
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kopilka.cli.security import MATRIX_BEGIN, MATRIX_END, current_matrix
from kopilka.core.auth import ALL_ROLES, Policy
from kopilka.main import create_app
from kopilka.security.policy import policy_of, route_infos
from tests.conftest import KeyFactory
from tests.security.principals import as_member, as_system, as_user, principal_sessions

pytestmark = pytest.mark.usefixtures("program")

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"
KEY_ROLES = ("admin", "manager", "analyst", "cashier", "partner")
PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


def test_every_api_route_declares_a_policy() -> None:
    # given the application as served
    routes = route_infos(create_app().routes)
    # then every route under /api/v1 has exactly one decision about who may call it
    assert len(routes) > 10
    missing = sorted(f"{sorted(r.methods)} {r.path}" for r in routes if policy_of(r) is None)
    assert missing == [], (
        "these routes decide nobody's access; add Depends(require(...)) from "
        "kopilka.core.auth (or kopilka.core.auth.public(reason)): " + ", ".join(missing)
    )


def test_the_documented_matrix_is_current() -> None:
    # given docs/security.md with the matrix between its markers
    text = DOC.read_text(encoding="utf-8")
    documented = text[text.index(MATRIX_BEGIN) + len(MATRIX_BEGIN) : text.index(MATRIX_END)]
    # then it is the matrix the routes declare
    assert documented.strip() == current_matrix().strip(), (
        "the permission matrix in docs/security.md is stale: run "
        "`kopilka security matrix --write docs/security.md`"
    )


def _param_value(name: str, annotation: object, member_id: str) -> str:
    if name == "member_id":
        return member_id
    if annotation in (uuid.UUID, typing.Optional[uuid.UUID]):  # noqa: UP045
        return str(uuid.uuid4())
    if annotation is int:
        return "1"
    return "x-test"


def _url(route: object, member_id: str) -> str:
    dependant = route.dependant  # type: ignore[attr-defined]
    kinds = {p.name: p.field_info.annotation for p in dependant.path_params}
    return PARAM.sub(
        lambda m: _param_value(m.group(1), kinds.get(m.group(1)), member_id),
        route.path,  # type: ignore[attr-defined]
    )


def _call(client: TestClient, method: str, url: str, headers: dict[str, str]) -> int:
    body = {} if method in ("POST", "PUT", "PATCH") else None
    return client.request(method, url, json=body, headers=headers).status_code


def test_each_role_meets_each_route_as_declared(client: TestClient, auth: KeyFactory) -> None:
    # given a member, a key of every API-key role, and console, member and system callers
    admin = auth("admin")
    member = client.post("/api/v1/members", json={"phone": "+79160000001"}, headers=admin)
    member_id = member.json()["id"]
    callers: dict[str, dict[str, str]] = {role: auth(role) for role in KEY_ROLES}
    callers["support"] = as_user("support")
    callers["member"] = as_member(member_id)
    callers["system"] = as_system()
    assert set(callers) == set(ALL_ROLES)
    routes = route_infos(client.app.routes)  # type: ignore[attr-defined]
    # the erasure last, so the member is there for every other route
    routes.sort(key=lambda r: r.path.endswith("/erase"))
    wrong: list[str] = []
    with principal_sessions():
        for route in routes:
            policy = policy_of(route)
            assert isinstance(policy, Policy), route.path
            for method in sorted(route.methods - {"HEAD"}):
                url = _url(route, member_id)
                # when it is called without credentials
                status = _call(client, method, url, {})
                # then it answers 401 unless it is public
                if not policy.public and status != 401:
                    wrong.append(f"{method} {route.path} anonymous: {status}, expected 401")
                for role, headers in callers.items():
                    # when each role calls it
                    status = _call(client, method, url, headers)
                    allowed = policy.allows(role)
                    # then a role outside is refused with 403, a role inside is not
                    if not allowed and status != 403:
                        wrong.append(f"{method} {route.path} as {role}: {status}, expected 403")
                    if allowed and status in (401, 403):
                        wrong.append(f"{method} {route.path} as {role}: {status}, allowed")
    assert wrong == []


def test_a_member_reaches_only_their_own_data(client: TestClient, admin: dict[str, str]) -> None:
    # given two members
    a = client.post("/api/v1/members", json={"phone": "+79160000001"}, headers=admin).json()
    b = client.post("/api/v1/members", json={"phone": "+79160000002"}, headers=admin).json()
    with principal_sessions():
        # when member A reads their own profile, consents and export
        own = client.get(f"/api/v1/members/{a['id']}", headers=as_member(a["id"]))
        own_export = client.get(f"/api/v1/members/{a['id']}/export", headers=as_member(a["id"]))
        # then they get them
        assert own.status_code == 200 and own.json()["phone"] == "+79160000001"
        assert own_export.status_code == 200
        # when member A asks for member B's data or tries to change B's consents
        for method, path in (
            ("GET", f"/api/v1/members/{b['id']}"),
            ("GET", f"/api/v1/members/{b['id']}/export"),
            ("GET", f"/api/v1/members/{b['id']}/consents"),
            ("POST", f"/api/v1/members/{b['id']}/consents"),
        ):
            r = client.request(
                method,
                path,
                json={"sms": True, "source": "app", "text_version": "v1"},
                headers=as_member(a["id"]),
            )
            # then it is refused and nothing of B is shown
            assert r.status_code == 403, path
            assert r.json()["code"] == "forbidden"
            assert "+79160000002" not in r.text
        # and a member cannot list or search members at all
        r = client.get("/api/v1/members?phone=%2B79160000002", headers=as_member(a["id"]))
        assert r.status_code == 403
    consents = client.get(f"/api/v1/members/{b['id']}/consents", headers=admin).json()
    assert consents["history"] == []
