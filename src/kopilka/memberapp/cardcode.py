"""The rotating card code, as pure functions (no I/O).

A card code is 16 digits: the device's ten-digit number, then six digits of a time-based
one-time password (RFC 6238 with HMAC-SHA-256, RFC 4226's dynamic truncation, 30-second
steps) from the device's own secret. The phone computes the same digits with WebCrypto
(``web/app/static/cardcode.js``), so the code works offline; the till sends it as
``{"qr": CODE}`` and the server finds the device by the first part and checks the rest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re

STEP_SECONDS = 30
DIGITS = 6
DEVICE_DIGITS = 10
CODE_LENGTH = DEVICE_DIGITS + DIGITS
# A code is accepted one step either side of the server's clock (phones drift a little).
WINDOW = 1

_SEPARATORS = re.compile(r"[\s\-]")


def step_at(at: dt.datetime) -> int:
    """The time step of a moment (whole 30-second periods since the Unix epoch)."""
    return int(at.timestamp()) // STEP_SECONDS


def otp(secret: bytes, step: int, digits: int = DIGITS) -> str:
    """The one-time password of ``step``: HMAC-SHA-256 of the step as 8 bytes big-endian,
    dynamically truncated to 31 bits, the last ``digits`` decimal digits."""
    if step < 0:
        raise ValueError("the step must not be negative")
    mac = hmac.new(secret, step.to_bytes(8, "big"), hashlib.sha256).digest()
    offset = mac[-1] & 0x0F
    value = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def card_code(card_no: str, secret: bytes, at: dt.datetime) -> str:
    """The code a device with ``card_no`` and ``secret`` shows at ``at``."""
    return card_no + otp(secret, step_at(at))


def split(code: str) -> tuple[str, str] | None:
    """``(device number, one-time digits)`` of a code as typed or scanned (spaces and
    dashes ignored), or None if it cannot be a card code."""
    digits = _SEPARATORS.sub("", code)
    if len(digits) != CODE_LENGTH or not digits.isascii() or not digits.isdigit():
        return None
    return digits[:DEVICE_DIGITS], digits[DEVICE_DIGITS:]


def matching_step(secret: bytes, given: str, at: dt.datetime, not_before: int = 0) -> int | None:
    """The step within the window around ``at`` whose password is ``given`` (the latest
    if several), not earlier than ``not_before``; None if there is none. Every candidate
    is compared in constant time."""
    now_step = step_at(at)
    found = None
    for step in range(now_step - WINDOW, now_step + WINDOW + 1):
        if step < 0:
            continue
        ok = hmac.compare_digest(otp(secret, step), given)
        if ok and step >= not_before:
            found = step
    return found
