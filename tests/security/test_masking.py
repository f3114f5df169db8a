"""Nothing personal in the logs."""

from __future__ import annotations

import json

import pytest
import structlog

from kopilka.core.config import get_settings
from kopilka.core.logging import configure_logging
from kopilka.core.masking import mask_personal_data, mask_text


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("call +7 916 123-45-67 now", "call +* *** ***-**-67 now"),
        ("phone=+79161234567", "phone=+*********67"),
        ("write to Ivan.Petrov@Example.com", "write to I***@Example.com"),
        ("card 7712345678901 scanned", "card ***********01 scanned"),
    ],
)
def test_phones_emails_and_cards_are_masked(raw: str, masked: str) -> None:
    assert mask_text(raw) == masked


@pytest.mark.parametrize(
    "kept",
    [
        "id 0195f3a2-1234-7abc-8def-123456789012",
        "at 2026-11-23T02:42:59.123456+00:00",
        "amount 629.80 of 1000",
        "request 3f2a9c81d2e54b7fa0c1b2d3e4f56789",
        "from 127.0.0.1:8000",
    ],
)
def test_ids_times_and_amounts_are_kept(kept: str) -> None:
    assert mask_text(kept) == kept


def test_nested_values_and_exceptions_are_masked() -> None:
    event = {
        "event": "x",
        "who": {"phone": "+79161234567", "list": ["a@b.example.org"]},
        "exception": "IntegrityError: Key (email)=(anna@example.com) already exists",
    }
    out = mask_personal_data(None, "info", event)
    assert "79161234567" not in json.dumps(out) and "anna@" not in json.dumps(out)
    assert out["who"]["list"] == ["a***@b.example.org"]


def test_the_configured_logger_masks() -> None:
    # given the logging as the application configures it
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    processors = structlog.get_config()["processors"]
    # then the masking runs after exceptions are rendered and before the line is written
    assert mask_personal_data in processors
    at = processors.index(mask_personal_data)
    assert processors[at - 1] is structlog.processors.format_exc_info
    assert at == len(processors) - 2
    # and a rendered line carries no phone or email
    rendered = structlog.processors.JSONRenderer()(
        None, "info", mask_personal_data(None, "info", {"phone": "+79161234567", "e": "a@b.ru"})
    )
    assert json.loads(rendered) == {"phone": "+*********67", "e": "a***@b.ru"}
