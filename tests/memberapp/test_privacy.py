"""The member app's part of a member's rights: its devices in the export, and nothing of
the member left in its tables after erasure."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kopilka.core.db import Database
from kopilka.memberapp.models import AppLink, MemberDevice, PushSubscription, SignInCode
from tests.conftest import KeyFactory
from tests.memberapp.conftest import MemberFactory, sign_in_by_code
from tests.memberapp.test_push import Browser

pytestmark = pytest.mark.usefixtures("program")

SUBSCRIPTION = Browser.new().subscription("https://fcm.googleapis.com/fcm/send/erase-me")


def test_export_lists_devices_and_erasure_removes_them(
    client: TestClient,
    code_file: Path,
    make_member: MemberFactory,
    auth: KeyFactory,
    db: Database,
) -> None:
    # given a member signed in on a phone that subscribed to push, with an open app link
    member_id = make_member()
    signed = sign_in_by_code(client, code_file)
    assert (
        client.post(
            "/api/v1/app/push/subscriptions", json=SUBSCRIPTION, headers=signed.headers
        ).status_code
        == 201
    )
    admin = auth("admin")
    client.post(f"/api/v1/members/{member_id}/app-link", headers=admin)
    # when the member's data is exported
    export = client.get(f"/api/v1/members/{member_id}/export", headers=admin).json()
    # then the app's devices and subscriptions are in it
    app = export["other"]["member_app"]
    assert [d["id"] for d in app["devices"]] == [str(signed.device_id)]
    assert app["devices"][0]["revoked_at"] is None
    assert len(app["push_subscriptions"]) == 1
    # when the member is erased
    r = client.post(f"/api/v1/members/{member_id}/erase", headers=admin, json={})
    assert r.status_code == 200
    # then the app holds nothing about them any more and the phone is signed out
    with db.session() as s:
        for model in (MemberDevice, SignInCode, AppLink, PushSubscription):
            count = s.execute(
                select(func.count()).select_from(model).where(model.member_id == member_id)
            ).scalar_one()
            assert count == 0, model.__tablename__
    assert client.get("/api/v1/app/me").status_code == 401
