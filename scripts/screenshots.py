"""Phone-size screenshots of the member app for the README (``docs/screenshots/app-*.png``).

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

It makes a throw-away SQLite database with the demo programme, one member with a few
receipts, serves Kopilka on a free local port, signs a headless Chromium (Debian's
``/usr/bin/chromium``) in through a one-time app link, and photographs the screens in
English and Russian.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("KOPILKA_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _seed() -> tuple[str, str]:
    """The demo programme, one member with receipts; ``(member id, app link token)``."""
    import datetime as dt
    from decimal import Decimal

    from kopilka.adjustments.service import post as adjust
    from kopilka.core.db import get_db
    from kopilka.core.principal import Principal
    from kopilka.demo.seed import demo_program_text
    from kopilka.memberapp.service import issue_app_link
    from kopilka.members.schemas import MemberCreate
    from kopilka.members.service import create_member
    from kopilka.program.service import apply_program, parse_program
    from kopilka.purchases import confirmation
    from kopilka.purchases.schemas import PurchaseIn

    db = get_db()
    with db.session() as s:
        apply_program(s, parse_program(demo_program_text()), actor="screenshots")
        member = create_member(
            s,
            MemberCreate(phone="+79161234567", email="olga@example.ru", name="Ольга Смирнова"),
            "RU",
        )
        s.flush()
        adjust(
            s,
            member_id=member.id,
            currency="BONUS",
            amount=Decimal("500.00"),
            reason="Welcome bonus",
            actor="screenshots",
            key="welcome",
        )
        s.commit()
        member_id, card = member.id, member.card_number
    system = Principal(kind="system", id="screenshots", role="admin")
    now = dt.datetime.now(dt.UTC)
    receipts = [
        (40, [("LATTE", "Латте 0,4", "240.00", "2"), ("CROISSANT", "Круассан", "129.00", "2")]),
        (20, [("COFFEE-250", "Кофе в зёрнах 250 г", "450.00", "1")]),
        (3, [("MILK-1L", "Молоко 3,2 % 1 л", "89.90", "2"), ("BREAD-BORO", "Хлеб", "65.00", "1")]),
    ]
    for i, (days_ago, lines) in enumerate(receipts):
        body = {
            "external_id": f"S-{i + 1}",
            "store": "msk-01",
            "channel": "pos",
            "member": {"card": card},
            "occurred_at": (now - dt.timedelta(days=days_ago)).isoformat(),
            "lines": [
                {"sku": sku, "name": name, "quantity": qty, "unit_price": price}
                for sku, name, price, qty in lines
            ],
        }
        if i == 1:
            body["redeem"] = {"currency": "BONUS", "amount": "200"}
        with db.session() as s:
            confirmation.confirm(s, PurchaseIn.model_validate(body), system)
            s.commit()
    with db.session() as s:
        url, _ = issue_app_link(s, member_id, "screenshots", "http://x")
        s.commit()
    return str(member_id), url.split("#", 1)[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    out = Path(parser.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="kopilka-shots-"))
    os.environ["KOPILKA_DATABASE_URL"] = f"sqlite:///{work / 'shots.db'}"
    os.environ["KOPILKA_EMBEDDED_WORKER"] = "false"
    os.environ["KOPILKA_LOG_LEVEL"] = "WARNING"

    import uvicorn
    from playwright.sync_api import expect, sync_playwright

    from kopilka.core.db import get_db
    from kopilka.core.migrate import upgrade
    from kopilka.main import create_app

    upgrade(get_db().engine)
    _, token = _seed()
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                str(work / "profile"),
                executable_path=CHROMIUM,
                args=ARGS,
                headless=True,
                locale="ru-RU",
                viewport={"width": 390, "height": 844},
                device_scale_factor=2,
            )
            page = context.pages[0] if context.pages else context.new_page()
            page.goto(f"{base}/app/sign-in")
            page.screenshot(path=str(out / "app-sign-in.png"))
            page.goto(f"{base}/app/link#{token}")
            page.wait_for_url(f"{base}/app/")
            expect(page.get_by_test_id("card-code")).to_have_text(re.compile(r"^\d{16}$"))
            page.screenshot(path=str(out / "app-card.png"))
            page.goto(f"{base}/app/history")
            page.screenshot(path=str(out / "app-history.png"))
            page.goto(f"{base}/app/profile")
            page.screenshot(path=str(out / "app-profile.png"))
            page.goto(f"{base}/app/lang/en?next=/app/")
            expect(page.get_by_test_id("card-code")).to_have_text(re.compile(r"^\d{16}$"))
            page.screenshot(path=str(out / "app-card-en.png"))
            context.close()
    finally:
        server.should_exit = True
    for name in sorted(out.glob("app-*.png")):
        print(name.relative_to(ROOT) if name.is_relative_to(ROOT) else name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
