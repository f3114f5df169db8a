"""`kopilka demo`: an embedded database with a demo programme and members, then the server."""

from __future__ import annotations

import datetime as dt
import os
import random
import uuid
from decimal import Decimal
from importlib import resources

import typer
import uvicorn

from kopilka.challenges import service as challenges
from kopilka.core.config import get_settings, reset_settings_cache
from kopilka.core.db import get_db
from kopilka.core.errors import Problem
from kopilka.core.migrate import is_current, upgrade
from kopilka.core.principal import Principal
from kopilka.custom_events import service as custom_events
from kopilka.custom_events.schemas import EventIn
from kopilka.demo.keys import demo_keys, keys_file
from kopilka.members.queries import Member, active_joined, cards, count_members
from kopilka.members.schemas import Consents, MemberCreate
from kopilka.members.service import Enrolment, backdate, create_member
from kopilka.program.service import apply_program, parse_program
from kopilka.purchases import confirmation
from kopilka.purchases import returns as purchases
from kopilka.purchases.schemas import PurchaseIn, ReturnIn
from kopilka.referrals import service as referrals
from kopilka.referrals.service import release_due
from kopilka.reports.jobs import run_rollup
from kopilka.tiers.service import reevaluate
from kopilka.users.queries import user_by_email
from kopilka.users.service import create_user

FIRST_M = [
    "Александр",
    "Дмитрий",
    "Максим",
    "Сергей",
    "Андрей",
    "Алексей",
    "Иван",
    "Михаил",
    "Николай",
    "Павел",
    "Егор",
    "Артём",
    "Кирилл",
    "Роман",
    "Олег",
    "Владимир",
]
FIRST_F = [
    "Анна",
    "Мария",
    "Елена",
    "Ольга",
    "Наталья",
    "Татьяна",
    "Ирина",
    "Екатерина",
    "Светлана",
    "Юлия",
    "Дарья",
    "Алина",
    "Ксения",
    "Полина",
    "Виктория",
    "Софья",
]
LAST = [
    "Иванов",
    "Смирнов",
    "Кузнецов",
    "Попов",
    "Васильев",
    "Петров",
    "Соколов",
    "Михайлов",
    "Новиков",
    "Фёдоров",
    "Морозов",
    "Волков",
    "Алексеев",
    "Лебедев",
    "Семёнов",
    "Егоров",
    "Павлов",
    "Козлов",
    "Степанов",
    "Николаев",
    "Орлов",
    "Андреев",
    "Макаров",
    "Никитин",
]
TRANSLIT = str.maketrans(
    {
        "а": "a",
        "б": "b",
        "в": "v",
        "г": "g",
        "д": "d",
        "е": "e",
        "ё": "e",
        "ж": "zh",
        "з": "z",
        "и": "i",
        "й": "i",
        "к": "k",
        "л": "l",
        "м": "m",
        "н": "n",
        "о": "o",
        "п": "p",
        "р": "r",
        "с": "s",
        "т": "t",
        "у": "u",
        "ф": "f",
        "х": "h",
        "ц": "ts",
        "ч": "ch",
        "ш": "sh",
        "щ": "sch",
        "ъ": "",
        "ы": "y",
        "ь": "",
        "э": "e",
        "ю": "yu",
        "я": "ya",
    }
)
DEMO_USER = "admin@demo.kopilka.dev"
DEMO_PASSWORD = "kopilka-demo"  # noqa: S105 - printed for the demo on purpose


def demo_program_text() -> str:
    return resources.files("kopilka.demo").joinpath("program.yaml").read_text(encoding="utf-8")


def seed_members(count: int, seed: int = 42) -> int:
    """Create ``count`` members with plausible Russian names and mobile phones."""
    rng = random.Random(seed)
    made = 0
    with get_db().session() as session:
        for i in range(count):
            female = rng.random() < 0.55
            first = rng.choice(FIRST_F if female else FIRST_M)
            last = rng.choice(LAST) + ("а" if female else "")
            phone = f"+79{rng.randint(10, 99)}{rng.randint(1000000, 9999999)}"
            email = None
            if rng.random() < 0.6:
                local = f"{first.lower().translate(TRANSLIT)}.{last.lower().translate(TRANSLIT)}"
                email = f"{local}{i}@example.ru"
            birth = dt.date(rng.randint(1960, 2006), rng.randint(1, 12), rng.randint(1, 28))
            data = MemberCreate(
                phone=phone,
                email=email,
                name=f"{first} {last}",
                birth_date=birth,
                external_id=f"DEMO-{i + 1:05d}",
                consents=Consents(
                    email=email is not None and rng.random() < 0.7,
                    sms=rng.random() < 0.5,
                    push=False,
                ),
                consent_source="demo",
            )
            try:
                member = create_member(session, data, "RU")
                made += 1
            except Exception:
                session.rollback()
                continue
            # a few staff (the staff discount rule) and students, and a handful of members
            # with a personal discount agreed with the shop
            roll = rng.random()
            if roll < 0.03:
                member.tags = ["staff"]
            elif roll < 0.10:
                member.tags = ["student"]
            if rng.random() < 0.02:
                member.personal_discount = Decimal(rng.choice([3, 5, 7]))
            if made % 100 == 0:
                session.commit()
        session.commit()
    return made


