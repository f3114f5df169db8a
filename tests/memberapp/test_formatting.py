"""Pure pieces of the app: amounts and dates by locale, notification words, brand colours,
the EAN-13 barcode of the card, the language choice."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kopilka.memberapp import formatting, notices
from kopilka.memberapp.lang import pick_lang
from kopilka.program.service import parse_program
from kopilka.web.app import branding, codes, i18n
from tests.conftest import TEST_PROGRAM

SPEC = parse_program(TEST_PROGRAM)
AT = dt.datetime(2026, 11, 24, 10, 5, tzinfo=dt.UTC)  # 13:05 in Moscow


@pytest.mark.parametrize(
    ("amount", "precision", "lang", "signed", "expected"),
    [
        ("1234.5", 2, "ru", False, "1\xa0234,50"),
        ("1234.5", 2, "en", False, "1,234.50"),
        ("15.74", 2, "en", True, "+15.74"),
        ("-314.90", 2, "ru", True, "\u2212314,90"),
        ("0", 2, "en", True, "0.00"),
        ("7", 0, "ru", False, "7"),
        ("1000000.1234", 4, "en", False, "1,000,000.1234"),
    ],
)
def test_points_keep_their_precision_and_sign(
    amount: str, precision: int, lang: str, signed: bool, expected: str
) -> None:
    assert formatting.points(Decimal(amount), precision, lang, signed=signed) == expected


@given(
    units=st.integers(min_value=-(10**13), max_value=10**13),
    precision=st.integers(min_value=0, max_value=4),
    lang=st.sampled_from(["en", "ru"]),
)
def test_a_formatted_amount_reads_back_exactly(units: int, precision: int, lang: str) -> None:
    # given any amount exact to the currency's precision
    amount = Decimal(units).scaleb(-precision)
    # when it is written the local way and read back (separators and minus undone)
    text = formatting.points(amount, precision, lang)
    group, decimal = ("\xa0", ",") if lang == "ru" else (",", ".")
    plain = text.replace(group, "").replace(decimal, ".").replace(formatting.MINUS, "-")
    # then nothing was rounded, and exactly `precision` places are shown
    assert Decimal(plain) == amount
    assert len(plain.partition(".")[2]) == precision


def test_money_and_moments_by_locale() -> None:
    assert formatting.money(Decimal("1234.5"), "RUB", "ru") == "1\xa0234,50\xa0₽"
    # a symbol of letters stands apart from the digits (CLDR currency spacing), a sign does not
    assert formatting.money(Decimal("500"), "RUB", "en") == "RUB\xa0500.00"
    assert formatting.money(Decimal("-5"), "RUB", "en") == "\u2212RUB\xa05.00"
    assert formatting.money(Decimal("500"), "USD", "en") == "$500.00"
    assert formatting.money(Decimal("500"), "USD", "ru") == "500,00\xa0$"
    assert formatting.moment(AT, "Europe/Moscow", "ru") == "24 нояб. 2026\u202fг., 13:05"
    assert formatting.moment(AT, "Europe/Moscow", "en") == "Nov 24, 2026, 1:05\u202fPM"
    # "as of" says only the time when it was today in the programme's zone
    assert formatting.as_of(AT, "Europe/Moscow", "ru", AT + dt.timedelta(hours=2)) == "13:05"
    assert formatting.as_of(AT, "Europe/Moscow", "ru", AT + dt.timedelta(days=1)) == (
        "24 нояб. 2026\u202fг., 13:05"
    )


def test_notification_words_per_event_and_language() -> None:
    earned = {"currency": "BONUS", "amount": "15.74", "purchase_id": "p1", "available_at": None}
    assert notices.message_for("points.earned", earned, SPEC, "ru", AT) == {
        "title": "+15,74 Бонусные рубли",
        "body": "Начислено за покупку. Спасибо!",
        "url": "/app/history",
        "tag": "earned-p1",
    }
    pending = {**earned, "available_at": (AT + dt.timedelta(days=14)).isoformat()}
    assert notices.message_for("points.earned", pending, SPEC, "en", AT)["body"] == (  # type: ignore[index]
        "Earned for your purchase; yours to spend from Dec 8, 2026."
    )
    expiring = {"currency": "BONUS", "amount": "20", "expires_at": "2026-12-01T21:00:00+00:00"}
    assert notices.message_for("points.expiring", expiring, SPEC, "ru", AT) == {
        "title": "Скоро сгорят баллы",
        "body": "20,00 Бонусные рубли сгорят 2 дек. 2026\u202fг. — успейте потратить.",
        "url": "/app/",
        "tag": "expiring-BONUS",
    }
    tier = notices.message_for("tier.changed", {"tier": "Gold"}, SPEC, "en", AT)
    assert tier is not None and tier["body"] == "Your tier is now Gold."
    assert notices.message_for("purchase.confirmed", {}, SPEC, "en", AT) is None


def test_contrast_follows_wcag() -> None:
    assert round(branding.contrast("#ffffff", "#000000"), 2) == 21.0
    assert round(branding.contrast("#777777", "#ffffff"), 2) == 4.48
    assert branding.ink_on("#ffcc00") == branding.DARK_INK
    assert branding.ink_on("#1f6feb") == branding.WHITE


@given(st.integers(min_value=0, max_value=0xFFFFFF))
def test_brand_text_is_always_readable_on_white(value: int) -> None:
    # given any brand colour
    color = f"#{value:06x}"
    # then the colour used for text is legible on white (WCAG AA, 4.5:1)
    readable = branding.readable_on_white(color)
    assert branding.contrast(readable, "#ffffff") >= 4.5
    # and a colour already legible is kept as it is
    if branding.contrast(color, "#ffffff") >= 4.5:
        assert readable == color
    # and the ink on the brand colour is the better of white and near-black
    ink = branding.ink_on(color)
    other = branding.DARK_INK if ink == branding.WHITE else branding.WHITE
    assert branding.contrast(color, ink) >= branding.contrast(color, other)


def test_the_card_barcode_is_the_ean_13_of_the_card_number() -> None:
    # given a card number with its EAN-13 check digit
    number = "7712345678907"
    pattern = codes.ean13_pattern(number)
    # then the pattern has 95 modules with the start, centre and end guards
    assert len(pattern) == 95
    assert pattern[:3] == "101" and pattern[45:50] == "01010" and pattern[-3:] == "101"
    svg = codes.ean13_svg(number, 'Card "1"')
    assert 'aria-label="Card &#34;1&#34;"' in svg and "style=" not in svg
    # a wrong check digit is refused
    with pytest.raises(ValueError):
        codes.ean13_pattern("7712345678903")


@pytest.mark.parametrize(
    ("header", "chosen", "expected"),
    [
        ("ru-RU,ru;q=0.9,en-US;q=0.8", None, "ru"),
        ("en-US,en;q=0.9,ru;q=0.8", None, "en"),
        ("de-DE,ru;q=0.7", None, "ru"),
        ("de-DE", None, "en"),
        (None, None, "en"),
        ("en;q=0.2,ru;q=0.9", None, "ru"),
        ("ru", "en", "en"),
        ("ru", "fr", "ru"),
    ],
)
def test_the_language_choice(header: str | None, chosen: str | None, expected: str) -> None:
    assert pick_lang(header, chosen) == expected


def test_every_word_exists_in_both_languages() -> None:
    for key, (en, ru) in i18n.MESSAGES.items():
        assert en.strip() and ru.strip(), key
        assert set(_fields(en)) == set(_fields(ru)), key


def _fields(text: str) -> list[str]:
    import string

    return [f for _, f, _, _ in string.Formatter().parse(text) if f]
