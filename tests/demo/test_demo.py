"""The demo: members with history recorded through the real services, and its API keys.

Regression (issue 19): every start of the demo made two more API keys and printed neither
the console's nor the member app's address."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from kopilka.apikeys.models import ApiKey
from kopilka.apikeys.service import create_key, revoke_key, rotate_key, valid_key
from kopilka.core.db import Database
from kopilka.demo.keys import demo_keys
from kopilka.demo.seed import demo_program_text, seed_history, seed_members
from kopilka.ledger.models import Entry
from kopilka.ledger.verify import verify
from kopilka.program.service import apply_program, parse_program
from kopilka.purchases.models import Purchase
from kopilka.rules.models import PurchaseRule


def test_demo_seed_makes_a_consistent_history(db: Database) -> None:
    with db.session() as s:
        apply_program(s, parse_program(demo_program_text()), actor="test")
        s.commit()
    assert seed_members(40) == 40
    receipts = seed_history()
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Purchase)) == receipts
        anonymous = s.scalar(
            select(func.count()).select_from(Purchase).where(Purchase.member_id.is_(None))
        )
        assert 0 < anonymous < receipts
        kinds = set(s.scalars(select(Entry.kind).distinct()))
        assert {"earn", "redeem"} <= kinds
        # the demo programme's rules show their effects in the history
        fired = set(s.scalars(select(PurchaseRule.rule_key).distinct()))
        assert {
            "base-earn",
            "bakery-bonus",
            "dairy-weekend-x2",
            "cafe-stickers",
            "welcome-gift",
        } <= fired
        assert verify(s, stop_at_first=False) == []


# ------------------------------------------------------------------ the demo's API keys


def _live(db: Database) -> list[tuple[str, str, str | None]]:
    with db.session() as s:
        rows = s.execute(
            select(ApiKey.name, ApiKey.role, ApiKey.store_code)
            .where(ApiKey.revoked_at.is_(None))
            .order_by(ApiKey.name)
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def _keys(db: Database, path: Path) -> dict[str, str]:
    with db.session() as s:
        keys = demo_keys(s, path)
        s.commit()
    return keys


DEMO_LIVE = [("demo", "admin", None), ("demo till msk-01", "cashier", "msk-01")]


def test_the_demo_keys_are_kept_in_a_private_file_and_shown_again(
    db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "kopilka-demo.db.keys"
    # when the demo makes its keys, and then starts again
    first = _keys(db, path)
    again = _keys(db, path)
    # then it shows the same two keys, which the database takes for what they claim
    assert again == first
    assert set(first) == {"admin", "till"}
    with db.session() as s:
        admin, till = valid_key(s, first["admin"]), valid_key(s, first["till"])
        assert admin is not None and (admin.role, admin.store_code) == ("admin", None)
        assert till is not None and (till.role, till.store_code) == ("cashier", "msk-01")
        assert s.scalar(select(func.count()).select_from(ApiKey)) == 2
    # and the file holding them is readable by its owner only
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == first


def test_a_demo_key_the_database_no_longer_takes_is_replaced_not_added_to(
    db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "kopilka-demo.db.keys"
    first = _keys(db, path)
    # given the admin key revoked, and the file left readable by others
    with db.session() as s:
        row = valid_key(s, first["admin"])
        assert row is not None
        revoke_key(s, row.id)
        s.commit()
    path.chmod(0o644)
    # when the demo starts again
    second = _keys(db, path)
    # then the admin key is a new one, the till key the same, and one of each is live
    assert second["admin"] != first["admin"] and second["till"] == first["till"]
    assert _live(db) == DEMO_LIVE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # when the file is lost (or holds keys of another database) and the demo starts again
    path.write_text('{"admin": "kop_000000000000_nope", "till": 42}')
    third = _keys(db, path)
    # then both keys are new and the ones nobody can be shown again are revoked
    assert not set(third.values()) & set(second.values())
    assert _live(db) == DEMO_LIVE
    # when a key is swapped into the wrong slot, or was rotated
    path.write_text(json.dumps({"admin": third["till"], "till": third["till"]}))
    with db.session() as s:
        row = valid_key(s, third["till"])
        assert row is not None
        successor, _ = rotate_key(s, row.id, actor="user:someone")
        s.commit()
    fourth = _keys(db, path)
    # then neither is shown: a cashier key is no admin key, a rotated key is on its way out;
    # the successor is whoever rotated it's, and left alone
    assert fourth["admin"] not in (third["admin"], third["till"])
    assert fourth["till"] != third["till"]
    assert _live(db) == [*DEMO_LIVE, DEMO_LIVE[1]]
    with db.session() as s:
        assert s.get(ApiKey, successor.id).revoked_at is None  # type: ignore[union-attr]


def test_the_keys_earlier_demos_piled_up_are_revoked_and_nobody_elses(
    db: Database, tmp_path: Path
) -> None:
    # given a database where earlier demos made two keys on every start (without saying who
    # made them), and a key of the same name someone made through the API
    with db.session() as s:
        for _ in range(3):
            create_key(s, "demo", "admin")
            create_key(s, "demo till msk-01", "cashier", store="msk-01")
        create_key(s, "demo", "admin", created_by="user:someone")
        s.commit()
    # when the demo starts
    _keys(db, tmp_path / "kopilka-demo.db.keys")
    # then of the demo's keys one of each kind is live, and the other one is left alone
    assert _live(db) == [("demo", "admin", None), *DEMO_LIVE]


def _demo(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOPILKA_")}
    env["KOPILKA_ENVIRONMENT"] = "test"
    return subprocess.run(
        [sys.executable, "-m", "kopilka", "demo", "--no-serve", "--members", "0", "--port", "8011"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_restarted_demo_prints_its_urls_and_the_same_keys(tmp_path: Path) -> None:
    # when `kopilka demo` is started twice in the same folder (its SQLite database there)
    first, again = _demo(tmp_path), _demo(tmp_path)
    assert first.returncode == 0, first.stderr
    assert again.returncode == 0, again.stderr
    # then both times it prints the console's and the member app's addresses and a login
    for out in (first.stdout, again.stdout):
        assert "  Console:     http://127.0.0.1:8011/admin   (sign in: " in out
        assert "  Member app:  http://127.0.0.1:8011/app/" in out
        assert "  API:         http://127.0.0.1:8011/api/v1" in out
    # and the same two keys, kept beside the database, with no more keys in it
    keys = re.findall(r"kop_[0-9a-f]{12}_[A-Za-z0-9_-]+", first.stdout)
    assert len(keys) == 2
    assert re.findall(r"kop_[0-9a-f]{12}_[A-Za-z0-9_-]+", again.stdout) == keys
    kept = tmp_path / "kopilka-demo.db.keys"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert sorted(json.loads(kept.read_text()).values()) == sorted(keys)
    with sqlite3.connect(tmp_path / "kopilka-demo.db") as conn:
        assert conn.execute("SELECT count(*) FROM api_keys").fetchone() == (2,)