CATALOGUE = [
    # sku, name, category, price, sold by weight
    ("MILK-1L", "Молоко 3,2 % 1 л", "dairy", "89.90", False),
    ("KEFIR-1L", "Кефир 1 л", "dairy", "94.50", False),
    ("CHEESE-RU", "Сыр Российский", "dairy", "899.00", True),
    ("BREAD-BORO", "Хлеб Бородинский", "bakery", "65.00", False),
    ("CROISSANT", "Круассан", "bakery", "129.00", False),
    ("COFFEE-250", "Кофе в зёрнах 250 г", "grocery", "450.00", False),
    ("TEA-100", "Чай чёрный 100 пак.", "grocery", "319.00", False),
    ("BUCKWHEAT", "Гречка 900 г", "grocery", "119.90", False),
    ("APPLES", "Яблоки Голден", "produce", "149.90", True),
    ("BANANAS", "Бананы", "produce", "139.00", True),
    ("LATTE", "Латте 0,4", "cafe", "240.00", False),
    ("CAPPUCCINO", "Капучино 0,3", "cafe", "210.00", False),
]
STORES = ["msk-01", "msk-02", "spb-01", "online"]
# How many times a usual basket a member buys: a few big spenders (office cafés, families
# stocking up) reach the demo's gold and platinum tiers.
BASKET_SCALES = (1,) * 12 + (10, 10, 25)


