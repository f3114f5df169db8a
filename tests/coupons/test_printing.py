"""Printed codes scan back: a PDF sheet rendered to PNG (pdftoppm) and read by zbar."""

from __future__ import annotations

import datetime as dt
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from kopilka.core.db import Database
from kopilka.coupons import codes, printing
from kopilka.coupons.models import CouponPool
from tests.conftest import KeyFactory

PDFTOPPM = "/usr/bin/pdftoppm"
ZBARIMG = "/usr/bin/zbarimg"
DPI = 150


def _need_tools() -> None:
    for tool in (PDFTOPPM, ZBARIMG):
        if not Path(tool).exists():  # Debian: poppler-utils, zbar-tools
            pytest.fail(f"{tool} is needed to check printed codes", pytrace=False)


def _pages(pdf: bytes, tmp_path: Path) -> list[Image.Image]:
    (tmp_path / "sheet.pdf").write_bytes(pdf)
    subprocess.run(
        [PDFTOPPM, "-r", str(DPI), "-png", str(tmp_path / "sheet.pdf"), str(tmp_path / "page")],
        check=True,
    )
    return [Image.open(p) for p in sorted(tmp_path.glob("page-*.png"))]


def _scan(image: Image.Image, tmp_path: Path, name: str) -> list[str]:
    path = tmp_path / f"{name}.png"
    image.save(path)
    out = subprocess.run(
        [ZBARIMG, "-q", str(path)], capture_output=True, text=True, check=False
    ).stdout
    return [line for line in out.splitlines() if line]


def _cells(pdf: bytes, count: int, layout: printing.Layout, tmp_path: Path) -> list[list[str]]:
    """What a scanner reads from each cell, one coupon at a time as at a till."""
    scale = DPI / 72
    pages = _pages(pdf, tmp_path)
    _, page_h = printing.A4
    seen = []
    for k in range(count):
        page = pages[k // layout.per_page]
        x, y, w, h = layout.cell(k % layout.per_page)
        box = (
            round(x * scale),
            round((page_h - y - h) * scale),
            round((x + w) * scale),
            round((page_h - y) * scale),
        )
        seen.append(sorted(_scan(page.crop(box), tmp_path, f"cell{k}")))
    return seen


@pytest.mark.parametrize("symbology", ["qr", "code128", "both"])
def test_sheet_codes_scan_back(tmp_path: Path, symbology: str) -> None:
    _need_tools()
    # given 25 codes on sheets of 3 × 4 (three pages), with Cyrillic captions
    made = [c for c, _ in codes.generate(codes.Pattern("SPRING", 2, 4), 25)]
    items = [printing.SheetItem(c, "Скидка 10 % · до 2026-06-01") for c in made]
    pdf = printing.sheet_pdf(items, title="Весна", columns=3, rows=4, symbology=symbology)
    assert pdf.startswith(b"%PDF-")
    # when each printed coupon is scanned
    seen = _cells(pdf, len(made), printing.Layout(3, 4, titled=True), tmp_path)
    # then every symbol reads back as its own code
    expected = {
        "qr": lambda c: [f"QR-Code:{c}"],
        "code128": lambda c: [f"CODE-128:{c}"],
        "both": lambda c: [f"CODE-128:{c}", f"QR-Code:{c}"],
    }[symbology]
    assert seen == [expected(c) for c in made]


def test_sheet_endpoint(
    client: TestClient, admin: dict[str, str], program: Database, auth: KeyFactory, tmp_path: Path
) -> None:
    _need_tools()
    pool = client.post(
        "/api/v1/coupon-pools",
        json={
            "name": "Флаеры",
            "reward": {"kind": "fixed", "value": "150"},
            "valid_until": "2026-12-31T21:00:00Z",
        },
        headers=admin,
    ).json()
    client.post(f"/api/v1/coupon-pools/{pool['id']}/generate", json={"count": 10}, headers=admin)
    all_codes = [
        c["code"]
        for c in client.get(f"/api/v1/coupon-pools/{pool['id']}/codes", headers=admin).json()[
            "items"
        ]
    ]
    # the next 6 unused codes, then the rest from where the first sheet stopped
    r = client.post(
        f"/api/v1/coupon-pools/{pool['id']}/sheet.pdf",
        json={"limit": 6, "columns": 2, "rows": 3},
        headers=admin,
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/pdf"
    after = r.headers["kopilka-next-after"]
    seen = _cells(r.content, 6, printing.Layout(2, 3, titled=True), tmp_path)
    assert seen == [[f"QR-Code:{c}"] for c in all_codes[:6]]
    rest = client.post(
        f"/api/v1/coupon-pools/{pool['id']}/sheet.pdf",
        json={"after": int(after), "columns": 2, "rows": 3},
        headers=admin,
    )
    assert "kopilka-next-after" not in rest.headers
    (tmp_path / "rest").mkdir()
    seen = _cells(rest.content, 4, printing.Layout(2, 3, titled=True), tmp_path / "rest")
    assert seen == [[f"QR-Code:{c}"] for c in all_codes[6:]]
    # chosen codes; a code of no pool (or of another) is named
    picked = client.post(
        f"/api/v1/coupon-pools/{pool['id']}/sheet.pdf",
        json={"codes": [all_codes[3].lower(), "NOPE-2222-2222"]},
        headers=admin,
    )
    assert picked.status_code == 422
    assert [e["field"] for e in picked.json()["errors"]] == ["codes[1]"]
    assert (
        client.post(
            f"/api/v1/coupon-pools/{pool['id']}/sheet.pdf", json={}, headers=auth("analyst")
        ).status_code
        == 403
    )


def test_caption_names_the_reward() -> None:
    from kopilka.coupons.api import _caption

    pool = CouponPool(
        reward_kind="percent",
        reward_value=Decimal("15"),
        valid_until=dt.datetime(2026, 6, 1, tzinfo=dt.UTC),
        skus=[],
        categories=[],
    )
    assert _caption(pool, "ru") == "Скидка 15 % · до 2026-06-01"
    assert _caption(pool, "en") == "Discount 15 % · until 2026-06-01"
    pool.reward_kind, pool.reward_value, pool.reward_currency = "multiplier", Decimal(2), "BONUS"
    pool.valid_until = None
    assert _caption(pool, "en") == "×2 BONUS"
