"""Nothing personal in the logs: phone numbers, emails and card numbers are masked.

A structlog processor (installed by ``core.logging.configure_logging``) walks every value
of a log event, exception text included, and masks what looks like an email
(``i***@example.com``), a phone number or a card number (all but the last two digits).
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any

EMAIL = re.compile(r"(?<![\w.+-])([\w.+-])[\w.+-]*@([\w-]+(?:\.[\w-]+)+)")
# 10 to 15 digits, optionally with a leading + and single separators, standing alone (not
# inside a UUID, an ISO date or a longer token).
PHONE = re.compile(r"(?<![\w\-.:/])\+?\d(?:[ \-().]{0,2}\d){9,14}(?![\w\-:/])")


def _mask_digits(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = sum(ch.isdigit() for ch in text)
    seen = 0
    out = []
    for ch in text:
        if ch.isdigit():
            seen += 1
            out.append(ch if seen > digits - 2 else "*")
        else:
            out.append(ch)
    return "".join(out)


def mask_text(text: str) -> str:
    text = EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    return PHONE.sub(_mask_digits, text)


def _mask(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if depth > 5:
        return value
    if isinstance(value, dict):
        return {k: _mask(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_mask(v, depth + 1) for v in value)
    return value


def mask_personal_data(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        event_dict[key] = _mask(value)
    return event_dict
