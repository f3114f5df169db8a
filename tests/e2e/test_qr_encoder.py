"""The app's own QR encoder (``static/qr.js``), run in Chromium: module for module the same
symbol as segno draws with the same mask, and readable by zbar.

One documented difference: when the data and its terminator end exactly on a codeword
boundary (every 16-digit card code does), segno adds a whole zero byte before the pad
codewords, which ISO/IEC 18004 (7.4.10) does not ask for; both symbols decode to the same
digits. Those inputs are checked by decoding with zbar instead of by comparison."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import segno
from PIL import Image

from tests.e2e.app_support import (  # noqa: F401 - fixtures
    ARGS,
    CHROMIUM,
    Driver,
    app_server,
    code_file,
    driver,
    zbar,
)

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("program")]


def _bits(n: int) -> int:
    return 14 + n // 3 * 10 + (0, 4, 7)[n % 3]


def _aligned(n: int) -> bool:
    """Does the bit stream with its 4-bit terminator end on a byte boundary?"""
    capacity = next(c for c in (128, 224, 352) if _bits(n) <= c)
    return (_bits(n) + min(4, capacity - _bits(n))) % 8 == 0


def _encode(
    driver: Driver,  # noqa: F811
    base: str,
    cases: list[tuple[str, int | None]],
) -> list[Any]:
    def run() -> list[Any]:
        browser = driver.playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{base}/app/offline")
            result: list[Any] = page.evaluate(
                """async (cases) => {
                    const qr = await import('/app/static/qr.js');
                    return cases.map(([digits, mask]) =>
                        qr.encodeNumeric(digits, mask === null ? {} : { mask }));
                }""",
                cases,
            )
            return result
        finally:
            browser.close()

    return driver.run(run)


def _png(rows: list[list[int]], path: Path, scale: int = 6, quiet: int = 4) -> Path:
    n = len(rows)
    image = Image.new("L", ((n + 2 * quiet) * scale,) * 2, 255)
    for r, row in enumerate(rows):
        for c, dark in enumerate(row):
            if dark:
                x, y = (c + quiet) * scale, (r + quiet) * scale
                image.paste(0, (x, y, x + scale, y + scale))
    image.save(path)
    return path


def test_the_encoder_draws_segnos_symbol_for_every_mask(
    app_server: str,  # noqa: F811
    driver: Driver,  # noqa: F811
) -> None:
    # given numeric inputs of every version this encoder makes (1 to 3, level M)
    rng = random.Random(20261124)
    lengths = [n for n in range(1, 102) if not _aligned(n)]
    inputs = ["".join(rng.choice("0123456789") for _ in range(n)) for n in lengths[::3]]
    cases: list[tuple[str, int | None]] = [(d, m) for d in inputs for m in range(8)]
    # when the app's encoder draws them with each mask
    drawn = _encode(driver, app_server, cases)
    # then every module is the one segno draws with that mask
    for (digits, mask), qr in zip(cases, drawn, strict=True):
        reference = segno.make(digits, error="m", mask=mask, micro=False, boost_error=False)
        assert qr["version"] == reference.version, digits
        assert qr["rows"] == [list(row) for row in reference.matrix], (digits, mask)


def test_card_codes_read_back_with_zbar_for_every_mask(
    app_server: str,  # noqa: F811
    driver: Driver,  # noqa: F811
    tmp_path: Path,
) -> None:
    # given 16-digit card codes (and other inputs that end on a codeword boundary)
    rng = random.Random(7)
    codes = ["".join(rng.choice("0123456789") for _ in range(16)) for _ in range(6)]
    codes += ["0000000000000000", "9999999999999999", "0" * 34, "1" * 64]
    cases: list[tuple[str, int | None]] = [(d, m) for d in codes for m in (*range(8), None)]
    # when the app's encoder draws them with each mask, and with the mask it chooses
    drawn = _encode(driver, app_server, cases)
    # then zbar reads each symbol back as its digits
    for i, ((digits, mask), qr) in enumerate(zip(cases, drawn, strict=True)):
        assert zbar(_png(qr["rows"], tmp_path / f"{i}.png")) == [digits], (digits, mask)
    # and the mask it chooses is one with the lowest penalty of the eight (ISO 7.8.3)
    for k in range(0, len(cases), 9):
        forced, chosen = drawn[k : k + 8], drawn[k + 8]
        assert chosen["penalty"] == min(q["penalty"] for q in forced)
        assert chosen["rows"] == forced[chosen["mask"]]["rows"]