def seed_history(seed: int = 7, anonymous_share: float = 0.3) -> int:
    """Receipts over the last 120 days for the demo members (and anonymous ones), through
    the purchases service itself: earnings, some redemptions and returns, backdated
    enrolment dates. Returns the number of receipts."""
    rng = random.Random(seed)
    today = dt.datetime.now(dt.UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    with get_db().session() as session:
        members = cards(session)
    made = 0
    for member_id, card in members:
        visits = rng.choice([0, 1, 2, 3, 4, 5, 6, 8, 12])
        scale = rng.choice(BASKET_SCALES)
        if scale > 1:
            visits = max(visits, 6)
        joined = today - dt.timedelta(days=rng.randint(0, 120))
        with get_db().session() as session:
            backdate(session, member_id, joined)
            session.commit()
        days = sorted(rng.randint(0, max(0, (today - joined).days)) for _ in range(visits))
        for n, day in enumerate(days):
            when = joined + dt.timedelta(days=day, hours=rng.randint(-3, 8))
            made += _demo_receipt(rng, min(when, today), card, f"D-{member_id.hex}-{n}", scale)
    for n in range(int(made * anonymous_share)):
        when = today - dt.timedelta(days=rng.randint(0, 120), hours=rng.randint(0, 8))
        made += _demo_receipt(rng, when, None, f"A-{n}")

    with get_db().session() as session:
        reevaluate(session)  # members without receipts get the first level too
        session.commit()
    return made


def _demo_receipt(
    rng: random.Random, when: dt.datetime, card: str | None, ext: str, scale: int = 1
) -> int:
    lines = []
    for sku, name, category, price, by_weight in rng.sample(CATALOGUE, rng.randint(1, 6)):
        qty = (
            f"{rng.uniform(0.2, 1.5) * scale:.3f}"
            if by_weight
            else str(rng.choice([1, 1, 1, 2, 3]) * scale)
        )
        lines.append(
            {"sku": sku, "name": name, "category": category, "quantity": qty, "unit_price": price}
        )
    store = rng.choice(STORES)
    body: dict[str, object] = {
        "external_id": ext,
        "store": store,
        "channel": "online" if store == "online" else "pos",
        "occurred_at": when.isoformat(),
        "lines": lines,
    }
    if card is not None:
        body["member"] = {"card": card}
        if rng.random() < 0.25:
            body["redeem"] = {"currency": "BONUS", "amount": "max"}
    system = Principal(kind="system", id="demo", role="admin")
    with get_db().session() as session:
        try:
            _, p = confirmation.confirm(session, PurchaseIn.model_validate(body), system)
            session.commit()
        except Problem:  # e.g. a redemption the member can no longer afford
            session.rollback()
            return 0
        if card is not None and rng.random() < 0.05:
            ret = ReturnIn.model_validate(
                {"external_id": "R1", "lines": [{"line_no": 1, "quantity": lines[0]["quantity"]}]}
            )
            purchases.create_return(session, uuid.UUID(p["id"]), ret, system)
            session.commit()
    return 1


def seed_custom_events(seed: int = 11, share: float = 0.4) -> int:
    """Custom events for some of the demo members (clothes brought for recycling, jars
    returned, a completed profile, a check-in) over the last 120 days, through the custom
    events service itself. Returns the number of events recorded."""
    rng = random.Random(seed)
    today = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    system = Principal(kind="system", id="demo", role="admin")
    with get_db().session() as session:
        members = active_joined(session)
    made = 0
    for member_id, joined in members:
        if rng.random() >= share:
            continue
        events: list[tuple[str, dict[str, object]]] = [("profile_completed", {})]
        events += [
            ("clothes_recycled", {"kg": str(Decimal(rng.randint(3, 60)) / 10)})
            for _ in range(rng.randint(0, 4))
        ]
        events += [("jar_returned", {"jars": 1}) for _ in range(rng.randint(0, 3))]
        if rng.random() < 0.3:
            events.append(("event_checkin", {"event": "Эко-суббота"}))
        span = max(0, int((today - joined).total_seconds() // 3600))
        for n, (type_, properties) in enumerate(events):
            when = joined + dt.timedelta(hours=rng.randint(0, span))
            body = EventIn.model_validate(
                {
                    "member": {"id": str(member_id)},
                    "type": type_,
                    "external_id": f"DEMO-EV-{member_id.hex}-{n}",
                    "occurred_at": min(when, today).isoformat(),
                    "properties": properties,
                }
            )
            with get_db().session() as session:
                try:
                    custom_events.record_event(session, body, system)
                    session.commit()
                    made += 1
                except Problem:
                    session.rollback()
    return made


def seed_referrals(seed: int = 13, friends: int = 40) -> dict[str, int]:
    """Friends enrolled with demo members' referral codes over the last 60 days, in every
    state of the lifecycle (docs/referrals.md): joined and not bought yet, qualified (a
    receipt of 1000 ₽ or more still within its 14 days' hold), rewarded (the hold over),
    reversed (the qualifying receipt returned within the hold), rejected (the referrer's
    own mailbox written another way) and waiting for a review (a throwaway mailbox). All
    through the services a till and the worker use. Returns the referrals by status."""
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    system = Principal(kind="system", id="demo", role="admin")
    hold_days = 14  # the demo programme's
    with get_db().session() as session:
        referrers = list(cards(session))[:60]
    for n in range(friends):
        referrer_id, _ = rng.choice(referrers)
        roll = rng.random()
        joined = now - dt.timedelta(days=rng.randint(1, 60), hours=rng.randint(0, 12))
        if n == 2:  # bought five days ago and brought it back: reversed
            roll, joined = 0.25, now - dt.timedelta(days=6)
        email = f"friend{n}@example.ru"
        if n == 0:
            email = "friend0@mailinator.com"  # waits for a review
        with get_db().session() as session:
            referrer = session.get(Member, referrer_id)
            assert referrer is not None
            if n == 1:  # the referrer themself, their mailbox written another way: rejected
                referrer = next(
                    m for m in (session.get(Member, r) for r, _ in referrers) if m and m.email
                )
                local, _, domain = (referrer.email or "").partition("@")
                email = f"{local}+friend@{domain}"
            data = MemberCreate(
                phone=f"+7999{n:07d}",
                email=email,
                name=f"{rng.choice(FIRST_F)} {rng.choice(LAST)}а",
                referral_code=referrer.referral_code,
                consent_source="demo",
            )
            try:
                friend = create_member(
                    session, data, "RU", via=Enrolment(channel="pos", store="msk-01")
                )
            except Problem:
                session.rollback()
                continue
            backdate(session, friend.id, joined)
            referrals.backdate(session, friend.id, joined)
            session.commit()
            card = friend.card_number
        if roll < 0.2:
            continue  # joined, no receipt yet
        when = joined + dt.timedelta(days=rng.randint(0, 10), hours=rng.randint(1, 8))
        if n == 2:
            when = joined + dt.timedelta(days=1)
        body = {
            "external_id": f"REF-{n}",
            "store": rng.choice(STORES[:3]),
            "occurred_at": min(when, now - dt.timedelta(minutes=5)).isoformat(),
            "member": {"card": card},
            "lines": [
                {
                    "sku": "COFFEE-250",
                    "name": "Кофе в зёрнах 250 г",
                    "category": "grocery",
                    "quantity": "2",
                    "unit_price": "450.00",
                },
                {
                    "sku": "CHEESE-RU",
                    "name": "Сыр Российский",
                    "category": "dairy",
                    "quantity": "0.500",
                    "unit_price": "899.00",
                },
            ],
        }
        with get_db().session() as session:
            _, p = confirmation.confirm(session, PurchaseIn.model_validate(body), system)
            session.commit()
            if roll < 0.3 and when > now - dt.timedelta(days=hold_days):
                ret = ReturnIn.model_validate(
                    {"external_id": "R1", "lines": [{"line_no": 1, "quantity": "2"}]}
                )
                purchases.create_return(session, uuid.UUID(p["id"]), ret, system)
                session.commit()
    with get_db().session() as session:
        release_due(session, now)
    with get_db().session() as session:
        return referrals.count_by_status(session)


def run_demo(host: str, port: int, members: int, serve: bool) -> None:
    os.environ.setdefault("KOPILKA_DATABASE_URL", "sqlite:///kopilka-demo.db")

    reset_settings_cache()
    db = get_db()
    if not is_current(db.engine):  # the demo's own embedded database: migrated at once
        upgrade(db.engine)
    with db.session() as session:
        apply_program(session, parse_program(demo_program_text()), actor="demo")
        session.commit()
        have = count_members(session)
    if have == 0 and members:
        typer.echo(f"seeding {members} demo members …")
        seed_members(members)
        typer.echo(f"{seed_challenge_joins()} opt-ins to the demo's challenges")
        typer.echo("seeding their receipts of the last 120 days …")
        receipts = seed_history()
        typer.echo(f"{receipts} receipts recorded")
        typer.echo(f"{seed_custom_events()} custom events recorded (recycling, jars, check-ins)")
        counts = seed_referrals()
        typer.echo("referrals: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))

        run_rollup(full=True, settle_seconds=0)  # the dashboards have figures at once
    kept = keys_file(get_settings().database_url)
    with db.session() as session:
        if user_by_email(session, DEMO_USER) is None:
            create_user(session, DEMO_USER, "admin", DEMO_PASSWORD)
        keys = demo_keys(session, kept)
        session.commit()
    base = f"http://{host}:{port}"
    typer.echo(
        "\nKopilka demo is ready.\n"
        f"  Console:     {base}/admin   (sign in: {DEMO_USER} / {DEMO_PASSWORD})\n"
        f"  Member app:  {base}/app/   (a member's phone; the code is printed here)\n"
        f"  API:         {base}/api/v1   (docs: {base}/api/v1/docs)\n"
        f"  Health:      {base}/health/ready\n"
        f"  Till key (cashier, store msk-01): {keys['till']}\n"
        f"  Admin API key:\n{keys['admin']}\n"
        f"  (the same keys on every start; kept in {kept}, readable by you only)\n"
    )
    if serve:
        uvicorn.run(
            "kopilka.main:create_app",
            factory=True,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
        )


# --- challenges ---


def seed_challenge_joins(share: float = 0.35, seed: int = 22) -> int:
    """A share of the members opted in to each of the demo's opt-in challenges, 130 days
    ago (before the history's receipts), so that the history moves them. The number of
    opt-ins made."""
    rng = random.Random(seed)
    at = dt.datetime.now(dt.UTC) - dt.timedelta(days=130)
    made = 0
    with get_db().session() as session:
        setup = challenges.setup(session)
        codes = [c.code for c in setup.challenges if c.join == "opt_in"]
        for member in sorted(active_joined(session), key=lambda m: m.id):
            for code in codes:
                if rng.random() < share:
                    challenges.join(session, member.id, code, channel="demo", at=at)
                    made += 1
        session.commit()
    return made
