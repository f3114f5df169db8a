"""Card numbers: 13 digits with an EAN-13 check digit, so any till scanner reads them."""

from __future__ import annotations

import secrets


def ean13_check_digit(first12: str) -> int:
    if len(first12) != 12 or not first12.isdigit():
        raise ValueError("need exactly 12 digits")
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first12))
    return (10 - total % 10) % 10


def is_valid_card(number: str) -> bool:
    return (
        len(number) == 13 and number.isdigit() and ean13_check_digit(number[:12]) == int(number[12])
    )


def new_card_number(prefix: str) -> str:
    """A random card number (CSPRNG, so numbers reveal neither order nor count)."""
    body_len = 12 - len(prefix)
    body = "".join(str(secrets.randbelow(10)) for _ in range(body_len))
    first12 = prefix + body
    return first12 + str(ean13_check_digit(first12))


REFERRAL_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I look-alikes


def new_referral_code(length: int = 8) -> str:
    return "".join(secrets.choice(REFERRAL_ALPHABET) for _ in range(length))
