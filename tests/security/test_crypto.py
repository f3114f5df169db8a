"""Personal data at rest: AES-GCM with a key ring, blind indexes, rotation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, text
from typer.testing import CliRunner

from kopilka.cli import app as cli
from kopilka.core.config import Settings, reset_settings_cache
from kopilka.core.db import Database
from kopilka.members.models import Member
from kopilka.security import crypto, rotation

K1 = crypto.generate_key()
K2 = crypto.generate_key()
IDX1 = crypto.generate_key()
IDX2 = crypto.generate_key()


def ring(data: str, index: str | None = None) -> crypto.KeyRing:
    return crypto.KeyRing.from_settings(Settings(data_keys=data, index_key=index))


@given(st.text(max_size=300))
def test_round_trip_of_any_text(value: str) -> None:
    r = ring(f"k1:{K1}")
    token = crypto.encrypt(value, "members.name", r)
    assert token.startswith("v1.k1.")
    assert crypto.decrypt(token, "members.name", r) == value


def test_each_encryption_differs_and_hides_the_value() -> None:
    r = ring(f"k1:{K1}")
    a = crypto.encrypt("+79161234567", "members.phone", r)
    b = crypto.encrypt("+79161234567", "members.phone", r)
    assert a != b
    assert "79161234567" not in a


def test_a_value_does_not_open_in_another_column_or_after_tampering() -> None:
    r = ring(f"k1:{K1}")
    token = crypto.encrypt("ivan@example.com", "members.email", r)
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(token, "members.name", r)
    head, body = token.rsplit(".", 1)
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(f"{head}.{flipped}", "members.email", r)


def test_old_keys_read_the_first_key_writes() -> None:
    old = ring(f"k1:{K1}")
    token = crypto.encrypt("Иван", "members.name", old)
    new = ring(f"k2:{K2},k1:{K1}")
    assert crypto.decrypt(token, "members.name", new) == "Иван"
    assert crypto.key_id_of(crypto.encrypt("x", "c", new)) == "k2"
    with pytest.raises(crypto.DecryptionError, match="not in KOPILKA_DATA_KEYS"):
        crypto.decrypt(token, "members.name", ring(f"k2:{K2}"))


@pytest.mark.parametrize(
    "setting",
    ["", "k1", f"k1:{K1},k1:{K2}", "k1:short", f"bad id!:{K1}", "k1:***"],
)
def test_bad_key_rings_are_refused(setting: str) -> None:
    with pytest.raises(ValueError):
        crypto.parse_key_ring(setting)


def test_production_refuses_the_development_keys() -> None:
    strong = "x" * 40
    with pytest.raises(ValueError, match="KOPILKA_DATA_KEYS"):
        Settings(environment="production", secret_key=strong)
    ok = Settings(
        environment="production",
        secret_key=strong,
        data_keys=f"k1:{K1}",
        index_key=IDX1,
        member_code_channel="file",
    )
    assert not crypto.KeyRing.from_settings(ok).development
    assert crypto.KeyRing.from_settings(Settings()).development


def test_production_refuses_the_console_code_channel() -> None:
    # the console channel prints members' phones and sign-in codes to the server's log
    keys = {"secret_key": "x" * 40, "data_keys": f"k1:{K1}", "index_key": IDX1}
    with pytest.raises(ValueError, match="KOPILKA_MEMBER_CODE_CHANNEL"):
        Settings(environment="production", **keys)
    assert Settings(environment="production", member_code_channel="file", **keys)
    assert Settings(environment="development", **keys).member_code_channel == "console"


def test_blind_indexes_match_equal_normalised_values_only() -> None:
    r = ring(f"k1:{K1}", IDX1)
    assert crypto.blind_index("email", " Ivan@Example.com", r) == crypto.blind_index(
        "email", "ivan@example.com", r
    )
    assert crypto.blind_index("name", "Иван  ПЕТРОВ", r) == crypto.blind_index(
        "name", "иван петров", r
    )
    assert crypto.blind_index("phone", "+7916", r) != crypto.blind_index("card", "+7916", r)
    assert crypto.blind_index("phone", "+7916", r) != crypto.blind_index(
        "phone", "+7916", ring(f"k1:{K1}", IDX2)
    )


def test_encrypted_columns_refuse_comparisons() -> None:
    with pytest.raises(TypeError, match="blind index"):
        select(Member).where(Member.phone == "+79161234567")
    select(Member).where(Member.phone.is_(None))  # still fine


@pytest.fixture
def keys_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    yield monkeypatch
    monkeypatch.delenv("KOPILKA_DATA_KEYS", raising=False)
    monkeypatch.delenv("KOPILKA_INDEX_KEY", raising=False)
    reset_settings_cache()


def _raw_tokens(db: Database) -> list[str]:
    with db.engine.connect() as c:
        rows = c.execute(
            text("SELECT card_number_enc, phone_enc, name_enc, birth_date_enc FROM members")
        ).all()
    return [v for row in rows for v in row if v is not None]


def test_rotation_sees_every_sealed_table_and_refuses_without_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given the tables wiring handed over, then every table with sealed columns is found
    names = {t.name for t in rotation.sealed_tables()}
    assert {"members", "users", "member_devices", "push_subscriptions"} <= names
    # when wiring did not hand them over, then rotation refuses rather than skip a table
    monkeypatch.setattr(rotation, "_metadata", [])
    with pytest.raises(RuntimeError, match="wire"):
        rotation.sealed_tables()


def test_rotate_data_moves_every_value_to_the_new_key(
    db: Database, keys_env: pytest.MonkeyPatch
) -> None:
    # given members stored under key k1 and index key 1
    keys_env.setenv("KOPILKA_DATA_KEYS", f"k1:{K1}")
    keys_env.setenv("KOPILKA_INDEX_KEY", IDX1)
    reset_settings_cache()
    with db.session() as s:
        for i in range(7):
            s.add(
                Member(
                    card_number=f"770000000{i:04d}",
                    phone=f"+7916000000{i}",
                    name=f"Member {i}",
                    birth_date=dt.date(1990, 1, 1 + i),
                    referral_code=f"REF{i}AAAA",
                )
            )
        s.commit()
    assert {crypto.key_id_of(t) for t in _raw_tokens(db)} == {"k1"}
    # when k2 is put first and the index key changes, and the data is rotated in batches
    keys_env.setenv("KOPILKA_DATA_KEYS", f"k2:{K2},k1:{K1}")
    keys_env.setenv("KOPILKA_INDEX_KEY", IDX2)
    reset_settings_cache()
    report = rotation.rotate(db.engine, batch=3)
    # then every value is under k2, indexes follow the new key, and k1 can go
    assert report.rows["members"] == 7 and report.reencrypted["members"] == 28
    assert report.reindexed["members"] == 21
    assert {crypto.key_id_of(t) for t in _raw_tokens(db)} == {"k2"}
    keys_env.setenv("KOPILKA_DATA_KEYS", f"k2:{K2}")
    reset_settings_cache()
    with db.session() as s:
        m = s.scalars(
            select(Member).where(Member.phone_index == crypto.blind_index("phone", "+79160000003"))
        ).one()
        assert (m.name, m.birth_date) == ("Member 3", dt.date(1990, 1, 4))
    # and running it again changes nothing
    again = rotation.rotate(db.engine)
    assert sum(again.reencrypted.values()) == 0 and sum(again.reindexed.values()) == 0


def test_keys_commands(db: Database) -> None:
    runner = CliRunner()
    generated = runner.invoke(cli, ["keys", "generate", "--id", "k7"])
    assert generated.exit_code == 0
    lines = generated.output.splitlines()
    assert lines[0].startswith("KOPILKA_DATA_KEYS=k7:") and lines[1].startswith(
        "KOPILKA_INDEX_KEY="
    )
    crypto.parse_key_ring(lines[0].split("=", 1)[1])
    with db.session() as s:
        s.add(Member(card_number="7700000000017", referral_code="ABCDEFGH"))
        s.commit()
    status = runner.invoke(cli, ["keys", "status"])
    assert status.exit_code == 0, status.output
    assert "members: dev=1" in status.output
    rotated = runner.invoke(cli, ["keys", "rotate-data", "--all"])
    assert rotated.exit_code == 0, rotated.output
    assert "members: 1 rows, 1 values re-encrypted with key dev" in rotated.output
